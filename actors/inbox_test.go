package actors

import (
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
	checkCaughtUp(t, e, pid, staff, conv.ID, "inbox")
}
