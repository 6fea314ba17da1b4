package actors

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// conversationGrain is the virtual actor of one conversation (identity: the
// conversation id). It stores posted messages through the appender, which
// assigns their seq inside the storing transaction, then delivers each stored
// message to its subscribed sessions and to the inbox grain.
//
// State that is lost when the grain passivates or moves is rebuilt from the
// store: PostgreSQL, not the grain, is the source of truth for seq.
type conversationGrain struct {
	node   *Node
	logger *slog.Logger // built on first use: see log

	id     int64
	loaded bool
	// lastSeq is the newest seq this activation has delivered or loaded.
	lastSeq int64
	entry   *chatpb.InboxEntry // the conversation's user, for the inbox
	// status and assignee are the conversation's desk state, loaded with it
	// and kept current by the changes and reopens this activation stores.
	status   string
	assignee *chatpb.DeskUser
	// recent are the senders of the newest messages (see stale).
	recent []recentSender
	// subs are the subscribers: the hubs of the nodes where the visitor is
	// connected (usually one), and admin sessions that opened the
	// conversation. Only the sessions keep the grain active (see idle).
	subs []*actor.PID
	// away are session subscribers whose node left the topology (see
	// awaySubs).
	away awaySubs
	// viewers are the staff sessions among subs (see live.go); typedAt is
	// when each user's typing was last relayed.
	viewers []viewer
	typedAt map[int64]time.Time
	// staffRead and visitorRead are the read receipts (see receipts.go).
	staffRead, visitorRead int64
	// lastActive is when the grain last received anything but its own
	// periodic check (see idle).
	lastActive time.Time

	// Posts on their way to the store. One batch of this conversation is
	// written at a time (writing), so seqs are assigned, acknowledged and
	// delivered in order; posts arriving meanwhile wait in queued (bounded)
	// and go together in the next batch.
	writing []grainPost
	queued  []grainPost
	// retries counts the store failures in a row of the batch at the head
	// of queued; while retryArmed, a retryFlush is pending and nothing is
	// written before it (see appended).
	retries    int
	retryArmed bool

	// The inbox grain (see grainRef); notifications wait in inboxQueue
	// (bounded) while it is looked up.
	inbox      grainRef
	inboxQueue []*chatpb.InboxNotify
	// lastNotify is the newest notification sent to the inbox, at
	// lastNotifyAt. It is sent again to the next inbox activation when the
	// one it went to stops within GrainIdleTimeout of it: that one may have
	// dropped it (stopping, or an activation that is no longer the owner),
	// and without a later message admins would not learn of it. The inbox
	// ignores it if it knows it already. An inbox that stops later stopped
	// idle, having dropped nothing; the grain forgets lastNotify then (see
	// checkIdle), so that a quiet grain neither holds it nor wakes the inbox.
	lastNotify   *chatpb.InboxNotify
	lastNotifyAt time.Time
	// claim is the activation's side of placement (see placement).
	claim claimant
}

// grainPost is a post waiting for the store, with the session to answer.
type grainPost struct {
	from *actor.PID
	post *chatpb.Post
	// received is when the grain received the post: it retries storing it
	// until PostTimeout after that.
	received time.Time
	// retried is set once a write of the post failed and was retried: if
	// the store then finds it stored, that is the grain's own first write
	// (its commit's answer was lost), not the client's duplicate.
	retried bool
}

// retryFlush makes a grain write its queued posts again after the store
// failed.
type retryFlush struct{}

// appended is the store's answer to the batch being written (see flush).
type appended struct {
	results []storage.AppendResult
	err     error
}

// Bounds of a conversation's posts waiting for the store: beyond
// maxQueuedPosts a post is refused with unavailable; one batch carries at
// most maxPostsPerBatch of them.
const (
	maxQueuedPosts   = 1000
	maxPostsPerBatch = 256
)

// maxInboxQueue bounds the notifications a conversation keeps while the inbox
// grain is being looked up. Beyond it the oldest are dropped: admins then see
// a gap at the next message and fill it from the store.
const maxInboxQueue = 1000

