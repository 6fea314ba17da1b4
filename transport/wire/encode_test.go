package wire_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/wire"
)

// sampleTime is the example time of docs/PROTOCOL.md.
var sampleTime = time.Date(2026, 11, 26, 9, 59, 17, 933187000, time.UTC)

func sampleMessage() wire.Message {
	return wire.Message{
		ID: 1, ConversationID: 1, Seq: 1, SenderID: 2, SenderName: "Alice", SenderIsAdmin: false,
		Body: "hi", ClientMsgID: "c1", CreatedAt: sampleTime,
	}
}

// jsonKeys returns the top-level keys of a JSON object in document order.
func jsonKeys(t *testing.T, frame []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(frame))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("frame %s is not an object: %v", frame, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("frame %s: %v", frame, err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("frame %s: %v", frame, err)
		}
	}
	return keys
}

func TestSeedMessageFrame(t *testing.T) {
	tests := []struct {
		name string
		msg  wire.Message
		want string
	}{
		{"the document's frame", sampleMessage(),
			`{"message":"hi","sender_id":2,"sender_name":"Alice","sender_is_admin":false,"conversation_id":1}`},
		{"staff", wire.Message{ID: 9, ConversationID: 17, Seq: 4, SenderID: 3, SenderName: "Bob", SenderIsAdmin: true, Body: "Hello", ClientMsgID: "x", CreatedAt: sampleTime},
			`{"message":"Hello","sender_id":3,"sender_name":"Bob","sender_is_admin":true,"conversation_id":17}`},
		{"zero message", wire.Message{},
			`{"message":"","sender_id":0,"sender_name":"","sender_is_admin":false,"conversation_id":0}`},
		{"large ids", wire.Message{SenderID: 9223372036854775807, ConversationID: 9007199254740993, Body: "m", SenderName: "n"},
			`{"message":"m","sender_id":9223372036854775807,"sender_name":"n","sender_is_admin":false,"conversation_id":9007199254740993}`},
		{"HTML escaped", wire.Message{SenderID: 2, SenderName: "<i>Eve</i>", Body: `<script>alert("x&y")</script>`, ConversationID: 1},
			`{"message":"\u003cscript\u003ealert(\"x\u0026y\")\u003c/script\u003e","sender_id":2,"sender_name":"\u003ci\u003eEve\u003c/i\u003e","sender_is_admin":false,"conversation_id":1}`},
		{"non-ASCII kept as UTF-8", wire.Message{SenderID: 2, SenderName: "Zoë", Body: "été 😀", ConversationID: 1},
			`{"message":"été 😀","sender_id":2,"sender_name":"Zoë","sender_is_admin":false,"conversation_id":1}`},
		{"control characters and line separators escaped", wire.Message{SenderID: 2, SenderName: "a", Body: "a\tb\nc\u2028d\u2029e\x01", ConversationID: 1},
			`{"message":"a\tb\nc\u2028d\u2029e\u0001","sender_id":2,"sender_name":"a","sender_is_admin":false,"conversation_id":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wire.SeedMessageFrame(tt.msg)
			if string(got) != tt.want {
				t.Fatalf("SeedMessageFrame\n got  %s\n want %s", got, tt.want)
			}
		})
	}
}

func TestMessageFrame(t *testing.T) {
	got := wire.MessageFrame(sampleMessage())
	want := `{"type":"message","id":1,"conversation_id":1,"seq":1,"message":"hi","sender_id":2,"sender_name":"Alice",` +
		`"sender_is_admin":false,"created_at":"2026-11-26T09:59:17.933187Z","client_msg_id":"c1"}`
	if string(got) != want {
		t.Fatalf("MessageFrame\n got  %s\n want %s", got, want)
	}

	// The v1 frame holds every seed field with the same value, plus its own.
	seedKeys := jsonKeys(t, wire.SeedMessageFrame(sampleMessage()))
	v1Keys := jsonKeys(t, got)
	for _, k := range seedKeys {
		if !slices.Contains(v1Keys, k) {
			t.Errorf("MessageFrame lacks seed field %q", k)
		}
	}
	for _, k := range []string{"type", "id", "seq", "created_at", "client_msg_id"} {
		if !slices.Contains(v1Keys, k) {
			t.Errorf("MessageFrame lacks v1 field %q", k)
		}
	}
	var seed, v1 map[string]any
	mustUnmarshal(t, wire.SeedMessageFrame(sampleMessage()), &seed)
	mustUnmarshal(t, got, &v1)
	for k, v := range seed {
		if v1[k] != v {
			t.Errorf("field %q: v1 %v, seed %v", k, v1[k], v)
		}
	}
}

func TestMessageFrame_times(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"UTC with microseconds", sampleTime, "2026-11-26T09:59:17.933187Z"},
		{"other zone converted to UTC", time.Date(2026, 11, 26, 10, 59, 17, 933187000, paris), "2026-11-26T09:59:17.933187Z"},
		{"whole second keeps six digits", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02T03:04:05.000000Z"},
		{"nanoseconds truncated", time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), "2026-01-02T03:04:05.123456Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sampleMessage()
			m.CreatedAt = tt.at
			var got struct {
				CreatedAt string `json:"created_at"`
			}
			mustUnmarshal(t, wire.MessageFrame(m), &got)
			if got.CreatedAt != tt.want {
				t.Fatalf("created_at %q, want %q", got.CreatedAt, tt.want)
			}
			if _, err := time.Parse(time.RFC3339Nano, got.CreatedAt); err != nil {
				t.Fatalf("created_at %q is not RFC 3339: %v", got.CreatedAt, err)
			}
		})
	}
}

// trickyTexts are message bodies that must survive encoding byte for byte.
var trickyTexts = []string{
	"hi",
	`<script>alert('x')</script> & "quotes" \ backslash`,
	"</script><!--",
	"emoji 😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈",
	"right-to-left \u200fمرحبا\u200f and \u202eoverride\u202c",
	"4-byte runes 𝄞 𝕏 𠜎 \U0010FFFF",
	"combining e\u0301 a\u0308",
	"zero width \u200b\u200c\u200d and BOM \ufeff",
	"line\u2028separator\u2029paragraph",
	"tab\tnewline\ncarriage\rreturn",
	"controls \x01\x1f\x7f",
	"non-characters \uffff \ufffe",
	"replacement \ufffd",
	strings.Repeat("長い", 2000),
}

func TestFrames_roundTrip(t *testing.T) {
	for _, text := range trickyTexts {
		m := sampleMessage()
		m.Body = text
		m.SenderName = text
		m.ClientMsgID = text
		for name, frame := range map[string][]byte{
			"seed": wire.SeedMessageFrame(m),
			"v1":   wire.MessageFrame(m),
		} {
			if !json.Valid(frame) {
				t.Fatalf("%s frame for %.40q is not valid JSON: %s", name, text, frame)
			}
			if bytes.ContainsAny(frame, "<>&\n") {
				t.Errorf("%s frame for %.40q holds raw HTML-special characters or a newline: %.200s", name, text, frame)
			}
			var got struct {
				Message     string `json:"message"`
				SenderName  string `json:"sender_name"`
				ClientMsgID string `json:"client_msg_id"`
			}
			mustUnmarshal(t, frame, &got)
			if got.Message != text || got.SenderName != text {
				t.Errorf("%s frame: text %.40q came back as %.40q / %.40q", name, text, got.Message, got.SenderName)
			}
			if name == "v1" && got.ClientMsgID != text {
				t.Errorf("v1 frame: client_msg_id %.40q came back as %.40q", text, got.ClientMsgID)
			}
		}
	}
}

// TestDecodeEncode_roundTrip sends each tricky text as a client would and
// checks that the frame delivered to others carries it unchanged.
func TestDecodeEncode_roundTrip(t *testing.T) {
	d := wire.Decoder{MaxMessageChars: 4000}
	for _, text := range trickyTexts {
		in, err := json.Marshal(map[string]any{"message": text, "conversation_id": 1})
		if err != nil {
			t.Fatal(err)
		}
		req, err := d.Decode(in)
		if err != nil {
			t.Fatalf("Decode(%.60s): %v", in, err)
		}
		if want := strings.TrimSpace(text); req.Message != want {
			t.Fatalf("Decode: text %.40q, want %.40q", req.Message, want)
		}
		var out struct {
			Message string `json:"message"`
		}
		mustUnmarshal(t, wire.SeedMessageFrame(wire.Message{Body: req.Message}), &out)
		if out.Message != req.Message {
			t.Fatalf("seed frame: text %.40q came back as %.40q", req.Message, out.Message)
		}
	}
}

func TestOtherFrames(t *testing.T) {
	m := sampleMessage()
	tests := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"ack", wire.AckFrame(m, false),
			`{"type":"ack","client_msg_id":"c1","id":1,"conversation_id":1,"seq":1,"created_at":"2026-11-26T09:59:17.933187Z","duplicate":false}`},
		{"ack duplicate", wire.AckFrame(m, true),
			`{"type":"ack","client_msg_id":"c1","id":1,"conversation_id":1,"seq":1,"created_at":"2026-11-26T09:59:17.933187Z","duplicate":true}`},
		{"error with echo", wire.ErrorFrame(&wire.Error{Code: wire.CodeEmptyMessage, Message: "the message is empty", ClientMsgID: "c1", ConversationID: 4}),
			`{"type":"error","code":"empty_message","message":"the message is empty","client_msg_id":"c1","conversation_id":4}`},
		{"error without echo", wire.ErrorFrame(&wire.Error{Code: wire.CodeInvalidJSON, Message: "the frame is not valid JSON"}),
			`{"type":"error","code":"invalid_json","message":"the frame is not valid JSON"}`},
		{"opened", wire.OpenedFrame(17, 42), `{"type":"opened","conversation_id":17,"last_seq":42}`},
		{"left", wire.LeftFrame(17), `{"type":"left","conversation_id":17}`},
		{"welcome visitor", wire.WelcomeFrame(wire.Welcome{User: wire.User{ID: 2, Name: "Alice"}, ConversationID: 1, LastSeq: 5, MaxMessageChars: 4000}),
			`{"type":"welcome","protocol":"grainchat.v1","user":{"id":2,"name":"Alice","is_admin":false},"conversation_id":1,"last_seq":5,"max_message_chars":4000}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.frame) != tt.want {
				t.Fatalf("\n got  %s\n want %s", tt.frame, tt.want)
			}
		})
	}
}

