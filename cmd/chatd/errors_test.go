package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/lxzan/gws"

	"github.com/grainchat/grainchat/transport/wire"
	"github.com/grainchat/grainchat/transport/wsclient"
)

// badFrame is one refused client frame of PROTOCOL.md's error table.
type badFrame struct {
	name  string
	admin bool       // sent by the admin rather than the visitor
	op    gws.Opcode // 0 means text
	frame string
	code  string
	// clientMsgID is the id the error must echo ("" when the frame has none).
	clientMsgID string
	// skipEcho: the frame's client_msg_id is itself the fault; whether it is
	// echoed is not specified.
	skipEcho bool
	// conv is the conversation_id the error must name (0: not checked).
	conv int64
}

// badFrames lists every refusal the protocol documents (the server runs with
// --max-message-chars 10). other is a conversation that is not the visitor's.
func badFrames(other int64) []badFrame {
	long := strings.Repeat("x", 101)
	return []badFrame{
		{name: "invalid_json/open brace", frame: `{`, code: "invalid_json"},
		{name: "invalid_json/truncated", frame: `{"message":"a"`, code: "invalid_json"},
		{name: "invalid_json/not json", frame: `hello`, code: "invalid_json"},
		{name: "invalid_request/array", frame: `[]`, code: "invalid_request"},
		{name: "invalid_request/string", frame: `"x"`, code: "invalid_request"},
		{name: "invalid_request/number", frame: `5`, code: "invalid_request"},
		{name: "invalid_request/message number", frame: `{"message":5,"client_msg_id":"e-num"}`, code: "invalid_request", clientMsgID: "e-num"},
		{name: "invalid_request/conversation abc", frame: `{"message":"a","conversation_id":"abc","client_msg_id":"e-abc"}`, code: "invalid_request", clientMsgID: "e-abc"},
		{name: "invalid_request/conversation negative", frame: `{"message":"a","conversation_id":-3,"client_msg_id":"e-neg"}`, code: "invalid_request", clientMsgID: "e-neg"},
		{name: "invalid_request/client_msg_id 101 bytes", frame: `{"message":"a","client_msg_id":"` + long + `"}`, code: "invalid_request", skipEcho: true},
		{name: "invalid_request/client_msg_id number", frame: `{"message":"a","client_msg_id":7}`, code: "invalid_request", skipEcho: true},
		{name: "invalid_request/binary frame", op: gws.OpcodeBinary, frame: `{"message":"binary"}`, code: "invalid_request"},
		{name: "unknown_type", frame: `{"type":"dance"}`, code: "unknown_type"},
		{name: "empty_message/missing", frame: `{"client_msg_id":"e-missing"}`, code: "empty_message", clientMsgID: "e-missing"},
		{name: "empty_message/null", frame: `{"message":null,"client_msg_id":"e-null"}`, code: "empty_message", clientMsgID: "e-null"},
		{name: "empty_message/empty", frame: `{"message":"","client_msg_id":"e-empty"}`, code: "empty_message", clientMsgID: "e-empty"},
		{name: "empty_message/spaces", frame: `{"message":"   ","client_msg_id":"e-spaces"}`, code: "empty_message", clientMsgID: "e-spaces"},
		{name: "empty_message/white space", frame: `{"message":" \n\t\r ","client_msg_id":"e-ws"}`, code: "empty_message", clientMsgID: "e-ws"},
		{name: "message_too_long/11 chars", frame: `{"message":"abcdefghijk","client_msg_id":"e-long"}`, code: "message_too_long", clientMsgID: "e-long"},
		{name: "message_too_long/11 runes", frame: `{"message":"ééééééééééé","client_msg_id":"e-long-runes"}`, code: "message_too_long", clientMsgID: "e-long-runes"},
		{name: "invalid_text/NUL", frame: `{"message":"a\u0000b","client_msg_id":"e-nul"}`, code: "invalid_text", clientMsgID: "e-nul"},
		{name: "forbidden/other conversation", frame: fmt.Sprintf(`{"message":"a","conversation_id":%d,"client_msg_id":"e-forbidden"}`, other), code: "forbidden", clientMsgID: "e-forbidden", conv: other},
		{name: "forbidden/inbox", frame: `{"type":"inbox"}`, code: "forbidden"},
		{name: "conversation_required", admin: true, frame: `{"message":"a","client_msg_id":"e-required"}`, code: "conversation_required", clientMsgID: "e-required"},
		{name: "conversation_not_found", admin: true, frame: `{"message":"a","conversation_id":999999,"client_msg_id":"e-notfound"}`, code: "conversation_not_found", clientMsgID: "e-notfound", conv: 999999},
	}
}

