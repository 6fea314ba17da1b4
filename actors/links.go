package actors

import (
	crand "crypto/rand"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/transport/wire"
)

// This file holds how a session reaches grains that may live on any node and
// may die or move at any time:
//
//   - A grain's PID is looked up asynchronously (the cluster's identity lookup
//     can block for seconds while membership changes), so the session keeps
//     serving its socket meanwhile. Posts wait in the link until it resolves.
//   - The session watches every grain it talks to. When one terminates (its
//     node died, it passivated, it moved), the session looks it up again,
//     re-subscribes, and resends the posts that had not been answered. Every
//     post carries an idempotency key, so a resend is stored at most once.
//   - Periodically the session looks up the grains it subscribes to again and
//     moves to the new PID if it changed: the cluster can briefly run two
//     activations of one grain, and this bounds how long a session listens to
//     the wrong one. Gaps that this leaves are filled from the store.

// link is the session's view of one grain.
type link struct {
	pid       *actor.PID
	resolving bool
	waiting   []uint64 // refs of posts waiting for pid
	// confirmed is false from a Subscribe until the grain answers it.
	confirmed bool
}

type pendingPost struct {
	conversationID int64
	post           *chatpb.Post
	clientMsgID    string    // as the client sent it ("" when it sent none)
	deadline       time.Time // when the post times out (see sweepPosts)
	sentTo         *actor.PID
	sentAt         time.Time
	resent         bool
}

// sweepPosts makes a session time out the posts whose deadline passed. A
// session arms one such timer at a time, not one per post.
type sweepPosts struct{}
type grainResolved struct {
	conversationID int64
	pid            *actor.PID
}
type retryResolve struct{ conversationID int64 }
type inboxResolved struct{ pid *actor.PID }
type retryInbox struct{}
type refresh struct{}

// subscribeCheck fires SubscribeTimeout after a Subscribe: if the grain has
// not answered (its node may have died before the watch was in place), the
// session looks it up again.
type subscribeCheck struct {
	conversationID int64
	pid            *actor.PID
}

type inboxCheck struct{ pid *actor.PID }