func newConversationGrain(n *Node) actor.Actor {
	return &conversationGrain{node: n, inbox: grainRef{key: inboxKey{}, identity: inboxIdentity, kind: InboxKind}}
}

// log returns the grain's logger, built on first use (see session.log).
func (g *conversationGrain) log() *slog.Logger {
	if g.logger == nil {
		g.logger = g.node.logger.With("component", "conversation", "conversation_id", g.id)
	}
	return g.logger
}

// debug logs at debug level, building the logger only if that level is on.
func (g *conversationGrain) debug(msg string, args ...any) {
	if g.node.logger.Enabled(context.Background(), slog.LevelDebug) {
		g.log().Debug(msg, args...)
	}
}

func (g *conversationGrain) Receive(ctx actor.Context) {
	defer g.recoverPanic(ctx)
	if _, ok := ctx.Message().(housekeeping); !ok {
		g.lastActive = time.Now()
	}
	switch msg := ctx.Message().(type) {
	case *cluster.ClusterInit:
		// The identity as placed (Place keyed it so), even if it does not parse.
		g.claim = claimant{kind: ConversationKind, identity: msg.Identity.GetIdentity(), log: g.log, activated: time.Now()}
		id, err := strconv.ParseInt(msg.Identity.GetIdentity(), 10, 64)
		if err != nil || id <= 0 {
			g.node.logger.Error("conversation grain with a bad identity", "identity", msg.Identity.GetIdentity())
			ctx.Stop(ctx.Self())
			return
		}
		g.id = id
		g.debug("conversation activated", "node", g.node.system.ID, "address", g.node.system.Address())
		g.node.metrics.GrainActivated("conversation")
		g.node.addGrain(ctx.Self(), g.id)
		g.announce(ctx)
		// The node tells its grains to check their owner when the topology
		// changes; one check soon after activation covers a change that
		// raced with it.
		g.after(ctx, g.node.cfg.OwnerCheckInterval, &checkOwner{})
		g.after(ctx, g.node.cfg.GrainIdleTimeout, &checkIdle{})
	case *chatpb.Post:
		if g.claim.refuses(ctx, g.node) {
			reply(ctx, &chatpb.PostResult{Ref: msg.GetRef(), ErrorCode: chatpb.CodeMoved})
			return
		}
		g.post(ctx, msg)
	case *chatpb.Subscribe:
		if g.claim.refuses(ctx, g.node) {
			reply(ctx, &chatpb.Subscribed{ConversationId: g.id, ErrorCode: chatpb.CodeMoved})
			return
		}
		g.subscribe(ctx, msg)
	case *chatpb.Typing:
		g.typing(ctx, msg)
	case *chatpb.Receipt:
		g.receipt(ctx, msg)
	case *checkOwner:
		g.claim.verify(ctx, g.node)
	case *topologyChanged:
		if g.claim.verify(ctx, g.node); g.claim.stopped {
			return
		}
		g.announce(ctx)
		g.welcomeBack(ctx)
	case *chatpb.ClaimResult, *claimExpired:
		g.claim.receive(ctx, g.node, msg)
	case *checkIdle:
		g.checkIdle(ctx)
	case *chatpb.Unsubscribe:
		if s := ctx.Sender(); s != nil {
			g.removeSub(ctx, s)
			ctx.Unwatch(s)
			delete(g.away, keyOf(s)) // not to be taken back (see welcomeBack)
		}
	case *refResolved:
		g.inboxResolved(ctx, msg.pid) // the grain's one reference
	case *refRetry:
		g.resolveInbox(ctx)
	case *actor.Terminated:
		if !g.inbox.is(msg.Who) && g.hasSub(msg.Who) {
			if g.node.mayBeAlive(msg) {
				g.node.rewatchLater(ctx, msg.Who) // a subscriber: keep it meanwhile
				return
			}
			if msg.GetWhy() == actor.TerminatedReason_AddressTerminated {
				// Hubs too: the announce that would make a hub
				// subscribe again when its node is back can be lost
				// on a connection that breaks again at once, and the
				// hub, whose own view may never have changed, would
				// not know it lost its subscription.
				g.away.leave(awaySub{pid: msg.Who})
			}
		}
		g.terminated(ctx, msg.Who)
	case *rewatch:
		if !g.hasSub(msg.pid) {
			return
		}
		if !g.node.isMember(msg.pid.GetAddress()) {
			g.away.leave(awaySub{pid: msg.pid})
			g.terminated(ctx, msg.pid)
			return
		}
		ctx.Watch(msg.pid)
		// What was delivered while the connection was broken may be
		// lost, and the subscriber cannot tell (its own connection to
		// this node may never have broken): catch it up from the store.
		// Without this, the last messages of a conversation that then
		// goes quiet never reach it.
		g.log().Debug("a subscriber's connection broke: catching it up", "pid", pidValue{msg.pid}, "last_seq", g.lastSeq)
		ctx.Request(msg.pid, &chatpb.Subscribed{ConversationId: g.id, LastSeq: g.lastSeq, CatchUp: true})
		g.sendReceipt(ctx, msg.pid)
	case *appended:
		g.appended(ctx, msg)
	case *chatpb.Change:
		if g.claim.refuses(ctx, g.node) {
			reply(ctx, &chatpb.ChangeResult{Ref: msg.GetRef(), ErrorCode: chatpb.CodeMoved})
			return
		}
		g.change(ctx, msg)
	case *changed:
		g.changeDone(ctx, msg)
	case *retryFlush:
		g.retryArmed = false
		g.flush(ctx)
	case *actor.Stopped:
		g.node.removeGrain(ctx.Self())
		g.node.placement.stopped(g.claim.kind, g.claim.identity, ctx.Self())
		g.abandonPosts(ctx)
		g.node.metrics.GrainPassivated("conversation")
	}
}

