package actors

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// inboxIdentity is the identity of the one inbox grain.
const inboxIdentity = "all"

// inboxGrain is the admin inbox: it knows every conversation's newest message
// and relays every stored message to the subscribed admin sessions. It loads
// its state from the store when it activates and keeps it current from the
// conversation grains' notifications.
type inboxGrain struct {
	node    *Node
	logger  *slog.Logger
	loaded  bool
	entries map[int64]*chatpb.InboxEntry
	subs    map[pidKey]*actor.PID
	// users are the subscribers' staff user ids (see ReadMarked).
	users map[pidKey]int64
	// teams are the teams of the subscribers that show only some
	// (InboxSubscribe.by_team): a conversation of a team is sent to them
	// only if it is theirs (see inboxFanout).
	teams map[pidKey][]string
	// lastActive is when the grain last received anything but its periodic
	// check.
	lastActive time.Time
	// claim is the activation's side of placement (see placement).
	claim claimant
	// away are subscribers whose node left the topology (see awaySubs).
	away awaySubs
}

func newInboxGrain(n *Node) actor.Actor {
	logger := n.logger.With("component", "inbox")
	return &inboxGrain{
		node:    n,
		claim:   claimant{kind: InboxKind, identity: inboxIdentity, log: func() *slog.Logger { return logger }, activated: time.Now()},
		logger:  logger,
		entries: make(map[int64]*chatpb.InboxEntry),
		subs:    make(map[pidKey]*actor.PID),
		users:   make(map[pidKey]int64),
		teams:   make(map[pidKey][]string),
	}
}

func (g *inboxGrain) Receive(ctx actor.Context) {
	defer func() {
		if r := recover(); r != nil {
			g.logger.Error("inbox grain panicked", "panic", fmt.Sprint(r))
			ctx.Stop(ctx.Self())
		}
	}()
	if _, ok := ctx.Message().(housekeeping); !ok {
		g.lastActive = time.Now()
	}
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		g.node.inboxActive.Store(true)
		g.logger.Debug("inbox activated", "pid", pidValue{ctx.Self()})
		g.node.metrics.GrainActivated("inbox")
		g.scheduleOwnerCheck(ctx)
	case *checkOwner:
		g.claim.verify(ctx, g.node)
		if !g.claim.stopped {
			g.welcomeBack(ctx)
		}
		switch {
		case g.claim.stopped:
		case len(g.subs) == 0 && time.Since(g.lastActive) >= g.node.cfg.GrainIdleTimeout:
			// Idle: passivate (see conversationGrain.idle).
			ctx.Stop(ctx.Self())
		default:
			g.scheduleOwnerCheck(ctx)
		}
	case *chatpb.ClaimResult, *claimExpired:
		g.claim.receive(ctx, g.node, msg)
	case *chatpb.InboxSubscribe:
		if g.claim.refuses(ctx, g.node) {
			reply(ctx, &chatpb.InboxSnapshot{ErrorCode: chatpb.CodeMoved})
			return
		}
		snap := g.snapshot()
		if snap.GetErrorCode() == "" && ctx.Sender() != nil {
			if _, ok := g.subs[keyOf(ctx.Sender())]; !ok {
				g.subs[keyOf(ctx.Sender())] = ctx.Sender()
				ctx.Watch(ctx.Sender())
			}
			g.users[keyOf(ctx.Sender())] = msg.GetUserId()
			if msg.GetByTeam() {
				g.teams[keyOf(ctx.Sender())] = msg.GetTeams()
			} else {
				delete(g.teams, keyOf(ctx.Sender()))
			}
		}
		reply(ctx, snap)
	case *chatpb.InboxQuery:
		reply(ctx, g.snapshot())
	case *chatpb.InboxUnsubscribe:
		if s := ctx.Sender(); s != nil {
			g.forget(keyOf(s))
			ctx.Unwatch(s)
		}
	case *chatpb.InboxNotify:
		if msg.GetEvent() != nil {
			g.notifyEvent(ctx, msg)
			return
		}
		g.notify(ctx, msg)
	case *chatpb.ReadMarked:
		// A staff user's read mark moved: tell that user's sessions.
		for k, uid := range g.users {
			if uid == msg.GetUserId() {
				ctx.Send(g.subs[k], msg)
			}
		}
	case *actor.Terminated:
		if g.node.mayBeAlive(msg) {
			g.node.rewatchLater(ctx, msg.Who) // keep relaying to it meanwhile
			return
		}
		if msg.GetWhy() == actor.TerminatedReason_AddressTerminated {
			g.away.leave(g.awaySub(msg.Who))
		}
		g.forget(keyOf(msg.Who))
	case *rewatch:
		if _, ok := g.subs[keyOf(msg.pid)]; !ok {
			return
		}
		if !g.node.isMember(msg.pid.GetAddress()) {
			g.away.leave(g.awaySub(msg.pid))
			g.forget(keyOf(msg.pid))
			return
		}
		ctx.Watch(msg.pid)
		// What was relayed while the connection was broken may be lost:
		// the session catches up from the store (its own next delivery
		// of a conversation would too, but not the last messages of a
		// conversation that then goes quiet).
		if snap := g.snapshot(); snap.GetErrorCode() == "" {
			g.logger.Debug("inbox: a subscriber's connection broke: catching it up", "pid", pidValue{msg.pid})
			snap.CatchUp = true
			ctx.Request(msg.pid, snap)
		}
	case *actor.Stopped:
		g.node.inboxActive.Store(false)
		g.node.placement.stopped(InboxKind, inboxIdentity, ctx.Self())
		g.logger.Debug("inbox stopped", "pid", pidValue{ctx.Self()})
		g.node.metrics.GrainPassivated("inbox")
	}
}

