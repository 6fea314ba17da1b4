package main

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// A visitor and a staff member each write faster than the server's rate
// allows (1 message per second, bursts of 2): whatever the server does about
// it (refuses the extra ones as rate_limited, or reads them more slowly), the
// pages keep their outgoing messages in a queue, in the order written, send
// them again by themselves, and in the end every message is stored once,
// shown in order, never marked failed; the other side receives them in the
// order written. A page warns before a reload or close would lose text (a
// draft in the composer, or a message not stored yet), and only then. In
// Chromium and in Firefox.
func TestBrowserOutgoingQueueInOrder(t *testing.T) {
	eachBrowser(t, func(t *testing.T, br browserKind) {
		s := startServer(t, "--message-rate", "1", "--message-burst", "2", "--staff-message-rate", "1", "--staff-message-burst", "2")
		staff := dial(t, s, "staff-2", "Bob", true, true)
		b := br.start(t)
		visitor := b.newPage("visitor")
		visitor.setToken(s.Addr, mint(t, "user-1", "Alice", false))
		visitor.navigate("http://" + s.Addr + "/")
		visitor.waitOnline()

		// beforeunload asks (the event is cancelled) only while something
		// would be lost.
		leaving := `!window.dispatchEvent(new Event('beforeunload', {cancelable: true}))`
		if visitor.evalString(`String(`+leaving+`)`) != "false" {
			t.Errorf("an empty page asks before unloading")
		}
		visitor.click("focus the composer", "#text")
		visitor.must("type a draft", visitor.timed(func(ctx context.Context) error { return visitor.d.typeKeys(ctx, "a draft") }))
		if visitor.evalString(`String(`+leaving+`)`) != "true" {
			t.Errorf("a draft in the composer does not ask before unloading")
		}
		visitor.run("clear the draft", `document.getElementById('text').value = ''; document.getElementById('text').dispatchEvent(new Event('input'))`)

		var want []string
		for i := 1; i <= 6; i++ {
			text := fmt.Sprintf("visitor %d", i)
			want = append(want, text)
			visitor.typeAndSend(text)
		}
		// Right after typing, most of them wait in the queue: the page
		// asks before unloading. (They take seconds at 1 per second.)
		if visitor.evalString(`String(document.querySelectorAll('#messages .msg.pending').length > 0 && `+leaving+`)`) != "true" {
			t.Logf("the queue had drained before it could be checked") // possible on a fast machine; not a failure
		}
		// The queue is shown in the order written, below what is stored.
		visitor.waitJS("the queue in order", fmt.Sprintf(`(() => {
			const texts = [...document.querySelectorAll('#messages .msg .text')].map(e => e.textContent);
			return JSON.stringify(texts) === JSON.stringify(%s);
		})()`, jsArray(want)))
		visitor.waitJS("every message stored", `document.querySelectorAll('#messages .msg[data-seq]').length === 6 &&
			document.querySelectorAll('#messages .msg.pending, #messages .msg.failed').length === 0`)
		checkThread(t, visitor, want)
		conv := waitMessage(t, staff, "visitor 6").Int("conversation_id")
		if got := textsOf(messagesIn(staff, 0, conv)); !reflect.DeepEqual(got, want) {
			t.Errorf("staff received %q, want %q", got, want)
		}
		if visitor.evalString(`String(`+leaving+`)`) != "false" {
			t.Errorf("the page asks before unloading with everything stored")
		}

		// Staff reply in a burst of their own.
		admin := b.newPage("admin")
		admin.setToken(s.Addr, mint(t, "staff-1", "Ann", true))
		admin.navigate("http://" + s.Addr + "/admin/")
		admin.waitOnline()
		admin.waitInbox("Alice [6] visitor 6")
		admin.openConversation(conv)
		admin.waitMessageText("visitor 6")
		for i := 1; i <= 5; i++ {
			text := fmt.Sprintf("staff %d", i)
			want = append(want, text)
			admin.typeAndSend(text)
		}
		for _, p := range []*page{admin, visitor} {
			p.waitJS("every reply stored", `document.querySelectorAll('#messages .msg[data-seq]').length === 11 &&
				document.querySelectorAll('#messages .msg.pending, #messages .msg.failed').length === 0`)
			checkThread(t, p, want)
		}
		if got := textsOf(messagesIn(staff, 0, conv)); !reflect.DeepEqual(got, want) {
			t.Errorf("staff received %q, want %q", got, want)
		}
	})
}

