package main

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/wire"
)

// originalFrame is frame as it was before decodeFrame, when handle decoded
// every frame with json.Unmarshal into it: the reference the fast path must
// agree with.
type originalFrame struct {
	Type           string       `json:"type"`
	Code           string       `json:"code"`
	ConversationID int64        `json:"conversation_id"`
	Seq            int64        `json:"seq"`
	LastSeq        int64        `json:"last_seq"`
	Message        string       `json:"message"`
	SenderIsAdmin  bool         `json:"sender_is_admin"`
	ClientMsgID    string       `json:"client_msg_id"`
	Duplicate      bool         `json:"duplicate"`
	Conversations  []inboxEntry `json:"conversations"`
}

// sameFrame reports whether handle would see a and b alike.
func sameFrame(a, b frame) bool {
	if len(a.Conversations) != len(b.Conversations) || (a.Conversations == nil) != (b.Conversations == nil) {
		return false
	}
	for i := range a.Conversations {
		if a.Conversations[i] != b.Conversations[i] {
			return false
		}
	}
	return a.Type == b.Type && a.Code == b.Code && a.ConversationID == b.ConversationID && a.Seq == b.Seq &&
		a.LastSeq == b.LastSeq && a.SenderIsAdmin == b.SenderIsAdmin && a.ClientMsgID == b.ClientMsgID &&
		a.Duplicate == b.Duplicate && a.timed == b.timed && a.sentAt.Equal(b.sentAt)
}

// fromOriginal is what handle read of o before decodeFrame.
func fromOriginal(o originalFrame) frame {
	f := frame{Type: o.Type, Code: o.Code, ConversationID: o.ConversationID, Seq: o.Seq, LastSeq: o.LastSeq,
		SenderIsAdmin: o.SenderIsAdmin, ClientMsgID: o.ClientMsgID, Duplicate: o.Duplicate,
		Conversations: o.Conversations}
	f.sentAt, f.timed = parseSentAt(o.Message)
	return f
}

// checkFrame checks decodeFrame against json.Unmarshal into originalFrame:
// both succeed or both fail, and where they succeed handle sees the same
// frame; where scanFrame answers, every field it read is json.Unmarshal's.
// It reports whether scanFrame answered.
func checkFrame(t *testing.T, data []byte) bool {
	t.Helper()
	var want originalFrame
	wantErr := json.Unmarshal(data, &want)
	got, err := decodeFrame(data)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("decodeFrame(%q): error %v, json.Unmarshal: error %v", data, err, wantErr)
	}
	if err == nil && !sameFrame(got, fromOriginal(want)) {
		t.Fatalf("decodeFrame(%q) = %+v, json.Unmarshal gives %+v", data, got, fromOriginal(want))
	}
	ff, ok := scanFrame(data)
	if !ok {
		return false
	}
	if wantErr != nil {
		t.Fatalf("scanFrame(%q) accepted a frame json.Unmarshal refuses: %v", data, wantErr)
	}
	fields := []struct {
		name      string
		got, want string
	}{
		{"type", ff.typ.String(), want.Type}, {"code", ff.code.String(), want.Code},
		{"client_msg_id", ff.clientMsgID.String(), want.ClientMsgID}, {"message", ff.message.String(), want.Message},
		{"conversation_id", strconv.FormatInt(ff.conversationID, 10), strconv.FormatInt(want.ConversationID, 10)},
		{"seq", strconv.FormatInt(ff.seq, 10), strconv.FormatInt(want.Seq, 10)},
		{"sender_is_admin", strconv.FormatBool(ff.senderIsAdmin), strconv.FormatBool(want.SenderIsAdmin)},
		{"duplicate", strconv.FormatBool(ff.duplicate), strconv.FormatBool(want.Duplicate)},
	}
	for _, fl := range fields {
		if fl.got != fl.want {
			t.Fatalf("scanFrame(%q): %s = %q, json.Unmarshal: %q", data, fl.name, fl.got, fl.want)
		}
	}
	if want.LastSeq != 0 || want.Conversations != nil {
		t.Fatalf("scanFrame(%q) accepted a frame with last_seq or conversations", data)
	}
	return true
}

