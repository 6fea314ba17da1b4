package main

import (
	"strings"
	"testing"

	"github.com/grainchat/grainchat/storage/pgtest"
)

// Errors are put into words on the page: a message over the limit is held
// back with the limit stated; a message the server could not store (the
// database is cut) is marked "temporarily unavailable" with a Retry button,
// and retrying once the database is back stores it exactly once.
func TestBrowserErrorsInWords(t *testing.T) {
	chromiumPath(t) // skip (or fail in CI) before starting anything
	proxy, dsn := pgtest.ProxyDSN(t, newDatabase(t))
	s := startServer(t, "--database-url", dsn, "--max-message-chars", "40", "--post-timeout", "2s")
	staff := dial(t, s, "staff-1", "Ann", true, true)

	b := newBrowser(t)
	p := b.newTab("visitor")
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
	p.do("clear the composer", evalVoid(`document.getElementById('text').value = ''; document.getElementById('text').dispatchEvent(new Event('input'))`))

	proxy.SetDown(true)
	p.typeAndSend("during the outage")
	p.waitJS("the unavailable error", `[...document.querySelectorAll('#messages .msg.failed .status.error')].some(e =>
		e.textContent === 'The chat is temporarily unavailable; this message was not confirmed. Try again.')`)
	p.waitJS("a Retry button", `[...document.querySelectorAll('#messages .msg.failed button')].some(b => b.textContent === 'Retry')`)

	proxy.SetDown(false)
	pollStatus(t, "http://"+s.Addr+"/readyz", 200)
	// The visitor presses Retry until the message is stored (the first try
	// may meet a pooled connection that the cut broke).
	p.waitJS("the retried message to be stored", `(() => {
		const retry = [...document.querySelectorAll('#messages .msg.failed button')].find(b => b.textContent === 'Retry');
		if (retry) retry.click();
		return document.querySelectorAll('#messages .msg[data-seq]').length === 2;
	})()`)
	checkThread(t, p.page, []string{"first", "during the outage"})
	conv := waitMessage(t, staff, "first").Int("conversation_id")
	waitMsg(t, staff, conv, "during the outage")
	post(t, staff, conv, "marker", "m1")
	waitMsg(t, staff, conv, "marker") // delivered in seq order: what came before it is final
	p.waitMessageText("marker")
	if got := textsOf(messagesIn(staff, 0, conv)); strings.Join(got, "|") != "first|during the outage|marker" {
		t.Errorf("staff received %q, want the retried message once", got)
	}
}
