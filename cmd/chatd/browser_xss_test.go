package main

import (
	"testing"
)

// Message text and names are shown as text: markup in them stays literal on
// every page, creates no element and runs nothing. In Chromium and in
// Firefox.
func TestBrowserMarkupIsText(t *testing.T) {
	const (
		evil     = `<img src=x onerror=window.__xss=1>`
		evilName = `Eve <img src=x onerror=window.__xss=2>`
		reply    = `<script>window.__xss=3</script><b>bold?</b>`
	)
	eachBrowser(t, func(t *testing.T, br browserKind) {
		s := startServer(t)
		b := br.start(t)
		visitor := b.newPage("visitor")
		visitor.setToken(s.Addr, mint(t, "user-1", evilName, false))
		admin := b.newPage("admin")
		admin.setToken(s.Addr, mint(t, "staff-1", "Ann", true))

		visitor.navigate("http://" + s.Addr + "/")
		visitor.waitOnline()
		visitor.typeAndSend(evil)
		visitor.waitMessageText(evil)

		admin.navigate("http://" + s.Addr + "/admin/")
		admin.waitOnline()
		admin.waitInbox(evilName + " [1] " + evil)
		admin.openConversation(admin.inbox()[0].Conv)
		admin.waitMessageText(evil)
		if got := admin.evalString(`document.getElementById('conv-name').textContent`); got != evilName {
			t.Errorf("conversation header %q, want the name as text", got)
		}
		admin.typeAndSend(reply)
		visitor.waitMessageText(reply)
		admin.waitMessageText(reply)

		for _, p := range []*page{visitor, admin} {
			if got := p.evalString(`typeof window.__xss`); got != "undefined" {
				t.Errorf("%s: window.__xss is %s: markup ran", p.name, got)
			}
			if n := p.evalString(`String(document.querySelectorAll('#messages img, #messages script, #messages b, #inbox img, #conv-name img, #whoami img').length)`); n != "0" {
				t.Errorf("%s: %s elements were created from message text or names", p.name, n)
			}
			if n := p.evalString(`String([...document.images].filter(i => !i.closest('.brand')).length)`); n != "0" {
				t.Errorf("%s: the document has %s images besides the logo", p.name, n)
			}
			if got := len(p.messages()); got != 2 {
				t.Errorf("%s: %d messages shown, want 2", p.name, got)
			}
		}
		if got := visitor.evalString(`document.getElementById('whoami').textContent`); got != "Signed in as "+evilName {
			t.Errorf("visitor header %q", got)
		}
	})
}