// checkSentAt checks sentAtOf against parseSentAt.
func checkSentAt(t *testing.T, body []byte) {
	t.Helper()
	got, gotOK := sentAtOf(body)
	want, wantOK := parseSentAt(string(body))
	if gotOK != wantOK || !got.Equal(want) {
		t.Fatalf("sentAtOf(%q) = %v, %v; parseSentAt: %v, %v", body, got, gotOK, want, wantOK)
	}
}

// testBodies are message texts that need escaping in many ways.
var testBodies = []string{
	"msg 1a2b3c.4d t=1700000000123456789",
	`say "hi" t=5`,
	`back\slash \\ t=-7`,
	"</script><script>alert(1)</script> & t=1",
	"emoji 😀👍🏽 é ñ 中文 t=1700000000000000000",
	"tab\there\nnewline\r\x01\x1f t=2",
	"line sep \u2028 para \u2029 t=3",
	"bad utf8 \xff\xfe t=4",
	"no time at all",
	"t=9 without the space",
	"overflow t=99999999999999999999",
	"",
}

// wireFrames are frames as chatd sends them, encoded by transport/wire.
func wireFrames() [][]byte {
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	var out [][]byte
	for i, body := range testBodies {
		m := wire.Message{ID: int64(1000 + i), ConversationID: int64(7 + i), Seq: int64(1 + i), SenderID: 42,
			SenderName: "Zoë \"the\" <admin>", SenderIsAdmin: i%2 == 0, Body: body,
			ClientMsgID: "1a2b3c." + strconv.Itoa(i), CreatedAt: at}
		out = append(out, wire.MessageFrame(m), wire.AckFrame(m, i%3 == 0),
			wire.ErrorFrame(&wire.Error{Code: wire.CodeTooManyPending, Message: body, ClientMsgID: m.ClientMsgID,
				ConversationID: m.ConversationID}),
			wire.InboxUpdateFrame(wire.InboxEntry{ConversationID: m.ConversationID, UserID: 9,
				UserExternalID: "ext-9", UserName: "Ann", LastSeq: m.Seq, LastMessageAt: at, LastMessage: &m}),
			wire.SeedMessageFrame(m))
	}
	out = append(out,
		wire.ErrorFrame(&wire.Error{Code: wire.CodeInvalidJSON, Message: "the frame is not valid JSON"}),
		wire.InboxUpdateFrame(wire.InboxEntry{ConversationID: 3, UserID: 4, UserName: "Bo"}),
		wire.WelcomeFrame(wire.Welcome{User: wire.User{ID: 1, Name: "Visitor"}, ConversationID: 7, LastSeq: 2,
			MaxMessageChars: 2000}),
		wire.WelcomeFrame(wire.Welcome{User: wire.User{ID: 2, Name: "Staff", IsAdmin: true}}),
		wire.InboxFrame(wire.InboxPage{Entries: []wire.InboxEntry{{ConversationID: 7, LastSeq: 2}, {ConversationID: 8, LastSeq: 5}}}),
		wire.OpenedFrame(7, 9), wire.LeftFrame(7))
	return out
}

