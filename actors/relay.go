package actors

import (
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/grainchat/grainchat/actors/chatpb"
)

// The inbox relay: the one inbox grain sends every message to every staff
// session, and a delivery to a session on another member costs a message of
// its own over protoactor's remote, serialized and written by the one gRPC
// writer of that member (≈ 9–17 µs of CPU against ≈ 0.2–0.3 µs for a local
// one: BenchmarkInboxFanout, docs/BENCHMARKS.md "Session 15"). So for the members
// that run a relay (they register RelayKind), the inbox sends one
// InboxRelay per member, naming that member's subscribed sessions, and the
// member's relay hands the delivery to each of them locally. A session's
// message and event deliveries take one path while its member's features
// stay the same, so they keep their order. Direct sends to it (a snapshot,
// a read mark) and a change of path (its member left the inbox node's
// topology and came back) may overtake a relayed delivery still in the
// relay's mailbox: sessions drop a message or inbox_update older than what
// they showed (by seq); an overtaken status or assignment event would show
// until the next one.

// inboxRelayName is the name of every member's inbox relay.
const inboxRelayName = "grainchat-inbox-relay"

// RelayKind is never activated: members that register it run an inbox relay.
const RelayKind = "grainchat.inbox-relay"

// inboxRelay hands relayed inbox deliveries to this member's sessions.
type inboxRelay struct{ node *Node }

func (r *inboxRelay) Receive(ctx actor.Context) {
	msg, ok := ctx.Message().(*chatpb.InboxRelay)
	if !ok {
		return
	}
	addr, d := r.node.system.Address(), msg.GetDelivery()
	for _, id := range msg.GetTargets() {
		ctx.Send(actor.NewPID(addr, id), d)
	}
}

// inboxFanout sends one inbox delivery to every subscribed session that shows
// its conversation (teams: the sessions that show some teams only, see
// inboxGrain.teams; a conversation without a team goes to all, and one of
// another team to its assignee and to whom an event unassigned): directly to
// those on the inbox's member and on members without a relay, and in one
// InboxRelay per member to the others.
func (n *Node) inboxFanout(ctx actor.Context, subs map[pidKey]*actor.PID, teams map[pidKey][]string, users map[pidKey]int64, d *chatpb.InboxDelivery) {
	self := n.system.Address()
	team := d.GetEntry().GetTeam()
	var relayed map[string]*chatpb.InboxRelay
	for k, pid := range subs {
		if team != "" && len(teams) > 0 {
			// Not teamShown: here a nil list (an empty one decoded)
			// still filters; being in teams is what says so.
			if only, ok := teams[k]; ok && !slices.Contains(only, team) && !concerns(d, users[k]) {
				continue // a staff session that shows other teams only
			}
		}
		addr := pid.GetAddress()
		if addr == self || !n.hasFeature(addr, featureRelay) {
			ctx.Send(pid, d)
			continue
		}
		if relayed == nil {
			relayed = make(map[string]*chatpb.InboxRelay)
		}
		r := relayed[addr]
		if r == nil {
			r = &chatpb.InboxRelay{Delivery: d}
			relayed[addr] = r
		}
		r.Targets = append(r.Targets, pid.GetId())
	}
	for addr, r := range relayed {
		ctx.Send(actor.NewPID(addr, inboxRelayName), r)
	}
}

// concerns reports whether an inbox delivery is about staff user: the
// conversation is assigned to them, or its event unassigned them. Staff are
// shown such a conversation whatever its team.
func concerns(d *chatpb.InboxDelivery, user int64) bool {
	return user != 0 && (d.GetEntry().GetAssignee().GetId() == user || d.GetUnassignedId() == user)
}