func TestHistoryFrame(t *testing.T) {
	m1, m2 := sampleMessage(), sampleMessage()
	m2.ID, m2.Seq, m2.Body = 2, 2, "again"
	var got struct {
		Type           string           `json:"type"`
		ConversationID int64            `json:"conversation_id"`
		Messages       []map[string]any `json:"messages"`
		HasMore        bool             `json:"has_more"`
	}
	mustUnmarshal(t, wire.HistoryFrame(1, []wire.Message{m1, m2}, true, nil), &got)
	if got.Type != "history" || got.ConversationID != 1 || !got.HasMore || len(got.Messages) != 2 {
		t.Fatalf("history frame %+v", got)
	}
	for i, msg := range got.Messages {
		if _, ok := msg["type"]; ok {
			t.Errorf("history message %d has a type", i)
		}
		if msg["seq"] != float64(i+1) {
			t.Errorf("history message %d: seq %v", i, msg["seq"])
		}
	}
	// An empty page is an empty array, not null.
	if frame := wire.HistoryFrame(1, nil, false, nil); !bytes.Contains(frame, []byte(`"messages":[]`)) {
		t.Errorf("empty history frame %s", frame)
	}
}

func TestInboxFrames(t *testing.T) {
	m := sampleMessage()
	e := wire.InboxEntry{ConversationID: 1, UserID: 2, UserExternalID: "ext-2", UserName: "Alice", LastSeq: 1, LastMessageAt: sampleTime, LastMessage: &m}
	var inbox struct {
		Type          string `json:"type"`
		Conversations []struct {
			ConversationID int64 `json:"conversation_id"`
			User           struct {
				ID         int64  `json:"id"`
				ExternalID string `json:"external_id"`
				Name       string `json:"name"`
			} `json:"user"`
			LastSeq       int64          `json:"last_seq"`
			LastMessageAt string         `json:"last_message_at"`
			LastMessage   map[string]any `json:"last_message"`
		} `json:"conversations"`
	}
	mustUnmarshal(t, wire.InboxFrame(wire.InboxPage{Entries: []wire.InboxEntry{e}}), &inbox)
	if inbox.Type != "inbox" || len(inbox.Conversations) != 1 {
		t.Fatalf("inbox frame %+v", inbox)
	}
	c := inbox.Conversations[0]
	if c.ConversationID != 1 || c.User.ID != 2 || c.User.ExternalID != "ext-2" || c.User.Name != "Alice" ||
		c.LastSeq != 1 || c.LastMessageAt != "2026-11-26T09:59:17.933187Z" || c.LastMessage["message"] != "hi" {
		t.Fatalf("inbox entry %+v", c)
	}
	if _, ok := c.LastMessage["type"]; ok {
		t.Errorf("inbox last_message has a type")
	}
	if frame := wire.InboxFrame(wire.InboxPage{}); string(frame) != `{"type":"inbox","conversations":[],"has_more":false}` {
		t.Errorf("empty inbox frame %s", frame)
	}
	if keys := jsonKeys(t, wire.InboxUpdateFrame(e)); !slices.Equal(keys, []string{"type", "conversation"}) {
		t.Errorf("inbox_update keys %v", keys)
	}
}

func mustUnmarshal(t *testing.T, frame []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(frame, v); err != nil {
		t.Fatalf("unmarshal %.200s: %v", frame, err)
	}
}