// checkIdle passivates the grain if it is idle, else checks again when it
// will have been idle long enough if nothing comes meanwhile.
func (g *conversationGrain) checkIdle(ctx actor.Context) {
	if g.lastNotify != nil && time.Since(g.lastNotifyAt) >= g.node.cfg.GrainIdleTimeout {
		g.lastNotify = nil
	}
	switch {
	case g.claim.stopped:
	case g.idle():
		g.debug("passivating idle conversation")
		ctx.Stop(ctx.Self())
	default:
		wait := max(g.node.cfg.GrainIdleTimeout-time.Since(g.lastActive), g.node.cfg.GrainIdleTimeout/10)
		g.after(ctx, wait, &checkIdle{})
	}
}

// terminated handles the end of a watched actor: the inbox (look it up again
// and give the next activation the newest notification, which the ended one
// may have dropped), or a subscriber.
func (g *conversationGrain) terminated(ctx actor.Context, who *actor.PID) {
	if g.inbox.forget(ctx, who) {
		if g.lastNotify != nil && len(g.inboxQueue) == 0 &&
			time.Since(g.lastNotifyAt) < g.node.cfg.GrainIdleTimeout {
			g.inboxQueue = append(g.inboxQueue, g.lastNotify)
			g.resolveInbox(ctx)
		}
		return
	}
	g.removeSub(ctx, who)
}

// idle reports whether the grain may passivate: no session subscribed (hubs
// do not count: they hear of the next activation from its announce), no post
// waiting for the store, and nothing received for GrainIdleTimeout.
// Grains check it with a timer of their own (checkIdle) rather than through
// protoactor's receive timeout, whose timer touches the actor's context from
// another goroutine.
func (g *conversationGrain) idle() bool {
	return !g.sessionSubscribed() && len(g.writing) == 0 && len(g.queued) == 0 && !g.retryArmed &&
		time.Since(g.lastActive) >= g.node.cfg.GrainIdleTimeout
}

