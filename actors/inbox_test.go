package actors

import (
	"slices"
	"testing"

	"github.com/grainchat/grainchat/actors/chatpb"
)

// TestInboxCatchUpSnapshot: a snapshot the inbox sends unasked after the
// connection to a staff session's node broke (catch_up) makes the session
// fill from the store what it lacks up to each entry (deliveries the broken
// connection dropped), and shows no new inbox page.
func TestInboxCatchUpSnapshot(t *testing.T) {
	e := newTestEnv(t, Config{})
	u, conv := e.visitor(t, "alice")
	e.appendDirect(t, u, conv.ID, "one")
	staff := e.spawn(t, SessionConfig{ConnID: "s1", User: e.admin(t, "ann"), V1: true})
	isInbox := func(f map[string]any) bool { return f["type"] == "inbox" }
	staff.waitFrame(t, 0, "the first inbox page", isInbox)

	// Two messages the session never heard of (the relay that carried
	// them was dropped with the connection).
	e.appendDirect(t, u, conv.ID, "two", "three")
	pid := e.sessions[0]
	e.node.system.Root.Send(pid, &chatpb.InboxSnapshot{CatchUp: true, Entries: []*chatpb.InboxEntry{{ConversationId: conv.ID, LastSeq: 3}}})
	_, at := staff.waitFrame(t, 0, "message 3", func(f map[string]any) bool { return f["type"] == "message" && f["seq"] == 3.0 })

	frames := staff.waitFrames(t, at+1)
	if got := seqs(frames); !slices.Equal(got, []int64{2, 3}) {
		t.Errorf("message seqs %v, want [2 3] (filled from the store)", got)
	}
	pages := 0
	for _, f := range frames {
		if isInbox(f) {
			pages++
		}
	}
	if pages != 1 {
		t.Errorf("%d inbox pages, want only the first: a catch-up shows none", pages)
	}
}