// frameSamples are hand-written frames, odd ones included.
var frameSamples = []string{
	`{"type":"message","conversation_id":7,"seq":3,"message":"msg x t=1"}`,
	`{"type":"ack","client_msg_id":"p1","conversation_id":7,"seq":3}`,
	` { "type" : "ack" , "duplicate" : true , "seq" : -0 } ` + "\n",
	`{}`, `{"type":"welcome"}`,
	`{"type":"inbox","conversations":[{"conversation_id":7,"last_seq":2}]}`,
	`{"type":"welcome","conversation_id":7,"last_seq":2}`,
	`{"type":"message","seq":1,"seq":2}`, `{"type":"ack","type":"message"}`,
	`{"type":"message","message":null}`, `{"type":null}`, `{"seq":null}`, `{"duplicate":null}`,
	`{"seq":1.0}`, `{"seq":1e2}`, `{"seq":01}`, `{"seq":-}`, `{"seq":"1"}`, `{"seq":9223372036854775807}`,
	`{"seq":9223372036854775808}`, `{"seq":-9223372036854775808}`, `{"seq":-9223372036854775809}`,
	`{"seq":123456789012345678901234567890}`,
	`{"duplicate":1}`, `{"duplicate":tru}`, `{"duplicate":falsey}`, `{"type":1}`, `{"message":true}`,
	`{"Type":"ack"}`, `{"TYPE":"ack"}`, `{"ſeq":1}`, `{"\u0074ype":"ack"}`, `{"sender_id":1}`,
	`{"other":{"a":1}}`, `{"other":[1]}`, `{"other":1.5e-3,"type":"ack"}`, `{"other":-0.0E+1}`, `{"other":1.}`,
	`{"other":.5}`, `{"other":1e}`, `{"other":null,"x":true,"y":false,"z":"s"}`, `{"other":nul}`,
	`{"message":"a\"b\\c\/d\b\f\n\r\t"}`, `{"message":"\u00e9\u00E9\ud83d\ude00 t=1"}`,
	`{"message":"\ud83d"}`, `{"message":"\ude00"}`, `{"message":"\ud83d\u0041"}`, `{"message":"\ud83dx"}`,
	`{"other":"\ud83d"}`, `{"message":"\u12"}`, `{"message":"\x"}`, `{"message":"\u0000 t=1"}`,
	"{\"message\":\"\xff t=1\"}", "{\"other\":\"\xff\"}", "{\"message\":\"tab\there\"}",
	`{"message":"a\u0020t=42"}`, `{"message":"x t=+5"}`, `{"message":"x t=5 "}`,
	`{"message":"x"`, `{"message":"x",}`, `{"message":"x"} x`, `{"message":"x"}}`, `{"message" "x"}`,
	`{"message":"x" "seq":1}`, `[]`, `"message"`, `null`, ``, ` `, `{`, `{"`, `{"a`, `{"a"`, `{"a":`,
	`{,}`, `{"type":"ack",,"seq":1}`,
}

func TestScanFrame(t *testing.T) {
	accepted, declined := 0, 0
	for _, s := range frameSamples {
		if checkFrame(t, []byte(s)) {
			accepted++
		} else {
			declined++
		}
	}
	for _, data := range wireFrames() {
		checkFrame(t, data)
	}
	if accepted == 0 || declined == 0 {
		t.Errorf("%d samples took the fast path, %d fell back: one path is untested", accepted, declined)
	}

	// The frames that are nearly all the traffic must take the fast path,
	// whatever their bodies; those with nested values must not.
	at := time.Now()
	for i, body := range testBodies {
		m := wire.Message{ID: 1, ConversationID: 2, Seq: 3, SenderName: "x", Body: body,
			ClientMsgID: "id." + strconv.Itoa(i), CreatedAt: at}
		for _, data := range [][]byte{wire.MessageFrame(m), wire.AckFrame(m, true),
			wire.ErrorFrame(&wire.Error{Code: "c", Message: body})} {
			if _, ok := scanFrame(data); !ok {
				t.Errorf("scanFrame(%q) fell back to json.Unmarshal", data)
			}
		}
	}
	for _, data := range [][]byte{wire.InboxUpdateFrame(wire.InboxEntry{ConversationID: 3}),
		wire.WelcomeFrame(wire.Welcome{ConversationID: 7, LastSeq: 2}), wire.InboxFrame(wire.InboxPage{})} {
		if _, ok := scanFrame(data); ok {
			t.Errorf("scanFrame(%q) took the fast path", data)
		}
	}
}

