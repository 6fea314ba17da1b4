package wire_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/grainchat/grainchat/transport/wire"
)

func TestDecodeCanned_accepted(t *testing.T) {
	d := wire.Decoder{MaxMessageChars: testMaxChars}
	ten := strings.Repeat("é", testMaxChars)
	name32 := strings.Repeat("N", wire.MaxCannedNameBytes)
	cases := []struct {
		frame string
		want  wire.Request
	}{
		{`{"type":"canned"}`, wire.Request{Type: "canned"}},
		{`{"type":"staff"}`, wire.Request{Type: "staff"}},
		{`{"type":"canned_save","name":"greeting","body":"Hello!"}`,
			wire.Request{Type: "canned_save", Name: "greeting", Body: "Hello!"}},
		{`{"type":"canned_save","id":null,"name":" Re-Fund_2 ","body":"  two\nlines\t "}`,
			wire.Request{Type: "canned_save", Name: "re-fund_2", Body: "two\nlines"}},
		{`{"type":"canned_save","id":12,"name":"` + name32 + `","body":"` + ten + `"}`,
			wire.Request{Type: "canned_save", ID: 12, Name: strings.ToLower(name32), Body: ten}},
		{`{"type":"canned_save","id":"12","name":"a","body":"\u00e9"}`,
			wire.Request{Type: "canned_save", ID: 12, Name: "a", Body: "é"}},
		{`{"type":"canned_delete","id":12}`, wire.Request{Type: "canned_delete", ID: 12}},
		{`{"type":"canned_delete","id":"12"}`, wire.Request{Type: "canned_delete", ID: 12}},
		// Fields of other frames are ignored, as everywhere.
		{`{"type":"canned","name":"x","id":3}`, wire.Request{Type: "canned"}},
		{`{"type":"staff","body":"x"}`, wire.Request{Type: "staff"}},
		{`{"message":"hi","id":3,"name":"n","body":"b"}`, wire.Request{Type: "message", Message: "hi"}},
	}
	for _, c := range cases {
		got, err := d.Decode([]byte(c.frame))
		if err != nil {
			t.Errorf("%.80s: %v", c.frame, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%.80s:\n got %+v\nwant %+v", c.frame, got, c.want)
		}
		checkRequest(t, d, []byte(c.frame), got)
	}
}

func TestDecodeCanned_refused(t *testing.T) {
	d := wire.Decoder{MaxMessageChars: testMaxChars}
	save := func(name, body string) string {
		return `{"type":"canned_save","name":` + quote(name) + `,"body":` + quote(body) + `}`
	}
	cases := []struct{ frame, want string }{
		{`{"type":"canned_save","body":"x"}`, "name is 1 to 32"},
		{save("", "x"), "name is 1 to 32"},
		{save("   ", "x"), "name is 1 to 32"},
		{save(strings.Repeat("a", wire.MaxCannedNameBytes+1), "x"), "name is 1 to 32"},
		{save("two words", "x"), "only letters"},
		{save("café", "x"), "only letters"},
		{save("\u212a", "x"), "only letters"}, // the Kelvin sign: lower case "k", but not ASCII
		{save("a.b", "x"), "only letters"},
		{`{"type":"canned_save","name":7,"body":"x"}`, `"name" must be a string`},
		{`{"type":"canned_save","name":"a"}`, "text is empty"},
		{save("a", " \n\t"), "text is empty"},
		{`{"type":"canned_save","name":"a","body":"a\u0000b"}`, "NUL"},
		{save("a", strings.Repeat("é", testMaxChars+1)), "longer than 10 characters"},
		{`{"type":"canned_save","name":"a","body":["x"]}`, `"body" must be a string`},
		{`{"type":"canned_save","id":-1,"name":"a","body":"x"}`, `"id" must be a positive integer`},
		{`{"type":"canned_save","id":1.5,"name":"a","body":"x"}`, `"id" must be a positive integer`},
		{`{"type":"canned_delete"}`, "needs the id"},
		{`{"type":"canned_delete","id":0}`, "needs the id"},
		{`{"type":"canned_delete","id":"x"}`, `"id" must be a positive integer`},
	}
	for _, c := range cases {
		_, err := d.Decode([]byte(c.frame))
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != wire.CodeInvalidRequest || !strings.Contains(we.Message, c.want) {
			t.Errorf("%.80s: got %v, want invalid_request with %q", c.frame, err, c.want)
		}
	}
}

// TestDecodeCanned_bodyBound: a canned reply's text is bounded by the
// server's longest message, and never by more than MaxCannedBodyRunes (the
// store's bound).
func TestDecodeCanned_bodyBound(t *testing.T) {
	for _, c := range []struct{ maxChars, limit int }{
		{0, wire.MaxCannedBodyRunes},
		{10, 10},
		{wire.MaxCannedBodyRunes, wire.MaxCannedBodyRunes},
		{2 * wire.MaxCannedBodyRunes, wire.MaxCannedBodyRunes},
	} {
		d := wire.Decoder{MaxMessageChars: c.maxChars}
		frame := func(n int) []byte {
			return []byte(`{"type":"canned_save","name":"a","body":"` + strings.Repeat("😀", n) + `"}`)
		}
		if _, err := d.Decode(frame(c.limit)); err != nil {
			t.Errorf("max %d: a text of %d runes: %v", c.maxChars, c.limit, err)
		}
		if _, err := d.Decode(frame(c.limit + 1)); err == nil {
			t.Errorf("max %d: a text of %d runes accepted", c.maxChars, c.limit+1)
		}
	}
}

func TestCannedFrames(t *testing.T) {
	ann := wire.DeskUser{ID: 7, ExternalID: "ann", Name: "Ann"}
	r := wire.CannedReply{ID: 3, Name: "greeting", Body: "Hello \"you\"", UpdatedBy: ann, UpdatedAt: sampleTime}
	var got map[string]any
	mustUnmarshal(t, wire.CannedFrame([]wire.CannedReply{r}, &r), &got)
	reply := map[string]any{"id": 3.0, "name": "greeting", "body": "Hello \"you\"", "updated_at": "2026-11-26T09:59:17.933187Z",
		"updated_by": map[string]any{"id": 7.0, "external_id": "ann", "name": "Ann"}}
	want := map[string]any{"type": "canned", "replies": []any{reply}, "saved": reply}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("canned frame\n got %v\nwant %v", got, want)
	}
	if f := string(wire.CannedFrame(nil, nil)); f != `{"type":"canned","replies":[]}` {
		t.Errorf("empty canned frame %s", f)
	}
	if f := string(wire.StaffFrame([]wire.DeskUser{ann})); f != `{"type":"staff","staff":[{"id":7,"external_id":"ann","name":"Ann"}]}` {
		t.Errorf("staff frame %s", f)
	}
	if f := string(wire.StaffFrame(nil)); f != `{"type":"staff","staff":[]}` {
		t.Errorf("empty staff frame %s", f)
	}
	for _, code := range []string{wire.CodeCannedNotFound, wire.CodeNameTaken} {
		if f := string(wire.ErrorFrame(&wire.Error{Code: code, Message: "m"})); f != `{"type":"error","code":"`+code+`","message":"m"}` {
			t.Errorf("error frame %s", f)
		}
	}
}
