package main

// Helpers shared by the end-to-end protocol tests (docs/PROTOCOL.md). They
// add to harness_test.go; none of them sleeps: every wait is a WaitFor with a
// deadline, and "nothing else arrived" is asserted on the frames received
// before a later marker message.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// waitTimeout bounds every single wait of these tests.
const waitTimeout = 15 * time.Second

// wireTime is the documented time format: RFC 3339 UTC with microseconds.
var wireTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

// send writes v as a JSON text frame or fails the test.
func send(t testing.TB, c *wsclient.Client, v any) {
	t.Helper()
	if err := c.Send(v); err != nil {
		t.Fatalf("send %v: %v", v, err)
	}
}

// sendRaw writes b with opcode op or fails the test.
func sendRaw(t testing.TB, c *wsclient.Client, op gws.Opcode, b []byte) {
	t.Helper()
	if err := c.SendRaw(op, b); err != nil {
		t.Fatalf("send raw %q: %v", b, err)
	}
}

// waitFrame waits for the first frame at index >= from that matches.
func waitFrame(t testing.TB, c *wsclient.Client, from int, what string, match func(wsclient.Frame) bool) (wsclient.Frame, int) {
	t.Helper()
	f, i, err := c.WaitFor(ctxT(t, waitTimeout), from, match)
	if err != nil {
		t.Fatalf("waiting for %s: %v; got:%s", what, err, dump(c))
	}
	return f, i
}

// isMessage reports whether f is a chat message frame (seed or v1).
func isMessage(f wsclient.Frame) bool {
	if typ := f.Type(); typ != "" && typ != "message" {
		return false
	}
	_, hasText := f.Fields["message"]
	_, hasSender := f.Fields["sender_id"]
	return hasText && hasSender
}

// waitMsg waits for a message frame with text in conversation conv.
func waitMsg(t testing.TB, c *wsclient.Client, conv int64, text string) (wsclient.Frame, int) {
	t.Helper()
	return waitFrame(t, c, 0, fmt.Sprintf("message %q in conversation %d", text, conv), func(f wsclient.Frame) bool {
		return isMessage(f) && f.Int("conversation_id") == conv && f.String("message") == text
	})
}

// waitAck waits for the ack of clientMsgID from index from on.
func waitAck(t testing.TB, c *wsclient.Client, from int, clientMsgID string) (wsclient.Frame, int) {
	t.Helper()
	return waitFrame(t, c, from, fmt.Sprintf("ack of %q", clientMsgID), func(f wsclient.Frame) bool {
		return f.Type() == "ack" && f.String("client_msg_id") == clientMsgID
	})
}

// post sends a v1 message with a client_msg_id (conv 0: none named) and
// returns its ack, failing the test on an error frame for it.
func post(t testing.TB, c *wsclient.Client, conv int64, text, clientMsgID string) wsclient.Frame {
	t.Helper()
	from := len(c.Frames())
	req := map[string]any{"message": text, "client_msg_id": clientMsgID}
	if conv != 0 {
		req["conversation_id"] = conv
	}
	send(t, c, req)
	f, _ := waitFrame(t, c, from, fmt.Sprintf("ack or error of %q", clientMsgID), func(f wsclient.Frame) bool {
		return (f.Type() == "ack" || f.Type() == "error") && f.String("client_msg_id") == clientMsgID
	})
	if f.Type() != "ack" {
		t.Fatalf("post %q: got %s, want an ack", clientMsgID, f.Raw)
	}
	return f
}

// welcomeOf returns the client's welcome frame (dial waited for it).
func welcomeOf(t testing.TB, c *wsclient.Client) wsclient.Frame {
	t.Helper()
	f, _ := waitType(t, c, 0, "welcome")
	return f
}

// convOf is a v1 visitor's conversation id, from its welcome.
func convOf(t testing.TB, c *wsclient.Client) int64 {
	t.Helper()
	conv := welcomeOf(t, c).Int("conversation_id")
	if conv <= 0 {
		t.Fatalf("welcome without a conversation_id:%s", dump(c))
	}
	return conv
}

// messagesIn returns the message frames of conversation conv received so
// far, in arrival order, from index from on.
func messagesIn(c *wsclient.Client, from int, conv int64) []wsclient.Frame {
	var out []wsclient.Frame
	for _, f := range c.Frames()[from:] {
		if isMessage(f) && f.Int("conversation_id") == conv {
			out = append(out, f)
		}
	}
	return out
}

// framesOfType returns the frames of type typ from index from on.
func framesOfType(c *wsclient.Client, from int, typ string) []wsclient.Frame {
	var out []wsclient.Frame
	for _, f := range c.Frames()[from:] {
		if f.Type() == typ {
			out = append(out, f)
		}
	}
	return out
}

func seqsOf(frames []wsclient.Frame) []int64 {
	out := make([]int64, len(frames))
	for i, f := range frames {
		out[i] = f.Int("seq")
	}
	return out
}

func textsOf(frames []wsclient.Frame) []string {
	out := make([]string, len(frames))
	for i, f := range frames {
		out[i] = f.String("message")
	}
	return out
}

