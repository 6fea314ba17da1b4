package main

import (
	"strings"
	"testing"

	"github.com/grainchat/grainchat/storage/pgtest"
)

// Errors are put into words on the page: a message over the limit is held
// back with the limit stated; a message the server could not store (the
// database is cut) says "temporarily unavailable", stays in its place and is
// sent again by the page itself (a "Retry now" button saves the wait) with
// the same client_msg_id until it is stored, exactly once, once the database
// is back. In Chromium and in Firefox.
func TestBrowserErrorsInWords(t *testing.T) {
	eachBrowser(t, testErrorsInWords)
}

func testErrorsInWords(t *testing.T, br browserKind) {
	proxy, dsn := pgtest.ProxyDSN(t, newDatabase(t))
	s := startServer(t, "--database-url", dsn, "--max-message-chars", "40", "--post-timeout", "2s")
	staff := dial(t, s, "staff-1", "Ann", true, true)

	b := br.start(t)
	p := b.newPage("visitor")
	p.setToken(s.Addr, mint(t, "user-1", "Alice", false))
	p.navigate("http://" + s.Addr + "/")
	p.waitOnline()
	p.typeAndSend("first")
	p.waitMessageText("first")

	long := strings.Repeat("x", 41)
	p.pasteAndSend(long)
	p.waitJS("the too-long notice", `document.getElementById('notice').textContent ===
		'Message too long: 41 characters, the limit is 40. Shorten it and send again.'`)
	if got := p.evalString(`document.getElementById('counter').textContent + ' ' + document.getElementById('counter').className`); got != "41 / 40 counter over" {
		t.Errorf("counter %q", got)
	}
	if got := p.evalString(`document.getElementById('text').value`); got != long {
		t.Errorf("the composer lost the refused text: %q", got)
	}
	p.run("clear the composer", `document.getElementById('text').value = ''; document.getElementById('text').dispatchEvent(new Event('input'))`)

	proxy.SetDown(true)
	p.typeAndSend("during the outage")
	p.waitJS("the unavailable error", `[...document.querySelectorAll('#messages .msg.pending.retrying .status.error')].some(e =>
		e.textContent === 'The chat is temporarily unavailable; this message was not confirmed. Sending it again in a moment.')`)
	p.waitJS("a Retry now button", `[...document.querySelectorAll('#messages .msg.pending button')].some(b => b.textContent === 'Retry now')`)
	if n := p.evalString(`String(document.querySelectorAll('#messages .msg.failed').length)`); n != "0" {
		t.Errorf("%s messages marked failed: an unavailable store is worth another try", n)
	}

	proxy.SetDown(false)
	pollStatus(t, "http://"+s.Addr+"/readyz", 200)
	// The page sends it again by itself (bounded by its back-off, under the
	// wait's deadline).
	p.waitJS("the resent message to be stored", `document.querySelectorAll('#messages .msg[data-seq]').length === 2 &&
		document.querySelectorAll('#messages .msg.pending, #messages .msg.failed').length === 0`)
	checkThread(t, p, []string{"first", "during the outage"})
	conv := waitMessage(t, staff, "first").Int("conversation_id")
	waitMsg(t, staff, conv, "during the outage")
	post(t, staff, conv, "marker", "m1")
	waitMsg(t, staff, conv, "marker") // delivered in seq order: what came before it is final
	p.waitMessageText("marker")
	if got := textsOf(messagesIn(staff, 0, conv)); strings.Join(got, "|") != "first|during the outage|marker" {
		t.Errorf("staff received %q, want the retried message once", got)
	}
}
