package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// roundTripTexts are sent as they are; the server must deliver and store
// them with surrounding white space removed and nothing else changed.
var roundTripTexts = []string{
	`'); DROP TABLE messages;--`,
	`Robert'); DELETE FROM users WHERE ('1'='1`,
	`<img src=x onerror=alert(1)>`,
	`<script>alert("x")</script> & &amp; &lt;`,
	`"quoted" \backslash\ /slash/ {"json":[1,2]}`,
	"👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👩🏽‍💻 coder",
	"\u202Eevil.exe\u202C and \u200Fرسالة\u200E mixed",
	"\u202Estarts with RLO",
	"𝄞 𠜎 🀄 four-byte runes 😀",
	"\u200Bzero width\u200B",
	"line\u2028separators\u2029inside",
	"  leading and trailing spaces  ",
	"\n\t\r surrounded by white space \t\n",
	"inner  double  spaces\nnew line\r\n\ttab and\n\n\nblank lines",
	"é (precomposed) vs e\u0301 (combining)",
	"%s %d %v {{.}} ${x} $(rm -rf /)",
	// PostgreSQL's own syntax: dollar quoting, E'' escapes, COPY's NULL,
	// LIKE wildcards, casts, comments.
	`$$; DROP TABLE users; $$ $tag$x$tag$ E'\x27' \N \\N 100% _a_ ::text /* c */ -- c`,
	// Escapes as text: the characters backslash, u, 0, … not what they name.
	`\u0000 \x00 \0 %00 &#0; \n \t`,
	"control\u0001chars\u0007bell\u001b[31mANSI red\u001b[0m\u007fdel\u001ffs",
	"\ufeffstarts with a byte order mark",
	"noncharacters \ufffe \uffff \U0010FFFF and the replacement char \ufffd",
	"Z\u0351\u0352\u0353a\u0354\u0355l\u0356\u0357g\u0358\u0359o\u035a", // stacked combining marks
	"\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u05e2\u05d1\u05e8\u05d9\u05ea \u2067isolate\u2069 \u2066ltr\u2069 \u202bembed\u202c",
	"<!--<script>--></script><svg/onload=alert(1)> javascript:alert(1) \"'><iframe>",
	strings.Repeat("😀", 4000), // the longest message (4000 characters, 16000 bytes)
}

// Message text makes the round trip byte for byte (apart from the documented
// trim) in both dialects: in live frames to every recipient and in history.
func TestTextRoundTrip(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	v1Visitor := dial(t, s, "user-v1", "Vera", false, true)
	v1Admin := dial(t, s, "staff-v1", "Ann", true, true)
	seedVisitor := dial(t, s, "user-seed", "Sam", false, false)
	seedAdmin := dial(t, s, "staff-seed", "Sid", true, false)
	v1Conv := convOf(t, v1Visitor)

	want := make([]string, len(roundTripTexts))
	for i, text := range roundTripTexts {
		want[i] = strings.Trim(text, " \t\r\n")
		if want[i] == "" || want[i] == text && strings.TrimSpace(text) != text {
			t.Fatalf("bad test text %q", text)
		}
	}
	want = append(want, "marker")

	t.Run("v1", func(t *testing.T) {
		for i, text := range roundTripTexts {
			ack := post(t, v1Visitor, 0, text, fmt.Sprintf("t%d", i))
			if ack.Int("seq") != int64(i+1) {
				t.Fatalf("ack %s, want seq %d", ack.Raw, i+1)
			}
		}
		post(t, v1Visitor, 0, "marker", "marker")
		for name, c := range map[string]*wsclient.Client{"v1 visitor": v1Visitor, "v1 admin": v1Admin, "seed admin": seedAdmin} {
			waitMsg(t, c, v1Conv, "marker")
			compareTexts(t, name, textsOf(messagesIn(c, 0, v1Conv)), want)
		}
		h := history(t, v1Visitor, map[string]any{"limit": 100})
		compareTexts(t, "history", textsOf(historyMessages(t, h)), want)
		h = history(t, v1Admin, map[string]any{"conversation_id": v1Conv, "limit": 100})
		compareTexts(t, "admin history", textsOf(historyMessages(t, h)), want)
	})

	t.Run("seed", func(t *testing.T) {
		// Seed clients get no ack: send one at a time, waiting for the echo,
		// so that the order is the sending order.
		var conv int64
		for _, text := range append(append([]string(nil), roundTripTexts...), "marker") {
			send(t, seedVisitor, map[string]any{"message": text})
			exp := strings.Trim(text, " \t\r\n")
			f := waitMessage(t, seedVisitor, exp)
			conv = f.Int("conversation_id")
		}
		for name, c := range map[string]*wsclient.Client{"seed visitor": seedVisitor, "seed admin": seedAdmin, "v1 admin": v1Admin} {
			waitMsg(t, c, conv, "marker")
			got := messagesIn(c, 0, conv)
			compareTexts(t, name, textsOf(got), want)
			if strings.HasPrefix(name, "seed") {
				for _, f := range got {
					checkSeedFrame(t, f)
				}
			}
		}
		h := history(t, v1Admin, map[string]any{"conversation_id": conv, "limit": 100})
		compareTexts(t, "admin history", textsOf(historyMessages(t, h)), want)
	})
}

func compareTexts(t *testing.T, who string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d messages, want %d: %q", who, len(got), len(want), got)
		return
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: message %d is %q (% x), want %q (% x)", who, i+1, got[i], got[i], want[i], want[i])
		}
	}
}
