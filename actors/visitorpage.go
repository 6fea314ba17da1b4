// This file holds the visitor's page: the host page's URL and title that a
// visitor's grainchat.v1 client reports (the page frame), with the browser
// (its socket's User-Agent), on its way to the store and to staff.
//
// It travels the presence path (presence.go), not the message path: the
// visitor's session hands a report that differs from its previous one to
// its node's presence actor, which
//
//   - tells its node's grainchat.v1 staff sessions at once (a staff session
//     writes the visitor frame only for the conversations it opened),
//   - sends it to the other nodes' presence actors with its next change
//     (PresenceState.pages, every presenceTick), which tell their staff
//     sessions, and
//   - stores it in batches (storage.Presence.SaveVisitorPages), at most
//     every pageSaveEvery: a visitor's page is written at most once per
//     pageSaveEvery per node, the latest report winning, none lost.
//
// Every presence actor remembers the pages it heard of for pageRecentFor, so
// that a staff session that opens a conversation gets a page reported too
// recently for the store to have it (loadVisitor).

package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

const (
	// pageSaveEvery is the least time between two writes of visitors'
	// pages by one node.
	pageSaveEvery = 2 * time.Second
	// pageRecentFor is how long a presence actor remembers a page it heard
	// of (longer than a write takes to follow it).
	pageRecentFor = 10 * time.Second
	// maxRecentPages bounds the pages remembered; beyond, new ones are
	// relayed but not remembered.
	maxRecentPages = 10_000
	// maxUnsavedPages bounds the pages waiting for the store (one per
	// visitor): while the store is down for long, the newest are kept.
	maxUnsavedPages = 20_000
)

// Messages of the visitor's page.
type (
	// presencePage: a visitor's session reports a page (to its node's
	// presence actor).
	presencePage struct{ page *chatpb.VisitorPage }
	// pageQuery asks a presence actor for the page it remembers of a
	// conversation (answered with a *chatpb.VisitorPage, empty if none,
	// through a future).
	pageQuery struct{ conv int64 }
	// pagesSaved: a batch of pages was written (or not).
	pagesSaved struct {
		pages []storage.VisitorPage
		err   error
	}
	// visitorChange tells a staff session that a conversation's visitor
	// reported a page, with the visitor frame to write; visitorLoaded
	// brings it the visitor of a conversation it opened (loadVisitor).
	visitorChange struct {
		conv  int64
		at    time.Time // zero: the visitor never reported a page
		frame []byte
	}
	visitorLoaded visitorChange
)

// recentPage is a page a presence actor heard of, and when.
type recentPage struct {
	page  *chatpb.VisitorPage
	heard time.Time
}

// pageState is the presence actor's part of the visitors' pages.
type pageState struct {
	recent  map[int64]recentPage          // conversation → latest page heard of
	unsaved map[int64]storage.VisitorPage // user → latest page not stored yet
	send    []*chatpb.VisitorPage         // local reports not sent to the peers yet
	saving  bool
	savedAt time.Time
}

func newPageState() pageState {
	return pageState{recent: make(map[int64]recentPage), unsaved: make(map[int64]storage.VisitorPage)}
}

// localPage takes a report of one of this node's visitors: remembered,
// relayed to this node's staff, queued for the peers and the store, unless
// it is the page this node already knows for the conversation.
func (p *presence) localPage(ctx actor.Context, pg *chatpb.VisitorPage) {
	now := time.Now().Truncate(time.Microsecond)
	if r, ok := p.pages.recent[pg.GetConversationId()]; ok && samePage(r.page, pg) {
		return
	}
	pg.AtUnixMicro = now.UnixMicro()
	p.pages.send = append(p.pages.send, pg)
	if len(p.pages.unsaved) < maxUnsavedPages || p.hasUnsaved(pg.GetUserId()) {
		p.pages.unsaved[pg.GetUserId()] = storagePage(pg)
	} else {
		p.node.logger.Warn("presence: too many visitor pages wait for the store; one dropped", "user_id", pg.GetUserId())
	}
	p.pageHeard(ctx, pg, now)
}

func (p *presence) hasUnsaved(user int64) bool {
	_, ok := p.pages.unsaved[user]
	return ok
}

