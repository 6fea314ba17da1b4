package wire_test

import (
	"encoding/json"
	"reflect"
	"testing"

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
	if _, err := d.Decode([]byte(`{"type":"typing","conversation_id":-1}`)); err == nil || err.(*wire.Error).Code != wire.CodeInvalidRequest {
		t.Errorf("a negative conversation_id: %v", err)
	}
}

func TestLiveFrames(t *testing.T) {
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