// sessionSubscribed reports whether a session (not a hub) subscribes.
func (g *conversationGrain) sessionSubscribed() bool {
	for _, s := range g.subs {
		if s.Id != hubName {
			return true
		}
	}
	return false
}

// checkOwner makes a grain verify that it still owns its identity (see
// Node.owns); topologyChanged (see Node.checkGrainOwners) makes it check and
// announce itself again; checkIdle makes it passivate if idle.
type (
	checkOwner      struct{}
	topologyChanged struct{}
	checkIdle       struct{}
)

// housekeeping marks the grain's own timers and the node's notices: they do
// not count as activity, which keeps a grain from passivating.
type housekeeping interface{ housekeeping() }

func (*checkOwner) housekeeping()      {}
func (*topologyChanged) housekeeping() {}
func (*checkIdle) housekeeping()       {}
func (*retryFlush) housekeeping()      {}

// announce tells every member's hub, this node's included, that this is the
// conversation's activation (see hub).
func (g *conversationGrain) announce(ctx actor.Context) {
	a := &chatpb.Announce{ConversationId: g.id}
	self, hub := g.node.system.Address(), g.node.hub.Load()
	for _, addr := range g.node.memberAddrs() {
		if addr != self {
			ctx.Request(actor.NewPID(addr, hubName), a)
		}
	}
	// The local hub even before the topology lists this node; none before
	// Node.Start spawned it, which then makes local grains announce again.
	if hub != nil {
		ctx.Request(hub, a)
	}
}

// after sends msg to the grain after d.
func (g *conversationGrain) after(ctx actor.Context, d time.Duration, msg any) {
	self, root := ctx.Self(), g.node.system.Root
	time.AfterFunc(d, func() { root.Send(self, msg) })
}

// recoverPanic turns a panic into an error answer and a stop, so that
// watchers (sessions) see Terminated and re-subscribe to a fresh activation
// instead of talking to a grain that silently lost its subscribers.
func (g *conversationGrain) recoverPanic(ctx actor.Context) {
	r := recover()
	if r == nil {
		return
	}
	g.node.logger.Error("conversation grain panicked", "conversation_id", g.id, "panic", fmt.Sprint(r))
	if p, ok := ctx.Message().(*chatpb.Post); ok && ctx.Sender() != nil {
		reply(ctx, &chatpb.PostResult{Ref: p.GetRef(), ErrorCode: wire.CodeInternal, ErrorMessage: messageForCode(wire.CodeInternal)})
	}
	ctx.Stop(ctx.Self())
}

// load reads the conversation and its user from the store once per activation.
func (g *conversationGrain) load() error {
	if g.loaded {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.node.cfg.StoreTimeout)
	defer cancel()
	// One read, grouped with the other grains' (batch.Loader): hundreds of
	// grains activate at once after a cold start.
	st, err := g.node.loader.Load(ctx, g.id)
	if err != nil {
		return err
	}
	conv, user := st.Conversation, st.Visitor
	g.loadDesk(conv, st.Assignee)
	if r := conv.Receipts; r != nil {
		g.staffRead, g.visitorRead = max(g.staffRead, r.Staff), max(g.visitorRead, r.Visitor)
	}
	g.lastSeq = max(g.lastSeq, conv.LastSeq)
	g.entry = &chatpb.InboxEntry{
		ConversationId: g.id,
		UserId:         user.ID,
		UserExternalId: user.ExternalID,
		UserName:       user.Name,
		Team:           user.Team,
	}
	g.loaded = true
	return nil
}

func (g *conversationGrain) post(ctx actor.Context, p *chatpb.Post) {
	if g.entry != nil && p.SenderTeam != nil && !p.GetSenderIsAdmin() && p.GetSenderId() == g.entry.GetUserId() && p.GetSenderTeam() != g.entry.GetTeam() {
		// The visitor's token names another team now (Connect stored it):
		// the inbox entries this grain sends follow. A post without a
		// team (an older node's) changes nothing.
		g.entry.Team = p.GetSenderTeam()
	}
	pp := grainPost{from: ctx.Sender(), post: p, received: time.Now()}
	if len(g.queued) >= maxQueuedPosts {
		g.failPost(ctx, pp, storage.Errorf(storage.EUNAVAILABLE, "conversation %d has too many messages waiting to be stored", g.id))
		return
	}
	g.queued = append(g.queued, pp)
	g.flush(ctx)
}

