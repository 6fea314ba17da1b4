package main

// The inbox page's transcript download (docs/API.md, "Transcript";
// docs/BROWSER.md).

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// A visitor (Carl) writes a message with markup, Ann replies and writes an
// internal note. Ann's page downloads the transcript: by default as text and
// without the note (the visitor's markup as literal text), then with the
// note, then as JSON (by the keyboard: Space on the focused button); each saved as conversation-N.txt or
// .json from a Blob whose URL is revoked. The page's URL.createObjectURL and
// anchor clicks are stubbed to capture the file instead of saving it. Then
// the errors: a cookie whose token does not verify (the answer's error
// shows in the notice) and a stopped server (it cannot be reached). In
// Chromium and in Firefox, against PostgreSQL.
func TestBrowserTranscript(t *testing.T) {
	eachBrowser(t, testBrowserTranscript)
}

// savedFile is a file the page saved (captured by stubTranscriptSaving).
type savedFile struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Text string `json:"text"`
	Href string `json:"href"`
}

func testBrowserTranscript(t *testing.T, br browserKind) {
	const (
		question = `<b>hi</b> & "where" is <script>my parcel</script>?`
		reply    = "We are looking into it."
		note     = "Check the <i>tracking</i> first"
	)
	s := startServer(t, "--database-url", newDatabase(t))
	b := br.start(t)
	carl := signedIn(t, b, s.Addr, "Carl", "user-carl", false)
	ann := signedIn(t, b, s.Addr, "Ann", "staff-ann", true)

	carl.navigate("http://" + s.Addr + "/")
	carl.waitOnline()
	carl.typeAndSend(question)
	carl.waitMessageText(question)
	ann.navigate("http://" + s.Addr + "/admin/")
	ann.waitOnline()
	ann.waitInbox("Carl [1] " + question)
	conv := ann.inbox()[0].Conv
	ann.openConversation(conv)
	ann.waitMessageText(question)
	ann.typeAndSend(reply)
	ann.waitMessageText(reply)
	ann.click("turn the Note toggle on", "#note-mode")
	ann.waitJS("note mode", `document.getElementById('note-mode').getAttribute('aria-pressed') === 'true'`)
	ann.typeAndSend(note)
	waitNotes(ann, "Note by you: "+note)
	ann.click("turn the Note toggle off", "#note-mode")

	// The control: labelled, text and no notes by default.
	var ctl struct {
		Format, FormatLabel, Notes, Button, Title string
		Checked                                   bool
	}
	ann.evalJSON(`(() => { const f = document.getElementById('transcript-format'), n = document.getElementById('transcript-notes');
		return { Format: f.value, FormatLabel: f.labels[0]?.textContent, Checked: n.checked,
			Notes: n.labels[0]?.textContent.trim(), Title: n.labels[0]?.title,
			Button: document.getElementById('transcript').textContent }; })()`, &ctl)
	if ctl.Format != "text" || ctl.Checked || ctl.FormatLabel != "Transcript format" || ctl.Notes != "With internal notes" ||
		ctl.Button != "Download transcript" || !strings.Contains(ctl.Title, "forwarded to the visitor") {
		t.Errorf("the transcript control: %+v", ctl)
	}

	stubTranscriptSaving(ann)
	txt := fmt.Sprintf("conversation-%d.txt", conv)

	// Text, without notes.
	ann.click("download the transcript", "#transcript")
	f := waitSaved(ann, 1)
	if f.Name != txt || !strings.HasPrefix(f.Type, "text/plain") {
		t.Errorf("saved %q (%s), want %s as text/plain", f.Name, f.Type, txt)
	}
	for _, want := range []string{fmt.Sprintf("Conversation %d with Carl (user-carl)\n", conv), "  Carl: " + question + "\n", "  Ann (staff): " + reply + "\n"} {
		if !strings.Contains(f.Text, want) {
			t.Errorf("the transcript lacks %q:\n%s", want, f.Text)
		}
	}
	if strings.Contains(f.Text, "tracking") || strings.Contains(f.Text, "internal note") {
		t.Errorf("the transcript without notes has the note:\n%s", f.Text)
	}

	// Text, with notes.
	ann.click("tick With internal notes", "#transcript-notes")
	ann.waitJS("the notes ticked", `document.getElementById('transcript-notes').checked`)
	ann.click("download the transcript", "#transcript")
	f = waitSaved(ann, 2)
	for _, want := range []string{"Includes internal notes: not for the visitor.", "[internal note] Ann: " + note + "\n", "  Carl: " + question + "\n"} {
		if !strings.Contains(f.Text, want) {
			t.Errorf("the transcript with notes lacks %q:\n%s", want, f.Text)
		}
	}

	// JSON, with notes, by the keyboard.
	ann.run("choose JSON", `(() => { const f = document.getElementById('transcript-format'); f.value = 'json'; f.dispatchEvent(new Event('change')); })()`)
	ann.run("focus the button", `document.getElementById('transcript').focus()`)
	ann.must("press Space", ann.timed(func(ctx context.Context) error { return ann.d.typeKeys(ctx, " ") }))
	f = waitSaved(ann, 3)
	if want := fmt.Sprintf("conversation-%d.json", conv); f.Name != want || !strings.HasPrefix(f.Type, "application/json") {
		t.Errorf("saved %q (%s), want %s as application/json", f.Name, f.Type, want)
	}
	var doc struct {
		Conversation struct {
			ID int64 `json:"id"`
		} `json:"conversation"`
		Notes  bool `json:"notes"`
		Thread []struct {
			Message *struct {
				Seq        int64  `json:"seq"`
				Message    string `json:"message"`
				SenderName string `json:"sender_name"`
			} `json:"message"`
			Event *struct {
				Kind string `json:"kind"`
				Body string `json:"body"`
			} `json:"event"`
		} `json:"thread"`
	}
	if err := json.Unmarshal([]byte(f.Text), &doc); err != nil {
		t.Fatalf("the JSON transcript does not parse: %v\n%s", err, f.Text)
	}
	var got []string
	for _, it := range doc.Thread {
		switch {
		case it.Message != nil:
			got = append(got, fmt.Sprintf("%d %s: %s", it.Message.Seq, it.Message.SenderName, it.Message.Message))
		case it.Event != nil:
			got = append(got, it.Event.Kind+": "+it.Event.Body)
		}
	}
	if want := []string{"1 Carl: " + question, "2 Ann: " + reply, "note: " + note}; doc.Conversation.ID != conv || !doc.Notes || strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Errorf("the JSON transcript: conversation %d, notes %v, thread %q; want %d, true, %q", doc.Conversation.ID, doc.Notes, got, conv, want)
	}
	var revoked []string
	ann.waitJS("the Blob URLs revoked", `window.__transcriptRevoked.length === 3`)
	ann.evalJSON(`window.__transcriptRevoked`, &revoked)
	for i, u := range revoked {
		if u != fmt.Sprintf("blob:stub-%d", i+1) {
			t.Errorf("revoked %q", revoked)
			break
		}
	}
	if n := ann.evalString(`String(document.querySelectorAll('a[download]').length)`); n != "0" {
		t.Errorf("%s download links left in the page", n)
	}

	// An error answer: a token that does not verify (the socket, opened
	// before, stays up).
	b.expectErrors("401", "/transcript")
	ann.setToken(s.Addr, "not-a-token")
	ann.click("download the transcript", "#transcript")
	waitNotice(ann, "The transcript was not downloaded. You are not signed in (any more); sign in again.")
	ann.waitJS("the button back", `!document.getElementById('transcript').disabled && document.getElementById('transcript').textContent === 'Download transcript'`)

	// The server is gone.
	b.expectErrors("/ws/chat/", "ERR_CONNECTION_REFUSED", "/session", "NetworkError", "Failed to fetch")
	ann.setToken(s.Addr, mint(t, "staff-ann", "Ann", true))
	ann.run("hide the notice", `document.getElementById('notice').hidden = true`)
	s.Stop()
	ann.click("download the transcript", "#transcript")
	waitNotice(ann, "The transcript was not downloaded: cannot reach the chat server. Try again.")
	if n := ann.evalString(`String(window.__transcriptSaved.length)`); n != "3" {
		t.Errorf("%s files saved, want 3 (the failures save nothing)", n)
	}
}

