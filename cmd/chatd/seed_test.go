package main

import (
	"fmt"
	"testing"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// The document's scenario 1: a visitor's message comes back to them and
// reaches every connected admin, as the document's exact frame.
func TestSeedScenario1VisitorMessageReachesVisitorAndAdmins(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	admin1 := dial(t, s, "staff-1", "Ann", true, false)
	admin2 := dial(t, s, "staff-2", "Bob", true, false)
	visitor := dial(t, s, "user-1", "Alice", false, false)

	if err := visitor.Send(map[string]any{"message": "hi"}); err != nil {
		t.Fatal(err)
	}
	got := waitMessage(t, visitor, "hi")
	conv := got.Int("conversation_id")
	sender := got.Int("sender_id")
	want := fmt.Sprintf(`{"message":"hi","sender_id":%d,"sender_name":"Alice","sender_is_admin":false,"conversation_id":%d}`, sender, conv)
	if string(got.Raw) != want {
		t.Fatalf("visitor got %s, want %s", got.Raw, want)
	}
	if conv <= 0 || sender <= 0 {
		t.Fatalf("ids must be positive numbers: %s", got.Raw)
	}
	for i, a := range []*wsclient.Client{admin1, admin2} {
		f := waitMessage(t, a, "hi")
		if string(f.Raw) != want {
			t.Fatalf("admin %d got %s, want %s", i+1, f.Raw, want)
		}
	}
	// Seed clients get the document's frames and nothing else: after a
	// marker message, each has exactly the two message frames.
	if err := visitor.Send(map[string]any{"message": "marker"}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*wsclient.Client{"visitor": visitor, "admin1": admin1, "admin2": admin2} {
		waitMessage(t, c, "marker")
		if n := len(c.Frames()); n != 2 {
			t.Errorf("%s received %d frames, want exactly 2:%s", name, n, dump(c))
		}
	}
}

// The document's scenario 2: an admin replies into a conversation; every tab
// of the visitor and every admin (the sender included) sees it.
func TestSeedScenario2AdminReplyReachesEveryTabAndAdmin(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	tab1 := dial(t, s, "user-7", "Alice", false, false)
	tab2 := dial(t, s, "user-7", "Alice", false, false)
	admin1 := dial(t, s, "staff-1", "Ann", true, false)
	admin2 := dial(t, s, "staff-2", "Bob", true, false)

	// The visitor speaks first so that the admins learn the conversation id.
	if err := tab1.Send(map[string]any{"message": "help please"}); err != nil {
		t.Fatal(err)
	}
	conv := waitMessage(t, admin1, "help please").Int("conversation_id")
	waitMessage(t, tab2, "help please")

	if err := admin1.Send(map[string]any{"message": "hello", "conversation_id": conv}); err != nil {
		t.Fatal(err)
	}
	first := waitMessage(t, tab1, "hello")
	want := fmt.Sprintf(`{"message":"hello","sender_id":%d,"sender_name":"Ann","sender_is_admin":true,"conversation_id":%d}`, first.Int("sender_id"), conv)
	for name, c := range map[string]*wsclient.Client{"tab1": tab1, "tab2": tab2, "admin1": admin1, "admin2": admin2} {
		if f := waitMessage(t, c, "hello"); string(f.Raw) != want {
			t.Errorf("%s got %s, want %s", name, f.Raw, want)
		}
	}
	if err := admin2.Send(map[string]any{"message": "marker", "conversation_id": conv}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*wsclient.Client{"tab1": tab1, "tab2": tab2, "admin1": admin1, "admin2": admin2} {
		waitMessage(t, c, "marker")
		if n := len(c.Frames()); n != 3 {
			t.Errorf("%s received %d frames, want 3:%s", name, n, dump(c))
		}
	}
}
