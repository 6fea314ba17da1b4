package wire_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/grainchat/grainchat/transport/wire"
)

func TestDecodeDesk_accepted(t *testing.T) {
	d := wire.Decoder{MaxMessageChars: testMaxChars}
	cases := []struct {
		frame string
		want  wire.Request
	}{
		{`{"type":"status","conversation_id":3,"status":"resolved"}`,
			wire.Request{Type: "status", ConversationID: 3, Status: "resolved"}},
		{`{"type":"status","conversation_id":"3","status":"pending"}`,
			wire.Request{Type: "status", ConversationID: 3, Status: "pending"}},
		{`{"type":"assign","conversation_id":3,"assignee":"ann"}`,
			wire.Request{Type: "assign", ConversationID: 3, Assignee: "ann"}},
		{`{"type":"assign","conversation_id":3,"assignee":null}`,
			wire.Request{Type: "assign", ConversationID: 3, Unassign: true}},
		{`{"type":"read","conversation_id":3,"seq":17}`,
			wire.Request{Type: "read", ConversationID: 3, Seq: 17}},
		{`{"message":"hi","conversation_id":3,"based_on_seq":5}`,
			wire.Request{Type: "message", Message: "hi", ConversationID: 3, BasedOnSeq: 5}},
		{`{"message":"hi","conversation_id":3,"based_on_seq":5,"force":true}`,
			wire.Request{Type: "message", Message: "hi", ConversationID: 3, BasedOnSeq: 5, Force: true}},
		{`{"type":"inbox","status":"open","assignee":"me","q":"refund"}`,
			wire.Request{Type: "inbox", Status: "open", Assignee: "me", Search: "refund"}},
		{`{"type":"inbox","status":"all"}`,
			wire.Request{Type: "inbox"}},
	}
	for _, c := range cases {
		got, err := d.Decode([]byte(c.frame))
		if err != nil {
			t.Errorf("%s: %v", c.frame, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.frame, got, c.want)
		}
	}
}

func TestDecodeDesk_refused(t *testing.T) {
	d := wire.Decoder{MaxMessageChars: testMaxChars}
	cases := []struct{ frame, code string }{
		{`{"type":"status","status":"open"}`, wire.CodeConversationRequired},
		{`{"type":"status","conversation_id":1,"status":"closed"}`, wire.CodeInvalidRequest},
		{`{"type":"status","conversation_id":1}`, wire.CodeInvalidRequest},
		{`{"type":"status","conversation_id":1,"status":7}`, wire.CodeInvalidRequest},
		{`{"type":"assign","conversation_id":1}`, wire.CodeInvalidRequest},
		{`{"type":"assign","conversation_id":1,"assignee":""}`, wire.CodeInvalidRequest},
		{`{"type":"assign","conversation_id":1,"assignee":` + quote(strings.Repeat("a", 201)) + `}`, wire.CodeInvalidRequest},
		{`{"type":"read","seq":1}`, wire.CodeConversationRequired},
		{`{"type":"read","conversation_id":1,"seq":-1}`, wire.CodeInvalidRequest},
		{`{"message":"hi","conversation_id":1,"based_on_seq":-2}`, wire.CodeInvalidRequest},
		{`{"message":"hi","conversation_id":1,"force":"yes"}`, wire.CodeInvalidRequest},
		{`{"type":"inbox","status":"closed"}`, wire.CodeInvalidRequest},
		{`{"type":"inbox","q":` + quote(strings.Repeat("é", wire.MaxSearchRunes+1)) + `}`, wire.CodeInvalidRequest},
	}
	for _, c := range cases {
		_, err := d.Decode([]byte(c.frame))
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != c.code {
			t.Errorf("%.80s: got %v, want %s", c.frame, err, c.code)
		}
	}
}

