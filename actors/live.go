// This file holds the live signals that are relayed, never stored: typing, and
// the staff who have a conversation open (viewers).
//
// Typing goes to the conversation's grain, which relays at most one per user
// every Config.TypingInterval (started over by each message of that user:
// receivers drop a typist's line at their message) to its subscribers: the hubs of the nodes where
// the visitor is connected (they pass staff typing on to the visitor's
// sessions) and the staff sessions that opened the conversation. A visitor's
// typing goes through its node's hub to the announced activations only, so it
// never activates a grain: a grain that is not active has no staff subscribed,
// hence no one to tell.
//
// Viewers are the staff users of the sessions subscribed to the grain (they
// opened the conversation). The grain sends the list to those sessions when it
// changes (a session subscribes, leaves, or its node dies) and to a session
// that subscribes; a new activation rebuilds it as sessions subscribe again.

package actors

import (
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/transport/wire"
)

// DefaultTypingInterval is how often at most a user's typing in one
// conversation is relayed.
const DefaultTypingInterval = 2 * time.Second

// maxTypists bounds the grain's memory of who typed when; beyond it the
// entries older than the typing interval are dropped.
const maxTypists = 64

// hubTyping is a visitor session's typing, for its node's hub to pass to the
// conversation's announced activations.
type hubTyping struct{ typing *chatpb.Typing }

// typing handles a client's typing frame: it names the conversation (staff
// must; visitors may omit their own) and is forwarded at most once per
// conversation every half typing interval (the grain keeps the real bound).
func (s *session) typing(ctx actor.Context, req wire.Request) {
	conv, werr := s.conversationFor(req)
	if werr != nil {
		s.fail(werr)
		return
	}
	now := time.Now()
	if last, ok := s.typedAt[conv]; ok && now.Sub(last) < s.node.cfg.TypingInterval/2 {
		return
	}
	if s.typedAt == nil {
		s.typedAt = make(map[int64]time.Time)
	}
	if len(s.typedAt) >= maxTypists {
		clear(s.typedAt)
	}
	s.typedAt[conv] = now
	t := &chatpb.Typing{ConversationId: conv, UserId: s.cfg.User.ID, UserName: s.cfg.User.Name, IsAdmin: s.cfg.User.IsAdmin}
	if !s.cfg.User.IsAdmin {
		ctx.Send(s.node.hub.Load(), &hubTyping{typing: t})
		return
	}
	l := s.link(conv)
	if l.pid != nil {
		ctx.Send(l.pid, t)
		return
	}
	// Sent once the grain is found (see resolved); a lookup that finds
	// nothing drops it: typing is a hint.
	l.typing = t
	s.resolve(ctx, conv)
}

// sendTyping sends the typing that waited for l's grain, if any.
func (l *link) sendTyping(ctx actor.Context) {
	if l.typing != nil && l.pid != nil {
		ctx.Send(l.pid, l.typing)
		l.typing = nil
	}
}

// typingDelivery writes a relayed typing frame: staff see the conversations
// they opened, visitors their own; no one sees their own typing, and seed
// clients see none.
func (s *session) typingDelivery(d *chatpb.TypingDelivery) {
	if !s.cfg.V1 || d.GetUserId() == s.cfg.User.ID {
		return
	}
	conv := d.GetConversationId()
	switch {
	case s.cfg.User.IsAdmin && s.opened[conv]:
		s.write(d.GetStaffFrame())
	case !s.cfg.User.IsAdmin && conv == s.cfg.ConversationID && d.GetIsAdmin():
		s.write(d.GetVisitorFrame())
	}
}

// viewersDelivery writes a conversation's viewers frame to a staff client
// that has it open.
func (s *session) viewersDelivery(d *chatpb.ViewersDelivery) {
	if s.cfg.V1 && s.cfg.User.IsAdmin && s.opened[d.GetConversationId()] {
		s.write(d.GetV1Frame())
	}
}

// hubTyping passes a visitor's typing to the conversation's activations.
func (h *hub) typing(ctx actor.Context, t *chatpb.Typing) {
	for _, g := range h.grains[t.GetConversationId()] {
		ctx.Send(g, t)
	}
}

