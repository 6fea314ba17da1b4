package main

import (
	"context"
	"fmt"
	"testing"
)

// Canned replies through the inbox page: Ann creates two in the dialog,
// a third under a name already taken is refused in words, and she edits
// one; Bob, on another page, types "/" and the start of a name: the menu
// lists the matching replies (colleagues' edits included), Enter puts the
// chosen one's text in place of "/name", and it is sent like any reply.
// Escape closes the menu without inserting. In Chromium and in Firefox.
func TestBrowserCannedReplies(t *testing.T) {
	eachBrowser(t, testBrowserCannedReplies)
}

func testBrowserCannedReplies(t *testing.T, br browserKind) {
	s := startServer(t)
	visitor := dial(t, s, "user-1", "Alice", false, true)
	conv := convOf(t, visitor)
	post(t, visitor, 0, "Where is my order?", "q1")

	b := br.start(t)
	ann := b.newPage("Ann")
	ann.setToken(s.Addr, mint(t, "staff-ann", "Ann", true))
	bob := b.newPage("Bob")
	bob.setToken(s.Addr, mint(t, "staff-bob", "Bob", true))
	shot := func(p *page, name string) { p.docScreenshot(br, name) }
	for _, p := range []*page{ann, bob} {
		p.viewport(1280, 800, false)
		p.navigate("http://" + s.Addr + "/admin/")
		p.waitOnline()
		p.waitInbox("Alice [1] Where is my order?")
		p.openConversation(conv)
		p.waitMessageText("Where is my order?")
	}

	// Ann creates two replies, and is told when a name is taken.
	ann.click("the canned replies button", "#canned-open")
	ann.waitJS("the dialog", `document.getElementById('canned-dialog').open && !document.getElementById('canned-empty').hidden`)
	saveCanned(ann, "thanks", "Thank you for your patience!")
	ann.waitJS("one reply listed", cannedListed("/thanks"))
	saveCanned(ann, "tracking", "Your tracking number is in the email we sent.")
	ann.waitJS("two replies listed", cannedListed("/thanks", "/tracking"))
	saveCanned(ann, "Thanks", "Another one")
	ann.waitJS("the taken name in words", `document.getElementById('canned-error').textContent === 'Another canned reply already has that name.' &&
		!document.getElementById('canned-error').hidden`)
	// Edit "thanks".
	ann.click("Edit /thanks", `#canned-list li[data-name="thanks"] button`)
	ann.waitJS("the form holds /thanks", `document.getElementById('canned-body').value === 'Thank you for your patience!' &&
		!document.getElementById('canned-delete').hidden`)
	ann.run("change the text", `document.getElementById('canned-body').value = 'Thanks a lot for your patience!'`)
	ann.click("Save", "#canned-save")
	ann.waitJS("the edited text listed", `[...document.querySelectorAll('#canned-list .canned-preview')].some(e => e.textContent === 'Thanks a lot for your patience!')`)
	shot(ann, "admin-canned-dialog-desktop.png")
	ann.click("Close", "#canned-close")
	ann.waitJS("the dialog closed", `!document.getElementById('canned-dialog').open`)

	// Bob types "/t": both listed (his page asks the list again on "/").
	typeOnly(bob, "/t")
	bob.waitJS("the menu with both replies", `(() => {
		const m = document.getElementById('canned-menu');
		return !m.hidden && [...m.querySelectorAll('.canned-option .canned-name')].map(e => e.textContent).join(',') === '/thanks,/tracking';
	})()`)
	shot(bob, "admin-canned-menu-desktop.png")
	// Escape closes it and leaves the text.
	bob.must("press Escape", bob.timed(func(ctx context.Context) error { return bob.d.pressEscape(ctx) }))
	bob.waitJS("the menu closed", `document.getElementById('canned-menu').hidden && document.getElementById('text').value === '/t'`)
	// "/tha" and Enter: Ann's edited text replaces "/tha".
	typeOnly(bob, "ha")
	bob.waitJS("the menu with /thanks alone", `[...document.querySelectorAll('#canned-menu .canned-option')].length === 1`)
	pressEnter(bob)
	bob.waitJS("the reply inserted", `document.getElementById('text').value === 'Thanks a lot for your patience!' && document.getElementById('canned-menu').hidden`)
	pressEnter(bob)
	waitMessage(t, visitor, "Thanks a lot for your patience!")
	bob.waitMessageText("Thanks a lot for your patience!")
	ann.waitMessageText("Thanks a lot for your patience!")

	// Ann deletes one; Bob's menu no longer lists it.
	ann.click("the canned replies button", "#canned-open")
	ann.click("Edit /tracking", `#canned-list li[data-name="tracking"] button`)
	ann.click("Delete", "#canned-delete")
	ann.waitJS("one reply left", cannedListed("/thanks"))
	typeOnly(bob, "Also: /tr")
	bob.waitJS("no match for /tr", `(() => {
		const m = document.getElementById('canned-menu');
		return !m.hidden && m.querySelectorAll('.canned-option').length === 0 && m.textContent === 'No canned reply by that name.';
	})()`)
}

// saveCanned fills the dialog's form (a new reply) and saves it.
func saveCanned(p *page, name, body string) {
	p.t.Helper()
	p.run("fill the form", fmt.Sprintf(`(() => {
		if (!document.getElementById('canned-new').hidden) document.getElementById('canned-new').click();
		document.getElementById('canned-name').value = %s;
		document.getElementById('canned-body').value = %s;
	})()`, jsString(name), jsString(body)))
	p.click("Save", "#canned-save")
}

// cannedListed is a condition: the dialog lists exactly these names.
func cannedListed(names ...string) string {
	list := ""
	for i, n := range names {
		if i > 0 {
			list += ","
		}
		list += n
	}
	return fmt.Sprintf(`[...document.querySelectorAll('#canned-list .canned-name')].map(e => e.textContent).join(',') === %s`, jsString(list))
}
