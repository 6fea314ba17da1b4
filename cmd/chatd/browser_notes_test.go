package main

// Internal notes through the pages (docs/PROTOCOL.md, "Internal notes").

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// A visitor (Carl) and two agents (Ann and Bob) who have his conversation
// open. Ann turns the composer's Note toggle on and writes a note (with
// markup in it): both agents' pages show it in the thread, "Note by you" on
// Ann's, "Note by Ann" on Bob's, as text; no message is stored, and Carl's
// page shows no "Support is typing…" for it. Ann turns the toggle off and
// replies: Carl gets the reply. Carl's page, also after a reload, contains
// nothing of the note; Bob's, after a reload, shows it again (history). In
// Chromium and in Firefox.
func TestBrowserNotes(t *testing.T) {
	eachBrowser(t, testBrowserNotes)
}

func testBrowserNotes(t *testing.T, br browserKind) {
	const note = "Check the tracking <b>first</b>: he wrote twice"
	s := startServer(t)
	b := br.start(t)
	carl := signedIn(t, b, s.Addr, "Carl", "user-carl", false)
	ann := signedIn(t, b, s.Addr, "Ann", "staff-ann", true)
	bob := signedIn(t, b, s.Addr, "Bob", "staff-bob", true)

	carl.navigate("http://" + s.Addr + "/")
	carl.waitOnline()
	carl.typeAndSend("Where is my parcel?")
	carl.waitMessageText("Where is my parcel?")
	var conv int64
	for _, p := range []*page{ann, bob} {
		p.navigate("http://" + s.Addr + "/admin/")
		p.waitOnline()
		p.waitInbox("Carl [1] Where is my parcel?")
		conv = p.inbox()[0].Conv
		p.openConversation(conv)
		p.waitMessageText("Where is my parcel?")
	}

	ann.click("turn the Note toggle on", "#note-mode")
	ann.waitJS("note mode", `document.getElementById('note-mode').getAttribute('aria-pressed') === 'true' &&
		document.getElementById('send').textContent === 'Add note'`)
	ann.typeAndSend(note)
	waitNotes(ann, "Note by you: "+note)
	waitNotes(bob, "Note by Ann: "+note)
	ann.docScreenshot(br, "admin-note-desktop.png")
	for _, p := range []*page{ann, bob} {
		if n := p.evalString(`String(document.querySelectorAll('#messages b').length)`); n != "0" {
			t.Errorf("%s: the note's markup made %s elements", p.name, n)
		}
		checkThread(t, p, []string{"Where is my parcel?"})
	}
	checkTyping(t, carl, "") // no typing frame went for the note (it would show for 5 s)
	if v := ann.evalString(`document.getElementById('text').value`); v != "" {
		t.Errorf("Ann's composer still holds %q", v)
	}

	// Back to replies: the marker reaches Carl.
	ann.click("turn the Note toggle off", "#note-mode")
	ann.waitJS("reply mode", `document.getElementById('note-mode').getAttribute('aria-pressed') === 'false' &&
		document.getElementById('send').textContent === 'Send'`)
	ann.typeAndSend("We are looking into it.")
	carl.waitMessageText("We are looking into it.")
	checkThread(t, carl, []string{"Where is my parcel?", "We are looking into it."})
	checkNoNote(t, carl, note)
	carl.reload()
	carl.waitOnline()
	carl.waitMessageText("We are looking into it.")
	checkThread(t, carl, []string{"Where is my parcel?", "We are looking into it."})
	checkNoNote(t, carl, note)

	// Bob's page, reloaded, shows the note from the history, in its place.
	bob.reload()
	bob.waitOnline()
	bob.waitMessageText("We are looking into it.")
	waitNotes(bob, "Note by Ann: "+note)
	var order []string
	bob.evalJSON(`[...document.querySelectorAll('#messages > li')].map((li) => li.classList.contains('note') ? 'note' : li.querySelector('.text')?.textContent)`, &order)
	if got := strings.Join(order, " | "); got != "Where is my parcel? | note | We are looking into it." {
		t.Errorf("Bob's thread after a reload: %s", got)
	}
}

// waitNotes waits until the notes in the page's thread are exactly want, as
// "label: text".
func waitNotes(p *page, want ...string) {
	p.t.Helper()
	w, _ := json.Marshal(want)
	p.waitJS(fmt.Sprintf("notes %q", want), fmt.Sprintf(`JSON.stringify([...document.querySelectorAll('#messages .note')].map((n) =>
		n.querySelector('.note-by').textContent + ': ' + n.querySelector('.note-body').textContent)) === JSON.stringify(JSON.parse(%s))`, jsString(string(w))))
}

// checkNoNote fails the test when the visitor's page contains anything of
// the note.
func checkNoNote(t *testing.T, p *page, note string) {
	t.Helper()
	var got struct {
		Text  bool `json:"text"`
		Notes int  `json:"notes"`
	}
	p.evalJSON(fmt.Sprintf(`({ text: document.body.textContent.includes(%s) || document.body.textContent.includes('tracking'),
		notes: document.querySelectorAll('.note, .event-note').length })`, jsString(note)), &got)
	if got.Text || got.Notes != 0 {
		t.Errorf("%s: the visitor's page shows the note: %+v", p.name, got)
	}
}