// stubTranscriptSaving makes the page capture the files it saves (the Blob
// given to URL.createObjectURL, read as text, and the download link's name)
// in window.__transcriptSaved instead of saving them, and record the URLs
// it revokes in window.__transcriptRevoked.
func stubTranscriptSaving(p *page) {
	p.t.Helper()
	p.run("stub the saving of files", `(() => {
		window.__transcriptSaved = [];
		window.__transcriptRevoked = [];
		const blobs = new Map();
		let n = 0;
		URL.createObjectURL = (blob) => { const url = 'blob:stub-' + (++n); blobs.set(url, blob); return url; };
		URL.revokeObjectURL = (url) => window.__transcriptRevoked.push(url);
		const click = HTMLAnchorElement.prototype.click;
		HTMLAnchorElement.prototype.click = function () {
			const blob = blobs.get(this.getAttribute('href'));
			if (!this.hasAttribute('download') || !blob) return click.call(this);
			const entry = { name: this.download, href: this.getAttribute('href'), type: blob.type };
			blob.text().then((text) => window.__transcriptSaved.push({ ...entry, text }));
		};
	})()`)
}

// waitSaved waits for the page's nth saved file and returns it.
func waitSaved(p *page, n int) savedFile {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("file %d saved", n), fmt.Sprintf(`window.__transcriptSaved.length >= %d`, n))
	var f savedFile
	p.evalJSON(fmt.Sprintf(`window.__transcriptSaved[%d]`, n-1), &f)
	if f.Href != fmt.Sprintf("blob:stub-%d", n) {
		p.t.Errorf("%s: file %d saved from %q", p.name, n, f.Href)
	}
	return f
}

// waitNotice waits until the page's notice shows exactly text.
func waitNotice(p *page, text string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("notice %q", text), fmt.Sprintf(`(() => { const n = document.getElementById('notice');
		return !n.hidden && n.textContent === %s && n.children.length === 0; })()`, jsString(text)))
}
