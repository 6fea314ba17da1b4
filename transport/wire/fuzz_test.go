package wire_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/grainchat/grainchat/transport/wire"
)

// checkRequest asserts the invariants of a successfully decoded Request:
// a known type; for messages a non-empty, trimmed, valid UTF-8 text without
// NUL and within MaxMessageChars; non-negative ids; a bounded client_msg_id;
// open and leave name a conversation.
func checkRequest(t *testing.T, d wire.Decoder, frame []byte, req wire.Request) {
	t.Helper()
	if !knownTypes[req.Type] {
		t.Fatalf("Decode(%q): unknown Type %q accepted", frame, req.Type)
	}
	if req.ConversationID < 0 || req.AfterSeq < 0 || req.BeforeSeq < 0 || req.Limit < 0 {
		t.Fatalf("Decode(%q): negative field in %+v", frame, req)
	}
	if len(req.ClientMsgID) > wire.MaxClientMsgIDBytes {
		t.Fatalf("Decode(%q): client_msg_id of %d bytes accepted", frame, len(req.ClientMsgID))
	}
	switch req.Type {
	case wire.TypeMessage:
		m := req.Message
		if m == "" {
			t.Fatalf("Decode(%q): empty message accepted", frame)
		}
		if !utf8.ValidString(m) {
			t.Fatalf("Decode(%q): invalid UTF-8 message %q accepted", frame, m)
		}
		if strings.IndexByte(m, 0) >= 0 {
			t.Fatalf("Decode(%q): message with NUL accepted", frame)
		}
		if m != strings.TrimSpace(m) {
			t.Fatalf("Decode(%q): message %q not trimmed", frame, m)
		}
		first, _ := utf8.DecodeRuneInString(m)
		last, _ := utf8.DecodeLastRuneInString(m)
		if unicode.IsSpace(first) || unicode.IsSpace(last) {
			t.Fatalf("Decode(%q): message %q starts or ends with white space", frame, m)
		}
		if d.MaxMessageChars > 0 && utf8.RuneCountInString(m) > d.MaxMessageChars {
			t.Fatalf("Decode(%q): message of %d runes accepted (max %d)", frame, utf8.RuneCountInString(m), d.MaxMessageChars)
		}
	case wire.TypeOpen, wire.TypeLeave:
		if req.ConversationID == 0 {
			t.Fatalf("Decode(%q): %s without conversation accepted", frame, req.Type)
		}
	}
	checkCanned(t, d, frame, req)
	if req.Type != wire.TypeMessage && req.Type != wire.TypeNote && req.Message != "" {
		t.Fatalf("Decode(%q): %s carries a message text", frame, req.Type)
	}
	if req.Type != wire.TypeHistory && (req.AfterSeq != 0 || req.BeforeSeq != 0 || req.Limit != 0) {
		t.Fatalf("Decode(%q): %s carries history bounds %+v", frame, req.Type, req)
	}
	if req.Limit > 1000 {
		t.Fatalf("Decode(%q): limit %d not capped", frame, req.Limit)
	}
}

