package wire_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/grainchat/grainchat/transport/wire"
)

// testMaxChars is the MaxMessageChars of the decoder the table tests use:
// small, so that the limit is cheap to reach.
const testMaxChars = 10

// documentedCodes are the error codes of docs/PROTOCOL.md that Decode may
// return (the others need the server's state: forbidden, unavailable, …).
var documentedCodes = map[string]bool{
	wire.CodeInvalidJSON:          true,
	wire.CodeInvalidRequest:       true,
	wire.CodeUnknownType:          true,
	wire.CodeEmptyMessage:         true,
	wire.CodeMessageTooLong:       true,
	wire.CodeInvalidText:          true,
	wire.CodeConversationRequired: true,
}

// knownTypes are the inbound frame types of docs/PROTOCOL.md.
var knownTypes = map[string]bool{
	wire.TypeMessage: true,
	wire.TypeHistory: true,
	wire.TypeInbox:   true,
	wire.TypeOpen:    true,
	wire.TypeLeave:   true,
	wire.TypeAuth:    true,
	wire.TypeStatus:  true,
	wire.TypeAssign:  true,
	wire.TypeRead:    true,
	wire.TypeTyping:  true,
	wire.TypeAway:    true,
	wire.TypeNote:    true,
	// The visitor's transcript by email.
	wire.TypeTranscriptEmail: true,
	// Canned replies and the staff list.
	wire.TypeCanned:       true,
	wire.TypeCannedSave:   true,
	wire.TypeCannedDelete: true,
	wire.TypeStaff:        true,
}

// quote returns s as a JSON string literal.
func quote(s string) string { return strconv.Quote(s) }

