// This file holds how a session follows grains that may live on any node and
// may die or move at any time:
//
//   - A grain's PID is looked up asynchronously (the cluster's identity lookup
//     can block for seconds while membership changes), so the session keeps
//     serving its socket meanwhile. Posts wait in the link until it resolves.
//   - The session watches every grain it talks to. When one terminates (its
//     node died, it passivated, it moved), the session looks it up again,
//     re-subscribes, and resends the posts that had not been answered. Every
//     post carries an idempotency key, so a resend is stored at most once.
//   - Periodically a staff session looks up the grains it subscribes to
//     again and moves to the new PID if it changed: the cluster can briefly
//     run two activations of one grain, and this bounds how long a session
//     listens to the wrong one. Gaps that this leaves are filled from the
//     store.
//
// Staff follow the inbox grain (its first page, then inbox_update frames) and
// the conversations they open; visitors follow their own conversation through
// the node's hub (hub.go) and need a grain only to post.

package actors

import (
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// subscribedTo reports whether the session holds a subscription to conv's
// grain: an admin's opened conversation. (A visitor follows its own
// conversation through the node's hub.)
func (s *session) subscribedTo(conv int64) bool {
	return s.opened[conv]
}

func (s *session) subscribed(ctx actor.Context, msg *chatpb.Subscribed) {
	conv := msg.GetConversationId()
	if msg.GetErrorCode() == wire.CodeConversationNotFound {
		// Final, whichever activation said it: the grain stops right after
		// answering, so its Terminated may have been handled already.
		if s.opened[conv] {
			delete(s.opened, conv)
			s.fail(&wire.Error{Code: wire.CodeConversationNotFound, Message: msg.GetErrorMessage(), ConversationID: conv})
		}
		return
	}
	l := s.links[conv]
	if l == nil || !l.confirm(ctx.Sender()) {
		return // an answer from a grain the session has left
	}
	if code := msg.GetErrorCode(); code == chatpb.CodeMoved {
		s.forget(ctx, conv, l.pid)
		return
	}
	if code := msg.GetErrorCode(); code != "" {
		s.fail(&wire.Error{Code: code, Message: msg.GetErrorMessage(), ConversationID: conv})
		s.forget(ctx, conv, l.pid)
		return
	}
	if !s.subscribedTo(conv) {
		return // left meanwhile
	}
	if !s.catchUp(conv, msg.GetLastSeq()) || msg.GetCatchUp() {
		return
	}
	if s.cfg.V1 {
		s.write(wire.OpenedFrame(conv, s.cursor[conv]))
	}
}

func (s *session) inboxSnapshot(ctx actor.Context, snap *chatpb.InboxSnapshot) {
	s.inbox.confirm(ctx.Sender())
	if snap.GetErrorCode() == chatpb.CodeMoved {
		if from := ctx.Sender(); from != nil {
			s.forgetInbox(ctx, from)
		}
		return
	}
	if code := snap.GetErrorCode(); code != "" {
		s.fail(&wire.Error{Code: code, Message: snap.GetErrorMessage()})
		s.inbox.retryLater(ctx, s.node)
		return
	}
	// The first page of the inbox (the snapshot is sorted, and holds all
	// of it up to storage.MaxInboxSize); inboxPage serves the next ones.
	// Every entry the snapshot holds moves its conversation's cursor (a
	// re-subscription after the inbox moved fills what the session missed),
	// though only the first page is shown.
	all := snap.GetEntries()
	if s.cfg.Teams != nil {
		all = slices.DeleteFunc(slices.Clone(all), func(e *chatpb.InboxEntry) bool {
			return !s.seesTeam(e.GetTeam()) && e.GetAssignee().GetId() != s.cfg.User.ID
		})
	}
	for _, e := range all {
		if !s.catchUp(e.GetConversationId(), e.GetLastSeq()) {
			return
		}
	}
	if snap.GetCatchUp() {
		return
	}
	if s.cfg.V1 && s.firstInboxPage() {
		s.markReady()
		return
	}
	first := all[:min(len(all), s.pageSize())]
	entries := make([]wire.InboxEntry, 0, len(first))
	for _, e := range first {
		entries = append(entries, inboxEntryToWire(e))
	}
	if s.cfg.V1 {
		page := wire.InboxPage{Entries: entries, HasMore: len(all) > len(first), StoreID: s.node.store.StoreID()}
		last := first[max(len(first)-1, 0):]
		if unfiltered := snap.GetEntries(); !page.HasMore && len(unfiltered) >= storage.MaxInboxSize {
			// Filtered by team from a full snapshot: older conversations
			// of these teams may follow its last entry.
			page.HasMore, last = true, unfiltered[len(unfiltered)-1:]
		}
		if page.HasMore {
			last := last[0]
			page.NextCursor = EncodeInboxCursor(storage.InboxCursor{
				LastMessageAt: time.UnixMicro(last.GetLastMessageAtUnixMicro()), ConversationID: last.GetConversationId()})
		}
		s.write(wire.InboxFrame(page))
	}
	s.markReady()
}

func (s *session) open(ctx actor.Context, conv int64) {
	if !s.cfg.User.IsAdmin {
		if conv != s.cfg.ConversationID {
			s.fail(&wire.Error{Code: wire.CodeForbidden, Message: "visitors can only use their own conversation", ConversationID: conv})
			return
		}
		if s.cfg.V1 {
			s.write(wire.OpenedFrame(conv, s.cursor[conv]))
		}
		return
	}
	if s.opened == nil {
		s.opened = make(map[int64]bool)
	}
	if s.opened[conv] {
		if s.cfg.V1 {
			s.write(wire.OpenedFrame(conv, s.cursor[conv]))
		}
		return
	}
	if len(s.opened) >= s.node.cfg.MaxOpenPerSession {
		s.fail(&wire.Error{Code: wire.CodeTooManyOpen, Message: "too many open conversations; leave one first", ConversationID: conv})
		return
	}
	s.opened[conv] = true
	s.loadVisitor(ctx, conv)
	if l := s.links[conv]; l != nil && l.pid != nil {
		s.subscribe(ctx, conv, l)
		return
	}
	s.resolve(ctx, conv)
}

// link is the session's view of one conversation's grain: the grain
// reference, and the posts waiting for it to be found.
type link struct {
	grainRef
	waiting []uint64 // refs of posts waiting for pid
	// typing is a staff client's typing waiting for pid (see live.go).
	typing *chatpb.Typing
}

// inboxKey names a session's or a grain's reference to the inbox grain.
type inboxKey struct{}

type refresh struct{}

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
		l = &link{grainRef: grainRef{key: conv, identity: conversationIdentity(conv), kind: ConversationKind}}
		if s.links == nil {
			s.links = make(map[int64]*link)
		}
		s.links[conv] = l
	}
	return l
}