// Every bad input of the error table gets an error frame with its exact code
// (echoing client_msg_id), stores nothing, and leaves the socket usable; a
// seed client sending the same frames gets no frame at all and stays usable,
// except for the messages of seedCloses, which close its socket.
func TestErrorFrames(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t), "--max-message-chars", "10")
	other := dial(t, s, "user-other", "Olga", false, true)
	v := dial(t, s, "user-1", "Alice", false, true)
	admin := dial(t, s, "staff-1", "Ann", true, true)
	otherConv, conv := convOf(t, other), convOf(t, v)
	if w := welcomeOf(t, v); w.Int("max_message_chars") != 10 {
		t.Errorf("welcome %s, want max_message_chars 10", w.Raw)
	}

	var stored []string // texts that must be in the visitor's conversation, in order
	t.Run("v1", func(t *testing.T) {
		for i, bc := range badFrames(otherConv) {
			t.Run(bc.name, func(t *testing.T) {
				c, target := v, int64(0)
				if bc.admin {
					c, target = admin, conv
				}
				op := bc.op
				if op == 0 {
					op = gws.OpcodeText
				}
				from := len(c.Frames())
				sendRaw(t, c, op, []byte(bc.frame))
				e, _ := waitType(t, c, from, "error")
				if e.String("code") != bc.code {
					t.Errorf("frame %s: error %s, want code %q", bc.frame, e.Raw, bc.code)
				}
				if e.String("message") == "" {
					t.Errorf("error %s has no human message", e.Raw)
				}
				if !bc.skipEcho {
					if got, ok := e.Fields["client_msg_id"]; bc.clientMsgID == "" && ok && got != "" {
						t.Errorf("error %s names a client_msg_id the frame did not have", e.Raw)
					} else if bc.clientMsgID != "" && got != bc.clientMsgID {
						t.Errorf("error %s, want client_msg_id %q echoed", e.Raw, bc.clientMsgID)
					}
				}
				if bc.conv != 0 && e.Int("conversation_id") != bc.conv {
					t.Errorf("error %s, want conversation_id %d", e.Raw, bc.conv)
				}
				// The socket keeps working: a valid message is acknowledged.
				text, id := fmt.Sprintf("ok %d", i), fmt.Sprintf("ok-%d", i)
				ack := post(t, c, target, text, id)
				stored = append(stored, text)
				if n := len(framesOfType(c, from, "error")); n != 1 {
					t.Errorf("got %d error frames for one bad frame:%s", n, dump(c))
				}
				if ack.Int("conversation_id") != conv {
					t.Errorf("ack %s, want conversation %d", ack.Raw, conv)
				}
			})
		}
	})

	// Edges that are accepted (the limit is 10 characters, after trimming).
	t.Run("accepted", func(t *testing.T) {
		for i, text := range []string{
			"abcdefghij", // exactly 10
			"héllo wörl", // 10 runes, 12 bytes
			"😀😀😀😀😀😀😀😀😀😀",         // 10 four-byte runes
			"ééééééééé€",         // 10 multi-byte runes
			"  klmnopqrst \n\t ", // 10 once trimmed
		} {
			id := fmt.Sprintf("edge-%d", i)
			ack := post(t, v, 0, text, id)
			want := strings.TrimSpace(text)
			stored = append(stored, want)
			f, _ := waitMsg(t, v, conv, want)
			if f.Int("seq") != ack.Int("seq") {
				t.Errorf("%q: message seq %d, ack seq %d", text, f.Int("seq"), ack.Int("seq"))
			}
		}
		// client_msg_id of exactly 100 bytes.
		id := strings.Repeat("y", 100)
		post(t, v, 0, "id 100", id)
		stored = append(stored, "id 100")
		// The visitor may name its own conversation, as a number or a string of digits.
		post(t, v, conv, "own number", "own-n")
		stored = append(stored, "own number")
		send(t, v, map[string]any{"message": "own string", "conversation_id": fmt.Sprint(conv), "client_msg_id": "own-s"})
		if ack, _ := waitFrame(t, v, 0, "answer to own-s", func(f wsclient.Frame) bool { return f.String("client_msg_id") == "own-s" }); ack.Type() != "ack" {
			t.Errorf("conversation_id as a string of digits: got %s, want an ack", ack.Raw)
		}
		stored = append(stored, "own string")
		// "type":"message" is a message too.
		send(t, v, map[string]any{"type": "message", "message": "typed", "client_msg_id": "typed"})
		if ack, _ := waitFrame(t, v, 0, "answer to typed", func(f wsclient.Frame) bool { return f.String("client_msg_id") == "typed" }); ack.Type() != "ack" {
			t.Errorf(`"type":"message": got %s, want an ack`, ack.Raw)
		}
		stored = append(stored, "typed")
	})

	// Nothing refused was stored or delivered: the conversation holds exactly
	// the accepted messages, and so did every client receive.
	t.Run("nothing refused stored", func(t *testing.T) {
		h := history(t, v, map[string]any{"limit": 100})
		if got := textsOf(historyMessages(t, h)); !reflect.DeepEqual(got, stored) {
			t.Errorf("history holds %q, want %q", got, stored)
		}
		last := stored[len(stored)-1]
		for name, c := range map[string]*wsclient.Client{"visitor": v, "admin": admin} {
			waitMsg(t, c, conv, last)
			if got := textsOf(messagesIn(c, 0, conv)); !reflect.DeepEqual(got, stored) {
				t.Errorf("%s received %q, want %q", name, got, stored)
			}
		}
		if got := messagesIn(other, 0, otherConv); len(got) != 0 {
			t.Errorf("the other visitor's conversation received %q", textsOf(got))
		}
	})

	t.Run("seed", func(t *testing.T) {
		sv := dial(t, s, "user-seed", "Sam", false, false)
		sa := dial(t, s, "staff-seed", "Sid", true, false)
		send(t, sv, map[string]any{"message": "seed hello"})
		seedConv := waitMessage(t, sv, "seed hello").Int("conversation_id")
		for _, bc := range badFrames(otherConv) {
			if _, closes := seedCloses[bc.name]; closes {
				continue // closes a seed socket: "seed refusals that close" below
			}
			c := sv
			if bc.admin {
				c = sa
			}
			op := bc.op
			if op == 0 {
				op = gws.OpcodeText
			}
			sendRaw(t, c, op, []byte(bc.frame))
		}
		send(t, sv, map[string]any{"message": "seed mark1"})
		waitMsg(t, sa, seedConv, "seed mark1") // stored before the next one is sent
		send(t, sa, map[string]any{"message": "seed mark2", "conversation_id": seedConv})
		want := []string{"seed hello", "seed mark1", "seed mark2"}
		for name, c := range map[string]*wsclient.Client{"seed visitor": sv, "seed admin": sa} {
			waitMsg(t, c, seedConv, "seed mark1")
			waitMsg(t, c, seedConv, "seed mark2")
			if got := textsOf(messagesIn(c, 0, seedConv)); !reflect.DeepEqual(got, want) {
				t.Errorf("%s received %q, want %q", name, got, want)
			}
			for _, f := range c.Frames() {
				checkSeedFrame(t, f)
			}
		}
		if n := len(sv.Frames()); n != 3 {
			t.Errorf("seed visitor received %d frames, want exactly 3:%s", n, dump(sv))
		}
	})

	// A seed client cannot see error frames: a message the server refuses
	// for being too long or for the conversation it names closes its socket
	// with a documented code and reason, rather than vanish in silence.
	t.Run("seed refusals that close", func(t *testing.T) {
		for _, bc := range badFrames(otherConv) {
			want, closes := seedCloses[bc.name]
			if !closes {
				continue
			}
			t.Run(bc.name, func(t *testing.T) {
				sub := "seed-close-" + strings.ReplaceAll(bc.name, "/", "-")
				c := dial(t, s, sub, "Sol", bc.admin, false)
				sendRaw(t, c, gws.OpcodeText, []byte(bc.frame))
				cl, err := c.WaitClosed(ctxT(t, waitTimeout))
				if err != nil || cl.Code != want.Code || cl.Reason != want.Reason {
					t.Fatalf("after %s: closed %+v, %v; want %d %q", bc.frame, cl, err, want.Code, want.Reason)
				}
				if n := len(c.Frames()); n != 0 {
					t.Errorf("the seed client received %d frames:%s", n, dump(c))
				}
			})
		}
	})
}

// seedCloses are the bad frames of badFrames that close a seed client's
// socket, with the close each gets (docs/PROTOCOL.md, "What each dialect
// sees").
var seedCloses = map[string]wire.Disconnect{
	"message_too_long/11 chars":    wire.DisconnectMessageTooLong,
	"message_too_long/11 runes":    wire.DisconnectMessageTooLong,
	"forbidden/other conversation": wire.DisconnectForbidden,
	"conversation_required":        wire.DisconnectConversationRequired,
	"conversation_not_found":       wire.DisconnectConversationNotFound,
}
