package main

import (
	"context"
	"fmt"
	"reflect"
	"testing"
)

// The support desk through the pages, with two agents and a visitor, each
// in their own browser profile: Ann claims a conversation and replies; Bob,
// in the Open view, sees it assigned to her; Ann resolves it, and it leaves
// Bob's Open view and enters his Resolved view, live; the visitor's page
// says it was resolved; the visitor writes again and it reopens (back in
// Bob's Open view, the note gone from the visitor's page). Then the
// stale-reply guard: the visitor writes while Ann types, and Ann's page
// holds her reply with "Send anyway" and "Edit" instead of sending it; Edit
// puts it back in the composer, Send anyway sends it. In Chromium and in
// Firefox.
func TestBrowserDesk(t *testing.T) {
	eachBrowser(t, testBrowserDesk)
}

func testBrowserDesk(t *testing.T, br browserKind) {
	s := startServer(t)
	b := br.start(t)
	visitor := b.newPage("Alice")
	visitor.setToken(s.Addr, mint(t, "user-1", "Alice", false))
	ann := b.newPage("Ann")
	ann.setToken(s.Addr, mint(t, "staff-ann", "Ann", true))
	bob := b.newPage("Bob")
	bob.setToken(s.Addr, mint(t, "staff-bob", "Bob", true))
	ann.viewport(1280, 800, false)
	bob.viewport(1280, 800, false)
	shot := func(p *page, name string) { p.docScreenshot(br, name) }

	visitor.navigate("http://" + s.Addr + "/")
	visitor.waitOnline()
	visitor.typeAndSend("My parcel is lost")
	visitor.waitMessageText("My parcel is lost")

	for _, p := range []*page{ann, bob} {
		p.navigate("http://" + s.Addr + "/admin/")
		p.waitOnline()
		p.waitInbox("Alice [1] My parcel is lost")
		p.waitJS("the Open view with its count", `document.querySelector('#view-status [aria-pressed="true"]').dataset.status === 'open' &&
			document.querySelector('#view-status [data-status="open"] .count').textContent === '1'`)
	}
	conv := ann.inbox()[0].Conv

	// Ann claims it and replies.
	ann.openConversation(conv)
	ann.waitMessageText("My parcel is lost")
	ann.click("Assign to me", "#claim")
	ann.waitJS("Ann as the assignee", `document.getElementById('conv-assignee').selectedOptions[0]?.textContent === 'Ann (you)' &&
		document.getElementById('claim').hidden`)
	waitEventLine(ann, "You took the conversation")
	bob.waitJS("Ann as the assignee in Bob's list", `document.querySelector('#inbox .conv .conv-assignee')?.textContent === '→ Ann'`)
	ann.typeAndSend("Let me look into it")
	visitor.waitMessageText("Let me look into it")

	// Bob's Unassigned filter no longer lists it; Mine does not either.
	bob.run("pick Unassigned", `(() => { const s = document.getElementById('view-assignee'); s.value = 'none'; s.dispatchEvent(new Event('change')); })()`)
	bob.waitJS("an empty Unassigned view", `document.getElementById('inbox-loading').hidden && document.querySelectorAll('#inbox .conv').length === 0 &&
		!document.getElementById('inbox-empty').hidden`)
	bob.run("pick Anyone", `(() => { const s = document.getElementById('view-assignee'); s.value = 'any'; s.dispatchEvent(new Event('change')); })()`)
	bob.waitInbox("Alice [2] Ann: Let me look into it")

	// Ann resolves it: it leaves Bob's Open view; his Resolved tab lists it.
	ann.click("Resolve", "#resolve")
	ann.waitJS("the status Resolved", `document.getElementById('conv-status').textContent === 'Resolved' && !document.getElementById('reopen').hidden`)
	waitEventLine(ann, "You resolved the conversation")
	bob.waitJS("Alice gone from Bob's Open view", `document.querySelectorAll('#inbox .conv').length === 0`)
	bob.waitJS("the counts after resolving", `document.querySelector('#view-status [data-status="open"] .count').textContent === '0' &&
		document.querySelector('#view-status [data-status="resolved"] .count').textContent === '1'`)
	bob.click("the Resolved tab", `#view-status [data-status="resolved"]`)
	bob.waitInbox("Alice [2] Ann: Let me look into it")
	shot(ann, "admin-desk-desktop.png")
	visitor.waitJS("the resolved note", `!document.getElementById('resolved-note').hidden`)
	waitEventLine(visitor, "Ann (support) marked this conversation as resolved.")

	// The visitor writes again: open again everywhere.
	visitor.typeAndSend("Actually, one more thing")
	visitor.waitJS("the resolved note gone", `document.getElementById('resolved-note').hidden`)
	bob.waitJS("Alice gone from Bob's Resolved view", `document.querySelectorAll('#inbox .conv').length === 0`)
	bob.click("the Open tab", `#view-status [data-status="open"]`)
	bob.waitInbox("Alice [3] Actually, one more thing")
	ann.waitMessageText("Actually, one more thing")
	ann.waitJS("the status Open", `document.getElementById('conv-status').textContent === 'Open' && document.getElementById('reopen').hidden`)
	waitEventLine(ann, "Alice reopened the conversation")
	// In the thread the reopening comes before the message that caused it.
	if got := threadLines(ann); !reflect.DeepEqual(got, []string{
		"msg My parcel is lost", "event You took the conversation", "msg Let me look into it",
		"event You resolved the conversation", "event Alice reopened the conversation", "msg Actually, one more thing",
	}) {
		t.Errorf("Ann's thread: %q", got)
	}

	// The stale-reply guard: Alice writes while Ann types.
	typeOnly(ann, "Here is your tracking number")
	visitor.typeAndSend("Hello? Anyone there?")
	ann.waitMessageText("Hello? Anyone there?")
	pressEnter(ann)
	ann.waitJS("the stale-reply prompt", `(() => {
		const li = document.querySelector('#messages .msg.stale');
		return !!li && li.querySelector('.text').textContent === 'Here is your tracking number' &&
			[...li.querySelectorAll('button')].map(b => b.textContent).join(',') === 'Send anyway,Edit';
	})()`)
	shot(ann, "admin-stale-reply-desktop.png")
	// Nothing was stored: the visitor never sees it.
	if n := visitor.evalString(`String([...document.querySelectorAll('#messages .msg .text')].filter(e => e.textContent === 'Here is your tracking number').length)`); n != "0" {
		t.Fatalf("the visitor shows the refused reply %s times", n)
	}
	// Edit: back in the composer; sending again is based on what is now on
	// screen, so it goes through.
	ann.click("Edit", `#messages .msg.stale button:last-of-type`)
	ann.waitJS("the reply back in the composer", `document.getElementById('text').value === 'Here is your tracking number' &&
		!document.querySelector('#messages .msg.stale')`)
	pressEnter(ann)
	visitor.waitMessageText("Here is your tracking number")
	ann.waitMessageText("Here is your tracking number")

	// Again, and this time Send anyway.
	typeOnly(ann, "It left our warehouse on Monday")
	visitor.typeAndSend("Thanks!")
	ann.waitMessageText("Thanks!")
	pressEnter(ann)
	ann.waitJS("the stale-reply prompt", `!!document.querySelector('#messages .msg.stale')`)
	ann.click("Send anyway", `#messages .msg.stale button:first-of-type`)
	visitor.waitMessageText("It left our warehouse on Monday")
	ann.waitMessageText("It left our warehouse on Monday")
	want := []string{
		"My parcel is lost", "Let me look into it", "Actually, one more thing", "Hello? Anyone there?",
		"Here is your tracking number", "Thanks!", "It left our warehouse on Monday",
	}
	var got []string
	for _, m := range visitor.messages() {
		got = append(got, m.Text)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the visitor's messages %q\nwant %q", got, want)
	}
	if n := ann.evalString(`String(document.querySelectorAll('#messages .msg.pending, #messages .msg.failed').length)`); n != "0" {
		t.Errorf("Ann's page still holds %s unsent replies", n)
	}
}