func TestDecodeFrame(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want frame
	}{
		{`{"type":"message","conversation_id":7,"seq":3,"message":"msg p1 t=17","sender_is_admin":true}`,
			frame{Type: "message", ConversationID: 7, Seq: 3, SenderIsAdmin: true, sentAt: time.Unix(0, 17), timed: true}},
		{`{"type":"ack","client_msg_id":"p1","conversation_id":7,"seq":3,"duplicate":true}`,
			frame{Type: "ack", ClientMsgID: "p1", ConversationID: 7, Seq: 3, Duplicate: true}},
		{`{"type":"error","code":"too_many_pending","message":"slow down","client_msg_id":"p\"2"}`,
			frame{Type: "error", Code: "too_many_pending", ClientMsgID: `p"2`}},
		{`{"type":"message","message":"say \"hi\" \u003c/script\u003e\u0020t=-5"}`,
			frame{Type: "message", sentAt: time.Unix(0, -5), timed: true}},
		{`{"type":"message","message":"` + strings.Repeat(`\"`, 200) + ` t=6"}`, // longer than the stack buffer
			frame{Type: "message", sentAt: time.Unix(0, 6), timed: true}},
		{`{"type":"welcome","conversation_id":7,"last_seq":2,"user":{"id":1}}`,
			frame{Type: "welcome", ConversationID: 7, LastSeq: 2}},
		{`{"type":"inbox","conversations":[{"conversation_id":7,"last_seq":2}]}`,
			frame{Type: "inbox", Conversations: []inboxEntry{{7, 2}}}},
		{`{"type":"message","message":"x t=1","message":"y"}`, frame{Type: "message"}},
		{`{"type":"m\u00e9"}`, frame{Type: "mé"}},
	} {
		got, err := decodeFrame([]byte(tc.in))
		if err != nil || !sameFrame(got, tc.want) {
			t.Errorf("decodeFrame(%s) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{``, `{`, `{"seq":"1"}`, `{"seq":1.5}`, `[1]`, `{"a":1}x`} {
		if _, err := decodeFrame([]byte(in)); err == nil {
			t.Errorf("decodeFrame(%q) succeeded", in)
		}
	}
}

func TestSentAtOf(t *testing.T) {
	for _, body := range append(testBodies, " t=", " t=+", " t=-", " t=1 t=2", " t=-9223372036854775808",
		" t=9223372036854775807", " t=9223372036854775808", " t=-9223372036854775809", " t=0x10", " t=1_000",
		" t=00000000000000000000000000012", " t=18446744073709551615", " t=18446744073709551616") {
		checkSentAt(t, []byte(body))
	}
}

func FuzzFastFrameMatchesUnmarshal(f *testing.F) {
	for _, s := range frameSamples {
		f.Add([]byte(s))
	}
	for _, data := range wireFrames() {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFrame(t, data)
		checkSentAt(t, data)
	})
}