// peerPages takes the pages another node's visitors reported.
func (p *presence) peerPages(ctx actor.Context, pages []*chatpb.VisitorPage) {
	now := time.Now()
	for _, pg := range pages {
		if r, ok := p.pages.recent[pg.GetConversationId()]; ok && r.page.GetAtUnixMicro() > pg.GetAtUnixMicro() {
			continue // older than one this node heard of
		}
		p.pageHeard(ctx, pg, now)
	}
}

// pageHeard remembers pg and tells this node's v1 staff sessions.
func (p *presence) pageHeard(ctx actor.Context, pg *chatpb.VisitorPage, now time.Time) {
	conv := pg.GetConversationId()
	if _, ok := p.pages.recent[conv]; ok || len(p.pages.recent) < maxRecentPages {
		p.pages.recent[conv] = recentPage{page: pg, heard: now}
	}
	v := visitorFromPage(pg)
	c := &visitorChange{conv: conv, at: v.Page.UpdatedAt, frame: wire.VisitorFrame(conv, v)}
	for _, s := range p.sessions {
		if s.staff && s.v1 {
			ctx.Send(s.pid, c)
		}
	}
}

// pagesTick forgets old pages and stores the waiting ones, at most every
// pageSaveEvery, one batch at a time, off the actor's goroutine.
func (p *presence) pagesTick(ctx actor.Context, now time.Time) {
	for conv, r := range p.pages.recent {
		if now.Sub(r.heard) >= pageRecentFor {
			delete(p.pages.recent, conv)
		}
	}
	if len(p.pages.unsaved) == 0 || p.pages.saving || now.Sub(p.pages.savedAt) < pageSaveEvery {
		return
	}
	batch := make([]storage.VisitorPage, 0, min(len(p.pages.unsaved), storage.MaxVisitorPageBatch))
	for user, pg := range p.pages.unsaved {
		if len(batch) == storage.MaxVisitorPageBatch {
			break
		}
		batch = append(batch, pg)
		delete(p.pages.unsaved, user)
	}
	p.pages.saving, p.pages.savedAt = true, now
	self, root, store, timeout := ctx.Self(), p.node.system.Root, p.node.store, p.node.cfg.StoreTimeout
	go func() {
		c, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		root.Send(self, &pagesSaved{pages: batch, err: store.SaveVisitorPages(c, batch)})
	}()
}

// pagesWritten takes a batch's outcome: a failed batch waits for the next
// write (behind any newer page of the same visitor), unless the store
// refused it as invalid (the transport checked it: a bug, logged).
func (p *presence) pagesWritten(msg *pagesSaved) {
	p.pages.saving = false
	if msg.err == nil {
		return
	}
	if storage.ErrorCode(msg.err) == storage.EINVALID {
		p.node.logger.Error("presence: the store refused visitor pages", "err", msg.err, "count", len(msg.pages))
		return
	}
	p.node.logger.Warn("presence: storing visitor pages failed; retrying", "err", msg.err, "count", len(msg.pages))
	for _, pg := range msg.pages {
		if _, newer := p.pages.unsaved[pg.UserID]; !newer && len(p.pages.unsaved) < maxUnsavedPages {
			p.pages.unsaved[pg.UserID] = pg
		}
	}
}

// takePages returns the local reports not sent to the peers yet.
func (p *presence) takePages() []*chatpb.VisitorPage {
	out := p.pages.send
	p.pages.send = nil
	return out
}

func samePage(a, b *chatpb.VisitorPage) bool {
	return a.GetUrl() == b.GetUrl() && a.GetTitle() == b.GetTitle() && a.GetUserAgent() == b.GetUserAgent() &&
		a.GetUserId() == b.GetUserId() && a.GetName() == b.GetName() && a.GetEmail() == b.GetEmail() &&
		a.GetContext() == b.GetContext()
}

func storagePage(pg *chatpb.VisitorPage) storage.VisitorPage {
	return storage.VisitorPage{UserID: pg.GetUserId(), URL: pg.GetUrl(), Title: pg.GetTitle(),
		UserAgent: pg.GetUserAgent(), At: time.UnixMicro(pg.GetAtUnixMicro()).UTC()}
}