// seqRange returns from, from+1, …, to.
func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// historyMessages decodes the messages of a history frame.
func historyMessages(t testing.TB, h wsclient.Frame) []wsclient.Frame {
	t.Helper()
	var raw struct {
		Messages []json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(h.Raw, &raw); err != nil {
		t.Fatalf("decode history %s: %v", h.Raw, err)
	}
	if raw.Messages == nil {
		t.Fatalf("history frame without a messages array: %s", h.Raw)
	}
	out := make([]wsclient.Frame, len(raw.Messages))
	for i, m := range raw.Messages {
		out[i].Raw = m
		if err := json.Unmarshal(m, &out[i].Fields); err != nil {
			t.Fatalf("decode history message %s: %v", m, err)
		}
	}
	return out
}

// history sends a history request and returns the answer (a history or an
// error frame).
func history(t testing.TB, c *wsclient.Client, req map[string]any) wsclient.Frame {
	t.Helper()
	from := len(c.Frames())
	req["type"] = "history"
	send(t, c, req)
	f, _ := waitFrame(t, c, from, fmt.Sprintf("answer to %v", req), func(f wsclient.Frame) bool {
		return f.Type() == "history" || f.Type() == "error"
	})
	return f
}

// wantMessage is what a v1 message frame must carry.
type wantMessage struct {
	conv, seq     int64
	text          string
	senderID      int64
	senderName    string
	senderIsAdmin bool
	clientMsgID   string
}

// checkV1Message checks every field of a v1 message (or history entry, with
// typ ""), and returns its id.
func checkV1Message(t testing.TB, f wsclient.Frame, typ string, w wantMessage) int64 {
	t.Helper()
	var problems []string
	if f.Type() != typ {
		problems = append(problems, fmt.Sprintf("type %q, want %q", f.Type(), typ))
	}
	if typ == "" {
		if _, ok := f.Fields["type"]; ok {
			problems = append(problems, "history message must not carry a type")
		}
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"conversation_id", f.Int("conversation_id"), w.conv},
		{"seq", f.Int("seq"), w.seq},
		{"message", f.String("message"), w.text},
		{"sender_id", f.Int("sender_id"), w.senderID},
		{"sender_name", f.String("sender_name"), w.senderName},
		{"sender_is_admin", f.Fields["sender_is_admin"], w.senderIsAdmin},
		{"client_msg_id", f.String("client_msg_id"), w.clientMsgID},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			problems = append(problems, fmt.Sprintf("%s = %v, want %v", c.name, c.got, c.want))
		}
	}
	if f.Int("id") <= 0 {
		problems = append(problems, "id must be a positive number")
	}
	if !wireTime.MatchString(f.String("created_at")) {
		problems = append(problems, fmt.Sprintf("created_at %q is not RFC 3339 UTC with microseconds", f.String("created_at")))
	}
	if len(problems) > 0 {
		t.Errorf("message %s:\n  %s", f.Raw, strings.Join(problems, "\n  "))
	}
	return f.Int("id")
}

// checkSeedFrame checks that f is exactly a seed message frame: the five
// documented keys, in order, and nothing else.
func checkSeedFrame(t testing.TB, f wsclient.Frame) {
	t.Helper()
	var keys []string
	dec := json.NewDecoder(strings.NewReader(string(f.Raw)))
	if _, err := dec.Token(); err != nil {
		t.Errorf("seed frame %s: %v", f.Raw, err)
		return
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Errorf("seed frame %s: %v", f.Raw, err)
			return
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Errorf("seed frame %s: %v", f.Raw, err)
			return
		}
	}
	want := []string{"message", "sender_id", "sender_name", "sender_is_admin", "conversation_id"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("seed frame %s has keys %v, want exactly %v", f.Raw, keys, want)
	}
}

// handToken builds a JWT by hand: base64url(header).base64url(claims).sig,
// where sig is HMAC-SHA256 with secret, or empty when secret is nil.
func handToken(header, claims map[string]any, secret []byte) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	if secret == nil {
		return signing + "."
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// obj returns the JSON object field name of f (nil when absent).
func obj(f wsclient.Frame, name string) map[string]any {
	m, _ := f.Fields[name].(map[string]any)
	return m
}

// userID is the user id a v1 client's welcome names.
func userID(t testing.TB, c *wsclient.Client) int64 {
	t.Helper()
	w := welcomeOf(t, c)
	n, _ := obj(w, "user")["id"].(float64)
	if n <= 0 {
		t.Fatalf("welcome without user.id: %s", w.Raw)
	}
	return int64(n)
}

// askInbox sends {"type":"inbox"} and returns the answer and every
// inbox_update received before it. The answer is a marker: the inbox grain
// relays each stored message before it answers a later query, so the updates
// of every message acknowledged before the call precede it.
func askInbox(t testing.TB, c *wsclient.Client) (inbox wsclient.Frame, updates []wsclient.Frame) {
	t.Helper()
	from := len(c.Frames())
	send(t, c, map[string]any{"type": "inbox"})
	inbox, idx := waitType(t, c, from, "inbox")
	for _, f := range c.Frames()[:idx] {
		if f.Type() == "inbox_update" {
			updates = append(updates, f)
		}
	}
	return inbox, updates
}

// inboxUpdateSeqs returns the last_seq of conversation conv's inbox_update
// frames received before the answer to a new inbox query (see askInbox).
func inboxUpdateSeqs(t testing.TB, c *wsclient.Client, conv int64) []int64 {
	t.Helper()
	_, updates := askInbox(t, c)
	var out []int64
	for _, f := range updates {
		if e := obj(f, "conversation"); e["conversation_id"] == float64(conv) {
			n, _ := e["last_seq"].(float64)
			out = append(out, int64(n))
		}
	}
	return out
}
