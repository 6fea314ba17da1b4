package actors

import (
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/grainchat/grainchat/actors/chatpb"
)

// TestInboxSendsStaffTheirTeamsOnly: a staff session that shows some teams
// (InboxSubscribe.by_team) is sent the deliveries of those teams'
// conversations and of those without a team, and no other: the inbox divides
// its fan-out by team (docs/SCALING.md). A session that shows every team
// gets everything, as does one of an older node (by_team false).
func TestInboxSendsStaffTheirTeamsOnly(t *testing.T) {
	e := newTestEnv(t, Config{})
	var inbox *actor.PID
	waitUntil(t, 10*time.Second, func() bool {
		inbox = e.node.lookup(inboxIdentity, InboxKind)
		return inbox != nil
	})
	type probe struct {
		sub  *chatpb.InboxSubscribe
		got  chan int64
		pid  *actor.PID
		name string
	}
	probes := []*probe{
		{name: "billing", sub: &chatpb.InboxSubscribe{UserId: 1, ByTeam: true, Teams: []string{"billing"}}},
		{name: "billing and sales", sub: &chatpb.InboxSubscribe{UserId: 2, ByTeam: true, Teams: []string{"billing", "sales"}}},
		{name: "no team only", sub: &chatpb.InboxSubscribe{UserId: 3, ByTeam: true, Teams: []string{}}},
		{name: "every team", sub: &chatpb.InboxSubscribe{UserId: 4}},
	}
	for _, p := range probes {
		p.got = make(chan int64, 16)
		subscribed := make(chan struct{})
		p.pid = e.node.system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actor.Started:
				ctx.Request(inbox, p.sub)
			case *chatpb.InboxSnapshot:
				close(subscribed)
			case *chatpb.InboxDelivery:
				p.got <- m.GetEntry().GetConversationId()
			}
		}))
		t.Cleanup(func() { e.node.system.Root.Stop(p.pid) })
		select {
		case <-subscribed:
		case <-time.After(10 * time.Second):
			t.Fatalf("probe %q not subscribed", p.name)
		}
	}
	notes := []struct {
		conv int64
		team string
	}{{1, "billing"}, {2, "sales"}, {3, ""}, {4, "support"}, {5, ""}}
	for _, n := range notes {
		note := benchNotify(n.conv, 1)
		note.Entry.Team = n.team
		e.node.system.Root.Send(inbox, note)
	}
	want := map[string][]int64{
		"billing":           {1, 3, 5},
		"billing and sales": {1, 2, 3, 5},
		"no team only":      {3, 5},
		"every team":        {1, 2, 3, 4, 5},
	}
	for _, p := range probes {
		// Conversation 5, the last, reaches everyone: what came before it
		// is all the probe gets (one sender, one receiver: in order).
		var got []int64
		for len(got) == 0 || got[len(got)-1] != 5 {
			select {
			case c := <-p.got:
				got = append(got, c)
			case <-time.After(10 * time.Second):
				t.Fatalf("probe %q: got %v, then nothing", p.name, got)
			}
		}
		if !slices.Equal(got, want[p.name]) {
			t.Errorf("probe %q (teams %q) received conversations %v, want %v", p.name, p.sub.GetTeams(), got, want[p.name])
		}
	}
}

// benchNotify is message seq of conversation conv, as its grain notifies
// the inbox.
func benchNotify(conv, seq int64) *chatpb.InboxNotify {
	m := &chatpb.ChatMessage{ConversationId: conv, Seq: seq, SenderId: 1, SenderName: "Visitor",
		Body: "a visitor's message of a usual length, about eighty characters, with some words", CreatedAtUnixMicro: time.Now().UnixMicro()}
	return &chatpb.InboxNotify{
		Entry:    &chatpb.InboxEntry{ConversationId: conv, UserId: 1, UserExternalId: "v", UserName: "Visitor", LastSeq: seq, LastMessage: m, LastMessageAtUnixMicro: m.CreatedAtUnixMicro},
		Delivery: newDelivery(m),
	}
}