func TestDecode_accepted(t *testing.T) {
	ten := strings.Repeat("x", testMaxChars)
	// Ten runes of 2, 3 and 4 bytes: far more than ten bytes, yet at the limit.
	tenAccents := strings.Repeat("é", testMaxChars)
	tenCJK := strings.Repeat("中", testMaxChars)
	tenEmoji := strings.Repeat("😀", testMaxChars)

	tests := []struct {
		name  string
		frame string
		want  wire.Request
	}{
		// Message frames, seed dialect.
		{"seed message", `{"message":"Bonjour"}`,
			wire.Request{Type: wire.TypeMessage, Message: "Bonjour"}},
		{"explicit type message", `{"type":"message","message":"hi"}`,
			wire.Request{Type: wire.TypeMessage, Message: "hi"}},
		{"empty type is a message", `{"type":"","message":"hi"}`,
			wire.Request{Type: wire.TypeMessage, Message: "hi"}},
		{"null type is a message", `{"type":null,"message":"hi"}`,
			wire.Request{Type: wire.TypeMessage, Message: "hi"}},
		{"conversation_id as number", `{"message":"Hello","conversation_id":17}`,
			wire.Request{Type: wire.TypeMessage, Message: "Hello", ConversationID: 17}},
		{"conversation_id as digit string", `{"message":"Hello","conversation_id":"17"}`,
			wire.Request{Type: wire.TypeMessage, Message: "Hello", ConversationID: 17}},
		{"conversation_id null is none", `{"message":"Hello","conversation_id":null}`,
			wire.Request{Type: wire.TypeMessage, Message: "Hello"}},
		{"conversation_id zero is none", `{"message":"Hello","conversation_id":0}`,
			wire.Request{Type: wire.TypeMessage, Message: "Hello"}},
		{"conversation_id max int64", `{"message":"m","conversation_id":9223372036854775807}`,
			wire.Request{Type: wire.TypeMessage, Message: "m", ConversationID: 9223372036854775807}},
		{"client_msg_id", `{"message":"Hello","conversation_id":17,"client_msg_id":"b7c1"}`,
			wire.Request{Type: wire.TypeMessage, Message: "Hello", ConversationID: 17, ClientMsgID: "b7c1"}},
		{"client_msg_id null is none", `{"message":"Hello","client_msg_id":null}`,
			wire.Request{Type: wire.TypeMessage, Message: "Hello"}},
		{"client_msg_id of 100 bytes", `{"message":"m","client_msg_id":"` + strings.Repeat("k", 100) + `"}`,
			wire.Request{Type: wire.TypeMessage, Message: "m", ClientMsgID: strings.Repeat("k", 100)}},
		{"client_msg_id of 100 bytes in 25 runes", `{"message":"m","client_msg_id":"` + strings.Repeat("😀", 25) + `"}`,
			wire.Request{Type: wire.TypeMessage, Message: "m", ClientMsgID: strings.Repeat("😀", 25)}},
		{"unknown fields ignored", `{"message":"m","colour":"blue","nested":{"a":[1,2]}}`,
			wire.Request{Type: wire.TypeMessage, Message: "m"}},
		{"white space around the frame", " \n\t{\"message\":\"m\"}\r\n ",
			wire.Request{Type: wire.TypeMessage, Message: "m"}},

		// Trimming.
		{"surrounding white space trimmed", `{"message":"  \t\n hi there \r\n "}`,
			wire.Request{Type: wire.TypeMessage, Message: "hi there"}},
		{"inner white space kept", `{"message":" a  \t b\n\nc "}`,
			wire.Request{Type: wire.TypeMessage, Message: "a  \t b\n\nc"}},
		{"unicode spaces trimmed", `{"message":"\u00a0\u3000\u2028hi\u2029\u0085"}`,
			wire.Request{Type: wire.TypeMessage, Message: "hi"}},
		{"zero width space is not white space", `{"message":"\u200b"}`,
			wire.Request{Type: wire.TypeMessage, Message: "\u200b"}},

		// Length, in runes.
		{"ascii at the limit", `{"message":"` + ten + `"}`,
			wire.Request{Type: wire.TypeMessage, Message: ten}},
		{"2-byte runes at the limit", `{"message":"` + tenAccents + `"}`,
			wire.Request{Type: wire.TypeMessage, Message: tenAccents}},
		{"3-byte runes at the limit", `{"message":"` + tenCJK + `"}`,
			wire.Request{Type: wire.TypeMessage, Message: tenCJK}},
		{"4-byte runes at the limit", `{"message":"` + tenEmoji + `"}`,
			wire.Request{Type: wire.TypeMessage, Message: tenEmoji}},
		{"4-byte runes at the limit as surrogate escapes", `{"message":"` + strings.Repeat(`\ud83d\ude00`, testMaxChars) + `"}`,
			wire.Request{Type: wire.TypeMessage, Message: tenEmoji}},
		{"limit counted after trimming", `{"message":"   ` + ten + `   "}`,
			wire.Request{Type: wire.TypeMessage, Message: ten}},
		{"HTML kept as is", `{"message":"<i>&</i>"}`,
			wire.Request{Type: wire.TypeMessage, Message: "<i>&</i>"}},
		{"escaped HTML", `{"message":"\u003cscript\u003e"}`,
			wire.Request{Type: wire.TypeMessage, Message: "<script>"}},

		// history.
		{"history bare", `{"type":"history"}`,
			wire.Request{Type: wire.TypeHistory}},
		{"history full", `{"type":"history","conversation_id":3,"after_seq":10,"before_seq":20,"limit":30}`,
			wire.Request{Type: wire.TypeHistory, ConversationID: 3, AfterSeq: 10, BeforeSeq: 20, Limit: 30}},
		{"history digit strings", `{"type":"history","conversation_id":"3","after_seq":"10","before_seq":"20","limit":"30"}`,
			wire.Request{Type: wire.TypeHistory, ConversationID: 3, AfterSeq: 10, BeforeSeq: 20, Limit: 30}},
		{"history limit 100", `{"type":"history","limit":100}`,
			wire.Request{Type: wire.TypeHistory, Limit: 100}},
		// The decoder only clamps absurd limits (the session applies the
		// documented default of 50 and maximum of 100: actors.MaxHistoryPage).
		{"history limit 1000", `{"type":"history","limit":1000}`,
			wire.Request{Type: wire.TypeHistory, Limit: 1000}},
		{"history limit capped", `{"type":"history","limit":1001}`,
			wire.Request{Type: wire.TypeHistory, Limit: 1000}},
		{"history limit max int64 capped", `{"type":"history","limit":9223372036854775807}`,
			wire.Request{Type: wire.TypeHistory, Limit: 1000}},
		{"history ignores message", `{"type":"history","message":""}`,
			wire.Request{Type: wire.TypeHistory}},
		{"history with client_msg_id", `{"type":"history","client_msg_id":"h1"}`,
			wire.Request{Type: wire.TypeHistory, ClientMsgID: "h1"}},

		// inbox, open, leave.
		{"inbox", `{"type":"inbox"}`,
			wire.Request{Type: wire.TypeInbox}},
		{"inbox ignores bad message", `{"type":"inbox","message":"   "}`,
			wire.Request{Type: wire.TypeInbox}},
		{"open", `{"type":"open","conversation_id":17}`,
			wire.Request{Type: wire.TypeOpen, ConversationID: 17}},
		{"open digit string", `{"type":"open","conversation_id":"17"}`,
			wire.Request{Type: wire.TypeOpen, ConversationID: 17}},
		{"leave", `{"type":"leave","conversation_id":17}`,
			wire.Request{Type: wire.TypeLeave, ConversationID: 17}},
	}
	d := wire.Decoder{MaxMessageChars: testMaxChars}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Decode([]byte(tt.frame))
			if err != nil {
				t.Fatalf("Decode(%s): unexpected error %v", tt.frame, err)
			}
			if got != tt.want {
				t.Fatalf("Decode(%s)\n got  %+v\n want %+v", tt.frame, got, tt.want)
			}
		})
	}
}