// waitEventLine waits until the thread shows an event line with text.
func waitEventLine(p *page, text string) {
	p.t.Helper()
	p.waitJS("the event line "+text, fmt.Sprintf(
		`[...document.querySelectorAll('#messages .event .event-text')].some(e => e.textContent === %s)`, jsString(text)))
}

// threadLines lists the thread as "msg <text>" and "event <text>" lines.
func threadLines(p *page) []string {
	p.t.Helper()
	var out []string
	p.evalJSON(`[...document.querySelectorAll('#messages > li')].map(li => li.classList.contains('event')
		? 'event ' + li.querySelector('.event-text').textContent
		: 'msg ' + li.querySelector('.text').textContent)`, &out)
	return out
}

// typeOnly clicks into the composer and types text, without sending it.
func typeOnly(p *page, text string) {
	p.t.Helper()
	p.waitJS("the composer to be enabled", `!document.getElementById('text').disabled`)
	p.must(fmt.Sprintf("type %q", text), p.timed(func(ctx context.Context) error {
		if err := p.d.click(ctx, "#text"); err != nil {
			return err
		}
		return p.d.typeKeys(ctx, text)
	}))
}

// pressEnter presses Enter in the focused element.
func pressEnter(p *page) {
	p.t.Helper()
	p.must("press Enter", p.timed(func(ctx context.Context) error { return p.d.pressEnter(ctx, false) }))
}
