//go:build !race

// Not under -race: attaching chromedp to the widget's cross-site iframe
// target races inside chromedp (Target.documentUpdated walks the DOM while
// the target's event loop reads it). The Makefile runs this test (both
// browsers) in its non-race pass.

package main

import (
	"context"
	"testing"
)

// The widget on another site: a host page at http://localhost:P (another
// site than chatd's 127.0.0.1, with its own strict Content-Security-Policy)
// adds widget.js with one tag and the visitor's token in data-token. The
// floating button opens chatd's /embed/ in an iframe, which signs in with the
// token (no cookie involved), drops it from its address, and chats; closing
// the panel and receiving two replies shows an unread badge (2) on the
// button, which goes when the panel opens again. The
// host page logs no error (no postMessage before the frame said it is
// ready). In Chromium and in Firefox.
func TestBrowserWidgetOnAnotherSite(t *testing.T) {
	eachBrowser(t, testWidgetOnAnotherSite)
}

func testWidgetOnAnotherSite(t *testing.T, br browserKind) {
	chatAddr, token := "", mint(t, "user-7", "Wendy", false)
	hostOrigin := hostSite(t, &chatAddr, &token)

	s := startServer(t, "--allowed-origins", hostOrigin)
	chatAddr = s.Addr
	staff := dial(t, s, "staff-1", "Ann", true, true)

	b := br.start(t)
	b.expectErrors("favicon.ico") // Firefox: the host page's CSP refuses its favicon
	// No other error on the host page: in particular no postMessage to a
	// frame that has not loaded yet (Chromium: "The target origin provided …
	// does not match the recipient window's origin").
	page := b.newPage("host page")
	page.viewport(1280, 800, false)
	page.navigate(hostOrigin + "/")
	page.waitJS("the chat button", `document.querySelector('[data-grainchat]')?.shadowRoot?.querySelector('button')?.textContent === 'Questions?'`)
	page.run("click the chat button", `document.querySelector('[data-grainchat]').shadowRoot.querySelector('button').click()`)

	frame := page.frame("http://" + s.Addr + "/embed/")
	frame.waitOnline()
	if who := frame.evalString(`document.getElementById('whoami').textContent`); who != "Signed in as Wendy" {
		t.Errorf("widget says %q", who)
	}
	if h := frame.evalString(`location.href`); h != "http://"+s.Addr+"/embed/" {
		t.Errorf("the frame's address is %q: the token should be gone from it", h)
	}
	frame.typeAndSend("Hello from the widget")
	frame.waitMessageText("Hello from the widget")
	m := waitMessage(t, staff, "Hello from the widget")
	conv := m.Int("conversation_id")
	if m.String("sender_name") != "Wendy" {
		t.Errorf("staff received %s", m.Raw)
	}
	post(t, staff, conv, "Hi Wendy!", "r1")
	frame.waitMessageText("Hi Wendy!")

	// Close the panel from inside the frame; a reply meanwhile shows as a
	// badge on the host page's button.
	frame.click("close the panel", "#close")
	page.waitJS("the panel to close", `document.querySelector('[data-grainchat]').shadowRoot.querySelector('.grainchat-panel').style.display === 'none'`)
	post(t, staff, conv, "Anything else?", "r2")
	page.waitJS("the unread badge", `document.querySelector('[data-grainchat]').shadowRoot.querySelector('.grainchat-badge').textContent === '1'`)
	post(t, staff, conv, "We can also call you.", "r3")
	page.waitJS("the unread badge at 2", `document.querySelector('[data-grainchat]').shadowRoot.querySelector('.grainchat-badge').textContent === '2'`)
	page.docScreenshot(br, "widget-badge-desktop.png")
	page.run("reopen", `GrainChat.open()`)
	frame.waitMessageText("Anything else?")
	frame.waitMessageText("We can also call you.")
	page.waitJS("the badge to clear", `document.querySelector('[data-grainchat]').shadowRoot.querySelector('.grainchat-badge').style.display === 'none'`)

	var c *testCookie
	page.must("cookies", page.timed(func(ctx context.Context) error {
		var err error
		c, err = page.d.cookie(ctx, s.Addr, "chat_token")
		return err
	}))
	if c != nil {
		t.Errorf("a chat_token cookie was set for chatd: the widget must use its data-token")
	}
}
