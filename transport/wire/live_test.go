package wire_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/wire"
)

func TestDecodeTyping(t *testing.T) {
	d := wire.Decoder{MaxMessageChars: testMaxChars}
	for frame, want := range map[string]wire.Request{
		`{"type":"typing"}`:                       {Type: "typing"},
		`{"type":"typing","conversation_id":7}`:   {Type: "typing", ConversationID: 7},
		`{"type":"typing","conversation_id":"7"}`: {Type: "typing", ConversationID: 7},
	} {
		got, err := d.Decode([]byte(frame))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Decode(%s) = %+v, %v; want %+v", frame, got, err, want)
		}
	}
	for frame, want := range map[string]bool{`{"type":"away","away":true}`: true, `{"type":"away","away":false}`: false} {
		if got, err := d.Decode([]byte(frame)); err != nil || got.Type != "away" || got.Away != want {
			t.Errorf("Decode(%s) = %+v, %v", frame, got, err)
		}
	}
	for _, frame := range []string{`{"type":"away"}`, `{"type":"away","away":"yes"}`} {
		if _, err := d.Decode([]byte(frame)); err == nil || err.(*wire.Error).Code != wire.CodeInvalidRequest {
			t.Errorf("Decode(%s): %v, want invalid_request", frame, err)
		}
	}
	if _, err := d.Decode([]byte(`{"type":"typing","conversation_id":-1}`)); err == nil || err.(*wire.Error).Code != wire.CodeInvalidRequest {
		t.Errorf("a negative conversation_id: %v", err)
	}
}

func TestLiveFrames(t *testing.T) {
	seen := time.Date(2026, 12, 5, 10, 0, 0, 123456789, time.UTC)
	for _, c := range []struct {
		frame []byte
		want  string
	}{
		{wire.TypingFrame(3, wire.User{ID: 5, Name: "Ann <b>", IsAdmin: true}),
			`{"type":"typing","conversation_id":3,"user":{"id":5,"name":"Ann <b>","is_admin":true}}`},
		{wire.TypingFrame(3, wire.User{Name: wire.SupportName, IsAdmin: true}),
			`{"type":"typing","conversation_id":3,"user":{"id":0,"name":"Support","is_admin":true}}`},
		{wire.ViewersFrame(3, []wire.Viewer{{ID: 5, Name: "Ann"}, {ID: 6, Name: "Bob"}}),
			`{"type":"viewers","conversation_id":3,"staff":[{"id":5,"name":"Ann"},{"id":6,"name":"Bob"}]}`},
		{wire.ViewersFrame(3, nil), `{"type":"viewers","conversation_id":3,"staff":[]}`},
		{wire.ReceiptFrame(3, 7, wire.ReadByStaff), `{"type":"read","conversation_id":3,"seq":7,"by":"staff"}`},
		{wire.PresenceFrame(3, wire.VisitorPresence{Online: true, LastSeen: seen}), `{"type":"presence","conversation_id":3,"online":true}`},
		{wire.PresenceFrame(3, wire.VisitorPresence{LastSeen: seen}),
			`{"type":"presence","conversation_id":3,"online":false,"last_seen_at":"2026-12-05T10:00:00.123456Z"}`},
		{wire.PresenceFrame(3, wire.VisitorPresence{}), `{"type":"presence","conversation_id":3,"online":false}`},
		{wire.AvailabilityFrame(true, "away"), `{"type":"availability","staff_online":true}`},
		{wire.AvailabilityFrame(false, "back soon"), `{"type":"availability","staff_online":false,"message":"back soon"}`},
		{wire.AwayFrame(true), `{"type":"away","away":true}`},
	} {
		var got, want any
		if err := json.Unmarshal(c.frame, &got); err != nil {
			t.Fatalf("%s: %v", c.frame, err)
		}
		_ = json.Unmarshal([]byte(c.want), &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("frame %s, want %s", c.frame, c.want)
		}
	}
}