// flush submits the queued posts (up to maxPostsPerBatch) as the next batch;
// the appender answers with an appended message. The grain keeps serving
// other messages meanwhile.
func (g *conversationGrain) flush(ctx actor.Context) {
	if len(g.queued) == 0 || g.writing != nil || g.retryArmed {
		return
	}
	// A grain loads its conversation before its first write; a store that
	// fails then is retried like a failed batch (a cold grain is the usual
	// case after a quiet spell: it must ride out a short outage too).
	if err := g.load(); err != nil {
		if code := storage.ErrorCode(err); code == storage.ENOTFOUND || code == storage.EINTERNAL {
			// No such conversation, or a bug in the load: this
			// activation ends (the next post activates a fresh one).
			for _, pp := range g.queued {
				g.failPost(ctx, pp, err)
			}
			g.queued = nil
			ctx.Stop(ctx.Self())
			return
		}
		if !g.retry(ctx, nil, err) {
			for _, pp := range g.queued {
				g.failPost(ctx, pp, err)
			}
			g.queued = nil
		}
		return
	}
	for len(g.queued) > 0 && g.writing == nil && !g.retryArmed {
		if !g.guard(ctx) {
			return
		}
		if len(g.queued) == 0 {
			break
		}
		n := g.batchSize()
		batch := g.queued[:n:n]
		g.queued = g.queued[n:]
		if len(g.queued) == 0 {
			g.queued = nil
		}
		msgs := make([]storage.NewMessage, len(batch))
		for i, pp := range batch {
			p := pp.post
			msgs[i] = storage.NewMessage{
				ConversationID: g.id,
				SenderID:       p.GetSenderId(),
				SenderName:     p.GetSenderName(),
				SenderIsAdmin:  p.GetSenderIsAdmin(),
				Body:           p.GetBody(),
				ClientMsgID:    p.GetClientMsgId(),
			}
		}
		self, root := ctx.Self(), g.node.system.Root
		err := g.node.appender.Submit(msgs, time.Now().Add(g.node.cfg.StoreTimeout), func(res []storage.AppendResult, err error) {
			root.Send(self, &appended{results: res, err: err})
		})
		if err != nil {
			for _, pp := range batch {
				g.failPost(ctx, pp, err)
			}
			continue
		}
		g.writing = batch
	}
}

// guard refuses the stale posts at the head of the queue (see stale). A
// guarded post is checked with nothing ahead of it being written, so it
// goes first in its batch; guard reports false when the grain must wait
// (a batch is being written, or the store failed and a retry is armed).
func (g *conversationGrain) guard(ctx actor.Context) bool {
	for len(g.queued) > 0 && g.queued[0].post.GetBasedOnSeq() > 0 {
		pp := g.queued[0]
		stale, err := g.stale(pp.post)
		if err != nil {
			if !g.retry(ctx, nil, err) {
				g.queued = g.queued[1:]
				g.failPost(ctx, pp, err)
				continue
			}
			return false
		}
		if !stale {
			return true
		}
		g.queued = g.queued[1:]
		g.refuseStale(ctx, pp)
	}
	return true
}

// batchSize is how many queued posts go in the next batch: up to
// maxPostsPerBatch, cut before a guarded post (other than the first), which
// must be checked once the posts ahead of it are stored.
func (g *conversationGrain) batchSize() int {
	n := min(len(g.queued), maxPostsPerBatch)
	for i := 1; i < n; i++ {
		if g.queued[i].post.GetBasedOnSeq() > 0 {
			return i
		}
	}
	return n
}

