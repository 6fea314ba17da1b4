//go:build !race

package main

// Anonymous visitors through the widget (docs/API.md, "Anonymous visitors";
// docs/BROWSER.md). Not under -race, as TestBrowserWidgetOnAnotherSite (the
// Makefile runs them in its pass without it): chromedp's attachment to a
// cross-site frame races.

import (
	"strings"
	"testing"
)

// TestBrowserAnonymousWidget: the widget on another site, without a token,
// in a browser that blocks third-party cookies and storage. The visitor gets
// an identity from chatd, chats, reloads the page and finds the same
// conversation; then the host site signs them in (data-token): their
// anonymous conversation is merged into theirs and the stored identity
// forgotten. In Chromium and in Firefox, against PostgreSQL.
func TestBrowserAnonymousWidget(t *testing.T) {
	eachBrowser(t, testAnonymousWidget)
}

func testAnonymousWidget(t *testing.T, br browserKind) {
	chatAddr, token := "", ""
	hostOrigin := hostSite(t, &chatAddr, &token)
	s := startServer(t, "--database-url", newDatabase(t), "--allowed-origins", hostOrigin, "--anonymous-visitors")
	chatAddr = s.Addr
	staff := dial(t, s, "staff-1", "Ann", true, true)
	key := "grainchat.anonymous.http://" + s.Addr

	b := br.startBlocking(t)
	b.expectErrors("favicon.ico") // Firefox: the host page's CSP refuses its favicon
	hostPage := b.newPage("host page")
	hostPage.viewport(1280, 800, false)
	openWidget := func() *page {
		t.Helper()
		hostPage.waitJS("the chat button", `document.querySelector('[data-grainchat]')?.shadowRoot?.querySelector('button') != null`)
		hostPage.run("open the chat", `GrainChat.open()`)
		f := hostPage.frame("http://" + s.Addr + "/embed/")
		f.waitOnline()
		return f
	}

	hostPage.navigate(hostOrigin + "/")
	frame := openWidget()
	// The frame has no access to its own (unpartitioned) cookies and
	// storage. (Today's Chromium and Firefox deny it by default too; the
	// profile's setting keeps the test true if a default changes.)
	frame.run("ask for storage access", `document.hasStorageAccess().then((v) => { window.probeAccess = String(v); }, (e) => { window.probeAccess = 'error ' + e; })`)
	frame.waitJS("the storage access answer", `window.probeAccess !== undefined`)
	if access := frame.evalString(`window.probeAccess`); access != "false" {
		t.Fatalf("the widget's frame has storage access (%s): third-party cookies are not blocked", access)
	}
	who := frame.evalString(`document.getElementById('whoami').textContent`)
	if !strings.HasPrefix(who, "Signed in as Visitor ") {
		t.Fatalf("the anonymous widget says %q", who)
	}
	frame.typeAndSend("hello from nobody")
	frame.waitMessageText("hello from nobody")
	m := waitMessage(t, staff, "hello from nobody")
	conv := m.Int("conversation_id")
	if !strings.HasPrefix(m.String("sender_name"), "Visitor ") {
		t.Errorf("staff received %s", m.Raw)
	}
	post(t, staff, conv, "Hi! Who are you?", "r1")
	frame.waitMessageText("Hi! Who are you?")
	if stored := hostPage.evalString(`localStorage.getItem(` + jsString(key) + `) || ''`); stored == "" {
		t.Fatal("the host page does not keep the anonymous identity")
	}

	// A reload: the same identity and conversation.
	hostPage.reload()
	frame = openWidget()
	if got := frame.evalString(`document.getElementById('whoami').textContent`); got != who {
		t.Errorf("after a reload the widget says %q, want %q", got, who)
	}
	frame.waitMessageText("hello from nobody")
	frame.waitMessageText("Hi! Who are you?")
	frame.typeAndSend("still me")
	if m := waitMessage(t, staff, "still me"); m.Int("conversation_id") != conv {
		t.Errorf("after a reload the visitor wrote in conversation %d, want %d", m.Int("conversation_id"), conv)
	}
	// Stored, and the frame knows it (its ack can come just after the staff
	// socket's copy; until then the page asks before it is left).
	frame.waitMessageText("still me")

	// The host site signs the visitor in: the conversation is merged.
	token = mint(t, "carl", "Carl", false)
	hostPage.reload()
	frame = openWidget()
	if got := frame.evalString(`document.getElementById('whoami').textContent`); got != "Signed in as Carl" {
		t.Errorf("signed in, the widget says %q", got)
	}
	frame.waitMessageText("hello from nobody")
	frame.waitMessageText("still me")
	hostPage.waitJS("the anonymous identity forgotten", `localStorage.getItem(`+jsString(key)+`) === null`)
	var merged int
	for _, f := range staff.Frames() {
		if isMessage(f) && f.String("message") == "still me" && f.String("sender_name") == "Carl" && f.Int("conversation_id") != conv {
			merged++
		}
	}
	if merged != 1 {
		t.Errorf("staff saw %d merged copies of the visitor's message under Carl's name, want 1", merged)
	}
}