// fuzzSeeds are interesting frames; testdata/fuzz/FuzzDecode holds more.
var fuzzSeeds = []string{
	``,
	`null`,
	`[]`,
	`"x"`,
	`{}`,
	`{"message":"hi"}`,
	`{"message":"  hi  ","conversation_id":17,"client_msg_id":"c1"}`,
	`{"message":"x","conversation_id":"17"}`,
	`{"message":"x","conversation_id":"-1"}`,
	`{"message":"x","conversation_id":-0}`,
	`{"message":"x","conversation_id":"+5"}`,
	`{"message":"x","conversation_id":9223372036854775808}`,
	`{"message":"\u0000"}`,
	`{"message":"\u00a0x\u3000"}`,
	`{"message":"\ud83d\ude00\ud83d\ude00\ud83d"}`,
	"{\"message\":\"\xff\xfe\"}",
	`{"message":"0123456789abcdef"}`,
	`{"message":"😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀"}`,
	`{"type":"history","after_seq":1,"before_seq":"2","limit":5000}`,
	`{"type":"history","limit":-1}`,
	`{"type":"inbox"}`,
	`{"type":"open","conversation_id":0}`,
	`{"type":"leave","conversation_id":"3"}`,
	`{"type":"typing"}`,
	`{"type":"note","conversation_id":3,"message":"  internal  "}`,
	`{"type":"note","message":"x"}`,
	`{"type":"away","away":true}`,
	`{"type":5}`,
	`{"MESSAGE":"case","Type":"message"}`,
	`{"message":"a","message":null}`,
	`{"type":"canned"}`,
	`{"type":"staff"}`,
	`{"type":"canned_save","name":" Hi-There_2 ","body":"  Hello!  "}`,
	`{"type":"canned_save","id":"7","name":"a","body":"\u0000"}`,
	`{"type":"canned_save","id":7,"name":"\u212a","body":"x"}`,
	`{"type":"canned_save","name":"` + strings.Repeat("n", 33) + `","body":"x"}`,
	`{"type":"canned_delete","id":0}`,
	`{"type":"canned_delete","ID":3}`,
	`{"client_msg_id":"` + strings.Repeat("k", 101) + `","message":"x"}`,
}

// fuzzMaxChars is small so that the fuzzer reaches the limit.
const fuzzMaxChars = 16

// FuzzDecode checks that Decode never panics, that what it accepts satisfies
// the Request invariants, and that what it refuses is a *wire.Error with a
// documented code.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	d := wire.Decoder{MaxMessageChars: fuzzMaxChars}
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, err := d.Decode(frame)
		if err != nil {
			var werr *wire.Error
			if !errors.As(err, &werr) {
				t.Fatalf("Decode(%q): error %T %v is not a *wire.Error", frame, err, err)
			}
			if !documentedCodes[werr.Code] {
				t.Fatalf("Decode(%q): undocumented code %q", frame, werr.Code)
			}
			if req != (wire.Request{}) {
				t.Fatalf("Decode(%q): non-zero Request %+v with error", frame, req)
			}
			if len(werr.ClientMsgID) > wire.MaxClientMsgIDBytes || werr.ConversationID < 0 {
				t.Fatalf("Decode(%q): bad echo in %+v", frame, werr)
			}
			// The error frame must always encode.
			_ = wire.ErrorFrame(werr)
			return
		}
		checkRequest(t, d, frame, req)
	})
}

// checkCanned asserts the invariants of a decoded canned request: only
// canned_save carries a name and a text, a name of 1 to
// MaxCannedNameBytes lower-case letters, digits, '-' and '_', a trimmed
// text of 1 to the decoder's limit of runes without NUL; only canned_save
// and canned_delete carry an id, and canned_delete always one.
func checkCanned(t *testing.T, d wire.Decoder, frame []byte, req wire.Request) {
	t.Helper()
	if req.Type != wire.TypeCannedSave && (req.Name != "" || req.Body != "") {
		t.Fatalf("Decode(%q): %s carries a canned reply's name or text", frame, req.Type)
	}
	if req.Type != wire.TypeCannedSave && req.Type != wire.TypeCannedDelete && req.ID != 0 {
		t.Fatalf("Decode(%q): %s carries an id", frame, req.Type)
	}
	switch req.Type {
	case wire.TypeCannedDelete:
		if req.ID <= 0 {
			t.Fatalf("Decode(%q): canned_delete without an id accepted", frame)
		}
	case wire.TypeCannedSave:
		if req.ID < 0 || req.Name == "" || len(req.Name) > wire.MaxCannedNameBytes || strings.Trim(req.Name, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("Decode(%q): canned reply name %q accepted", frame, req.Name)
		}
		b := req.Body
		limit := min(max(d.MaxMessageChars, 0), wire.MaxCannedBodyRunes)
		if limit == 0 {
			limit = wire.MaxCannedBodyRunes
		}
		if b == "" || b != strings.TrimSpace(b) || strings.IndexByte(b, 0) >= 0 || !utf8.ValidString(b) || utf8.RuneCountInString(b) > limit {
			t.Fatalf("Decode(%q): canned reply text %q accepted", frame, b)
		}
	}
}
