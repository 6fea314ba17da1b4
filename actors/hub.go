package actors

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// hubName is the name of every node's hub actor: a grain reaches the hub of
// the node at address a as actor.NewPID(a, hubName).
const hubName = "grainchat-hub"

// hub is a node's subscription to conversation grains on behalf of its
// visitor sessions. A visitor's session joins its node's hub, not the grain:
// an idle visitor then costs no grain activation (memory, and a lookup at
// every connect), and a conversation grain passivates when its conversation is
// quiet even while its visitor stays connected.
//
// How deliveries still reach every connected visitor:
//
//   - A conversation grain announces itself (Announce) to the hub of every
//     member when it activates and again when the topology changes. The hub
//     remembers, and watches, the announced activations of each conversation
//     (usually one; two while the topology changes, until the one on the
//     wrong node stops).
//   - A hub with sessions of an announced conversation subscribes to its
//     activations (Subscribe, with the hub as the sender) and fans their
//     deliveries out to those sessions. It subscribes again each time a
//     session joins, and the grain's answer, Subscribed{last_seq}, goes to the
//     conversation's sessions, which fill from the store whatever they lack up
//     to it: messages stored between a session's connect and its join, or
//     before an activation's announce arrived.
//   - When the announced grain terminates (passivation, crash, node death,
//     ownership moved), the hub reads the conversation's last seq from the
//     store and hands it to its sessions the same way, so a message the grain
//     stored but could not deliver is not missed.
//
// Sessions dedupe by seq and fill gaps (see session.deliver), so a delivery
// that arrives twice, or after the store read, is harmless.
type hub struct {
	node *Node
	// sessions are this node's sessions of each conversation.
	sessions map[int64][]*actor.PID
	// grains are the announced activations of each conversation, watched;
	// byGrain is the reverse index for Terminated.
	grains  map[int64][]*actor.PID
	byGrain map[pidKey]int64
	// reading holds the conversations whose last seq is being read from the
	// store after an activation terminated: readOnce, or readAgain when
	// another one terminated during the read (which may predate its last
	// commits).
	reading map[int64]readState
	// ended holds when an activation of a conversation without sessions
	// here terminated: a session joining soon after (its join may have
	// waited behind the Terminated, a system message) still gets a store
	// read. Entries older than endedFor are dropped by a sweep.
	ended      map[int64]time.Time
	sweepArmed bool
	// looking holds the conversations whose grain is being looked up
	// (see orphaned).
	looking map[int64]bool
}

// endedFor is how long the hub remembers an activation's end for sessions
// that join after it: longer than a handshake takes between its store read
// and the session's join.
const endedFor = 10 * time.Second

// hubSweep drops old entries of ended.
type hubSweep struct{}

// hubJoin and hubLeave are a session joining and leaving its node's hub for
// one conversation.
type (
	hubJoin struct {
		conversationID int64
		session        *actor.PID
	}
	hubLeave struct {
		conversationID int64
		session        *actor.PID
	}
)

// caughtUp tells a session the newest seq of a conversation it follows: it
// fills from the store what it has not delivered up to there.
type caughtUp struct{ conversationID, lastSeq int64 }

// hubOrphan makes the hub look up a conversation's grain if no activation
// announced itself since the last one ended; hubFound is the answer.
type (
	hubOrphan struct{ conversationID int64 }
	hubFound  struct {
		conversationID int64
		pid            *actor.PID
	}
)

// orphanAfter is how long a hub waits for an announce after an activation
// ended (announces usually come within milliseconds); orphanWindow is how
// long after a topology change an ended activation counts as moved rather
// than passivated.
const (
	orphanAfter  = 2 * time.Second
	orphanWindow = 15 * time.Second
)

// hubLastSeq is the store's answer to a hub's read after a grain terminated;
// hubRetry retries a failed read or subscription.
type (
	hubLastSeq struct {
		conversationID, lastSeq int64
		err                     error
	}
	hubRetry struct {
		conversationID int64
		grain          *actor.PID // subscribe to it again; nil: read the store again
	}
)

type readState uint8

const (
	readOnce readState = iota + 1
	readAgain
)

func newHub(n *Node) actor.Actor {
	return &hub{
		node:     n,
		sessions: make(map[int64][]*actor.PID),
		grains:   make(map[int64][]*actor.PID),
		byGrain:  make(map[pidKey]int64),
		reading:  make(map[int64]readState),
		ended:    make(map[int64]time.Time),
		looking:  make(map[int64]bool),
	}
}