// appended answers the batch being written, delivers its new messages in
// seq order, and sends the next batch.
func (g *conversationGrain) appended(ctx actor.Context, a *appended) {
	batch := g.writing
	g.writing = nil
	if a.err != nil && g.retry(ctx, batch, a.err) {
		return
	}
	g.retries = 0
	for i, pp := range batch {
		if a.err != nil {
			g.failPost(ctx, pp, a.err)
			continue
		}
		res := a.results[i]
		if res.Err != nil {
			g.failPost(ctx, pp, res.Err)
			continue
		}
		msg := toProto(res.Message)
		if res.Reopened != nil {
			// The visitor's message reopened the conversation: the event
			// comes before the message in the thread.
			g.status = storage.StatusOpen
			g.fanOutEvent(ctx, eventToProto(*res.Reopened))
		}
		if pp.from != nil {
			ctx.Request(pp.from, &chatpb.PostResult{Ref: pp.post.GetRef(), Message: msg, Duplicate: res.Duplicate && !pp.retried})
		}
		if msg.GetSeq() <= g.lastSeq {
			// Delivered already by this activation, or older than what
			// it loaded.
			continue
		}
		// A duplicate newer than that is a resend of a post that an
		// activation which stopped committed without delivering it:
		// deliver it now (sessions drop what they have already).
		g.lastSeq = msg.GetSeq()
		g.remember(msg)
		// Its author's typing line goes when it shows: their next typing
		// is relayed at once, not an interval after the last.
		delete(g.typedAt, msg.GetSenderId())
		if !res.Duplicate {
			g.node.metrics.MessageStored()
		}
		d := newDelivery(msg)
		for _, pid := range g.subs {
			ctx.Send(pid, d)
		}
		g.notifyInbox(ctx, msg, d)
	}
	g.flush(ctx)
}

// retry puts a batch that the store failed back at the head of the queue and
// writes it again after a backoff, unless the store's error is final or its
// oldest post has waited PostTimeout. Retrying here, not in the sessions,
// keeps the conversation's order: later posts wait behind the batch. A batch
// whose commit was lost may be stored already; its posts' idempotency keys
// make the retry store them once.
func (g *conversationGrain) retry(ctx actor.Context, batch []grainPost, err error) bool {
	g.queued = append(batch[:len(batch):len(batch)], g.queued...)
	if codeFromStorage(err) != wire.CodeUnavailable || time.Since(g.queued[0].received) >= g.node.cfg.PostTimeout {
		g.queued = g.queued[len(batch):]
		return false
	}
	for i := range batch {
		g.queued[i].retried = true
	}
	g.retries++
	if g.retries == 1 {
		g.log().Warn("store failed; retrying", "posts", len(g.queued), "err", err)
	}
	backoff := min(g.node.cfg.RetryInterval<<min(g.retries-1, 4), 2*time.Second)
	g.retryArmed = true
	g.after(ctx, backoff, &retryFlush{})
	return true
}

// failPost answers pp with the wire code of err.
func (g *conversationGrain) failPost(ctx actor.Context, pp grainPost, err error) {
	code := codeFromStorage(err)
	if code == wire.CodeInternal || code == wire.CodeUnavailable {
		g.log().Warn("post failed", "err", err)
	}
	if pp.from != nil {
		ctx.Request(pp.from, &chatpb.PostResult{Ref: pp.post.GetRef(), ErrorCode: code, ErrorMessage: messageForCode(code)})
	}
}

// abandonPosts answers the posts this stopping activation will not finish
// with moved: their sessions resend them to the next activation with their
// idempotency keys, so a post of the batch being written, which may be
// committed, is neither lost nor stored twice.
func (g *conversationGrain) abandonPosts(ctx actor.Context) {
	for _, pp := range append(g.writing, g.queued...) {
		if pp.from != nil {
			ctx.Request(pp.from, &chatpb.PostResult{Ref: pp.post.GetRef(), ErrorCode: chatpb.CodeMoved})
		}
	}
	g.writing, g.queued = nil, nil
}

