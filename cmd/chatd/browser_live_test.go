package main

// Live signals through the pages (docs/PROTOCOL.md, "Live signals";
// transport/web/assets/static/live.js): who is typing, and who else has a
// conversation open.

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// typingShown is how long the pages show a typist after their last typing
// frame (live.js, TYPING_SHOW_MS).
const typingShown = 5 * time.Second

// typingSlack is what the upper bounds of the indicator's life allow on top
// of typingShown: the poll's period, a browser round trip, a loaded machine.
const typingSlack = 2500 * time.Millisecond

// A visitor (Carl) and two agents (Ann and Bob, who both have Carl's
// conversation open) type at each other through the pages. Ann's and Bob's
// pages say "Carl is typing…", Carl's says "Support is typing…" when Ann
// types (not which agent), Bob's "Ann and Carl are typing…" while both do;
// nobody sees their own typing. Each line goes within typingShown (plus
// slack) of its typist stopping, and not before typingShown after they began;
// it goes at once when the typist's message arrives. The pages send a typing
// frame at most once a second, and none for an empty composer. In Chromium
// and in Firefox.
func TestBrowserTyping(t *testing.T) {
	eachBrowser(t, testBrowserTyping)
}

func testBrowserTyping(t *testing.T, br browserKind) {
	s := startServer(t)
	b := br.start(t)
	carl := signedIn(t, b, s.Addr, "Carl", "user-carl", false)
	ann := signedIn(t, b, s.Addr, "Ann", "staff-ann", true)
	bob := signedIn(t, b, s.Addr, "Bob", "staff-bob", true)
	all := []*page{carl, ann, bob}

	carl.navigate("http://" + s.Addr + "/")
	carl.waitOnline()
	carl.typeAndSend("Hello")
	carl.waitMessageText("Hello")
	for _, p := range []*page{ann, bob} {
		p.navigate("http://" + s.Addr + "/admin/")
		p.waitOnline()
		p.waitInbox("Carl [1] Hello")
	}
	conv := ann.inbox()[0].Conv
	ann.openConversation(conv)
	bob.openConversation(conv)
	// Both are subscribed to the conversation once each sees the other.
	waitViewing(ann, "Bob is viewing")
	waitViewing(bob, "Ann is viewing")
	for _, p := range all {
		recordTypingFrames(p)
		checkTyping(t, p, "")
	}

	// Carl types: both agents see him, Carl sees nothing.
	carlBegan := time.Now()
	typeOnly(carl, "I have a question")
	carlStopped := time.Now()
	carl.waitJS("a typing frame sent", `window.typingSent.length > 0`)
	waitTyping(ann, "Carl is typing…")
	waitTyping(bob, "Carl is typing…")
	checkTyping(t, carl, "")
	ann.docScreenshot(br, "admin-typing-desktop.png")

	// Ann types too: Carl sees "Support", Bob sees both, Ann still Carl alone.
	annBegan := time.Now()
	typeOnly(ann, "Hi Carl")
	annStopped := time.Now()
	waitTyping(carl, "Support is typing…")
	waitTyping(bob, "Ann and Carl are typing…")
	checkTyping(t, ann, "Carl is typing…")
	carl.docScreenshot(br, "chat-typing-desktop.png")

	// They stop: each line goes about typingShown after its typist's last
	// typing frame (which came after they began and before they stopped).
	gone := waitTypingGone(ann, bob, carl)
	checkGone(t, ann, "Carl", gone[0], carlBegan, carlStopped)
	checkGone(t, bob, "Ann (the last typist)", gone[1], annBegan, annStopped)
	checkGone(t, carl, "Ann", gone[2], annBegan, annStopped)

	// Ann goes on with her reply and sends it: Carl's and Bob's lines go at
	// once (long before typingShown), when the message shows.
	typeMore(ann, ", let me check.")
	waitTyping(carl, "Support is typing…")
	waitTyping(bob, "Ann is typing…")
	pressEnter(ann)
	checkTypingWhenShown(t, "Hi Carl, let me check.", carl, bob)

	// So does Carl, and Ann's and Bob's lines go when his message shows.
	typeMore(carl, ", where is my parcel?")
	waitTyping(ann, "Carl is typing…")
	waitTyping(bob, "Carl is typing…")
	pressEnter(carl)
	checkTypingWhenShown(t, "I have a question, where is my parcel?", ann, bob)

	// And types on at once: his message started the page's and the
	// server's intervals over, so the agents see him again straight away
	// (not a second or two later, nor never if he stops within it).
	typeOnly(carl, "It was due Monday")
	waitTyping(ann, "Carl is typing…")
	waitTyping(bob, "Carl is typing…")
	pressEnter(carl)
	checkTypingWhenShown(t, "It was due Monday", ann, bob)

	// What the pages sent: typing frames at most once a second while one
	// message is written, each with text in the composer; the visitor's
	// name no conversation, the agent's the one on screen. Bob typed
	// nothing and sent none.
	for _, p := range all {
		sent := typingFramesSent(p)
		if p == bob {
			if len(sent) != 0 {
				t.Errorf("Bob typed nothing but sent typing frames %+v", sent)
			}
			continue
		}
		if len(sent) < 2 {
			t.Errorf("%s typed twice but sent %d typing frames", p.name, len(sent))
		}
		for i, f := range sent {
			want := map[string]any{"type": "typing"}
			if p == ann {
				want["conversation_id"] = float64(conv)
			}
			if fmt.Sprint(f.Frame) != fmt.Sprint(want) {
				t.Errorf("%s sent %v, want %v", p.name, f.Frame, want)
			}
			if f.Text == "" {
				t.Errorf("%s sent a typing frame with an empty composer", p.name)
			}
			if i > 0 && f.At-sent[i-1].At < 990 && f.Messages == sent[i-1].Messages {
				t.Errorf("%s sent typing frames %.0f ms apart, want at least a second", p.name, f.At-sent[i-1].At)
			}
		}
	}
	for _, p := range all {
		checkTyping(t, p, "")
	}
}