func (h *hub) Receive(ctx actor.Context) {
	defer func() {
		// A hub that stopped would leave its node's visitors deaf: log
		// and go on with the next message.
		if r := recover(); r != nil {
			h.node.logger.Error("hub panicked", "panic", r)
		}
	}()
	switch msg := ctx.Message().(type) {
	case *hubJoin:
		h.join(ctx, msg.conversationID, msg.session)
	case *hubLeave:
		h.leave(ctx, msg.conversationID, msg.session)
	case *actor.Started:
		h.started(ctx)
	case *chatpb.HubStarted:
		// Another node's hub is new: this node's grains announced
		// themselves to it before it existed.
		if from := ctx.Sender(); from != nil && from.GetAddress() != h.node.system.Address() {
			go h.node.checkGrainOwners()
		}
	case *hubSweep:
		h.sweepEnded(ctx)
	case *chatpb.Announce:
		h.announced(ctx, msg.GetConversationId(), ctx.Sender())
	case *chatpb.Subscribed:
		h.subscribed(ctx, msg)
	case *chatpb.Delivery:
		for _, s := range h.sessions[msg.GetMessage().GetConversationId()] {
			ctx.Send(s, msg)
		}
	case *chatpb.EventDelivery:
		// Visitors see their conversation's status changes (the session
		// drops other kinds).
		if msg.GetEvent().GetKind() == storage.EventStatus {
			for _, s := range h.sessions[msg.GetEvent().GetConversationId()] {
				ctx.Send(s, msg)
			}
		}
	case *hubTyping:
		h.typing(ctx, msg.typing)
	case *chatpb.TypingDelivery:
		h.typingDelivery(ctx, msg)
	case *chatpb.ReceiptDelivery:
		h.receipt(ctx, msg)
	case *actor.Terminated:
		if h.node.mayBeAlive(msg) {
			h.grainUnreachable(ctx, msg.Who)
			return
		}
		h.grainTerminated(ctx, msg.Who, msg.Why)
	case *hubOrphan:
		h.orphaned(ctx, msg.conversationID)
	case *hubFound:
		h.found(ctx, msg)
	case *rewatch:
		h.rewatch(ctx, msg.pid)
	case *hubLastSeq:
		h.lastSeqRead(ctx, msg)
	case *hubRetry:
		h.retry(ctx, msg)
	}
}

func (h *hub) join(ctx actor.Context, conv int64, s *actor.PID) {
	if s == nil || conv <= 0 {
		return
	}
	if indexOf(h.sessions[conv], s) < 0 {
		h.sessions[conv] = append(h.sessions[conv], s)
	}
	// Subscribing again is harmless, and its answer catches the new
	// session up with what was stored since it connected.
	for _, g := range h.grains[conv] {
		ctx.Request(g, &chatpb.Subscribe{ConversationId: conv})
	}
	if t, ok := h.ended[conv]; ok {
		delete(h.ended, conv)
		if time.Since(t) < endedFor {
			h.readLastSeq(ctx, conv)
		}
	}
}

// started tells the other members' hubs that this one exists (see
// chatpb.HubStarted).
func (h *hub) started(ctx actor.Context) {
	self := h.node.system.Address()
	for _, addr := range h.node.memberAddrs() {
		if addr != self {
			ctx.Request(actor.NewPID(addr, hubName), &chatpb.HubStarted{})
		}
	}
}

func (h *hub) sweepEnded(ctx actor.Context) {
	h.sweepArmed = false
	for conv, t := range h.ended {
		if time.Since(t) >= endedFor {
			delete(h.ended, conv)
		}
	}
	if len(h.ended) > 0 {
		h.sweepArmed = true
		h.after(ctx, endedFor, &hubSweep{})
	}
}

func (h *hub) leave(ctx actor.Context, conv int64, s *actor.PID) {
	if s == nil {
		return
	}
	subs, ok := removePID(h.sessions[conv], s)
	if !ok {
		return
	}
	if len(subs) > 0 {
		h.sessions[conv] = subs
		return
	}
	delete(h.sessions, conv)
	for _, g := range h.grains[conv] {
		ctx.Request(g, &chatpb.Unsubscribe{ConversationId: conv})
	}
}

// announced records g as an activation of conv. Two activations of one
// conversation are both followed until one terminates: sessions drop what
// they have already delivered and fill gaps, so neither costs a message.
func (h *hub) announced(ctx actor.Context, conv int64, g *actor.PID) {
	if g == nil || conv <= 0 {
		return
	}
	h.node.logger.Debug("hub: grain announced", "conversation_id", conv, "pid", pidValue{g}, "sessions", len(h.sessions[conv]))
	if indexOf(h.grains[conv], g) >= 0 {
		// Announced again (a topology change): subscribe again, in case
		// the grain dropped this hub (it saw this node's connection
		// fail); harmless otherwise.
		if len(h.sessions[conv]) > 0 {
			ctx.Request(g, &chatpb.Subscribe{ConversationId: conv})
		}
		return
	}
	h.follow(ctx, conv, g)
	if len(h.sessions[conv]) > 0 {
		ctx.Request(g, &chatpb.Subscribe{ConversationId: conv})
	}
}

