package wire

import (
	"bytes"
	"encoding/json"
	"testing"
)

// checkScan: where scanRequest answers, json.Unmarshal succeeds with the
// same fields.
func checkScan(t *testing.T, frame []byte) {
	t.Helper()
	got, ok := scanRequest(frame)
	if !ok {
		return
	}
	var want rawRequest
	if err := json.Unmarshal(frame, &want); err != nil {
		t.Fatalf("scanRequest(%q) accepted a frame json.Unmarshal refuses: %v", frame, err)
	}
	same := func(a, b json.RawMessage) bool { return bytes.Equal(a, b) && (a == nil) == (b == nil) }
	if got.Type != want.Type || !same(got.Message, want.Message) || !same(got.ConversationID, want.ConversationID) ||
		!same(got.ClientMsgID, want.ClientMsgID) || !same(got.BeforeSeq, want.BeforeSeq) ||
		!same(got.AfterSeq, want.AfterSeq) || !same(got.Limit, want.Limit) {
		t.Fatalf("scanRequest(%q) = %+v, json.Unmarshal = %+v", frame, got, want)
	}
	if s, err := optString(got.Message, "message"); err == nil && got.Message != nil {
		var w *string
		if json.Unmarshal(got.Message, &w) == nil && w != nil && *w != s {
			t.Fatalf("optString(%q) = %q, json.Unmarshal = %q", got.Message, s, *w)
		}
	}
}

var scanSamples = []string{
	`{"message":"Test"}`,
	`{"message":"hi","conversation_id":17}`,
	` { "type" : "message" , "message" : "é 😀 <b>" , "client_msg_id" : "id-1" , "conversation_id" : "17" } `,
	`{"type":"history","conversation_id":3,"before_seq":10,"after_seq":0,"limit":50}`,
	`{"type":"inbox"}`, `{}`, `{"message":null}`, `{"conversation_id":-1}`, `{"conversation_id":01}`,
	`{"conversation_id":1.5}`, `{"conversation_id":1e3}`, `{"message":"a\"b"}`, `{"message":"a\u0041"}`,
	`{"Message":"case"}`, `{"other":1}`, `{"message":"x",}`, `{"message":"x"} trailing`, `{"message":"x"}}`,
	`{"message":"\xff"}`, "{\"message\":\"tab\there\"}", `{"type":1}`, `{"type":null}`, `{"message":["a"]}`,
	`{"message":"a","message":"b"}`, `{"message":true}`, `{"limit":nul}`, `{"message" "x"}`, `{"message":"x"`,
}

func TestScanRequestMatchesUnmarshal(t *testing.T) {
	accepted := 0
	for _, f := range scanSamples {
		checkScan(t, []byte(f))
		if _, ok := scanRequest([]byte(f)); ok {
			accepted++
		}
	}
	// The common frames must take the fast path, or it is not one.
	for _, f := range scanSamples[:5] {
		if _, ok := scanRequest([]byte(f)); !ok {
			t.Errorf("scanRequest(%q) fell back to json.Unmarshal", f)
		}
	}
	if accepted == len(scanSamples) {
		t.Errorf("every sample took the fast path: the fallback is untested")
	}
}

func FuzzScanMatchesUnmarshal(f *testing.F) {
	for _, s := range scanSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) { checkScan(t, frame) })
}