// Two agents, then three, open the same conversation: each page's header
// says who else has it open ("Bob is viewing", "Ann and Bob are viewing"),
// and nothing when nobody else does. When Bob switches to another
// conversation, Ann's header no longer names him and his shows that
// conversation's viewers; when he leaves the page, Ann's header no longer
// names him either, and when he comes back (the browser's Back) it does
// again. In Chromium and in Firefox.
func TestBrowserViewers(t *testing.T) {
	eachBrowser(t, testBrowserViewers)
}

func testBrowserViewers(t *testing.T, br browserKind) {
	s := startServer(t)
	carl := dial(t, s, "user-carl", "Carl", false, true)
	carlConv := convOf(t, carl)
	post(t, carl, 0, "Where is my parcel?", "c1")
	dora := dial(t, s, "user-dora", "Dora", false, true)
	doraConv := convOf(t, dora)
	post(t, dora, 0, "Do you ship to Norway?", "d1")

	b := br.start(t)
	ann := signedIn(t, b, s.Addr, "Ann", "staff-ann", true)
	bob := signedIn(t, b, s.Addr, "Bob", "staff-bob", true)
	cleo := signedIn(t, b, s.Addr, "Cleo", "staff-cleo", true)
	for _, p := range []*page{ann, bob, cleo} {
		p.navigate("http://" + s.Addr + "/admin/")
		p.waitOnline()
		p.waitInbox("Dora [1] Do you ship to Norway?", "Carl [1] Where is my parcel?")
	}

	// Ann alone: nothing.
	ann.openConversation(carlConv)
	ann.waitMessageText("Where is my parcel?")
	waitViewing(ann, "")
	// Bob joins: each names the other.
	bob.openConversation(carlConv)
	waitViewing(ann, "Bob is viewing")
	waitViewing(bob, "Ann is viewing")
	ann.docScreenshot(br, "admin-viewers-desktop.png")
	// Cleo joins: two others each.
	cleo.openConversation(carlConv)
	waitViewing(cleo, "Ann and Bob are viewing")
	waitViewing(ann, "Bob and Cleo are viewing")
	waitViewing(bob, "Ann and Cleo are viewing")
	// Cleo leaves for Dora's conversation, where nobody else is.
	cleo.openConversation(doraConv)
	waitViewing(ann, "Bob is viewing")
	waitViewing(bob, "Ann is viewing")
	cleo.waitMessageText("Do you ship to Norway?")
	waitViewing(cleo, "")

	// Bob switches to Dora's: Ann's header drops him, his names Cleo.
	bob.openConversation(doraConv)
	waitViewing(ann, "")
	waitViewing(bob, "Cleo is viewing")
	waitViewing(cleo, "Bob is viewing")
	// And back: Carl's conversation's list again.
	bob.openConversation(carlConv)
	waitViewing(bob, "Ann is viewing")
	waitViewing(ann, "Bob is viewing")
	waitViewing(cleo, "")

	// Bob leaves the inbox for another page: his page closes its socket
	// (Chromium would keep it open in the back/forward cache). Back again,
	// his page reconnects and opens the conversation again.
	bob.navigate("http://" + s.Addr + "/healthz")
	waitViewing(ann, "")
	bob.run("go back", `history.back()`)
	waitViewing(bob, "Ann is viewing")
	waitViewing(ann, "Bob is viewing")
}

// typeMore types text at the end of what the composer holds.
func typeMore(p *page, text string) {
	p.t.Helper()
	p.run("put the caret at the end of the composer", `(() => { const t = document.getElementById('text');
		t.focus(); t.setSelectionRange(t.value.length, t.value.length); })()`)
	p.must(fmt.Sprintf("type %q", text), p.timed(func(ctx context.Context) error { return p.d.typeKeys(ctx, text) }))
}

// typingText is the page's typing line, as text.
const typingText = `document.getElementById('typing').textContent`