func TestDecode_refused(t *testing.T) {
	eleven := strings.Repeat("x", testMaxChars+1)
	tests := []struct {
		name  string
		frame string
		code  string
		// The refusal echoes what it knows of the frame.
		clientMsgID    string
		conversationID int64
	}{
		// invalid_json: the frame is not JSON.
		{"empty frame", ``, wire.CodeInvalidJSON, "", 0},
		{"white space only", "  \n", wire.CodeInvalidJSON, "", 0},
		{"plain text", `hello`, wire.CodeInvalidJSON, "", 0},
		{"truncated object", `{"message":"hi"`, wire.CodeInvalidJSON, "", 0},
		{"trailing comma", `{"message":"hi",}`, wire.CodeInvalidJSON, "", 0},
		{"single quotes", `{'message':'hi'}`, wire.CodeInvalidJSON, "", 0},
		{"two objects", `{"message":"a"}{"message":"b"}`, wire.CodeInvalidJSON, "", 0},
		{"trailing garbage", `{"message":"a"} x`, wire.CodeInvalidJSON, "", 0},
		{"unescaped control character", "{\"message\":\"a\x01b\"}", wire.CodeInvalidJSON, "", 0},
		{"bad escape", `{"message":"\x41"}`, wire.CodeInvalidJSON, "", 0},
		{"NaN", `{"message":"m","conversation_id":NaN}`, wire.CodeInvalidJSON, "", 0},

		// invalid_request: not an object.
		{"array", `[{"message":"hi"}]`, wire.CodeInvalidRequest, "", 0},
		{"empty array", `[]`, wire.CodeInvalidRequest, "", 0},
		{"string", `"hi"`, wire.CodeInvalidRequest, "", 0},
		{"number", `17`, wire.CodeInvalidRequest, "", 0},
		{"bool", `true`, wire.CodeInvalidRequest, "", 0},
		{"null", `null`, wire.CodeInvalidRequest, "", 0},

		// invalid_request: a field of the wrong type.
		{"type number", `{"type":5,"message":"m"}`, wire.CodeInvalidRequest, "", 0},
		{"type object", `{"type":{},"message":"m"}`, wire.CodeInvalidRequest, "", 0},
		{"message number", `{"message":5}`, wire.CodeInvalidRequest, "", 0},
		{"message bool", `{"message":true}`, wire.CodeInvalidRequest, "", 0},
		{"message array", `{"message":["hi"]}`, wire.CodeInvalidRequest, "", 0},
		{"message object", `{"message":{"text":"hi"}}`, wire.CodeInvalidRequest, "", 0},
		{"client_msg_id number", `{"message":"m","client_msg_id":5}`, wire.CodeInvalidRequest, "", 0},
		{"client_msg_id bool", `{"message":"m","client_msg_id":false}`, wire.CodeInvalidRequest, "", 0},
		{"conversation_id bool", `{"message":"m","conversation_id":true}`, wire.CodeInvalidRequest, "", 0},
		{"conversation_id object", `{"message":"m","conversation_id":{}}`, wire.CodeInvalidRequest, "", 0},
		{"conversation_id array", `{"message":"m","conversation_id":[1]}`, wire.CodeInvalidRequest, "", 0},
		{"conversation_id fraction", `{"message":"m","conversation_id":1.5}`, wire.CodeInvalidRequest, "", 0},
		{"conversation_id exponent", `{"message":"m","conversation_id":1e2}`, wire.CodeInvalidRequest, "", 0},
		{"conversation_id too large", `{"message":"m","conversation_id":9223372036854775808}`, wire.CodeInvalidRequest, "", 0},
		{"conversation_id empty string", `{"message":"m","conversation_id":""}`, wire.CodeInvalidRequest, "", 0},
		{"conversation_id words", `{"message":"m","conversation_id":"seventeen"}`, wire.CodeInvalidRequest, "", 0},
		{"conversation_id padded string", `{"message":"m","conversation_id":" 17"}`, wire.CodeInvalidRequest, "", 0},
		{"conversation_id hex string", `{"message":"m","conversation_id":"0x11"}`, wire.CodeInvalidRequest, "", 0},
		{"conversation_id fraction string", `{"message":"m","conversation_id":"17.0"}`, wire.CodeInvalidRequest, "", 0},
		{"after_seq bool", `{"type":"history","after_seq":true}`, wire.CodeInvalidRequest, "", 0},
		{"before_seq string", `{"type":"history","before_seq":"last"}`, wire.CodeInvalidRequest, "", 0},
		{"limit fraction", `{"type":"history","limit":2.5}`, wire.CodeInvalidRequest, "", 0},
		{"limit object", `{"type":"history","limit":{}}`, wire.CodeInvalidRequest, "", 0},

		// invalid_request: a negative id.
		{"negative conversation_id", `{"message":"m","conversation_id":-1}`, wire.CodeInvalidRequest, "", 0},
		{"negative conversation_id string", `{"message":"m","conversation_id":"-1"}`, wire.CodeInvalidRequest, "", 0},
		{"negative conversation_id on open", `{"type":"open","conversation_id":-17}`, wire.CodeInvalidRequest, "", 0},
		{"negative after_seq", `{"type":"history","after_seq":-1}`, wire.CodeInvalidRequest, "", 0},
		{"negative before_seq", `{"type":"history","before_seq":-5}`, wire.CodeInvalidRequest, "", 0},
		{"negative limit", `{"type":"history","limit":-1}`, wire.CodeInvalidRequest, "", 0},
		{"min int64", `{"message":"m","conversation_id":-9223372036854775808}`, wire.CodeInvalidRequest, "", 0},

		// invalid_request: client_msg_id longer than 100 bytes (bytes, not runes).
		{"client_msg_id of 101 bytes", `{"message":"m","client_msg_id":"` + strings.Repeat("k", 101) + `"}`, wire.CodeInvalidRequest, "", 0},
		{"client_msg_id of 26 4-byte runes", `{"message":"m","client_msg_id":"` + strings.Repeat("😀", 26) + `"}`, wire.CodeInvalidRequest, "", 0},
		{"client_msg_id of 51 2-byte runes", `{"message":"m","client_msg_id":"` + strings.Repeat("é", 51) + `"}`, wire.CodeInvalidRequest, "", 0},

		// unknown_type.
		{"unknown type", `{"type":"typed","client_msg_id":"c1","conversation_id":4}`, wire.CodeUnknownType, "c1", 4},
		{"type is case sensitive", `{"type":"Message","message":"m"}`, wire.CodeUnknownType, "", 0},
		{"type with spaces", `{"type":" message","message":"m"}`, wire.CodeUnknownType, "", 0},
		{"server frame type", `{"type":"ack"}`, wire.CodeUnknownType, "", 0},
		{"long unknown type", `{"type":"` + strings.Repeat("t", 5000) + `"}`, wire.CodeUnknownType, "", 0},

		// empty_message.
		{"message missing", `{}`, wire.CodeEmptyMessage, "", 0},
		{"message missing with ids", `{"conversation_id":9,"client_msg_id":"c9"}`, wire.CodeEmptyMessage, "c9", 9},
		{"message null", `{"message":null,"conversation_id":"9"}`, wire.CodeEmptyMessage, "", 9},
		{"message empty", `{"message":""}`, wire.CodeEmptyMessage, "", 0},
		{"message spaces", `{"message":"   "}`, wire.CodeEmptyMessage, "", 0},
		{"message mixed white space", `{"message":" \t\r\n\u000b\u000c "}`, wire.CodeEmptyMessage, "", 0},
		{"message unicode white space", `{"message":"\u00a0\u2003\u3000\u2028\u2029\u0085"}`, wire.CodeEmptyMessage, "", 0},
		{"type message without message", `{"type":"message","client_msg_id":"c2"}`, wire.CodeEmptyMessage, "c2", 0},

		// message_too_long: more than MaxMessageChars runes.
		{"ascii over the limit", `{"message":"` + eleven + `","client_msg_id":"c3","conversation_id":3}`, wire.CodeMessageTooLong, "c3", 3},
		{"2-byte runes over the limit", `{"message":"` + strings.Repeat("é", testMaxChars+1) + `"}`, wire.CodeMessageTooLong, "", 0},
		{"4-byte runes over the limit", `{"message":"` + strings.Repeat("😀", testMaxChars+1) + `"}`, wire.CodeMessageTooLong, "", 0},
		{"combining marks count as runes", `{"message":"` + strings.Repeat("e\u0301", 6) + `"}`, wire.CodeMessageTooLong, "", 0},
		{"inner white space counts", `{"message":"a` + strings.Repeat(" ", testMaxChars) + `b"}`, wire.CodeMessageTooLong, "", 0},

		// invalid_text: a NUL character.
		{"NUL alone", `{"message":"\u0000"}`, wire.CodeInvalidText, "", 0},
		{"NUL inside", `{"message":"a\u0000b","client_msg_id":"c4","conversation_id":4}`, wire.CodeInvalidText, "c4", 4},
		{"NUL at the end after spaces", `{"message":"a  \u0000"}`, wire.CodeInvalidText, "", 0},

		// conversation_required: open and leave need a conversation.
		{"open without id", `{"type":"open"}`, wire.CodeConversationRequired, "", 0},
		{"open null id", `{"type":"open","conversation_id":null}`, wire.CodeConversationRequired, "", 0},
		{"open zero id", `{"type":"open","conversation_id":0}`, wire.CodeConversationRequired, "", 0},
		{"leave without id", `{"type":"leave","client_msg_id":"c5"}`, wire.CodeConversationRequired, "c5", 0},
		{"leave zero string id", `{"type":"leave","conversation_id":"0"}`, wire.CodeConversationRequired, "", 0},

		// Echo: a bad conversation_id still echoes the client_msg_id.
		{"bad conversation_id echoes client_msg_id", `{"message":"m","client_msg_id":"c6","conversation_id":-1}`, wire.CodeInvalidRequest, "c6", 0},
		{"bad limit echoes both", `{"type":"history","client_msg_id":"c7","conversation_id":7,"limit":-1}`, wire.CodeInvalidRequest, "c7", 7},
		{"message number echoes both", `{"message":1,"client_msg_id":"c8","conversation_id":8}`, wire.CodeInvalidRequest, "c8", 8},
	}
	d := wire.Decoder{MaxMessageChars: testMaxChars}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Decode([]byte(tt.frame))
			if err == nil {
				t.Fatalf("Decode(%.80s) = %+v, want error %q", tt.frame, got, tt.code)
			}
			if got != (wire.Request{}) {
				t.Errorf("Decode(%.80s) returned %+v with its error, want the zero Request", tt.frame, got)
			}
			var werr *wire.Error
			if !errors.As(err, &werr) {
				t.Fatalf("Decode(%.80s): error %T %v is not a *wire.Error", tt.frame, err, err)
			}
			if werr.Code != tt.code {
				t.Fatalf("Decode(%.80s): code %q (%s), want %q", tt.frame, werr.Code, werr.Message, tt.code)
			}
			if werr.Message == "" {
				t.Errorf("Decode(%.80s): error %q has no human message", tt.frame, werr.Code)
			}
			if werr.ClientMsgID != tt.clientMsgID || werr.ConversationID != tt.conversationID {
				t.Errorf("Decode(%.80s): echo client_msg_id=%q conversation_id=%d, want %q and %d",
					tt.frame, werr.ClientMsgID, werr.ConversationID, tt.clientMsgID, tt.conversationID)
			}
			if len(werr.Message) > 200 {
				t.Errorf("Decode(%.80s): message of %d bytes; the human text must stay short", tt.frame, len(werr.Message))
			}
		})
	}
}