func visitorFromPage(pg *chatpb.VisitorPage) wire.Visitor {
	return wire.Visitor{
		DeskUser: wire.DeskUser{ID: pg.GetUserId(), ExternalID: pg.GetExternalId(), Name: pg.GetName()},
		Email:    pg.GetEmail(),
		Context:  pg.GetContext(),
		Page: &wire.VisitorPage{URL: pg.GetUrl(), Title: pg.GetTitle(), Browser: pg.GetUserAgent(),
			UpdatedAt: time.UnixMicro(pg.GetAtUnixMicro()).UTC()},
	}
}

// reportPage handles a visitor's page frame: staff may not send one; a
// seed-dialect client's is dropped (it never sends one); a report that
// repeats the socket's previous one changes nothing.
func (s *session) reportPage(ctx actor.Context, req wire.Request) {
	if s.cfg.User.IsAdmin {
		s.fail(&wire.Error{Code: wire.CodeForbidden, Message: "only visitors report their page"})
		return
	}
	if !s.cfg.V1 || (req.URL == s.pageURL && req.Title == s.pageTitle) {
		return
	}
	s.pageURL, s.pageTitle = req.URL, req.Title
	p := s.node.presence.Load()
	if p == nil {
		return
	}
	u := s.cfg.User
	ctx.Send(p, &presencePage{page: &chatpb.VisitorPage{
		ConversationId: s.cfg.ConversationID, UserId: u.ID, ExternalId: u.ExternalID, Name: u.Name,
		Email: u.Email, Context: u.Context, Url: req.URL, Title: req.Title, UserAgent: s.cfg.UserAgent,
	}})
}

// visitorChanged writes a visitor frame to a v1 staff client that has the
// conversation open, unless it wrote a newer one; loaded frames (the
// visitor as the conversation was opened) go only when strictly newer than
// a live one written meanwhile, or when none was.
func (s *session) visitorChanged(c *visitorChange, loaded bool) {
	if !s.cfg.V1 || !s.cfg.User.IsAdmin || !s.opened[c.conv] {
		return
	}
	last, written := s.visitorAt[c.conv]
	if written && (c.at.Before(last) || (loaded && !c.at.After(last))) {
		return
	}
	if s.visitorAt == nil {
		s.visitorAt = make(map[int64]time.Time)
	}
	s.visitorAt[c.conv] = c.at
	s.write(c.frame)
}

// loadVisitor reads the visitor of conversation conv, which a v1 staff
// client just opened, off the actor's goroutine: from the store, with the
// page the node's presence actor heard of if it is newer (the store gets
// pages a few seconds late). visitorLoaded follows; nothing if the
// conversation does not exist or the store fails (the next report brings
// the page).
func (s *session) loadVisitor(ctx actor.Context, conv int64) {
	if !s.cfg.V1 {
		return
	}
	self, root, store, timeout, viewer := ctx.Self(), s.node.system.Root, s.node.store, s.node.cfg.StoreTimeout, s.cfg.User.ID
	presence := s.node.presence.Load()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		e, err := store.ConversationEntry(c, viewer, conv)
		if err != nil {
			return
		}
		v := wire.Visitor{
			DeskUser: wire.DeskUser{ID: e.UserID, ExternalID: e.UserExternalID, Name: e.UserName},
			Email:    e.UserEmail,
			Context:  e.UserContext,
		}
		if pg := e.Page; pg != nil {
			v.Page = &wire.VisitorPage{URL: pg.URL, Title: pg.Title, Browser: pg.UserAgent, UpdatedAt: pg.At}
		}
		if presence != nil {
			res, err := root.RequestFuture(presence, &pageQuery{conv: conv}, timeout).Result()
			if pg, ok := res.(*chatpb.VisitorPage); err == nil && ok && pg != nil && pg.GetUserId() == e.UserID &&
				(v.Page == nil || pg.GetAtUnixMicro() > v.Page.UpdatedAt.UnixMicro()) {
				v.Page = visitorFromPage(pg).Page
			}
		}
		var at time.Time
		if v.Page != nil {
			at = v.Page.UpdatedAt
		}
		root.Send(self, &visitorLoaded{conv: conv, at: at, frame: wire.VisitorFrame(conv, v)})
	}()
}