func TestDeskFrames(t *testing.T) {
	ann := &wire.DeskUser{ID: 7, ExternalID: "ann", Name: "Ann"}
	ev := wire.Event{ID: 4, ConversationID: 3, AfterSeq: 9, Kind: "assignee", Assignee: ann,
		Actor: wire.DeskUser{ID: 8, ExternalID: "bob", Name: "Bob"}, CreatedAt: sampleTime}
	var got map[string]any
	mustUnmarshal(t, wire.EventFrame(ev), &got)
	want := map[string]any{"type": "event", "conversation_id": 3.0, "event": map[string]any{
		"id": 4.0, "kind": "assignee", "assignee": map[string]any{"id": 7.0, "external_id": "ann", "name": "Ann"},
		"actor": map[string]any{"id": 8.0, "external_id": "bob", "name": "Bob"}, "after_seq": 9.0,
		"created_at": "2026-11-26T09:59:17.933187Z"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("event frame\n got %v\nwant %v", got, want)
	}
	mustUnmarshal(t, wire.ChangedFrame(3, "open", nil, nil), &got)
	if got["type"] != "changed" || got["status"] != "open" || got["assignee"] != nil || len(got["events"].([]any)) != 0 {
		t.Errorf("changed frame %v", got)
	}
	if f := string(wire.ReadFrame(3, 12)); f != `{"type":"read","conversation_id":3,"read_seq":12}` {
		t.Errorf("read frame %s", f)
	}
	if f := string(wire.ErrorFrame(&wire.Error{Code: wire.CodeStaleReply, Message: "m", ConversationID: 3, LastSeq: 12})); !strings.Contains(f, `"last_seq":12`) {
		t.Errorf("stale_reply error frame %s", f)
	}
}

// TestInboxEntryDeskFields: the hand-written inbox_update encoder and the
// inbox frame's encoding/json agree on the desk fields.
func TestInboxEntryDeskFields(t *testing.T) {
	m := sampleMessage()
	for _, e := range []wire.InboxEntry{
		{ConversationID: 1, UserID: 2, UserExternalID: "v", UserName: "V", LastSeq: 1, LastMessageAt: sampleTime, LastMessage: &m,
			Status: "pending", Assignee: &wire.DeskUser{ID: 7, ExternalID: "ann", Name: "Ann \"A\""}},
		{ConversationID: 1, UserID: 2, UserExternalID: "v", UserName: "V", LastSeq: 1, LastMessageAt: sampleTime, LastMessage: &m,
			Status: "open", HasReadState: true, ReadSeq: 1, Unread: 0},
	} {
		var update struct {
			Conversation map[string]any `json:"conversation"`
		}
		mustUnmarshal(t, wire.InboxUpdateFrame(e), &update)
		var page struct {
			Conversations []map[string]any `json:"conversations"`
		}
		mustUnmarshal(t, wire.InboxFrame(wire.InboxPage{Entries: []wire.InboxEntry{e}}), &page)
		if !reflect.DeepEqual(update.Conversation, page.Conversations[0]) {
			t.Errorf("encoders disagree:\n update %v\n   page %v", update.Conversation, page.Conversations[0])
		}
		if update.Conversation["status"] != e.Status {
			t.Errorf("status %v", update.Conversation["status"])
		}
		_, hasUnread := update.Conversation["unread"]
		if hasUnread != e.HasReadState {
			t.Errorf("unread shown %v, HasReadState %v", hasUnread, e.HasReadState)
		}
	}
	var page map[string]any
	mustUnmarshal(t, wire.InboxFrame(wire.InboxPage{View: &wire.View{Status: "open", Assignee: "me"},
		Counts: map[string]wire.ViewCounts{"open": {All: 3, Mine: 1, Unassigned: 2}}}), &page)
	b, _ := json.Marshal(page["counts"])
	if string(b) != `{"open":{"all":3,"mine":1,"unassigned":2}}` || page["view"].(map[string]any)["assignee"] != "me" {
		t.Errorf("inbox view/counts %v", page)
	}
}