func newNonce() string {
	b := make([]byte, 9)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

func (s *session) link(conv int64) *link {
	l := s.links[conv]
	if l == nil {
		if len(s.links) >= 256 { // admins talk to many conversations: bound the map
			for c, old := range s.links {
				if !s.subscribedTo(c) && len(old.waiting) == 0 && !old.resolving {
					delete(s.links, c)
				}
			}
		}
		l = &link{}
		s.links[conv] = l
	}
	return l
}

// resolve looks conv's grain up in the background; grainResolved follows.
func (s *session) resolve(ctx actor.Context, conv int64) {
	l := s.link(conv)
	if l.resolving {
		return
	}
	l.resolving = true
	self, root, n := ctx.Self(), s.node.system.Root, s.node
	go func() {
		pid := n.lookup(conversationIdentity(conv), ConversationKind)
		root.Send(self, &grainResolved{conversationID: conv, pid: pid})
	}()
}

func (s *session) resolved(ctx actor.Context, msg *grainResolved) {
	conv := msg.conversationID
	l := s.link(conv)
	l.resolving = false
	if msg.pid == nil {
		if len(l.waiting) > 0 || s.subscribedTo(conv) {
			s.retryLater(ctx, &retryResolve{conversationID: conv})
		}
		return
	}
	if l.pid != nil && l.pid.Equal(msg.pid) {
		return // unchanged (periodic refresh)
	}
	s.debug("grain resolved", "conversation_id", conv, "pid", pidValue{msg.pid}, "previous", pidValue{l.pid})
	if l.pid != nil {
		// The grain moved (or two activations exist): leave the old one.
		ctx.Unwatch(l.pid)
		ctx.Send(l.pid, &chatpb.Unsubscribe{ConversationId: conv})
		s.node.metrics.GrainMoved()
	}
	l.pid = msg.pid
	ctx.Watch(l.pid)
	if s.subscribedTo(conv) {
		s.subscribe(ctx, conv, l)
	}
	waiting := l.waiting
	l.waiting = nil
	for _, ref := range waiting {
		s.dispatch(ctx, ref)
	}
}

func (s *session) resolveInbox(ctx actor.Context) {
	if s.inbox.resolving {
		return
	}
	s.inbox.resolving = true
	self, root, n := ctx.Self(), s.node.system.Root, s.node
	go func() {
		root.Send(self, &inboxResolved{pid: n.lookup(inboxIdentity, InboxKind)})
	}()
}

func (s *session) inboxResolvedMsg(ctx actor.Context, msg *inboxResolved) {
	s.inbox.resolving = false
	if msg.pid == nil {
		s.retryLater(ctx, &retryInbox{})
		return
	}
	if s.inbox.pid != nil && s.inbox.pid.Equal(msg.pid) {
		return
	}
	s.debug("inbox resolved", "pid", pidValue{msg.pid}, "previous", pidValue{s.inbox.pid})
	if s.inbox.pid != nil {
		ctx.Unwatch(s.inbox.pid)
		ctx.Send(s.inbox.pid, &chatpb.InboxUnsubscribe{})
	}
	s.inbox.pid = msg.pid
	ctx.Watch(msg.pid)
	s.subscribeInbox(ctx)
}

// subscribe asks l's grain for conv's deliveries and arranges a check that
// it answered.
func (s *session) subscribe(ctx actor.Context, conv int64, l *link) {
	l.confirmed = false
	ctx.Request(l.pid, &chatpb.Subscribe{ConversationId: conv})
	s.after(ctx, s.node.cfg.SubscribeTimeout, &subscribeCheck{conversationID: conv, pid: l.pid})
}

func (s *session) subscribeInbox(ctx actor.Context) {
	s.inbox.confirmed = false
	ctx.Request(s.inbox.pid, &chatpb.InboxSubscribe{})
	s.after(ctx, s.node.cfg.SubscribeTimeout, &inboxCheck{pid: s.inbox.pid})
}

func (s *session) after(ctx actor.Context, d time.Duration, msg any) {
	self, root := ctx.Self(), s.node.system.Root
	time.AfterFunc(d, func() { root.Send(self, msg) })
}

// forget drops conv's grain PID (unanswered, moved or dead) and looks the
// grain up again if anything needs it.
func (s *session) forget(ctx actor.Context, conv int64, pid *actor.PID) {
	l := s.links[conv]
	if l == nil || l.pid == nil || !l.pid.Equal(pid) {
		return // already moved on
	}
	ctx.Unwatch(l.pid)
	l.pid = nil
	for _, ref := range s.pendingRefs() {
		if p := s.pending[ref]; p.conversationID == conv && p.sentTo != nil && p.sentTo.Equal(pid) {
			p.sentTo = nil
			p.resent = true
			l.waiting = append(l.waiting, ref)
		}
	}
	if len(l.waiting) > 0 || s.subscribedTo(conv) {
		s.retryLater(ctx, &retryResolve{conversationID: conv})
	}
}

func (s *session) forgetInbox(ctx actor.Context, pid *actor.PID) {
	if s.inbox.pid == nil || !s.inbox.pid.Equal(pid) {
		return
	}
	ctx.Unwatch(s.inbox.pid)
	s.inbox.pid = nil
	s.retryLater(ctx, &retryInbox{})
}

func (s *session) retryLater(ctx actor.Context, msg any) {
	s.after(ctx, s.node.cfg.RetryInterval, msg)
}

// scheduleRefresh arranges the next periodic re-lookup, with jitter so that
// sessions do not refresh in step.
func (s *session) scheduleRefresh(ctx actor.Context) {
	d := s.node.cfg.RefreshInterval
	d += time.Duration(rand.Int64N(int64(d)/4 + 1))
	self, root := ctx.Self(), s.node.system.Root
	time.AfterFunc(d, func() { root.Send(self, &refresh{}) })
}

func (s *session) subscribeChecked(ctx actor.Context, msg *subscribeCheck) {
	if l := s.links[msg.conversationID]; l != nil && !l.confirmed && l.pid != nil && l.pid.Equal(msg.pid) {
		s.debug("grain did not confirm the subscription", "conversation_id", msg.conversationID)
		s.forget(ctx, msg.conversationID, msg.pid)
	}
}

func (s *session) inboxChecked(ctx actor.Context, msg *inboxCheck) {
	if !s.inbox.confirmed && s.inbox.pid != nil && s.inbox.pid.Equal(msg.pid) {
		s.forgetInbox(ctx, msg.pid)
	}
}

func (s *session) refresh(ctx actor.Context) {
	if s.stopped {
		return
	}
	if s.cfg.User.IsAdmin {
		s.resolveInbox(ctx)
	}
	for conv := range s.links {
		if s.subscribedTo(conv) {
			s.resolve(ctx, conv)
		}
	}
	s.scheduleRefresh(ctx)
}

// pidKey identifies an actor in the maps of subscribers: PID.String goes
// through protobuf's text format, far too costly for every subscription.
type pidKey struct{ address, id string }

func keyOf(p *actor.PID) pidKey { return pidKey{p.GetAddress(), p.GetId()} }

// pidValue logs a PID as address/id, formatted only if the record is
// logged.
type pidValue struct{ p *actor.PID }

func (v pidValue) LogValue() slog.Value {
	if v.p == nil {
		return slog.StringValue("")
	}
	return slog.StringValue(v.p.GetAddress() + "/" + v.p.GetId())
}

// grainTerminated handles the death of a watched grain: look it up again,
// re-subscribe, and resend the posts it had not answered.
func (s *session) grainTerminated(ctx actor.Context, who *actor.PID) {
	s.debug("grain terminated", "pid", pidValue{who})
	if s.inbox.pid != nil && who.Equal(s.inbox.pid) {
		s.inbox.pid = nil
		s.resolveInbox(ctx)
		return
	}
	for conv, l := range s.links {
		if l.pid != nil && l.pid.Equal(who) {
			s.forget(ctx, conv, who)
		}
	}
}

func (s *session) post(ctx actor.Context, req wire.Request) {
	conv, werr := s.conversationFor(req)
	if werr != nil {
		s.cfg.Sink.PostSettled()
		s.fail(werr)
		return
	}
	// The transport bounds the unsettled posts of a socket
	// (Sink.PostSettled): it stops reading the socket rather than hand
	// the session more, so no post is refused here for being one too many.
	s.nextRef++
	ref := s.nextRef
	key := req.ClientMsgID
	if key == "" {
		// Posts are resent when a grain moves; a key makes that safe.
		key = "~" + s.nonce + "." + strconv.FormatUint(ref, 36)
	}
	s.pending[ref] = &pendingPost{
		conversationID: conv,
		clientMsgID:    req.ClientMsgID,
		deadline:       time.Now().Add(s.node.cfg.PostTimeout),
		post: &chatpb.Post{
			Ref:           ref,
			SenderId:      s.cfg.User.ID,
			SenderName:    s.cfg.User.Name,
			SenderIsAdmin: s.cfg.User.IsAdmin,
			Body:          req.Message,
			ClientMsgId:   key,
		},
	}
	if !s.sweepArmed {
		s.sweepArmed = true
		s.after(ctx, min(s.node.cfg.PostTimeout, s.node.cfg.SubscribeTimeout), &sweepPosts{})
	}
	s.dispatch(ctx, ref)
}

// sweepPosts times out the pending posts whose deadline passed, resends those
// sent SubscribeTimeout ago to a grain whose node has left the topology (a
// lookup right after a node died can still answer with its PID, and the
// watch of an unreachable node may take long to report it), and arms the
// next sweep for the earliest remaining deadline or check.
func (s *session) sweepPosts(ctx actor.Context) {
	s.sweepArmed = false
	if s.stopped {
		return
	}
	now := time.Now()
	var next time.Time
	soonest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, ref := range s.pendingRefs() {
		p := s.pending[ref]
		if p == nil {
			continue // settled by an earlier step of this sweep
		}
		if !p.deadline.After(now) {
			s.postTimedOut(ctx, ref)
			continue
		}
		soonest(p.deadline)
		if p.sentTo == nil {
			continue
		}
		check := p.sentAt.Add(s.node.cfg.SubscribeTimeout)
		switch {
		case check.After(now):
			soonest(check)
		case !s.node.isMember(p.sentTo.GetAddress()):
			// Resent with its idempotency key once the grain is
			// found again; the client hears nothing unless the
			// deadline passes.
			if l := s.links[p.conversationID]; l != nil && l.pid != nil && l.pid.Equal(p.sentTo) {
				s.forget(ctx, p.conversationID, p.sentTo)
			} else {
				// The link moved on already (a refresh): resend there.
				p.sentTo, p.resent = nil, true
				s.dispatch(ctx, ref)
				if q := s.pending[ref]; q != nil && q.sentTo != nil {
					soonest(q.sentAt.Add(s.node.cfg.SubscribeTimeout))
				}
			}
		default:
			soonest(now.Add(s.node.cfg.SubscribeTimeout))
		}
	}
	if !next.IsZero() {
		s.sweepArmed = true
		s.after(ctx, next.Sub(now), &sweepPosts{})
	}
}

// pendingRefs lists the pending posts' refs in the order the client sent
// them: resends must keep it, or a conversation would store them out of
// order.
func (s *session) pendingRefs() []uint64 {
	refs := make([]uint64, 0, len(s.pending))
	for ref := range s.pending {
		refs = append(refs, ref)
	}
	slices.Sort(refs)
	return refs
}

// dispatch sends a pending post to its grain, or queues it until the grain
// is resolved.
func (s *session) dispatch(ctx actor.Context, ref uint64) {
	p := s.pending[ref]
	if p == nil {
		return // answered or timed out meanwhile
	}
	l := s.link(p.conversationID)
	if l.pid == nil {
		l.waiting = append(l.waiting, ref)
		s.resolve(ctx, p.conversationID)
		return
	}
	p.sentTo, p.sentAt = l.pid, time.Now()
	ctx.Request(l.pid, p.post)
}

func (s *session) postResult(ctx actor.Context, r *chatpb.PostResult) {
	p, ok := s.pending[r.GetRef()]
	if !ok {
		return // timed out already; the client was told
	}
	if r.GetErrorCode() == chatpb.CodeMoved {
		if from := ctx.Sender(); from != nil && p.sentTo != nil && p.sentTo.Equal(from) {
			s.forget(ctx, p.conversationID, from)
		}
		return // resent once the grain is found again
	}
	s.settle(r.GetRef())
	if code := r.GetErrorCode(); code != "" {
		s.refused(p, code, r.GetErrorMessage())
		return
	}
	if s.cfg.V1 {
		m := protoToWire(r.GetMessage())
		m.ClientMsgID = p.clientMsgID
		// A resend by this session is not the client's duplicate.
		s.write(wire.AckFrame(m, r.GetDuplicate() && !p.resent))
	}
}

// settle forgets a pending post and frees its place in the transport's
// bound.
func (s *session) settle(ref uint64) {
	delete(s.pending, ref)
	s.cfg.Sink.PostSettled()
}

// refused tells the client that p was not stored. A grainchat.v1 client gets
// an error frame and retries by itself. A seed client sees no error frames:
// a valid message the server could not store (unavailable: the grain, which
// retries the store, gave up at --post-timeout; internal) closes its socket,
// so that it does not carry on as if the message had been stored; refusals of
// an invalid request are not a reason to close (the original server ignored
// them too).
func (s *session) refused(p *pendingPost, code, msg string) {
	if s.cfg.V1 {
		s.write(wire.ErrorFrame(&wire.Error{Code: code, Message: msg, ClientMsgID: p.clientMsgID, ConversationID: p.conversationID}))
		return
	}
	switch code {
	case wire.CodeUnavailable:
		s.cfg.Sink.Close(wire.DisconnectUnavailable)
	case wire.CodeInternal:
		s.cfg.Sink.Close(wire.DisconnectInternal)
	}
}

func (s *session) postTimedOut(ctx actor.Context, ref uint64) {
	p, ok := s.pending[ref]
	if !ok {
		return
	}
	s.settle(ref)
	if p.sentTo != nil {
		// The grain did not answer: do not trust its PID for the next post.
		s.forget(ctx, p.conversationID, p.sentTo)
	}
	s.refused(p, wire.CodeUnavailable, messageForCode(wire.CodeUnavailable))
}

func (s *session) stop(ctx actor.Context) {
	s.stopped = true
	if s.cfg.ConversationID != 0 {
		ctx.Send(s.node.hub.Load(), &hubLeave{conversationID: s.cfg.ConversationID, session: ctx.Self()})
	}
	// Unwatch too: a watched actor keeps its watchers' PIDs until it stops,
	// so a grain that outlives many short sessions would accumulate them.
	if s.inbox.pid != nil {
		ctx.Unwatch(s.inbox.pid)
		ctx.Send(s.inbox.pid, &chatpb.InboxUnsubscribe{})
	}
	for conv, l := range s.links {
		if l.pid == nil {
			continue
		}
		ctx.Unwatch(l.pid)
		if s.subscribedTo(conv) {
			ctx.Send(l.pid, &chatpb.Unsubscribe{ConversationId: conv})
		}
	}
}