// TestDecode_defaultLimit guards the limit that the server configures by
// default (4000 characters) with a realistic multibyte text.
func TestDecode_defaultLimit(t *testing.T) {
	d := wire.Decoder{MaxMessageChars: 4000}
	// 4000 runes of 4 bytes: 16000 bytes.
	at := strings.Repeat("😀", 4000)
	req, err := d.Decode([]byte(`{"message":` + quote(at) + `}`))
	if err != nil {
		t.Fatalf("4000 emoji: %v", err)
	}
	if req.Message != at {
		t.Fatalf("4000 emoji: text changed (%d bytes, want %d)", len(req.Message), len(at))
	}
	_, err = d.Decode([]byte(`{"message":` + quote(at+"a") + `}`))
	var werr *wire.Error
	if !errors.As(err, &werr) || werr.Code != wire.CodeMessageTooLong {
		t.Fatalf("4001 characters: error %v, want %q", err, wire.CodeMessageTooLong)
	}
}

// TestDecode_zeroLimit documents that a Decoder without MaxMessageChars does
// not bound the length (the server always sets it).
func TestDecode_zeroLimit(t *testing.T) {
	long := strings.Repeat("a", 100000)
	req, err := wire.Decoder{}.Decode([]byte(`{"message":"` + long + `"}`))
	if err != nil || req.Message != long {
		t.Fatalf("zero MaxMessageChars: err %v, %d bytes", err, len(req.Message))
	}
}

// TestDecode_invalidUTF8 checks that invalid UTF-8 inside a frame never yields
// an invalid text: the transport closes such frames with 1007 first, and the
// decoder's output must stay valid anyway.
func TestDecode_invalidUTF8(t *testing.T) {
	frames := []string{
		"{\"message\":\"a\xffb\"}",
		"{\"message\":\"\xc3\"}",
		"{\"message\":\"\xed\xa0\x80\"}", // an encoded surrogate
		`{"message":"\ud800x"}`,          // a lone surrogate escape
		`{"message":"x\udc00"}`,
	}
	d := wire.Decoder{MaxMessageChars: testMaxChars}
	for _, f := range frames {
		req, err := d.Decode([]byte(f))
		if err != nil {
			var werr *wire.Error
			if !errors.As(err, &werr) || !documentedCodes[werr.Code] {
				t.Errorf("Decode(%q): error %v", f, err)
			}
			continue
		}
		checkRequest(t, d, []byte(f), req)
	}
}

func TestError(t *testing.T) {
	e := &wire.Error{Code: wire.CodeEmptyMessage, Message: "the message is empty"}
	if got, want := e.Error(), "empty_message: the message is empty"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}
