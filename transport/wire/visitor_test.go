package wire_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/wire"
)

func TestDecodePage(t *testing.T) {
	d := wire.Decoder{MaxMessageChars: testMaxChars}
	longURL := "https://e.example/" + strings.Repeat("a", wire.MaxPageURLBytes-len("https://e.example/"))
	for _, c := range []struct{ frame, url, title string }{
		{`{"type":"page","url":"https://shop.example.com/cart?x=1#top","title":"Cart"}`, "https://shop.example.com/cart?x=1#top", "Cart"},
		{`{"type":"page","url":"http://127.0.0.1:8080/"}`, "http://127.0.0.1:8080/", ""},
		{`{"type":"page","url":"HTTPS://E.example/","title":null}`, "HTTPS://E.example/", ""},
		{`{"type":"page","url":"https://ann:secret@e.example/p","title":"  a\tb\n\u0007c  "}`, "https://e.example/p", "a b c"},
		{`{"type":"page","url":"https://e.example/","title":"<img src=x onerror=alert(1)>"}`, "https://e.example/", "<img src=x onerror=alert(1)>"},
		{`{"type":"page","url":"` + longURL + `","title":"` + strings.Repeat("é", wire.MaxPageTitleBytes/2) + `"}`, longURL, strings.Repeat("é", wire.MaxPageTitleBytes/2)},
	} {
		got, err := d.Decode([]byte(c.frame))
		if err != nil || got.Type != wire.TypePage || got.URL != c.url || got.Title != c.title {
			t.Errorf("Decode(%.80s) = %+v, %v; want url %q title %q", c.frame, got, err, c.url, c.title)
		}
	}
	for name, frame := range map[string]string{
		"no url":           `{"type":"page","title":"x"}`,
		"null url":         `{"type":"page","url":null}`,
		"empty url":        `{"type":"page","url":""}`,
		"url not a string": `{"type":"page","url":7}`,
		"relative url":     `{"type":"page","url":"/cart"}`,
		"javascript url":   `{"type":"page","url":"javascript:alert(1)"}`,
		"data url":         `{"type":"page","url":"data:text/html,<b>x</b>"}`,
		"ftp url":          `{"type":"page","url":"ftp://e.example/"}`,
		"no host":          `{"type":"page","url":"https:///path"}`,
		"space in url":     `{"type":"page","url":"https://e.example/a b"}`,
		"newline in url":   `{"type":"page","url":"https://e.example/\n"}`,
		"url too long":     `{"type":"page","url":"` + longURL + `a"}`,
		"title too long":   `{"type":"page","url":"https://e.example/","title":"` + strings.Repeat("t", wire.MaxPageTitleBytes+1) + `"}`,
		"title a number":   `{"type":"page","url":"https://e.example/","title":1}`,
	} {
		_, err := d.Decode([]byte(frame))
		if err == nil || err.(*wire.Error).Code != wire.CodeInvalidRequest {
			t.Errorf("%s: Decode = %v, want invalid_request", name, err)
		}
	}
}

func TestUserAgent(t *testing.T) {
	for in, want := range map[string]string{
		"Mozilla/5.0 (X11) Firefox/140.0": "Mozilla/5.0 (X11) Firefox/140.0",
		" a\tb\x01c ":                     "a b c",
		"bad \xff byte":                   "bad \uFFFD byte",
		"":                                "",
	} {
		if got := wire.UserAgent(in); got != want {
			t.Errorf("UserAgent(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("a", wire.MaxUserAgentBytes-1) + "é"
	if got := wire.UserAgent(long); got != strings.Repeat("a", wire.MaxUserAgentBytes-1) {
		t.Errorf("UserAgent cut a character: %q", got[len(got)-3:])
	}
}

func TestVisitorFrame(t *testing.T) {
	at := time.Date(2026, 12, 5, 10, 0, 0, 123456789, time.UTC)
	v := wire.Visitor{DeskUser: wire.DeskUser{ID: 7, ExternalID: "u-1", Name: "Vera"}, Email: "v@example.com",
		Context: `{"plan":"<b>pro</b>"}`, Page: &wire.VisitorPage{URL: "https://e.example/", Title: "<i>T</i>", Browser: "UA", UpdatedAt: at}}
	var got map[string]any
	if err := json.Unmarshal(wire.VisitorFrame(42, v), &got); err != nil {
		t.Fatal(err)
	}
	u := got["user"].(map[string]any)
	page := u["page"].(map[string]any)
	if got["type"] != "visitor" || got["conversation_id"] != float64(42) || u["id"] != float64(7) || u["external_id"] != "u-1" ||
		u["name"] != "Vera" || u["email"] != "v@example.com" || u["context"].(map[string]any)["plan"] != "<b>pro</b>" ||
		page["url"] != "https://e.example/" || page["title"] != "<i>T</i>" || page["browser"] != "UA" ||
		page["updated_at"] != "2026-12-05T10:00:00.123456Z" {
		t.Errorf("VisitorFrame = %v", got)
	}
	var bare map[string]any
	if err := json.Unmarshal(wire.VisitorFrame(42, wire.Visitor{DeskUser: wire.DeskUser{ID: 7}}), &bare); err != nil {
		t.Fatal(err)
	}
	if u := bare["user"].(map[string]any); u["email"] != nil || u["context"] != nil || u["page"] != nil || len(u) != 6 {
		t.Errorf("a visitor without details: %v", bare)
	}
}
