package main

import (
	"fmt"
	"testing"
)

// A long conversation opens on its newest page, scrolled to the end; older
// pages load as the reader scrolls up, above what they were reading, until
// the first message; every message shows once, in order. In Chromium and in
// Firefox.
func TestBrowserHistoryPages(t *testing.T) {
	eachBrowser(t, testHistoryPages)
}

func testHistoryPages(t *testing.T, br browserKind) {
	const total = 120
	s := startServer(t)
	alice := dial(t, s, "user-1", "Alice", false, true)
	conv := convOf(t, alice)
	for i := 1; i <= total; i++ {
		post(t, alice, 0, fmt.Sprintf("message %d", i), fmt.Sprintf("m%d", i))
	}

	b := br.start(t)
	admin := b.newPage("admin")
	admin.setToken(s.Addr, mint(t, "staff-1", "Ann", true))
	admin.navigate("http://" + s.Addr + "/admin/")
	admin.waitOnline()
	admin.waitInbox(fmt.Sprintf("Alice [99+] message %d", total))
	admin.openConversation(conv)

	visitor := b.newPage("visitor")
	visitor.setToken(s.Addr, mint(t, "user-1", "Alice", false))
	visitor.navigate("http://" + s.Addr + "/")
	visitor.waitOnline()

	for _, p := range []*page{admin, visitor} {
		p.waitJS("the newest page", `document.querySelectorAll('#messages .msg[data-seq]').length === 50`)
		p.waitJS("the view at the end", `(() => { const s = document.getElementById('scroller');
			return s.scrollHeight - s.scrollTop - s.clientHeight < 2; })()`)
		if first := p.messages()[0].Seq; first != total-49 {
			t.Errorf("%s: the first page starts at seq %d, want %d", p.name, first, total-49)
		}
		for _, want := range []int{100, total} {
			p.run("scroll to the top", `document.getElementById('scroller').scrollTop = 0`)
			p.waitJS(fmt.Sprintf("%d messages", want), fmt.Sprintf(`document.querySelectorAll('#messages .msg[data-seq]').length === %d`, want))
			// The reader stays where they were: the older page is above.
			if top := p.evalString(`String(document.getElementById('scroller').scrollTop)`); top == "0" {
				t.Errorf("%s: after loading older messages the view jumped to the top", p.name)
			}
		}
		p.waitJS("no more older pages", `document.getElementById('older').hidden`)
		var texts []string
		for i := 1; i <= total; i++ {
			texts = append(texts, fmt.Sprintf("message %d", i))
		}
		checkThread(t, p, texts)
	}
}