// follow records and watches g as an activation of conv.
func (h *hub) follow(ctx actor.Context, conv int64, g *actor.PID) {
	h.grains[conv] = append(h.grains[conv], g)
	h.byGrain[keyOf(g)] = conv
	ctx.Watch(g)
}

// subscribed passes the grain's last seq on to the conversation's sessions,
// or retries a subscription the grain could not take (its store was down).
//
// A catch-up from an activation the hub does not follow comes from a grain
// that took the hub back when its node returned to the topology (see
// conversationGrain.welcomeBack) while the hub had let the grain go: the hub
// follows it as if announced, and unsubscribes when no session here follows
// the conversation any more.
func (h *hub) subscribed(ctx actor.Context, msg *chatpb.Subscribed) {
	conv, g := msg.GetConversationId(), ctx.Sender()
	if g == nil {
		return
	}
	if indexOf(h.grains[conv], g) < 0 {
		if !msg.GetCatchUp() || msg.GetErrorCode() != "" {
			return // from an activation that has ended
		}
		h.follow(ctx, conv, g) // as if announced: a session may join later
	}
	if len(h.sessions[conv]) == 0 {
		if msg.GetCatchUp() {
			// The grain took this hub back (or kept it while an
			// Unsubscribe was lost with the connection).
			ctx.Request(g, &chatpb.Unsubscribe{ConversationId: conv})
		}
		return // no one to tell
	}
	switch msg.GetErrorCode() {
	case "":
	case chatpb.CodeMoved, wire.CodeConversationNotFound:
		// The activation stops; its Terminated makes the hub read the store.
		return
	default:
		// Its store failed: try again.
		h.node.logger.Warn("hub: subscription refused", "conversation_id", conv, "code", msg.GetErrorCode())
		h.after(ctx, max(h.node.cfg.RetryInterval, time.Second), &hubRetry{conversationID: conv, grain: g})
		return
	}
	h.tell(ctx, conv, msg.GetLastSeq())
}

func (h *hub) tell(ctx actor.Context, conv, lastSeq int64) {
	c := &caughtUp{conversationID: conv, lastSeq: lastSeq}
	for _, s := range h.sessions[conv] {
		ctx.Send(s, c)
	}
}

// grainUnreachable keeps following an activation whose node's connection
// broke while the node is still a member (see Node.mayBeAlive): it reads
// the conversation's last seq, as for an ended activation (what was stored
// meanwhile may not have come through), and watches and subscribes again a
// while later.
func (h *hub) grainUnreachable(ctx actor.Context, who *actor.PID) {
	conv, ok := h.byGrain[keyOf(who)]
	if !ok {
		return
	}
	h.node.logger.Debug("hub: grain unreachable, its node still a member: watching it again", "conversation_id", conv, "pid", pidValue{who})
	h.node.rewatchLater(ctx, who)
	h.readLastSeq(ctx, conv)
}

func (h *hub) rewatch(ctx actor.Context, g *actor.PID) {
	conv, ok := h.byGrain[keyOf(g)]
	if !ok {
		return // ended meanwhile
	}
	if !h.node.isMember(g.GetAddress()) {
		h.grainTerminated(ctx, g, actor.TerminatedReason_AddressTerminated) // its node left: it is gone
		return
	}
	ctx.Watch(g)
	if len(h.sessions[conv]) > 0 {
		ctx.Request(g, &chatpb.Subscribe{ConversationId: conv})
		// Read the store again too: the subscription's answer, which
		// catches the sessions up, may be lost on a connection that is
		// not back yet, with deliveries the broken one dropped.
		h.readLastSeq(ctx, conv)
	}
}

// grainTerminated forgets a conversation's activation and, if sessions
// follow the conversation, reads its last seq from the store: the grain may
// have stored messages it did not deliver.
func (h *hub) grainTerminated(ctx actor.Context, who *actor.PID, why actor.TerminatedReason) {
	k := keyOf(who)
	conv, ok := h.byGrain[k]
	if !ok {
		return
	}
	delete(h.byGrain, k)
	h.node.logger.Debug("hub: grain terminated", "conversation_id", conv, "pid", pidValue{who}, "sessions", len(h.sessions[conv]))
	gs, _ := removePID(h.grains[conv], who)
	if len(gs) == 0 {
		delete(h.grains, conv)
	} else {
		h.grains[conv] = gs
	}
	if len(h.sessions[conv]) > 0 && len(h.grains[conv]) == 0 &&
		(why == actor.TerminatedReason_AddressTerminated || h.node.topologyChangedWithin(orphanWindow)) {
		// Its node died or the topology moves: the next activation's
		// announce may never come (lost on a connection that was broken
		// when it was sent): look it up if none has announced itself
		// by then. (A grain that passivates while the topology stands
		// still is left alone: the next post activates it.)
		h.after(ctx, orphanAfter, &hubOrphan{conversationID: conv})
	}
	if len(h.sessions[conv]) == 0 {
		h.ended[conv] = time.Now()
		if !h.sweepArmed {
			h.sweepArmed = true
			h.after(ctx, endedFor, &hubSweep{})
		}
		return
	}
	h.readLastSeq(ctx, conv)
}

