package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// The inbox pages: the staff page lists the first page of conversations
// (most recent activity first) and says there are more; a conversation
// beyond that page that receives a message meanwhile comes in at the top,
// live; scrolling to the end of the list loads the rest (infinite scroll),
// and in the end every conversation is listed exactly once, in order of
// activity. In Chromium and in Firefox.
func TestBrowserInboxPaging(t *testing.T) {
	const total = 130
	eachBrowser(t, func(t *testing.T, br browserKind) {
		s := startServer(t)
		var fifth *wsclient.Client
		for i := 1; i <= total; i++ {
			c := dial(t, s, fmt.Sprintf("user-%d", i), fmt.Sprintf("Visitor %d", i), false, true)
			post(t, c, 0, fmt.Sprintf("hello %d", i), "h")
			if i == 5 {
				fifth = c
			}
		}
		b := br.start(t)
		admin := b.newPage("admin")
		admin.setToken(s.Addr, mint(t, "staff-1", "Ann", true))
		admin.navigate("http://" + s.Addr + "/admin/")
		admin.waitOnline()
		admin.waitJS("the first page", `document.querySelectorAll('#inbox .conv').length > 0 && !document.getElementById('inbox-more').hidden`)
		first := len(admin.inbox())
		if first >= total {
			t.Fatalf("the first page lists %d of %d conversations: nothing to page", first, total)
		}
		if got := admin.inbox()[0].Name; got != fmt.Sprintf("Visitor %d", total) {
			t.Errorf("the first page starts with %q", got)
		}
		if got := admin.evalString(`document.getElementById('inbox-count').textContent`); got != fmt.Sprintf("%d+ conversations", first) {
			t.Errorf("the count says %q", got)
		}

		// Visitor 5, beyond the first page, writes: listed at the top.
		post(t, fifth, 0, "again 5", "a5")
		admin.waitJS("visitor 5 at the top", fmt.Sprintf(`document.querySelectorAll('#inbox .conv').length === %d &&
			document.querySelector('#inbox .conv .conv-name').textContent === 'Visitor 5'`, first+1))

		// Scroll to the end of the list, as often as it takes.
		admin.waitJS("every conversation", fmt.Sprintf(`(() => {
			const pane = document.querySelector('.inbox-pane');
			pane.scrollTop = pane.scrollHeight;
			return document.querySelectorAll('#inbox .conv').length >= %d && document.getElementById('inbox-more').hidden;
		})()`, total))
		var want []string
		want = append(want, "Visitor 5 [2] again 5")
		for i := total; i >= 1; i-- {
			if i != 5 {
				want = append(want, fmt.Sprintf("Visitor %d [1] hello %d", i, i))
			}
		}
		var got []string
		for _, c := range admin.inbox() {
			got = append(got, fmt.Sprintf("%s [%s] %s", c.Name, c.Unread, c.Preview))
		}
		if !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			t.Errorf("the inbox lists %d conversations, want %d each once in order of activity:\n%s", len(got), len(want), g)
		}
		if got := admin.evalString(`document.getElementById('inbox-count').textContent`); got != fmt.Sprintf("%d conversations", total) {
			t.Errorf("the count says %q", got)
		}
	})
}