// waitTyping waits until the page's typing line says exactly want.
func waitTyping(p *page, want string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("the typing line %q", want), fmt.Sprintf(`%s === %s`, typingText, jsString(want)))
}

// checkTyping fails the test unless the page's typing line says want.
func checkTyping(t *testing.T, p *page, want string) {
	t.Helper()
	if got := p.evalString(typingText); got != want {
		t.Errorf("%s: the typing line says %q, want %q", p.name, got, want)
	}
}

// waitTypingGone polls the pages together until each one's typing line is
// empty, and returns when each was first seen empty.
func waitTypingGone(pages ...*page) []time.Time {
	t := pages[0].t
	t.Helper()
	gone := make([]time.Time, len(pages))
	deadline := time.Now().Add(browserWait)
	for {
		left := 0
		for i, p := range pages {
			if !gone[i].IsZero() {
				continue
			}
			var text string
			err := p.timed(func(ctx context.Context) error { return p.d.eval(ctx, typingText, &text) })
			if err == nil && text == "" {
				gone[i] = time.Now()
				continue
			}
			left++
			if time.Now().After(deadline) {
				t.Fatalf("%s: the typing line %q still shows after %v (error: %v)%s", p.name, text, browserWait, err, p.debugState())
			}
		}
		if left == 0 {
			return gone
		}
		time.Sleep(50 * time.Millisecond) // the poll's period; the deadline above bounds the wait
	}
}

// checkGone checks that p's typing line, naming a typist who began at began
// and stopped at stopped, went at gone: not before typingShown after they
// began (their last typing frame came later), and within typingShown and
// slack after they stopped (their last typing frame came before).
func checkGone(t *testing.T, p *page, who string, gone, began, stopped time.Time) {
	t.Helper()
	if d := gone.Sub(began); d < typingShown-100*time.Millisecond {
		t.Errorf("%s: %s's typing went %v after they began, want at least %v", p.name, who, d, typingShown)
	}
	if d := gone.Sub(stopped); d > typingShown+typingSlack {
		t.Errorf("%s: %s's typing went %v after they stopped, want within %v (and %v of slack)", p.name, who, d, typingShown, typingSlack)
	}
	t.Logf("%s: %s's typing went %v after they began, %v after they stopped", p.name, who, gone.Sub(began).Round(time.Millisecond), gone.Sub(stopped).Round(time.Millisecond))
}

// checkTypingWhenShown polls each page until the message text shows, and
// checks that the typing line was empty in that same look: the typist's
// message ended it, not the 5 s.
func checkTypingWhenShown(t *testing.T, text string, pages ...*page) {
	t.Helper()
	for _, p := range pages {
		expr := fmt.Sprintf(`(() => {
			const shown = [...document.querySelectorAll('#messages .msg[data-seq] .text')].some(e => e.textContent === %s);
			return shown ? JSON.stringify(%s) : '';
		})()`, jsString(text), typingText)
		p.waitJS(fmt.Sprintf("message %q", text), expr)
		var typing string
		if err := json.Unmarshal([]byte(p.evalString(expr)), &typing); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		if typing != "" {
			t.Errorf("%s: %q shows, and the typing line still says %q", p.name, text, typing)
		}
	}
}

// recordTypingFrames makes the page note every typing frame it sends, with
// when (ms), the composer's text and how many messages the page had sent
// before (the socket's send goes through the
// prototype, so the open socket is covered too).
func recordTypingFrames(p *page) {
	p.t.Helper()
	p.run("record typing frames", `(() => {
		window.typingSent = [];
		window.messagesSent = 0;
		const send = WebSocket.prototype.send;
		WebSocket.prototype.send = function (data) {
			try {
				const f = JSON.parse(data);
				if (f && f.type === 'typing') window.typingSent.push({ at: performance.now(), frame: f, text: document.getElementById('text').value, messages: window.messagesSent });
				if (f && typeof f.message === 'string' && f.type !== 'note') window.messagesSent++;
			} catch {}
			return send.call(this, data);
		};
	})()`)
}

// sentTyping is a typing frame a page sent.
type sentTyping struct {
	At    float64        `json:"at"`
	Frame map[string]any `json:"frame"`
	Text  string         `json:"text"`
	// Messages is how many messages the page had sent before.
	Messages int `json:"messages"`
}

func typingFramesSent(p *page) []sentTyping {
	p.t.Helper()
	var out []sentTyping
	p.evalJSON(`window.typingSent`, &out)
	return out
}

// viewingText is the conversation header's viewers pill, as text.
const viewingText = `document.getElementById('conv-viewers').textContent`

// waitViewing waits until the header of the conversation on screen says
// exactly want, and takes no room when want is "" (nobody else).
func waitViewing(p *page, want string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("the header's viewers %q", want), fmt.Sprintf(`%s === %s &&
		(%s !== '' || document.getElementById('conv-viewers').getBoundingClientRect().width === 0)`, viewingText, jsString(want), jsString(want)))
}
