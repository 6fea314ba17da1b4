package main

import (
	"reflect"
	"testing"
)

// A visitor and a staff member, each with their own cookies and storage,
// talk both ways through the pages: the visitor's chat (/) and the inbox
// (/admin/). In Chromium and in Firefox.
func TestBrowserVisitorAndAdminExchange(t *testing.T) {
	eachBrowser(t, func(t *testing.T, br browserKind) {
		s := startServer(t)
		b := br.start(t)
		visitor := b.newPage("visitor")
		visitor.setToken(s.Addr, mint(t, "user-1", "Alice", false))
		admin := b.newPage("admin")
		admin.setToken(s.Addr, mint(t, "staff-1", "Ann", true))

		visitor.navigate("http://" + s.Addr + "/")
		visitor.waitOnline()
		if got := visitor.evalString(`document.getElementById('whoami').textContent`); got != "Signed in as Alice" {
			t.Errorf("visitor header says %q", got)
		}
		visitor.typeAndSend("Hello, my order has not arrived")
		visitor.waitMessageText("Hello, my order has not arrived")

		admin.navigate("http://" + s.Addr + "/admin/")
		admin.waitOnline()
		admin.waitInbox("Alice [1] Hello, my order has not arrived")
		conv := admin.inbox()[0].Conv
		admin.openConversation(conv)
		admin.waitMessageText("Hello, my order has not arrived")
		admin.waitInbox("Alice [] Hello, my order has not arrived")
		admin.typeAndSend("Hi Alice, Ann here. Let me check.")

		visitor.waitMessageText("Hi Alice, Ann here. Let me check.")
		visitor.typeAndSend("Thank you!")
		admin.waitMessageText("Thank you!")
		admin.waitInbox("Alice [] Thank you!")
		// The sender's page shows its message as stored once the ack arrives,
		// which can be after the other side shows it.
		visitor.waitMessageText("Thank you!")

		want := []shownMessage{
			{1, "Hello, my order has not arrived", "You", "ours"},
			{2, "Hi Alice, Ann here. Let me check.", "Ann · Support", "theirs"},
			{3, "Thank you!", "You", "ours"},
		}
		if got := visitor.messages(); !reflect.DeepEqual(got, want) {
			t.Errorf("visitor shows %+v\nwant %+v", got, want)
		}
		wantAdmin := []shownMessage{
			{1, "Hello, my order has not arrived", "Alice", "theirs"},
			{2, "Hi Alice, Ann here. Let me check.", "You", "ours"},
			{3, "Thank you!", "Alice", "theirs"},
		}
		if got := admin.messages(); !reflect.DeepEqual(got, wantAdmin) {
			t.Errorf("admin shows %+v\nwant %+v", got, wantAdmin)
		}
		for _, p := range []*page{visitor, admin} {
			if n := p.evalString(`String(document.querySelectorAll('#messages .msg.pending, #messages .msg.failed').length)`); n != "0" {
				t.Errorf("%s: %s messages still pending or failed", p.name, n)
			}
			// The composer is empty again after each Enter (no stray newline).
			if v := p.evalString(`document.getElementById('text').value`); v != "" {
				t.Errorf("%s: composer holds %q after sending", p.name, v)
			}
		}
		if n := len(admin.inbox()); n != 1 {
			t.Errorf("the inbox lists %d conversations, want 1", n)
		}
	})
}