func TestSeenSet(t *testing.T) {
	var s seenSet
	if s.has(msgKey{1, 1}) || s.len() != 0 {
		t.Fatal("the zero seenSet is not empty")
	}
	// The block edges, negative and extreme seqs, and conversations that
	// differ only in their seqs' high bits.
	model := map[msgKey]bool{}
	var keys []msgKey
	for _, conv := range []int64{1, 2, -1, math.MaxInt64} {
		for _, seq := range []int64{1, 2, 63, 64, 65, 511, 512, 513, 1023, 1024, 0, -1, -63, -64, -65, -511,
			-512, -513, math.MaxInt64, math.MinInt64, 1 << 40, 1<<40 + 1} {
			keys = append(keys, msgKey{conv, seq})
		}
	}
	// Dense seqs in many conversations, visited at random, each twice.
	for conv := int64(1); conv <= 30; conv++ {
		for seq := int64(1); seq <= 2000; seq++ {
			keys = append(keys, msgKey{conv * 1000, seq})
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	order := append(append([]msgKey(nil), keys...), keys...)
	r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for i, k := range order {
		if got := s.add(k); got == model[k] {
			t.Fatalf("add(%v) = %v, but the key was already in: %v", k, got, model[k])
		}
		model[k] = true
		if !s.has(k) || s.len() != len(model) {
			t.Fatalf("after add(%v): has %v, len %d, want %d", k, s.has(k), s.len(), len(model))
		}
		if i%10000 == 0 { // no other key changed
			for _, o := range keys {
				if s.has(o) != model[o] {
					t.Fatalf("has(%v) = %v, want %v", o, s.has(o), model[o])
				}
			}
		}
	}
	if s.len() != len(keys) {
		t.Fatalf("len = %d, want %d", s.len(), len(keys))
	}
	for _, k := range []msgKey{{3, 1}, {1, 3}, {1000, 2001}, {1000, 0}, {31000, 1}, {2, -2}} {
		if s.has(k) {
			t.Errorf("has(%v) for a key never added", k)
		}
	}
}

// TestSeenCounts checks the seenSet through the client methods that use it.
func TestSeenCounts(t *testing.T) {
	b, err := newBench(options{secret: strings.Repeat("s", 32), admins: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := &client{b: b, id: identity{sub: "a", admin: true}, welcomed: make(chan struct{}), closed: make(chan struct{}),
		notify: make(chan struct{}, 1), last: map[int64]int64{}, pending: map[string]time.Time{}}
	for _, k := range []msgKey{{7, 1}, {7, 2}, {7, 2}, {8, 600}} {
		c.handle(wire.MessageFrame(wire.Message{ConversationID: k.conv, Seq: k.seq, Body: "msg x t=1"}))
	}
	if n := c.seenCount(); n != 3 {
		t.Errorf("seenCount = %d, want 3", n)
	}
	if n := b.dups.Load(); n != 1 {
		t.Errorf("duplicates = %d, want 1", n)
	}
	if n := c.missingOf([]msgKey{{7, 1}, {7, 3}, {8, 600}, {8, 1}, {9, 1}}); n != 3 {
		t.Errorf("missingOf = %d, want 3", n)
	}
	c.own = []msgKey{{7, 2}, {8, 601}}
	if n := c.ownMissing(); n != 1 {
		t.Errorf("ownMissing = %d, want 1", n)
	}
}

// BenchmarkHandleMessageFrame compares the decoding of a message frame (and
// of an ack) as handle did it, with json.Unmarshal, and as decodeFrame does
// it; "handle" is the whole of handle for message frames of 300
// conversations on an admin connection.
func BenchmarkHandleMessageFrame(b *testing.B) {
	at := time.Now()
	m := wire.Message{ID: 123456, ConversationID: 4242, Seq: 317, SenderID: 977, SenderName: "bench-m3x1k2-u17",
		Body: body("msg", "m3x1k2zz.5f3a", at), ClientMsgID: "m3x1k2zz.5f3a", CreatedAt: at}
	for _, tc := range []struct {
		name string
		data []byte
	}{{"message", wire.MessageFrame(m)}, {"ack", wire.AckFrame(m, false)}} {
		b.Run(tc.name+"/unmarshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var f originalFrame
				if err := json.Unmarshal(tc.data, &f); err != nil {
					b.Fatal(err)
				}
				if _, ok := parseSentAt(f.Message); !ok && tc.name == "message" {
					b.Fatal("no send time")
				}
			}
		})
		b.Run(tc.name+"/decodeFrame", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f, err := decodeFrame(tc.data)
				if err != nil {
					b.Fatal(err)
				}
				if !f.timed && tc.name == "message" {
					b.Fatal("no send time")
				}
			}
		})
	}
	b.Run("handle", func(b *testing.B) {
		bn, err := newBench(options{secret: strings.Repeat("s", 32), admins: 1})
		if err != nil {
			b.Fatal(err)
		}
		c := &client{b: bn, id: identity{sub: "a", admin: true}, welcomed: make(chan struct{}),
			closed: make(chan struct{}), notify: make(chan struct{}, 1), last: map[int64]int64{},
			pending: map[string]time.Time{}}
		frames := make([][]byte, 300*1000)
		for i := range frames {
			m.ConversationID, m.Seq = int64(i%300+1), int64(i/300+1)
			frames[i] = wire.MessageFrame(m)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if i%len(frames) == 0 && i > 0 { // start over with a fresh connection
				b.StopTimer()
				c.seen, c.last = seenSet{}, map[int64]int64{}
				b.StartTimer()
			}
			c.handle(frames[i%len(frames)])
		}
	})
}

// BenchmarkSeenSet compares the map that held a connection's delivered
// messages with seenSet, for 300 conversations of 1000 messages.
func BenchmarkSeenSet(b *testing.B) {
	const convs, perConv = 300, 1000
	key := func(i int) msgKey { return msgKey{int64(i%convs + 1), int64(i/convs%perConv + 1)} }
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		m := map[msgKey]struct{}{}
		for i := 0; i < b.N; i++ {
			if i%(convs*perConv) == 0 {
				m = map[msgKey]struct{}{}
			}
			k := key(i)
			if _, dup := m[k]; !dup {
				m[k] = struct{}{}
			}
		}
	})
	b.Run("seenSet", func(b *testing.B) {
		b.ReportAllocs()
		var s seenSet
		for i := 0; i < b.N; i++ {
			if i%(convs*perConv) == 0 {
				s = seenSet{}
			}
			s.add(key(i))
		}
	})
}
