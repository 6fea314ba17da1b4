package main

import (
	"reflect"
	"testing"
)

// Two staff members in the inbox at once: conversations move to the top as
// messages arrive, each with its unread count (per staff member: what they
// have not seen on screen, not counting their own messages); replies by one
// appear live for the other; unread counts survive a reload. In Chromium and
// in Firefox.
func TestBrowserInboxTwoAdmins(t *testing.T) {
	eachBrowser(t, testInboxTwoAdmins)
}

func testInboxTwoAdmins(t *testing.T, br browserKind) {
	s := startServer(t)
	alice := dial(t, s, "user-1", "Alice", false, true)
	bruno := dial(t, s, "user-2", "Bruno", false, true)
	aliceConv := convOf(t, alice)
	for i, text := range []string{"a1", "a2", "a3"} {
		post(t, alice, 0, text, "a"+string(rune('1'+i)))
	}

	b := br.start(t)
	ann := b.newPage("Ann")
	ann.setToken(s.Addr, mint(t, "staff-1", "Ann", true))
	bob := b.newPage("Bob")
	bob.setToken(s.Addr, mint(t, "staff-2", "Bob", true))
	for _, p := range []*page{ann, bob} {
		p.navigate("http://" + s.Addr + "/admin/")
		p.waitOnline()
		p.waitJS("the inbox", `document.getElementById('inbox-loading').hidden`)
	}
	// Bruno's conversation exists (he connected) but, without a message,
	// it is not in the inbox yet.
	for _, p := range []*page{ann, bob} {
		p.waitInbox("Alice [3] a3")
	}

	post(t, bruno, 0, "b1", "b1")
	for _, p := range []*page{ann, bob} {
		p.waitInbox("Bruno [1] b1", "Alice [3] a3")
	}
	post(t, alice, 0, "a4", "a4")
	for _, p := range []*page{ann, bob} {
		p.waitInbox("Alice [4] a4", "Bruno [1] b1")
	}
	if title := ann.evalString(`document.title`); title != "(5) Inbox — grainchat" {
		t.Errorf("Ann's title %q, want the total unread", title)
	}

	// Ann reads Alice's conversation and replies: read for her, one more
	// unread for Bob.
	ann.openConversation(aliceConv)
	ann.waitMessageText("a4")
	ann.waitInbox("Alice [] a4", "Bruno [1] b1")
	ann.typeAndSend("ann-reply")
	ann.waitMessageText("ann-reply")
	waitMessage(t, alice, "ann-reply")
	ann.waitInbox("Alice [] You: ann-reply", "Bruno [1] b1")
	bob.waitInbox("Alice [5] Ann: ann-reply", "Bruno [1] b1")

	// Bob opens it: he sees Ann's reply as staff's, and answers; Ann sees
	// his reply live in the conversation she has open.
	bob.openConversation(aliceConv)
	bob.waitMessageText("ann-reply")
	bob.waitInbox("Alice [] Ann: ann-reply", "Bruno [1] b1")
	bob.typeAndSend("bob-reply")
	ann.waitMessageText("bob-reply")
	waitMessage(t, alice, "bob-reply")
	ann.waitInbox("Alice [] Bob: bob-reply", "Bruno [1] b1")
	bob.waitInbox("Alice [] You: bob-reply", "Bruno [1] b1")
	bob.waitMessageText("bob-reply") // stored on Bob's page too: his ack may come after the others see it

	want := []shownMessage{
		{1, "a1", "Alice", "theirs"}, {2, "a2", "Alice", "theirs"}, {3, "a3", "Alice", "theirs"}, {4, "a4", "Alice", "theirs"},
		{5, "ann-reply", "You", "ours"}, {6, "bob-reply", "Bob", "ours"},
	}
	if got := ann.messages(); !reflect.DeepEqual(got, want) {
		t.Errorf("Ann's conversation %+v\nwant %+v", got, want)
	}
	want[4].Who, want[5].Who = "Ann", "You"
	if got := bob.messages(); !reflect.DeepEqual(got, want) {
		t.Errorf("Bob's conversation %+v\nwant %+v", got, want)
	}

	// A new message from Bruno moves him to the top for both.
	post(t, bruno, 0, "b2", "b2")
	ann.waitInbox("Bruno [2] b2", "Alice [] Bob: bob-reply")
	bob.waitInbox("Bruno [2] b2", "Alice [] You: bob-reply")

	// What Ann has read survives a reload (the page reopens Alice's
	// conversation from the address).
	ann.reload()
	ann.waitOnline()
	ann.waitInbox("Bruno [2] b2", "Alice [] Bob: bob-reply")
	ann.waitMessageText("bob-reply")
	if got := ann.messages(); len(got) != 6 {
		t.Errorf("after a reload Ann sees %d messages, want 6", len(got))
	}
}