// resolve looks conv's grain up in the background; refResolved follows.
func (s *session) resolve(ctx actor.Context, conv int64) {
	s.link(conv).resolve(ctx, s.node)
}

// refResolved applies a lookup's answer to the reference it names.
func (s *session) refResolved(ctx actor.Context, msg *refResolved) {
	switch key := msg.key.(type) {
	case int64:
		s.resolved(ctx, key, msg.pid)
	case inboxKey:
		s.inboxResolved(ctx, msg.pid)
	}
}

// refRetry looks the grain of the reference it names up again.
func (s *session) refRetry(ctx actor.Context, msg *refRetry) {
	switch key := msg.key.(type) {
	case int64:
		s.resolve(ctx, key)
	case inboxKey:
		s.inbox.resolve(ctx, s.node)
	}
}

// refChecked forgets a grain that did not answer a subscription in time.
func (s *session) refChecked(ctx actor.Context, c *refCheck) {
	switch key := c.key.(type) {
	case int64:
		if l := s.links[key]; l != nil && l.silent(c) {
			s.debug("grain did not confirm the subscription", "conversation_id", key)
			s.forget(ctx, key, c.pid)
		}
	case inboxKey:
		if s.inbox.silent(c) {
			s.forgetInbox(ctx, c.pid)
		}
	}
}

