// This file holds a session's posts: a client's message becomes a Post with
// an idempotency key, is sent to its conversation grain (or waits for the
// grain to be found), is resent in the client's order when the grain moves
// or dies, times out at --post-timeout, and is settled exactly once (ack or
// refusal), which frees its place in the transport's flow control
// (Sink.PostSettled).

package actors

import (
	"slices"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/transport/wire"
)

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

func (s *session) post(ctx actor.Context, req wire.Request) {
	conv, werr := s.conversationFor(req)
	if werr != nil {
		s.cfg.Sink.PostSettled()
		s.refused(werr)
		return
	}
	// A message starts the typing interval over (see typing).
	delete(s.typedAt, conv)
	// The transport bounds the unsettled posts of a socket
	// (Sink.PostSettled): it stops reading the socket rather than hand
	// the session more, so no post is refused here for being one too many.
	s.nextRef++
	ref := s.nextRef
	key := req.ClientMsgID
	if key == "" {
		// Posts are resent when a grain moves; a key makes that safe.
		if s.nonce == "" {
			s.nonce = newNonce()
		}
		key = "~" + s.nonce + "." + strconv.FormatUint(ref, 36)
	}
	if s.pending == nil {
		s.pending = make(map[uint64]*pendingPost)
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
			SenderTeam:    &s.cfg.User.Team,
			Body:          req.Message,
			ClientMsgId:   key,
		},
	}
	// The stale-reply guard is for grainchat.v1 staff: a seed client could
	// not be told of a stale_reply, so its posts are never checked.
	if s.cfg.V1 && s.cfg.User.IsAdmin && !req.Force {
		s.pending[ref].post.BasedOnSeq = req.BasedOnSeq
	}
	if !s.sweepArmed {
		s.sweepArmed = true
		sendAfter(ctx, s.node, min(s.node.cfg.PostTimeout, s.node.cfg.SubscribeTimeout), &sweepPosts{})
	}
	s.dispatch(ctx, ref)
}

// sweepPosts times out the pending posts whose deadline passed, resends
// those whose grain's node left (see checkSent), and arms the next sweep for
// the earliest remaining deadline or check.
func (s *session) sweepPosts(ctx actor.Context) {
	s.sweepArmed = false
	if s.stopped {
		return
	}
	now := time.Now()
	var next time.Time
	for _, ref := range s.pendingRefs() {
		p := s.pending[ref]
		if p == nil {
			continue // settled by an earlier step of this sweep
		}
		if !p.deadline.After(now) {
			s.postTimedOut(ctx, ref)
			continue
		}
		next = earliest(next, p.deadline)
		if p.sentTo != nil {
			next = earliest(next, s.checkSent(ctx, ref, p, now))
		}
	}
	if !next.IsZero() {
		s.sweepArmed = true
		sendAfter(ctx, s.node, next.Sub(now), &sweepPosts{})
	}
}

// checkSent looks at a post sent to a grain and not yet answered: once
// SubscribeTimeout has passed, a grain whose node has left the topology will
// not answer (a lookup right after a node died can still return its PID, and
// the watch of an unreachable node may take long to report it), so the post
// is resent with its idempotency key, to a fresh lookup; the client hears
// nothing unless the deadline passes. It returns when to check again.
func (s *session) checkSent(ctx actor.Context, ref uint64, p *pendingPost, now time.Time) time.Time {
	timeout := s.node.cfg.SubscribeTimeout
	if check := p.sentAt.Add(timeout); check.After(now) {
		return check
	}
	if s.node.isMember(p.sentTo.GetAddress()) {
		return now.Add(timeout) // the node is up: keep waiting for the answer
	}
	if l := s.links[p.conversationID]; l != nil && l.is(p.sentTo) {
		s.forget(ctx, p.conversationID, p.sentTo) // resent when the grain is found
		return time.Time{}
	}
	// The link moved on already (a refresh): resend there.
	p.sentTo, p.resent = nil, true
	s.dispatch(ctx, ref)
	if q := s.pending[ref]; q != nil && q.sentTo != nil {
		return q.sentAt.Add(timeout)
	}
	return time.Time{}
}

// earliest returns the earlier of a and b, the zero time counting as none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
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
		from := ctx.Sender()
		if from == nil || p.sentTo == nil || !p.sentTo.Equal(from) {
			return // an answer of an activation the post has left
		}
		if l := s.links[p.conversationID]; l != nil && !l.is(from) {
			// The link moved on already (a refresh): resend there.
			p.sentTo, p.resent = nil, true
			s.dispatch(ctx, r.GetRef())
			return
		}
		s.forget(ctx, p.conversationID, from) // resent once the grain is found again
		return
	}
	s.settle(r.GetRef())
	if code := r.GetErrorCode(); code != "" {
		s.refused(&wire.Error{Code: code, Message: r.GetErrorMessage(), ClientMsgID: p.clientMsgID, ConversationID: p.conversationID,
			LastSeq: r.GetLastSeq()})
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

// refused tells the client that its message e names was not stored. A
// grainchat.v1 client gets an error frame (and retries unavailable by
// itself). A seed client sees no error frames, so its socket is closed with a
// documented code rather than left open as if the message had been taken:
// a valid message the server could not store (unavailable: its grain, which
// retries the store, gave up at --post-timeout; internal), or one naming a
// conversation it may not use or that does not exist (the reply of a staff
// member would otherwise vanish without a word).
func (s *session) refused(e *wire.Error) {
	if s.cfg.V1 {
		s.write(wire.ErrorFrame(e))
		return
	}
	if d, ok := wire.SeedRefusal(e.Code); ok {
		s.cfg.Sink.Close(d)
	}
}

func (s *session) postTimedOut(ctx actor.Context, ref uint64) {
	p, ok := s.pending[ref]
	if !ok {
		return
	}
	s.settle(ref)
	if p.sentTo != nil && !s.node.isMember(p.sentTo.GetAddress()) {
		// The grain's node left: do not trust its PID for the next post.
		// (A grain on a live node that did not answer in time is retrying
		// a failing store: forgetting it would queue every other post sent
		// to it again, once per timeout.)
		s.forget(ctx, p.conversationID, p.sentTo)
	}
	s.refused(&wire.Error{Code: wire.CodeUnavailable, Message: messageForCode(wire.CodeUnavailable),
		ClientMsgID: p.clientMsgID, ConversationID: p.conversationID})
}