// On the staff page a colleague's reply, your own and yours not stored yet
// look clearly different (three backgrounds; the unsent one has a dashed
// edge and full opacity), the colleague's is labelled with their name; and
// both pages have a Sign out button in development mode that signs out. In
// Chromium and in Firefox.
func TestBrowserStaffBubblesAndSignOut(t *testing.T) {
	eachBrowser(t, func(t *testing.T, br browserKind) {
		s, secret := devServer(t)
		carla := dialAs(t, s, mintWith(t, secret, "dev-carla", "Carla", false), false)
		conv := convOf(t, carla)
		post(t, carla, 0, "My parcel is late", "c1")
		bob := dialAs(t, s, mintWith(t, secret, "dev-staff-bob", "Bob", true), true)
		post(t, bob, conv, "Bob here: let me look.", "b1")

		b := br.start(t)
		// The visitor signs out.
		visitor := b.newPage("visitor")
		visitor.setToken(s.Addr, mintWith(t, secret, "dev-carla", "Carla", false))
		visitor.navigate("http://" + s.Addr + "/")
		visitor.waitOnline()
		visitor.waitJS("the Sign out button", `!document.getElementById('signout').hidden &&
			document.querySelector('#signout button').textContent === 'Sign out'`)
		visitor.click("sign out", "#signout button")
		visitor.waitJS("the login page", `location.pathname === '/login' && document.readyState === 'complete'`)
		var session struct {
			SignedIn bool `json:"signed_in"`
		}
		b.expectErrors("401") // the answer of /session below, logged by Chromium
		visitor.evalJSON(`fetch('/session', {cache: 'no-store'}).then(r => r.json())`, &session)
		if session.SignedIn {
			t.Errorf("still signed in after Sign out")
		}

		admin := b.newPage("admin")
		admin.setToken(s.Addr, mintWith(t, secret, "dev-staff-ann", "Ann", true))
		admin.navigate("http://" + s.Addr + "/admin/")
		admin.waitOnline()
		admin.waitJS("the Sign out button", `!document.getElementById('signout').hidden`)
		admin.waitInbox("Carla [2] Bob: Bob here: let me look.")
		admin.openConversation(conv)
		admin.typeAndSend("Ann here too.")
		admin.waitMessageText("Ann here too.")
		// A reply that cannot be stored yet: the server is gone (the pages'
		// failed reconnects are logged as errors by the browsers).
		b.expectErrors("/ws/chat/", "ERR_CONNECTION_REFUSED", "/session")
		s.Stop()
		admin.waitJS("the page to notice", `document.getElementById('state').dataset.state !== 'online'`)
		admin.typeAndSend("Not sent yet")
		admin.waitJS("the unsent reply", `document.querySelectorAll('#messages .msg.pending').length === 1`)

		var look struct {
			Own, Colleague, Pending, Visitor string
			PendingBorder, OwnBorder         string
			PendingOpacity                   string
			ColleagueWho, OwnWho             string
		}
		admin.evalJSON(`(() => {
			const cs = (sel) => getComputedStyle(document.querySelector(sel));
			return {
				Own: cs('#messages .msg.mine[data-seq] .bubble').backgroundColor,
				Colleague: cs('#messages .msg.ours:not(.mine)[data-seq] .bubble').backgroundColor,
				Pending: cs('#messages .msg.pending .bubble').backgroundColor,
				Visitor: cs('#messages .msg.theirs .bubble').backgroundColor,
				PendingBorder: cs('#messages .msg.pending .bubble').borderTopStyle,
				OwnBorder: cs('#messages .msg.mine[data-seq] .bubble').borderTopStyle,
				PendingOpacity: cs('#messages .msg.pending .bubble').opacity,
				ColleagueWho: document.querySelector('#messages .msg.ours:not(.mine)[data-seq] .who').textContent,
				OwnWho: document.querySelector('#messages .msg.mine[data-seq] .who').textContent,
			};
		})()`, &look)
		t.Logf("bubbles: %+v", look)
		colors := map[string]string{"own": look.Own, "colleague": look.Colleague, "pending": look.Pending}
		for a, ca := range colors {
			for b, cb := range colors {
				if a < b && ca == cb {
					t.Errorf("%s and %s bubbles share the background %s", a, b, ca)
				}
			}
		}
		if look.PendingBorder != "dashed" || look.OwnBorder == "dashed" {
			t.Errorf("the unsent reply's edge is %q (own: %q), want dashed for it only", look.PendingBorder, look.OwnBorder)
		}
		if look.PendingOpacity != "1" {
			t.Errorf("the unsent reply is drawn at opacity %s: faded bubbles are what looked like a colleague's", look.PendingOpacity)
		}
		if strings.Contains(look.Colleague, "91, 119, 201") {
			t.Errorf("a colleague's bubble is still #5b77c9")
		}
		if look.ColleagueWho != "Bob" || look.OwnWho != "You" {
			t.Errorf("labels: colleague %q, own %q; want Bob and You", look.ColleagueWho, look.OwnWho)
		}
		admin.screenshot(fmt.Sprintf("admin-bubbles-%s.png", br.name))
	})
}

// jsArray is a JSON array of strings, for a page expression.
func jsArray(s []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(jsString(x))
	}
	b.WriteByte(']')
	return b.String()
}