// resolved moves conv's link to the grain found: it leaves the previous
// activation, subscribes again if the conversation is opened, and sends the
// posts that waited.
func (s *session) resolved(ctx actor.Context, conv int64, pid *actor.PID) {
	l := s.link(conv)
	previous := l.pid
	left, changed := l.resolved(ctx, pid)
	l.sendTyping(ctx)
	if !changed {
		if pid == nil && (len(l.waiting) > 0 || s.subscribedTo(conv)) {
			l.retryLater(ctx, s.node)
		}
		return // nothing found, or unchanged (periodic refresh)
	}
	s.debug("grain resolved", "conversation_id", conv, "pid", pidValue{pid}, "previous", pidValue{previous})
	if left != nil {
		// The grain moved (or two activations exist): leave the old one.
		ctx.Request(left, &chatpb.Unsubscribe{ConversationId: conv})
		s.node.metrics.GrainMoved()
		// Posts it has not answered go to the new one too (idempotent:
		// the store keeps one of each). The old activation may be gone
		// without a word — stopped as "owned by another node" before the
		// post reached it — and its Terminated, now unwatched, would
		// never come: the post would wait for --post-timeout.
		for _, ref := range s.pendingRefs() {
			if p := s.pending[ref]; p.conversationID == conv && p.sentTo != nil && p.sentTo.Equal(left) {
				p.sentTo, p.resent = nil, true
				l.waiting = append(l.waiting, ref)
			}
		}
		slices.Sort(l.waiting) // the client's order
	}
	if s.subscribedTo(conv) {
		s.subscribe(ctx, conv, l)
	}
	waiting := l.waiting
	l.waiting = nil
	for _, ref := range waiting {
		s.dispatch(ctx, ref)
	}
}

// inboxResolved moves the staff session to the inbox activation found.
func (s *session) inboxResolved(ctx actor.Context, pid *actor.PID) {
	previous := s.inbox.pid
	left, changed := s.inbox.resolved(ctx, pid)
	if !changed {
		if pid == nil {
			s.inbox.retryLater(ctx, s.node)
		}
		return
	}
	s.debug("inbox resolved", "pid", pidValue{pid}, "previous", pidValue{previous})
	if left != nil {
		ctx.Request(left, &chatpb.InboxUnsubscribe{})
	}
	s.inbox.request(ctx, s.node, &chatpb.InboxSubscribe{UserId: s.cfg.User.ID, ByTeam: s.cfg.Teams != nil, Teams: s.cfg.Teams},
		s.node.cfg.SubscribeTimeout)
}

// subscribe asks l's grain for conv's deliveries and arranges a check that
// it answered.
func (s *session) subscribe(ctx actor.Context, conv int64, l *link) {
	l.request(ctx, s.node, &chatpb.Subscribe{ConversationId: conv, UserId: s.cfg.User.ID, UserName: s.cfg.User.Name}, s.node.cfg.SubscribeTimeout)
}

// forget drops conv's grain PID (unanswered, moved or dead), queues the posts
// sent to it for a resend (in the client's order), and looks the grain up
// again if anything needs it.
func (s *session) forget(ctx actor.Context, conv int64, pid *actor.PID) {
	l := s.links[conv]
	if l == nil || !l.forget(ctx, pid) {
		return // already moved on
	}
	for _, ref := range s.pendingRefs() {
		if p := s.pending[ref]; p.conversationID == conv && p.sentTo != nil && p.sentTo.Equal(pid) {
			p.sentTo = nil
			p.resent = true
			l.waiting = append(l.waiting, ref)
		}
	}
	if len(l.waiting) > 0 || s.subscribedTo(conv) {
		l.retryLater(ctx, s.node)
	}
}

func (s *session) forgetInbox(ctx actor.Context, pid *actor.PID) {
	if s.inbox.forget(ctx, pid) {
		s.inbox.retryLater(ctx, s.node)
	}
}

// scheduleRefresh arranges the next periodic re-lookup, with jitter so that
// sessions do not refresh in step.
func (s *session) scheduleRefresh(ctx actor.Context) {
	d := s.node.cfg.RefreshInterval
	d += time.Duration(rand.Int64N(int64(d)/4 + 1))
	sendAfter(ctx, s.node, d, &refresh{})
}

func (s *session) refresh(ctx actor.Context) {
	if s.stopped {
		return
	}
	if s.cfg.User.IsAdmin {
		s.inbox.resolve(ctx, s.node)
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
	if s.inbox.forget(ctx, who) {
		s.inbox.resolve(ctx, s.node)
		return
	}
	for conv, l := range s.links {
		if l.is(who) {
			s.forget(ctx, conv, who)
		}
	}
}