func (g *conversationGrain) notifyInbox(ctx actor.Context, msg *chatpb.ChatMessage, d *chatpb.Delivery) {
	n := &chatpb.InboxNotify{Entry: g.inboxEntry(msg), Delivery: d}
	g.lastNotify, g.lastNotifyAt = n, time.Now()
	g.sendInbox(ctx, n)
}

// sendInbox sends n to the inbox grain, or queues it while the grain is
// looked up.
func (g *conversationGrain) sendInbox(ctx actor.Context, n *chatpb.InboxNotify) {
	if g.inbox.pid != nil {
		ctx.Send(g.inbox.pid, n)
		return
	}
	if len(g.inboxQueue) >= maxInboxQueue {
		g.inboxQueue = g.inboxQueue[1:]
		g.log().Warn("inbox unreachable: dropped the oldest queued notification; admins will fill the gap")
	}
	g.inboxQueue = append(g.inboxQueue, n)
	g.resolveInbox(ctx)
}

// resolveInbox looks the inbox grain up, unless the grain has it.
func (g *conversationGrain) resolveInbox(ctx actor.Context) {
	if g.inbox.pid == nil {
		g.inbox.resolve(ctx, g.node)
	}
}

// inboxResolved sends the queued notifications to the inbox found, or tries
// again later.
func (g *conversationGrain) inboxResolved(ctx actor.Context, pid *actor.PID) {
	if _, changed := g.inbox.resolved(ctx, pid); !changed {
		if pid == nil {
			g.inbox.retryLater(ctx, g.node)
		}
		return
	}
	for _, n := range g.inboxQueue {
		ctx.Send(pid, n)
	}
	g.inboxQueue = nil
}

func (g *conversationGrain) subscribe(ctx actor.Context, msg *chatpb.Subscribe) {
	sender := ctx.Sender()
	if sender == nil {
		return
	}
	if err := g.load(); err != nil {
		code := codeFromStorage(err)
		reply(ctx, &chatpb.Subscribed{ConversationId: g.id, ErrorCode: code, ErrorMessage: messageForCode(code)})
		if c := storage.ErrorCode(err); c == storage.ENOTFOUND || c == storage.EINTERNAL {
			ctx.Stop(ctx.Self()) // no such conversation, or a bug in the load: as in flush
		}
		return
	}
	if indexOf(g.subs, sender) < 0 {
		g.subs = append(g.subs, sender)
		ctx.Watch(sender)
	}
	reply(ctx, &chatpb.Subscribed{ConversationId: g.id, LastSeq: g.lastSeq})
	g.sendReceipt(ctx, sender)
	if sender.GetId() != hubName {
		g.addViewer(ctx, sender, msg.GetUserId(), msg.GetUserName())
	}
}

// removeSub drops pid from subs (and from the viewers).
func (g *conversationGrain) removeSub(ctx actor.Context, pid *actor.PID) {
	g.subs, _ = removePID(g.subs, pid)
	g.removeViewer(ctx, pid)
}

// hasSub reports whether pid subscribes.
func (g *conversationGrain) hasSub(pid *actor.PID) bool { return indexOf(g.subs, pid) >= 0 }

// welcomeBack subscribes again the hub and sessions of a node that left the
// topology and is back (see awaySubs): they are told the last seq, and fill
// what they missed from the store. Should that catch-up be lost on a
// connection that breaks again, the grain sees the break while the node is a
// member, and catches them up at the rewatch.
func (g *conversationGrain) welcomeBack(ctx actor.Context) {
	for _, a := range g.away.back(g.node) {
		if g.hasSub(a.pid) {
			continue
		}
		g.subs = append(g.subs, a.pid)
		ctx.Watch(a.pid)
		ctx.Request(a.pid, &chatpb.Subscribed{ConversationId: g.id, LastSeq: g.lastSeq, CatchUp: true})
		g.sendReceipt(ctx, a.pid)
	}
}