// awaySub is what welcomeBack needs of a subscriber whose node left.
func (g *inboxGrain) awaySub(pid *actor.PID) awaySub {
	k := keyOf(pid)
	teams, byTeam := g.teams[k]
	return awaySub{pid: pid, user: g.users[k], teams: teams, byTeam: byTeam}
}

// forget drops a subscriber.
func (g *inboxGrain) forget(k pidKey) {
	delete(g.subs, k)
	delete(g.users, k)
	delete(g.teams, k)
}

// welcomeBack subscribes again the sessions of a node that left the
// topology and is back (see awaySubs), with a snapshot: they missed what
// was relayed meanwhile.
func (g *inboxGrain) welcomeBack(ctx actor.Context) {
	for _, a := range g.away.back(g.node) {
		k := keyOf(a.pid)
		if _, ok := g.subs[k]; ok {
			continue
		}
		g.logger.Debug("inbox: a subscriber's node is back: subscribing it again", "pid", pidValue{a.pid})
		g.subs[k], g.users[k] = a.pid, a.user
		if a.byTeam {
			g.teams[k] = a.teams
		}
		ctx.Watch(a.pid)
		ctx.Request(a.pid, g.snapshot())
	}
}

func (g *inboxGrain) scheduleOwnerCheck(ctx actor.Context) {
	self, root := ctx.Self(), g.node.system.Root
	time.AfterFunc(g.node.cfg.OwnerCheckInterval, func() { root.Send(self, &checkOwner{}) })
}

func (g *inboxGrain) load() error {
	if g.loaded {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.node.cfg.StoreTimeout)
	defer cancel()
	entries, err := g.node.store.Inbox(ctx, storage.MaxInboxSize)
	if err != nil {
		return err
	}
	for _, e := range entries {
		pe := inboxEntryToProto(e)
		if old, ok := g.entries[pe.GetConversationId()]; !ok || old.GetLastSeq() < pe.GetLastSeq() {
			g.entries[pe.GetConversationId()] = pe
		}
	}
	g.loaded = true
	return nil
}

func (g *inboxGrain) snapshot() *chatpb.InboxSnapshot {
	if err := g.load(); err != nil {
		g.logger.Warn("load inbox", "err", err)
		code := codeFromStorage(err)
		return &chatpb.InboxSnapshot{ErrorCode: code, ErrorMessage: messageForCode(code)}
	}
	out := make([]*chatpb.InboxEntry, 0, len(g.entries))
	for _, e := range g.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.GetLastMessageAtUnixMicro() != b.GetLastMessageAtUnixMicro() {
			return a.GetLastMessageAtUnixMicro() > b.GetLastMessageAtUnixMicro()
		}
		return a.GetConversationId() > b.GetConversationId()
	})
	if len(out) > storage.MaxInboxSize {
		out = out[:storage.MaxInboxSize]
	}
	return &chatpb.InboxSnapshot{Entries: out}
}

func (g *inboxGrain) notify(ctx actor.Context, n *chatpb.InboxNotify) {
	e := n.GetEntry()
	if old, ok := g.entries[e.GetConversationId()]; ok && old.GetLastSeq() >= e.GetLastSeq() {
		return // already relayed (or loaded from the store after it was stored)
	}
	g.entries[e.GetConversationId()] = e
	if len(g.subs) == 0 {
		return
	}
	d := &chatpb.InboxDelivery{
		Entry:       e,
		Delivery:    n.GetDelivery(),
		UpdateFrame: wire.InboxUpdateFrame(inboxEntryToWire(e)),
	}
	g.node.inboxFanout(ctx, g.subs, g.teams, g.users, d)
}

// notifyEvent records a conversation's new desk state in its entry (when the
// inbox has it) and relays the event to every subscribed admin session.
func (g *inboxGrain) notifyEvent(ctx actor.Context, n *chatpb.InboxNotify) {
	e := n.GetEntry()
	d := &chatpb.InboxDelivery{Entry: e, Event: n.GetEvent()}
	if old, ok := g.entries[e.GetConversationId()]; ok {
		if was := old.GetAssignee().GetId(); was != e.GetAssignee().GetId() {
			d.UnassignedId = was
		}
		updated := proto.Clone(old).(*chatpb.InboxEntry)
		updated.Status, updated.Assignee = e.GetStatus(), e.GetAssignee()
		g.entries[e.GetConversationId()] = updated
	}
	g.node.inboxFanout(ctx, g.subs, g.teams, g.users, d)
}
