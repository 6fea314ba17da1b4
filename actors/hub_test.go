package actors

import (
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/grainchat/grainchat/actors/chatpb"
)

// fakeGrain stands in for a conversation activation: it announces itself to
// the node's hub, answers the hub's subscriptions with lastSeq and reports
// them on subs.
type fakeGrain struct {
	hub     *actor.PID
	conv    int64
	lastSeq int64
	subs    chan *actor.PID
}

func (g *fakeGrain) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		ctx.Request(g.hub, &chatpb.Announce{ConversationId: g.conv})
	case *chatpb.Subscribe:
		ctx.Request(ctx.Sender(), &chatpb.Subscribed{ConversationId: g.conv, LastSeq: g.lastSeq})
		g.subs <- ctx.Sender()
	}
}

func (e *testEnv) fakeGrain(t *testing.T, conv, lastSeq int64) (*actor.PID, chan *actor.PID) {
	t.Helper()
	subs := make(chan *actor.PID, 10)
	pid := e.node.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &fakeGrain{hub: e.node.hub.Load(), conv: conv, lastSeq: lastSeq, subs: subs}
	}))
	t.Cleanup(func() { e.node.system.Root.Stop(pid) })
	return pid, subs
}

func waitSub(t *testing.T, subs chan *actor.PID, hub *actor.PID) {
	t.Helper()
	select {
	case from := <-subs:
		if !from.Equal(hub) {
			t.Fatalf("subscribed by %v, want the hub %v", from, hub)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hub did not subscribe to an announced activation")
	}
}

// The hub follows every announced activation of a conversation its sessions
// follow (two while the topology changes): it subscribes to each, passes
// their deliveries on (the session drops what it has and fills gaps), and when
// one terminates it reads the store, so that what the activation stored but
// did not deliver still reaches the session.
func TestHubFollowsActivationsAndReadsTheStoreWhenOneEnds(t *testing.T) {
	e := newTestEnv(t, Config{})
	u, conv := e.visitor(t, "erin")
	e.appendDirect(t, u, conv.ID, "one", "two")
	sink := e.spawn(t, SessionConfig{ConnID: "e", User: u, ConversationID: conv.ID, V1: true})
	if w := sink.waitFrames(t, 1)[0]; w["last_seq"].(float64) != 2 {
		t.Fatalf("welcome = %v, want last_seq 2", w)
	}

	g1, subs1 := e.fakeGrain(t, conv.ID, 2)
	waitSub(t, subs1, e.node.hub.Load())
	g2, subs2 := e.fakeGrain(t, conv.ID, 2)
	waitSub(t, subs2, e.node.hub.Load())

	stored := e.appendDirect(t, u, conv.ID, "three", "four")
	// The second activation delivers seq 4: the session fills 3 first; the
	// first one's late seq 3 is then a duplicate.
	e.node.system.Root.Send(e.node.hub.Load(), newDelivery(toProto(stored[1])))
	e.node.system.Root.Send(e.node.hub.Load(), newDelivery(toProto(stored[0])))
	frames := sink.waitFrames(t, 3)
	if got := seqs(frames); fmt.Sprint(got) != "[3 4]" {
		t.Fatalf("delivered seqs %v, want [3 4]", got)
	}

	// One activation ends having delivered everything: nothing to add.
	e.node.system.Root.Stop(g2)
	// The other stores seq 5 and ends before delivering it: the hub reads
	// the store and the session gets it.
	e.appendDirect(t, u, conv.ID, "five")
	e.node.system.Root.Stop(g1)
	frames = sink.waitFrames(t, 4)
	if got := seqs(frames); fmt.Sprint(got) != "[3 4 5]" {
		t.Fatalf("delivered seqs %v, want [3 4 5]", got)
	}
	if f := frames[3]; f["message"] != "five" {
		t.Fatalf("frame 3 = %v, want five", f)
	}

	// A session joining a conversation with an announced activation makes
	// the hub subscribe again: the answer catches it up.
	_, subs3 := e.fakeGrain(t, conv.ID, 5)
	waitSub(t, subs3, e.node.hub.Load())
	tab := e.spawn(t, SessionConfig{ConnID: "e2", User: u, ConversationID: conv.ID, V1: true})
	tab.waitFrames(t, 1)
	waitSub(t, subs3, e.node.hub.Load())
}

// A hub whose store read fails (here: the store panics, which must not take
// the node down) after an activation ended reads again until it succeeds, and
// the session gets what the activation left undelivered.
func TestHubRetriesAFailedStoreRead(t *testing.T) {
	e, store := newPanicEnv(t)
	u, conv := e.visitor(t, "fay")
	sink := e.spawn(t, SessionConfig{ConnID: "f", User: u, ConversationID: conv.ID, V1: true})
	sink.waitFrames(t, 1)
	g, subs := e.fakeGrain(t, conv.ID, 0)
	waitSub(t, subs, e.node.hub.Load())

	e.appendDirect(t, u, conv.ID, "undelivered")
	store.arm("Conversation", 1)
	e.node.system.Root.Stop(g)
	f, _ := sink.waitFrame(t, 1, "the undelivered message", func(f map[string]any) bool { return f["type"] == "message" })
	if f["message"] != "undelivered" || f["seq"] != float64(1) {
		t.Fatalf("delivered %v, want seq 1 undelivered", f)
	}
	if n := store.firedCount("Conversation"); n != 1 {
		t.Fatalf("the hub's store read failed %d times, want 1", n)
	}
}
