package main

import (
	"context"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// setOffline takes the tab's network down (as in the developer tools'
// "Offline"): new connections fail; open ones are not affected.
func (p *tab) setOffline(offline bool) {
	p.t.Helper()
	err := p.timed(func(ctx context.Context) error {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1}},
		})
		return err
	})
	if err != nil {
		p.t.Fatalf("%s: network offline=%v: %v", p.name, offline, err)
	}
}

// chatd restarts on the same address and database while a visitor and a
// staff member have their pages open. Meanwhile two messages are stored
// (by the visitor's other device and by another staff member) and the
// visitor types one. Both pages reconnect by themselves, resume by seq, send
// the typed message once, and show every message exactly once, in order.
func TestBrowserServerRestart(t *testing.T) {
	chromiumPath(t) // skip (or fail in CI) before starting anything
	db := newDatabase(t)
	args := []string{"--addr", freeAddr(t), "--database-url", db}
	s1 := startServer(t, args...)

	b := newBrowser(t)
	visitor := b.newTab("visitor")
	visitor.setToken(s1.Addr, mint(t, "user-1", "Alice", false))
	admin := b.newTab("admin")
	admin.setToken(s1.Addr, mint(t, "staff-1", "Ann", true))

	visitor.navigate("http://" + s1.Addr + "/")
	visitor.waitOnline()
	visitor.typeAndSend("before 1")
	visitor.waitMessageText("before 1")
	admin.navigate("http://" + s1.Addr + "/admin/")
	admin.waitOnline()
	admin.waitInbox("Alice [1] before 1")
	conv := admin.inbox()[0].Conv
	admin.openConversation(conv)
	admin.typeAndSend("before 2")
	visitor.waitMessageText("before 2")
	visitor.typeAndSend("before 3")
	admin.waitMessageText("before 3")

	// Stop chatd. The pages may not reconnect until the messages below are
	// stored, so that they must fetch them by resuming.
	visitor.setOffline(true)
	admin.setOffline(true)
	s1.Stop()
	for _, p := range []*tab{visitor, admin} {
		p.waitJS("the page to notice the restart", `document.getElementById('state').dataset.state !== 'online' &&
			!document.getElementById('banner').hidden`)
	}
	visitor.typeAndSend("typed while down")
	visitor.waitJS("the message to wait", `document.querySelectorAll('#messages .msg.pending').length === 1`)
	visitor.screenshot("chat-offline-desktop.png")

	s2 := startServer(t, args...)
	if s2.Addr != s1.Addr {
		t.Fatalf("restarted on %s, want %s", s2.Addr, s1.Addr)
	}
	otherDevice := dial(t, s2, "user-1", "Alice", false, true)
	post(t, otherDevice, 0, "during 1", "d1")
	bob := dial(t, s2, "staff-2", "Bob", true, true)
	post(t, bob, conv, "during 2", "d2")
	// Still offline: a retry fails, and the page says why.
	visitor.do("press Retry now", evalVoid(`document.querySelector('#banner button')?.click()`))
	visitor.waitJS("the offline explanation", `document.getElementById('state').dataset.state === 'offline' &&
		document.getElementById('banner').textContent.startsWith('Cannot reach the chat server. Retrying in')`)

	for _, p := range []*tab{visitor, admin} {
		p.setOffline(false)
		// Retrying is the page's own business; "Retry now" only saves the
		// test the back-off wait.
		p.do("press Retry now", evalVoid(`document.querySelector('#banner button')?.click()`))
		p.waitOnline()
	}

	want := []string{"before 1", "before 2", "before 3", "during 1", "during 2", "typed while down"}
	for _, p := range []*tab{visitor, admin} {
		p.waitMessageText("typed while down")
		p.waitJS("nothing pending", `document.querySelectorAll('#messages .msg.pending, #messages .msg.failed').length === 0`)
		checkThread(t, p.page, want)
	}
	waitMessage(t, otherDevice, "typed while down")

	// Live again, both ways.
	admin.typeAndSend("after")
	visitor.waitMessageText("after")
	visitor.typeAndSend("after 2")
	admin.waitMessageText("after 2")
	want = append(want, "after", "after 2")
	for _, p := range []*tab{visitor, admin} {
		// The other side can show a message before its sender's page has
		// the ack (they travel separately): wait for both.
		p.waitMessageText("after 2")
		p.waitJS("nothing pending", `document.querySelectorAll('#messages .msg.pending, #messages .msg.failed').length === 0`)
		checkThread(t, p.page, want)
	}
	admin.waitInbox("Alice [] after 2")
}