func (h *hub) readLastSeq(ctx actor.Context, conv int64) {
	if len(h.sessions[conv]) == 0 {
		return
	}
	if h.reading[conv] != 0 {
		h.reading[conv] = readAgain
		return
	}
	h.reading[conv] = readOnce
	self, root, n := ctx.Self(), h.node.system.Root, h.node
	go func() {
		var (
			info storage.Conversation
			err  error
		)
		defer func() {
			// Not under an actor's recovery: a store that panics must
			// not take the node down (see conversationGrain.recoverPanic).
			if r := recover(); r != nil {
				err = fmt.Errorf("read conversation %d: panic: %v", conv, r)
			}
			root.Send(self, &hubLastSeq{conversationID: conv, lastSeq: info.LastSeq, err: err})
		}()
		c, cancel := context.WithTimeout(context.Background(), n.cfg.StoreTimeout)
		defer cancel()
		info, err = n.store.Conversation(c, conv)
	}()
}

func (h *hub) lastSeqRead(ctx actor.Context, msg *hubLastSeq) {
	conv := msg.conversationID
	again := h.reading[conv] == readAgain
	delete(h.reading, conv)
	if again {
		h.readLastSeq(ctx, conv)
	}
	if msg.err != nil {
		h.node.logger.Warn("hub: read a conversation's last seq", "conversation_id", conv, "err", msg.err)
		if !again {
			h.after(ctx, max(h.node.cfg.RetryInterval, time.Second), &hubRetry{conversationID: conv})
		}
		return
	}
	h.tell(ctx, conv, msg.lastSeq)
}

func (h *hub) retry(ctx actor.Context, msg *hubRetry) {
	conv := msg.conversationID
	if msg.grain == nil {
		h.readLastSeq(ctx, conv)
		return
	}
	if indexOf(h.grains[conv], msg.grain) >= 0 && len(h.sessions[conv]) > 0 {
		ctx.Request(msg.grain, &chatpb.Subscribe{ConversationId: conv})
	}
}

// orphaned looks up the grain of a conversation whose sessions here follow
// no activation since one ended (see grainTerminated); found applies the
// answer like an announce.
func (h *hub) orphaned(ctx actor.Context, conv int64) {
	if len(h.sessions[conv]) == 0 || len(h.grains[conv]) > 0 || h.looking[conv] {
		return
	}
	h.looking[conv] = true
	h.node.logger.Debug("hub: no activation announced itself: looking the grain up", "conversation_id", conv)
	self, root, n := ctx.Self(), h.node.system.Root, h.node
	go func() {
		root.Send(self, &hubFound{conversationID: conv, pid: n.lookup(conversationIdentity(conv), ConversationKind)})
	}()
}

func (h *hub) found(ctx actor.Context, msg *hubFound) {
	conv := msg.conversationID
	delete(h.looking, conv)
	if len(h.sessions[conv]) == 0 || len(h.grains[conv]) > 0 {
		return
	}
	if msg.pid == nil {
		h.after(ctx, orphanAfter, &hubOrphan{conversationID: conv})
		return
	}
	h.announced(ctx, conv, msg.pid)
}

func (h *hub) after(ctx actor.Context, d time.Duration, msg any) {
	self, root := ctx.Self(), h.node.system.Root
	time.AfterFunc(d, func() { root.Send(self, msg) })
}

// indexOf returns the position of pid in pids, -1 if absent.
func indexOf(pids []*actor.PID, pid *actor.PID) int {
	for i, p := range pids {
		if p.Id == pid.Id && p.Address == pid.Address {
			return i
		}
	}
	return -1
}

// removePID drops pid from pids (order is not kept), reporting whether it
// was there; the result is nil when empty.
func removePID(pids []*actor.PID, pid *actor.PID) ([]*actor.PID, bool) {
	i := indexOf(pids, pid)
	if i < 0 {
		return pids, false
	}
	last := len(pids) - 1
	pids[i] = pids[last]
	pids[last] = nil
	if last == 0 {
		return nil, true
	}
	return pids[:last], true
}
