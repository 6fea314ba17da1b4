package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"github.com/lxzan/gws"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/memstore"
	"github.com/grainchat/grainchat/transport/wsclient"
)

// rawWS is a WebSocket client that writes and reads frames byte by byte, for
// what wsclient cannot or will not do: send frames that break RFC 6455, and
// stop reading.
type rawWS struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
	// Resp is the handshake's answer; the socket is usable only after 101.
	Resp *http.Response
}

// rawDial sends a WebSocket handshake to chatd at addr with header (plus the
// upgrade headers) and reads the answer.
func rawDial(t testing.TB, addr string, header http.Header) *rawWS {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/ws/chat/", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key))
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if err := req.Write(conn); err != nil {
		t.Fatalf("write handshake: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("read handshake answer: %v", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return &rawWS{t: t, conn: conn, br: br, Resp: resp}
}

// rawFrame is one frame as it goes on the wire.
type rawFrame struct {
	fin, rsv1 bool
	op        byte
	payload   []byte
	unmasked  bool // a client must mask; true breaks that rule
}

// write sends f.
func (c *rawWS) write(f rawFrame) {
	c.t.Helper()
	var b []byte
	first := f.op & 0x0f
	if f.fin {
		first |= 0x80
	}
	if f.rsv1 {
		first |= 0x40
	}
	b = append(b, first)
	maskBit := byte(0x80)
	if f.unmasked {
		maskBit = 0
	}
	switch n := len(f.payload); {
	case n < 126:
		b = append(b, maskBit|byte(n))
	case n <= 0xffff:
		b = append(b, maskBit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	p := append([]byte(nil), f.payload...)
	if !f.unmasked {
		mask := make([]byte, 4)
		_, _ = rand.Read(mask)
		b = append(b, mask...)
		for i := range p {
			p[i] ^= mask[i%4]
		}
	}
	b = append(b, p...)
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

// read reads one server frame (servers do not mask) before deadline.
func (c *rawWS) read(deadline time.Time) (op byte, payload []byte, err error) {
	_ = c.conn.SetReadDeadline(deadline)
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if h[1]&0x80 != 0 || n > 1<<24 {
		return 0, nil, fmt.Errorf("bad server frame header % x (length %d)", h, n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, payload, nil
}

// rawEnd is how a raw socket ended: its text frames, and either the close
// frame's code or the error that ended reading (EOF, reset).
type rawEnd struct {
	texts     [][]byte
	closeCode int // 0: no close frame
	reason    string
	err       error
}

// readToEnd reads frames until a close frame, the end of the stream or
// deadline, answering nothing.
func (c *rawWS) readToEnd(deadline time.Time) rawEnd {
	var end rawEnd
	for {
		op, p, err := c.read(deadline)
		if err != nil {
			end.err = err
			return end
		}
		switch op {
		case 1:
			end.texts = append(end.texts, p)
		case 8:
			if len(p) >= 2 {
				end.closeCode = int(binary.BigEndian.Uint16(p))
				end.reason = string(p[2:])
			} else {
				end.closeCode = 1005
			}
			return end
		}
	}
}

// readUntil reads server frames until match accepts one (answering nothing),
// and returns the text frames read so far; it fails the test if the socket
// ends or deadline passes first.
func (c *rawWS) readUntil(what string, match func(op byte, payload []byte) bool) [][]byte {
	c.t.Helper()
	var texts [][]byte
	deadline := time.Now().Add(waitTimeout)
	for {
		op, p, err := c.read(deadline)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v; text frames: %q", what, err, texts)
		}
		if op == 1 {
			texts = append(texts, p)
		}
		if op == 8 {
			c.t.Fatalf("waiting for %s: closed with %q; text frames: %q", what, p, texts)
		}
		if match(op, p) {
			return texts
		}
	}
}

// Handshakes that TestHandshake does not try, on a server that requires iss
// and aud and allows one socket per user: every refusal is a real HTTP
// status before any upgrade, and a refused or failed handshake does not keep
// the user's socket slot.
func TestHostileHandshakes(t *testing.T) {
	const iss, aud = "https://shop.example.com", "grainchat"
	s := startServer(t, "--database-url", newDatabase(t), "--jwt-issuer", iss, "--jwt-audience", aud, "--max-conns-per-user", "1")
	secret := []byte(testSecret)
	now := time.Now()
	hs256 := map[string]any{"alg": "HS256", "typ": "JWT"}
	tok := func(sub string, extra map[string]any) string {
		c := map[string]any{"sub": sub, "name": "Hostile", "iss": iss, "aud": aud, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return handToken(hs256, c, secret)
	}
	v1 := func(h http.Header) http.Header {
		h.Set("Sec-WebSocket-Protocol", "grainchat.v1")
		return h
	}
	cases := []struct {
		name   string
		header http.Header
		status int
		// user is the welcome's user.name when upgraded.
		user string
	}{
		{name: "iss and aud as configured", header: v1(bearer(tok("ok-1", nil))), status: 101, user: "Hostile"},
		{name: "aud list holding ours", header: v1(bearer(tok("ok-2", map[string]any{"aud": []string{"other", aud}}))), status: 101, user: "Hostile"},
		{name: "wrong iss", header: bearer(tok("h-1", map[string]any{"iss": "https://evil.example"})), status: 401},
		{name: "no iss", header: bearer(tok("h-2", map[string]any{"iss": nil})), status: 401},
		{name: "wrong aud", header: bearer(tok("h-3", map[string]any{"aud": "other"})), status: 401},
		{name: "no aud", header: bearer(tok("h-4", map[string]any{"aud": nil})), status: 401},
		{name: "iat in the future", header: bearer(tok("h-5", map[string]any{"iat": now.Add(time.Hour).Unix()})), status: 401},
		{name: "sub of 201 bytes", header: bearer(tok(strings.Repeat("s", 201), nil)), status: 401},
		{name: "sub of 200 bytes", header: v1(bearer(tok(strings.Repeat("t", 200), map[string]any{"name": "Long"}))), status: 101, user: "Long"},
		{name: "sub with a NUL", header: bearer(tok("h-6\x00x", nil)), status: 401},
		{name: "sub not a string", header: bearer(tok("h-7", map[string]any{"sub": 7})), status: 401},
		{name: "admin claim as a string", header: bearer(tok("h-8", map[string]any{"admin": "true"})), status: 401},
		{name: "token over 8 KiB", header: bearer(tok("h-9", map[string]any{"name": strings.Repeat("n", 9000)})), status: 401},
		{name: "Authorization: Basic", header: http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("user:pass"))}}, status: 401},
		{name: "Authorization: Bearer without a token", header: http.Header{"Authorization": {"Bearer "}}, status: 401},
		{name: "empty cookie", header: http.Header{"Cookie": {"chat_token="}}, status: 401},
		{name: "two Origin headers", header: http.Header{"Authorization": {"Bearer " + tok("h-10", nil)}, "Origin": {"http://" + s.Addr, "http://evil.example"}}, status: 403},
		{name: "headers over 16 KiB", header: http.Header{"Authorization": {"Bearer " + tok("h-11", nil)}, "X-Pad": {strings.Repeat("p", 24<<10)}}, status: 431},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rawDial(t, s.Addr, tc.header)
			defer c.conn.Close()
			if c.Resp.StatusCode != tc.status {
				t.Fatalf("handshake answered %s, want %d", c.Resp.Status, tc.status)
			}
			if tc.status != 101 {
				return
			}
			texts := c.readUntil("the welcome", func(op byte, p []byte) bool { return op == 1 })
			var w struct {
				Type string `json:"type"`
				User struct {
					Name string `json:"name"`
				} `json:"user"`
			}
			if err := json.Unmarshal(texts[0], &w); err != nil || w.Type != "welcome" || w.User.Name != tc.user {
				t.Errorf("first frame %s (%v), want a welcome for %q", texts[0], err, tc.user)
			}
		})
	}

	// permessage-deflate is not negotiated: the upgrade answers without it
	// (so that no client may send compressed frames, see TestHostileFrames).
	t.Run("permessage-deflate offered", func(t *testing.T) {
		h := v1(bearer(tok("deflate", nil)))
		h.Set("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
		c := rawDial(t, s.Addr, h)
		defer c.conn.Close()
		if c.Resp.StatusCode != 101 {
			t.Fatalf("handshake answered %s, want 101", c.Resp.Status)
		}
		if ext := c.Resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
			t.Errorf("the upgrade accepted extensions %q, want none", ext)
		}
	})

	// A request to the WebSocket path that is not an upgrade is answered 400
	// after the session was prepared; the user's only socket slot is free
	// again at once.
	t.Run("not an upgrade", func(t *testing.T) {
		token := tok("plain", nil)
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr+"/ws/chat/", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain GET answered %d, want 400", resp.StatusCode)
		}
		// The slot is released when the handler returns, just after the
		// answer: poll.
		for deadline := time.Now().Add(waitTimeout); ; time.Sleep(50 * time.Millisecond) {
			c := rawDial(t, s.Addr, v1(bearer(token)))
			c.conn.Close()
			if c.Resp.StatusCode == 101 {
				break
			}
			if c.Resp.StatusCode != 429 || time.Now().After(deadline) {
				t.Fatalf("the user's socket after a failed upgrade: %s, want 101", c.Resp.Status)
			}
		}
	})
}

// hostileFrameArgs is the server of TestHostileFrames: frames up to 4 KiB, a
// silent socket closed after 4s (pinged every second), posts waiting up to
// 30s for the store (a test holds the store back).
var hostileFrameArgs = []string{"--max-frame-bytes", "4096", "--idle-timeout", "4s", "--ping-interval", "1s", "--post-timeout", "30s"}

// Frames that break RFC 6455, and frames and requests that TestErrorFrames
// and the history and inbox tests do not try: each gets exactly the
// documented answer, a refused frame stores nothing, and the socket stays
// usable whenever the answer is an error frame rather than a close.
func TestHostileFrames(t *testing.T) {
	dsn := newDatabase(t)
	s := startServer(t, append([]string{"--database-url", dsn}, hostileFrameArgs...)...)
	rawHeader := func(sub string) http.Header {
		return http.Header{"Authorization": {"Bearer " + mint(t, sub, sub, false)}, "Sec-WebSocket-Protocol": {"grainchat.v1"}}
	}

	// Protocol violations close the socket with 1002, fragments adding up to
	// more than --max-frame-bytes with 1009; nothing they carried is stored.
	t.Run("protocol violations", func(t *testing.T) {
		msg := func(text string) []byte { return []byte(`{"message":"` + text + `"}`) }
		big := []byte(`{"message":"` + strings.Repeat("x", 3000))
		cases := []struct {
			name   string
			frames []rawFrame
			code   int
		}{
			{"unmasked frame", []rawFrame{{fin: true, op: 1, payload: msg("unmasked"), unmasked: true}}, 1002},
			{"RSV1 without a negotiated extension", []rawFrame{{fin: true, rsv1: true, op: 1, payload: msg("rsv1")}}, 1002},
			{"reserved data opcode 3", []rawFrame{{fin: true, op: 3, payload: msg("op3")}}, 1002},
			{"reserved control opcode 11", []rawFrame{{fin: true, op: 11, payload: []byte("x")}}, 1002},
			{"continuation without a start", []rawFrame{{fin: true, op: 0, payload: msg("cont")}}, 1002},
			{"new message inside a fragmented one", []rawFrame{{op: 1, payload: []byte(`{"message":`)}, {fin: true, op: 1, payload: msg("inside")}}, 1002},
			{"fragmented ping", []rawFrame{{op: 9, payload: []byte("p")}}, 1002},
			{"ping of 126 bytes", []rawFrame{{fin: true, op: 9, payload: bytes.Repeat([]byte("p"), 126)}}, 1002},
			{"close frame with a 1-byte payload", []rawFrame{{fin: true, op: 8, payload: []byte{3}}}, 1002},
			{"close frame with code 1005", []rawFrame{{fin: true, op: 8, payload: []byte{0x03, 0xed}}}, 1002},
			{"fragments over max-frame-bytes", []rawFrame{{op: 1, payload: big}, {fin: true, op: 0, payload: append(bytes.Repeat([]byte("y"), 3000), `"}`...)}}, 1009},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := rawDial(t, s.Addr, rawHeader("raw-user"))
				defer c.conn.Close()
				if c.Resp.StatusCode != 101 {
					t.Fatalf("handshake: %s", c.Resp.Status)
				}
				// The welcome, then the availability frame that follows it.
				c.readUntil("the availability frame", func(op byte, p []byte) bool {
					return op == 1 && bytes.Contains(p, []byte(`"type":"availability"`))
				})
				for _, f := range tc.frames {
					c.write(f)
				}
				end := c.readToEnd(time.Now().Add(waitTimeout))
				if end.closeCode != tc.code {
					t.Errorf("closed with %d %q (%v), want %d", end.closeCode, end.reason, end.err, tc.code)
				}
				if len(end.texts) != 0 {
					t.Errorf("got frames %q before the close, want none", end.texts)
				}
			})
		}
		// A fragmented message, with a ping between its fragments (RFC 6455
		// allows control frames there), is one message.
		t.Run("fragmented message with a ping inside", func(t *testing.T) {
			c := rawDial(t, s.Addr, rawHeader("raw-user"))
			defer c.conn.Close()
			c.readUntil("the welcome", func(op byte, _ []byte) bool { return op == 1 })
			c.write(rawFrame{op: 1, payload: []byte(`{"message":"frag`)})
			c.write(rawFrame{fin: true, op: 9, payload: []byte("mid")})
			c.write(rawFrame{op: 0, payload: []byte(`mented","client_msg_id":`)})
			c.write(rawFrame{fin: true, op: 0, payload: []byte(`"f1"}`)})
			c.readUntil("the pong", func(op byte, p []byte) bool { return op == 10 && string(p) == "mid" })
			c.readUntil("the ack", func(op byte, p []byte) bool {
				return op == 1 && strings.Contains(string(p), `"type":"ack"`) && strings.Contains(string(p), `"client_msg_id":"f1"`)
			})
		})
		// What the violations carried was not stored.
		v := dial(t, s, "raw-user", "raw-user", false, true)
		h := history(t, v, map[string]any{"limit": 100})
		if got := textsOf(historyMessages(t, h)); !reflect.DeepEqual(got, []string{"fragmented"}) {
			t.Errorf("the conversation holds %q, want only the fragmented message", got)
		}
	})

	// Requests TestErrorFrames and the history and inbox tests do not try,
	// refused with an error frame: the exact code, the socket usable after
	// it, nothing stored. And requests that look hostile but are accepted,
	// with what the server makes of them.
	t.Run("requests", func(t *testing.T) {
		other := dial(t, s, "req-other", "Olga", false, true)
		v := dial(t, s, "req-user", "Rita", false, true)
		admin := dial(t, s, "req-staff", "Sam", true, true)
		otherConv, conv, rita := convOf(t, other), convOf(t, v), userID(t, v)
		deepArray := strings.Repeat("[", 1500) + strings.Repeat("]", 1500)
		deepObject := `{"message":` + strings.Repeat(`{"a":`, 600) + "1" + strings.Repeat("}", 600) + `,"client_msg_id":"r-deep"}`
		refused := []struct {
			name, frame, code string
			clientMsgID       string // echoed ("" when the frame has none or it is the fault)
			conv              int64  // echoed (0: not checked)
		}{
			{"client_msg_id starting with ~", `{"message":"a","client_msg_id":"~mine"}`, "invalid_request", "", 0},
			{"conversation_id 1.5", `{"message":"a","conversation_id":1.5,"client_msg_id":"r-float"}`, "invalid_request", "r-float", 0},
			{"conversation_id 1e3", `{"message":"a","conversation_id":1e3,"client_msg_id":"r-exp"}`, "invalid_request", "r-exp", 0},
			{"conversation_id true", `{"message":"a","conversation_id":true,"client_msg_id":"r-bool"}`, "invalid_request", "r-bool", 0},
			{"conversation_id over 2^63", `{"message":"a","conversation_id":18446744073709551616,"client_msg_id":"r-big"}`, "invalid_request", "r-big", 0},
			{"type not a string", `{"type":5,"message":"a"}`, "invalid_request", "", 0},
			{"trailing data", `{"message":"a","client_msg_id":"r-trail"} x`, "invalid_json", "", 0},
			{"two objects in one frame", `{"message":"a"}{"message":"b"}`, "invalid_json", "", 0},
			{"raw tab inside a string", "{\"message\":\"a\tb\"}", "invalid_json", "", 0},
			{"byte order mark first", "\ufeff{\"message\":\"bom\"}", "invalid_json", "", 0},
			{"1500 nested arrays", deepArray, "invalid_request", "", 0},
			{"600 nested objects as the message", deepObject, "invalid_request", "r-deep", 0},
			{"history limit -1", `{"type":"history","limit":-1}`, "invalid_request", "", 0},
			{"history limit over 2^63", `{"type":"history","limit":99999999999999999999}`, "invalid_request", "", 0},
			{"history before_seq 1.5", `{"type":"history","before_seq":1.5}`, "invalid_request", "", 0},
			{"visitor opens another conversation", fmt.Sprintf(`{"type":"open","conversation_id":%d}`, otherConv), "forbidden", "", otherConv},
		}
		var stored []string
		for i, tc := range refused {
			t.Run(tc.name, func(t *testing.T) {
				from := len(v.Frames())
				sendRaw(t, v, gws.OpcodeText, []byte(tc.frame))
				e, _ := waitType(t, v, from, "error")
				if e.String("code") != tc.code {
					t.Errorf("frame %.60q: error %s, want code %q", tc.frame, e.Raw, tc.code)
				}
				if tc.clientMsgID != "" && e.String("client_msg_id") != tc.clientMsgID {
					t.Errorf("error %s, want client_msg_id %q echoed", e.Raw, tc.clientMsgID)
				}
				if tc.conv != 0 && e.Int("conversation_id") != tc.conv {
					t.Errorf("error %s, want conversation_id %d", e.Raw, tc.conv)
				}
				text := fmt.Sprintf("ok %d", i)
				post(t, v, 0, text, fmt.Sprintf("ok-%d", i))
				stored = append(stored, text)
				if n := len(framesOfType(v, from, "error")); n != 1 {
					t.Errorf("%d error frames for one bad frame:%s", n, dump(v))
				}
			})
		}

		accepted := []struct {
			name, frame, clientMsgID, stored string
		}{
			// JSON decoding turns an unpaired UTF-16 surrogate into U+FFFD.
			{"lone surrogate escape", `{"message":"\ud800 lone","client_msg_id":"a-sur"}`, "a-sur", "\ufffd lone"},
			{"duplicate keys: the last wins", `{"message":"first","message":"second","client_msg_id":"a-dup"}`, "a-dup", "second"},
			{"unknown fields and a forged sender", `{"message":"forged","client_msg_id":"a-forge","sender_id":1,"sender_name":"Boss","sender_is_admin":true,"unknown":{"x":[1,2]}}`, "a-forge", "forged"},
		}
		for _, tc := range accepted {
			t.Run(tc.name, func(t *testing.T) {
				from := len(v.Frames())
				sendRaw(t, v, gws.OpcodeText, []byte(tc.frame))
				ack, _ := waitFrame(t, v, from, "answer to "+tc.clientMsgID, func(f wsclient.Frame) bool {
					return (f.Type() == "ack" || f.Type() == "error") && f.String("client_msg_id") == tc.clientMsgID
				})
				if ack.Type() != "ack" {
					t.Fatalf("got %s, want an ack", ack.Raw)
				}
				stored = append(stored, tc.stored)
				m, _ := waitFrame(t, admin, 0, "the message", func(f wsclient.Frame) bool {
					return isMessage(f) && f.Int("seq") == ack.Int("seq") && f.Int("conversation_id") == conv
				})
				checkV1Message(t, m, "message", wantMessage{conv: conv, seq: ack.Int("seq"), text: tc.stored,
					senderID: rita, senderName: "Rita", clientMsgID: tc.clientMsgID})
			})
		}

		t.Run("visitor opens and leaves its own conversation", func(t *testing.T) {
			from := len(v.Frames())
			send(t, v, map[string]any{"type": "open", "conversation_id": conv})
			if f, _ := waitFrame(t, v, from, "opened", func(f wsclient.Frame) bool { return f.Type() == "opened" || f.Type() == "error" }); f.Type() != "opened" || f.Int("conversation_id") != conv {
				t.Errorf("open of its own conversation: %s, want opened", f.Raw)
			}
			from = len(v.Frames())
			send(t, v, map[string]any{"type": "leave", "conversation_id": conv})
			if f, _ := waitFrame(t, v, from, "left", func(f wsclient.Frame) bool { return f.Type() == "left" || f.Type() == "error" }); f.Type() != "left" || f.Int("conversation_id") != conv {
				t.Errorf("leave of its own conversation %d: %s, want left", conv, f.Raw)
			}
			// Another conversation is forbidden, as for every other frame.
			from = len(v.Frames())
			send(t, v, map[string]any{"type": "leave", "conversation_id": otherConv})
			if f, _ := waitFrame(t, v, from, "forbidden", func(f wsclient.Frame) bool { return f.Type() == "left" || f.Type() == "error" }); f.String("code") != "forbidden" || f.Int("conversation_id") != otherConv {
				t.Errorf("leave of another conversation %d: %s, want forbidden", otherConv, f.Raw)
			}
			// Leaving changed nothing: staff replies still reach the visitor.
			post(t, admin, conv, "still yours", "s1")
			stored = append(stored, "still yours")
			waitMsg(t, v, conv, "still yours")
		})

		// Nothing refused was stored, in either conversation.
		h := history(t, v, map[string]any{"limit": 100})
		if got := textsOf(historyMessages(t, h)); !reflect.DeepEqual(got, stored) {
			t.Errorf("the conversation holds %q, want %q", got, stored)
		}
		if h := history(t, other, map[string]any{}); len(historyMessages(t, h)) != 0 {
			t.Errorf("the other conversation holds %s, want nothing", h.Raw)
		}
	})

	// History pages are bounded whatever the client asks.
	t.Run("history bounds", func(t *testing.T) {
		v := dial(t, s, "hist-user", "Hana", false, true)
		for i := 1; i <= 105; i++ {
			post(t, v, 0, fmt.Sprint("h", i), fmt.Sprint("h", i))
		}
		for _, tc := range []struct {
			name    string
			req     map[string]any
			seqs    []int64
			hasMore bool
		}{
			{"limit 1000000 gives 100", map[string]any{"limit": 1000000}, seqRange(1, 100), true},
			{"limit 0 gives 50", map[string]any{"limit": 0}, seqRange(1, 50), true},
			{"after_seq 2^63-1", map[string]any{"after_seq": int64(math.MaxInt64)}, nil, false},
			{"before_seq 2^63-1", map[string]any{"before_seq": int64(math.MaxInt64), "limit": 3}, seqRange(103, 105), true},
			{"after_seq above before_seq", map[string]any{"after_seq": 50, "before_seq": 10}, nil, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := history(t, v, tc.req)
				if h.Type() != "history" {
					t.Fatalf("history %v: got %s", tc.req, h.Raw)
				}
				if got := seqsOf(historyMessages(t, h)); !reflect.DeepEqual(got, tc.seqs) && (len(got) != 0 || len(tc.seqs) != 0) {
					t.Errorf("history %v: seqs %v, want %v", tc.req, got, tc.seqs)
				}
				if h.Fields["has_more"] != tc.hasMore {
					t.Errorf("history %v: has_more %v, want %v", tc.req, h.Fields["has_more"], tc.hasMore)
				}
			})
		}
	})

	// More than 64 posts of one socket waiting for their ack: the server
	// stops reading the socket (the 65th waits in the kernel's buffers) and
	// refuses nothing; once the store answers again all 65 are stored in
	// order. The store is held back by locking the conversation's row, which
	// every append locks.
	t.Run("too many pending posts", func(t *testing.T) {
		v := dial(t, s, "pending-user", "Pia", false, true)
		conv := convOf(t, v)
		db, err := sql.Open("postgres", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ctx := ctxT(t, waitTimeout)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE`, conv); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 65; i++ {
			send(t, v, map[string]any{"message": fmt.Sprint("p", i), "client_msg_id": fmt.Sprint("p", i)})
		}
		// The server holds 64 and reads no further: nothing is answered.
		if f, _, err := v.WaitFor(ctxT(t, time.Second), 0, func(f wsclient.Frame) bool {
			return f.Type() == "ack" || f.Type() == "error"
		}); err == nil {
			t.Fatalf("answered while the store was held back: %s", f.Raw)
		}
		if err := tx.Rollback(); err != nil { // the store answers again
			t.Fatal(err)
		}
		acks := map[string]int64{}
		_, _, err = v.WaitFor(ctxT(t, waitTimeout), 0, func(f wsclient.Frame) bool {
			if f.Type() == "ack" {
				acks[f.String("client_msg_id")] = f.Int("seq")
			}
			return len(acks) == 65
		})
		if err != nil {
			t.Fatalf("%d of 65 posts acknowledged: %v%s", len(acks), err, dump(v))
		}
		for i := 1; i <= 65; i++ {
			if seq := acks[fmt.Sprint("p", i)]; seq != int64(i) {
				t.Errorf("p%d acknowledged with seq %d, want %d", i, seq, i)
			}
		}
		if n := len(framesOfType(v, 0, "error")); n != 0 {
			t.Errorf("%d error frames, want none:%s", n, dump(v))
		}
	})

	// A socket that sends nothing, not even pongs, is closed after
	// --idle-timeout (the server pings it meanwhile).
	t.Run("silent socket", func(t *testing.T) {
		c := rawDial(t, s.Addr, rawHeader("silent-user"))
		defer c.conn.Close()
		opened := time.Now()
		pings := 0
		var end rawEnd
		for deadline := time.Now().Add(waitTimeout); ; {
			op, p, err := c.read(deadline)
			if err != nil {
				end.err = err
				break
			}
			if op == 9 {
				pings++
			}
			if op == 8 {
				end.closeCode = int(binary.BigEndian.Uint16(p))
				end.reason = string(p[2:])
				break
			}
		}
		if end.closeCode != 1000 || end.reason != "idle timeout" {
			// The reason is fixed: a network error's text would name the node's addresses.
			t.Errorf("the silent socket ended with %d %q (%v), want 1000 \"idle timeout\"", end.closeCode, end.reason, end.err)
		}
		if pings == 0 {
			t.Errorf("the silent socket was never pinged")
		}
		t.Logf("closed %v after the handshake, after %d pings", time.Since(opened).Round(100*time.Millisecond), pings)
	})
}

// panickyStore is a Store whose read methods panic while armed: a stand-in
// for a bug inside a grain's or a session's Receive (see actors/panic_test.go
// for the same at the actor level).
type panickyStore struct {
	storage.Store
	mu    sync.Mutex
	armed map[string]int
}

func (p *panickyStore) arm(method string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed[method]++
}

func (p *panickyStore) maybePanic(method string) {
	p.mu.Lock()
	fire := p.armed[method] > 0
	if fire {
		p.armed[method]--
	}
	p.mu.Unlock()
	if fire {
		panic("injected panic in Store." + method)
	}
}

func (p *panickyStore) Conversation(ctx context.Context, id int64) (storage.Conversation, error) {
	p.maybePanic("Conversation")
	return p.Store.Conversation(ctx, id)
}

// ConversationStates is a grain's load on activation (batch.Loader): its
// panic fails the load with internal.
func (p *panickyStore) ConversationStates(ctx context.Context, ids []int64) ([]storage.ConversationState, error) {
	p.maybePanic("ConversationState")
	return p.Store.ConversationStates(ctx, ids)
}

func (p *panickyStore) Messages(ctx context.Context, conv int64, page storage.Page) ([]storage.Message, error) {
	p.maybePanic("Messages")
	return p.Store.Messages(ctx, conv, page)
}

// panicServer runs chatd (Main, as runServe does) over a panickyStore on a
// loopback port.
func panicServer(t *testing.T) (*testServer, *panickyStore) {
	t.Helper()
	store := &panickyStore{Store: memstore.New(memstore.Options{}), armed: map[string]int{}}
	args := []string{"--addr", "127.0.0.1:0", "--jwt-secret", testSecret, "--message-rate", "-1", "--log-level", "error"}
	cfg, err := loadConfig("chatd", args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Stdout: io.Discard, Store: store}
	if err := m.Open(context.Background()); err != nil {
		m.Close()
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("chatd: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("chatd did not stop within 30s")
		}
	})
	return &testServer{t: t, Addr: m.Addr()}, store
}

// A bug that panics inside a grain or a session reaches the client as an
// error or a close, never as silence; the retry works and the node keeps
// serving everyone else.
func TestPanicsReachClientsAsErrors(t *testing.T) {
	s, store := panicServer(t)
	// Alice's conversation exists but nobody uses it: its grain is not active.
	ctx := ctxT(t, waitTimeout)
	alice, err := store.UpsertUser(ctx, storage.UserInput{ExternalID: "alice", Name: "Alice"})
	if err != nil {
		t.Fatal(err)
	}
	aliceConv, err := store.EnsureConversation(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	staff := dial(t, s, "staff", "Ann", true, true)
	bob := dial(t, s, "bob", "Bob", false, true)
	bobTab := dial(t, s, "bob", "Bob", false, true)
	bobConv := convOf(t, bob)

	t.Run("grain", func(t *testing.T) {
		// The staff's post activates Alice's grain, whose load panics: the
		// post is answered internal, the retry is stored as seq 1.
		store.arm("ConversationState")
		from := len(staff.Frames())
		send(t, staff, map[string]any{"message": "boom", "conversation_id": aliceConv.ID, "client_msg_id": "g1"})
		e, _ := waitFrame(t, staff, from, "answer to g1", func(f wsclient.Frame) bool {
			return (f.Type() == "ack" || f.Type() == "error") && f.String("client_msg_id") == "g1"
		})
		if e.Type() != "error" || e.String("code") != "internal" || e.Int("conversation_id") != aliceConv.ID {
			t.Fatalf("answer to the post that panicked: %s, want error internal", e.Raw)
		}
		if ack := post(t, staff, aliceConv.ID, "retry", "g1"); ack.Int("seq") != 1 || ack.Fields["duplicate"] != false {
			t.Fatalf("retry: %s, want a new message with seq 1", ack.Raw)
		}
		post(t, bob, 0, "bob still served", "b1")
		waitMsg(t, staff, bobConv, "bob still served")
	})

	t.Run("session", func(t *testing.T) {
		// Bob's history read panics inside his session: that socket is
		// closed with 1011; his other tab, staff and a new socket work.
		store.arm("Messages")
		send(t, bob, map[string]any{"type": "history"})
		cl, err := bob.WaitClosed(ctxT(t, waitTimeout))
		if err != nil {
			t.Fatalf("the socket whose session panicked is still open:%s", dump(bob))
		}
		if cl.Code != 1011 {
			t.Errorf("closed with %d %q, want 1011", cl.Code, cl.Reason)
		}
		post(t, bobTab, 0, "after the panic", "b2")
		waitMsg(t, staff, bobConv, "after the panic")
		again := dial(t, s, "bob", "Bob", false, true)
		h := history(t, again, map[string]any{})
		if got := textsOf(historyMessages(t, h)); !reflect.DeepEqual(got, []string{"bob still served", "after the panic"}) {
			t.Errorf("history after the panic: %q", got)
		}
	})
}
