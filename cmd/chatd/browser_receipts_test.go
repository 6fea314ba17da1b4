package main

// Read receipts through the pages (docs/PROTOCOL.md, "Read receipts").

import (
	"encoding/json"
	"fmt"
	"testing"
)

// A visitor (Carl) and an agent (Ann) who has his conversation open. Ann's
// page reads Carl's messages as they come: Carl's page shows "Seen" under
// his last message, and only there. Carl's page, visible, reads Ann's
// replies: Ann's page shows "Seen" under her last reply. Both still show it
// after a reload (the receipts come again from the server). In Chromium and
// in Firefox.
func TestBrowserReadReceipts(t *testing.T) {
	eachBrowser(t, testBrowserReadReceipts)
}

func testBrowserReadReceipts(t *testing.T, br browserKind) {
	s := startServer(t)
	b := br.start(t)
	carl := signedIn(t, b, s.Addr, "Carl", "user-carl", false)
	ann := signedIn(t, b, s.Addr, "Ann", "staff-ann", true)

	carl.navigate("http://" + s.Addr + "/")
	carl.waitOnline()
	carl.typeAndSend("Hello")
	carl.waitMessageText("Hello")
	waitSeen(carl, nil) // nobody on the staff has read it

	ann.navigate("http://" + s.Addr + "/admin/")
	ann.waitOnline()
	ann.waitInbox("Carl [1] Hello")
	conv := ann.inbox()[0].Conv
	ann.openConversation(conv)
	waitSeen(carl, []string{"Hello"})

	// Ann answers; Carl's page reads it: "Seen" under her reply.
	ann.typeAndSend("Hi Carl")
	carl.waitMessageText("Hi Carl")
	waitSeen(ann, []string{"Hi Carl"})

	// Carl writes again: "Seen" moves to his newest message.
	carl.typeAndSend("Where is my parcel?")
	ann.waitMessageText("Where is my parcel?")
	waitSeen(carl, []string{"Where is my parcel?"})
	carl.docScreenshot(br, "chat-seen-desktop.png")

	// Ann answers twice: "Seen" under her last reply only.
	ann.typeAndSend("Let me check.")
	ann.typeAndSend("It ships today.")
	carl.waitMessageText("It ships today.")
	waitSeen(ann, []string{"It ships today."})

	// After a reload, each page shows the receipt again.
	carl.reload()
	carl.waitOnline()
	carl.waitMessageText("It ships today.")
	waitSeen(carl, []string{"Where is my parcel?"})
	ann.reload()
	ann.waitOnline()
	ann.waitMessageText("It ships today.")
	waitSeen(ann, []string{"It ships today."})
}

// waitSeen waits until the messages labelled "Seen" on the page are exactly
// texts (in page order), each label saying exactly "Seen".
func waitSeen(p *page, texts []string) {
	p.t.Helper()
	if texts == nil {
		texts = []string{}
	}
	w, _ := json.Marshal(texts)
	p.waitJS(fmt.Sprintf("Seen under %q", texts), fmt.Sprintf(`(() => {
		const seen = [...document.querySelectorAll('#messages .msg .seen')];
		return seen.every((s) => s.textContent === 'Seen') &&
			JSON.stringify(seen.map((s) => s.closest('.msg').querySelector('.text').textContent)) === JSON.stringify(JSON.parse(%s));
	})()`, jsString(string(w))))
}