// hubTypingDelivery passes staff typing on to the visitor's sessions here.
func (h *hub) typingDelivery(ctx actor.Context, d *chatpb.TypingDelivery) {
	if !d.GetIsAdmin() {
		return
	}
	for _, s := range h.sessions[d.GetConversationId()] {
		ctx.Send(s, d)
	}
}

// typing relays t to the subscribers unless its user's last typing in this
// conversation was relayed less than TypingInterval ago.
func (g *conversationGrain) typing(ctx actor.Context, t *chatpb.Typing) {
	if t.GetConversationId() != g.id || len(g.subs) == 0 {
		return
	}
	now := time.Now()
	interval := g.node.cfg.TypingInterval
	if last, ok := g.typedAt[t.GetUserId()]; ok && now.Sub(last) < interval {
		return
	}
	if g.typedAt == nil {
		g.typedAt = make(map[int64]time.Time)
	}
	if len(g.typedAt) >= maxTypists {
		for id, at := range g.typedAt {
			if now.Sub(at) >= interval {
				delete(g.typedAt, id)
			}
		}
	}
	g.typedAt[t.GetUserId()] = now
	user := wire.User{ID: t.GetUserId(), Name: t.GetUserName(), IsAdmin: t.GetIsAdmin()}
	d := &chatpb.TypingDelivery{ConversationId: g.id, UserId: user.ID, IsAdmin: user.IsAdmin}
	d.StaffFrame = wire.TypingFrame(g.id, user)
	if user.IsAdmin {
		d.VisitorFrame = d.StaffFrame
		if !g.node.cfg.TypingShowsStaffNames {
			d.VisitorFrame = wire.TypingFrame(g.id, wire.User{Name: wire.SupportName, IsAdmin: true})
		}
	}
	for _, sub := range g.subs {
		if user.IsAdmin || sub.GetId() != hubName { // hubs pass only staff typing on
			ctx.Send(sub, d)
		}
	}
}

// viewer is a staff session subscribed to a conversation grain.
type viewer struct {
	pid  *actor.PID
	id   int64
	name string
}

// addViewer records a staff session's subscription; it tells every viewer
// when the list of staff changed, else only the new session.
func (g *conversationGrain) addViewer(ctx actor.Context, pid *actor.PID, id int64, name string) {
	if id == 0 || slices.ContainsFunc(g.viewers, func(v viewer) bool { return v.pid.Equal(pid) }) {
		return
	}
	before := g.staffViewing()
	g.viewers = append(g.viewers, viewer{pid: pid, id: id, name: name})
	if after := g.staffViewing(); !slices.Equal(before, after) {
		g.sendViewers(ctx, after, nil)
		return
	}
	g.sendViewers(ctx, before, pid)
}

// removeViewer forgets a staff session and tells the others if the list of
// staff changed.
func (g *conversationGrain) removeViewer(ctx actor.Context, pid *actor.PID) {
	i := slices.IndexFunc(g.viewers, func(v viewer) bool { return v.pid.Equal(pid) })
	if i < 0 {
		return
	}
	before := g.staffViewing()
	g.viewers = slices.Delete(g.viewers, i, i+1)
	if after := g.staffViewing(); !slices.Equal(before, after) {
		g.sendViewers(ctx, after, nil)
	}
}

// staffViewing lists the distinct staff users viewing, in the order they
// first subscribed.
func (g *conversationGrain) staffViewing() []wire.Viewer {
	out := make([]wire.Viewer, 0, len(g.viewers))
	for _, v := range g.viewers {
		if !slices.ContainsFunc(out, func(w wire.Viewer) bool { return w.ID == v.id }) {
			out = append(out, wire.Viewer{ID: v.id, Name: v.name})
		}
	}
	return out
}

// sendViewers sends the viewers frame to one session (to), or to every
// viewer when to is nil.
func (g *conversationGrain) sendViewers(ctx actor.Context, staff []wire.Viewer, to *actor.PID) {
	d := &chatpb.ViewersDelivery{ConversationId: g.id, V1Frame: wire.ViewersFrame(g.id, staff)}
	if to != nil {
		ctx.Send(to, d)
		return
	}
	for _, v := range g.viewers {
		ctx.Send(v.pid, d)
	}
}
