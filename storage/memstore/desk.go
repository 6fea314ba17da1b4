package memstore

import (
	"context"
	"slices"
	"strings"
	"unicode"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

// This file owns the desk (storage.Desk): status and assignee changes and
// their events, read marks, and the inbox views that Inbox and InboxPage
// share.

// markKey names one read mark: a user's in a conversation.
type markKey struct {
	userID, conversationID int64
}

// reopen moves c back to open after the visitor's message m, stored now,
// and records the event, as pgstore's grainchat_append_messages does: by the
// sender, after the seq before m, at m's time. The caller holds s.mu for
// writing; c is not open.
func (s *Store) reopen(c *conversation, m storage.Message) *storage.Event {
	c.Status = storage.StatusOpen
	e := storage.Event{
		ID:             nextID(&s.lastEventID),
		ConversationID: c.ID,
		AfterSeq:       m.Seq - 1,
		Kind:           storage.EventStatus,
		Status:         storage.StatusOpen,
		Actor:          s.ref(m.SenderID),
		CreatedAt:      m.CreatedAt,
	}
	c.events = append(c.events, e)
	return &e
}

// ref names the user id, which exists. The caller holds s.mu.
func (s *Store) ref(id int64) storage.UserRef {
	u := s.users[id]
	return storage.UserRef{ID: u.ID, ExternalID: u.ExternalID, Name: u.Name}
}

// assignee names c's assignee, nil when unassigned. The caller holds s.mu.
func (s *Store) assignee(c *conversation) *storage.UserRef {
	if c.AssigneeID == nil {
		return nil
	}
	r := s.ref(*c.AssigneeID)
	return &r
}

// state is c's desk state. The caller holds s.mu.
func (s *Store) state(c *conversation) storage.DeskState {
	return storage.DeskState{ConversationID: c.ID, Status: c.Status, Assignee: s.assignee(c), LastSeq: c.LastSeq}
}

// ChangeConversation implements storage.Desk.
func (s *Store) ChangeConversation(ctx context.Context, conversationID int64, ch storage.Change) (storage.ChangeResult, error) {
	if ch.Status != nil && !storage.ValidStatus(*ch.Status) {
		return storage.ChangeResult{}, storage.Errorf(storage.EINVALID, "unknown status %q", *ch.Status)
	}
	if ch.Note != nil {
		if err := storage.CheckNote(*ch.Note); err != nil {
			return storage.ChangeResult{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(ctx); err != nil {
		return storage.ChangeResult{}, err
	}
	c, ok := s.convs[conversationID]
	if !ok {
		return storage.ChangeResult{}, storage.Errorf(storage.ENOTFOUND, "conversation %d not found", conversationID)
	}
	if _, ok := s.users[ch.ActorID]; !ok {
		return storage.ChangeResult{}, storage.Errorf(storage.ENOTFOUND, "user %d not found", ch.ActorID)
	}
	if ch.Note != nil && !s.users[ch.ActorID].IsAdmin {
		return storage.ChangeResult{}, storage.Errorf(storage.EINVALID, "only staff can write notes")
	}
	if ch.Assignee != nil && *ch.Assignee != 0 && !s.users[*ch.Assignee].IsAdmin {
		return storage.ChangeResult{}, storage.Errorf(storage.EINVALID, "assignee %d is not a staff user", *ch.Assignee)
	}

	var events []storage.Event
	record := func(e storage.Event) {
		e.ID, e.ConversationID, e.AfterSeq = nextID(&s.lastEventID), c.ID, c.LastSeq
		e.Actor = s.ref(ch.ActorID)
		events = append(events, e)
	}
	now := s.timestamp()
	if ch.Status != nil && *ch.Status != c.Status {
		c.Status = *ch.Status
		record(storage.Event{Kind: storage.EventStatus, Status: c.Status, CreatedAt: now})
	}
	if ch.Assignee != nil && *ch.Assignee != deref(c.AssigneeID) {
		c.AssigneeID = nil
		if *ch.Assignee != 0 {
			id := *ch.Assignee
			c.AssigneeID = &id
		}
		record(storage.Event{Kind: storage.EventAssignee, Assignee: s.assignee(c), CreatedAt: now})
	}
	if ch.Note != nil {
		record(storage.Event{Kind: storage.EventNote, Body: *ch.Note, CreatedAt: now})
	}
	c.events = append(c.events, events...)
	return storage.ChangeResult{State: s.state(c), Events: cloneEvents(events)}, nil
}

// deref is *p, 0 for nil.
func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// cloneEvents copies events so that they share no memory with the store.
func cloneEvents(events []storage.Event) []storage.Event {
	out := slices.Clone(events)
	for i := range out {
		if a := out[i].Assignee; a != nil {
			r := *a
			out[i].Assignee = &r
		}
	}
	return out
}

// DeskState implements storage.Desk.
func (s *Store) DeskState(ctx context.Context, conversationID int64) (storage.DeskState, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return storage.DeskState{}, err
	}
	c, ok := s.convs[conversationID]
	if !ok {
		return storage.DeskState{}, storage.Errorf(storage.ENOTFOUND, "conversation %d not found", conversationID)
	}
	return s.state(c), nil
}

// Events implements storage.Desk. Like pgstore, it names the users as
// they are now.
func (s *Store) Events(ctx context.Context, conversationID, fromSeq, toSeq int64) ([]storage.Event, error) {
	if fromSeq < 0 || toSeq < 0 {
		return nil, storage.Errorf(storage.EINVALID, "event bounds must not be negative")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	c, ok := s.convs[conversationID]
	if !ok {
		return nil, storage.Errorf(storage.ENOTFOUND, "conversation %d not found", conversationID)
	}
	out := []storage.Event{}
	for _, e := range c.events {
		if e.AfterSeq < fromSeq || e.AfterSeq > toSeq || len(out) == storage.MaxEventsPage {
			continue
		}
		e.Actor = s.ref(e.Actor.ID)
		if e.Assignee != nil {
			r := s.ref(e.Assignee.ID)
			e.Assignee = &r
		}
		out = append(out, e)
	}
	return out, nil
}

// MarkRead implements storage.Desk.
func (s *Store) MarkRead(ctx context.Context, userID, conversationID, seq int64) (int64, error) {
	if seq < 0 {
		return 0, storage.Errorf(storage.EINVALID, "read mark must not be negative")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(ctx); err != nil {
		return 0, err
	}
	c, ok := s.convs[conversationID]
	if !ok {
		return 0, storage.Errorf(storage.ENOTFOUND, "conversation %d not found", conversationID)
	}
	if _, ok := s.users[userID]; !ok {
		return 0, storage.Errorf(storage.ENOTFOUND, "user %d not found", userID)
	}
	k := markKey{userID: userID, conversationID: conversationID}
	mark := max(s.marks[k], min(seq, c.LastSeq))
	s.marks[k] = mark
	r := s.receipts[conversationID]
	if s.users[userID].IsAdmin {
		r.Staff = max(r.Staff, mark)
	}
	if c.UserID == userID {
		r.Visitor = max(r.Visitor, mark)
	}
	s.receipts[conversationID] = r
	return mark, nil
}

// ReadReceipts implements storage.Desk.
func (s *Store) ReadReceipts(ctx context.Context, conversationID int64) (storage.ReadReceipts, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return storage.ReadReceipts{}, err
	}
	return s.receipts[conversationID], nil
}

// ViewCounts implements storage.Desk.
func (s *Store) ViewCounts(ctx context.Context, viewerID int64, teams []string) ([]storage.ViewCounts, error) {
	if err := storage.CheckTeams(teams); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	counts := []storage.ViewCounts{
		{Status: storage.StatusOpen}, {Status: storage.StatusPending}, {Status: storage.StatusResolved},
	}
	for _, c := range s.convs {
		if c.LastSeq == 0 || !inTeams(s.users[c.UserID].Team, teams) && deref(c.AssigneeID) != viewerID {
			continue
		}
		i := slices.IndexFunc(counts, func(v storage.ViewCounts) bool { return v.Status == c.Status })
		counts[i].All++
		switch deref(c.AssigneeID) {
		case 0:
			counts[i].Unassigned++
		case viewerID:
			counts[i].Mine++
		}
	}
	return counts, nil
}

// StaffUser implements storage.Desk.
func (s *Store) StaffUser(ctx context.Context, externalID string) (storage.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return storage.User{}, err
	}
	id, ok := s.userByExt[externalID]
	if !ok || !s.users[id].IsAdmin {
		return storage.User{}, storage.Errorf(storage.ENOTFOUND, "no staff user with that external id")
	}
	return s.users[id], nil
}

// InboxView implements storage.Desk. It filters and sorts every
// conversation on each call, and searches by reading every message of
// each: fine for the development store.
func (s *Store) InboxView(ctx context.Context, q storage.InboxQuery) ([]storage.InboxEntry, error) {
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	if q.Limit, err = rules.InboxPageLimit(q.Limit); err != nil {
		return nil, err
	}
	if err := rules.InboxCursor(q.After); err != nil {
		return nil, err
	}
	return s.view(ctx, q, true)
}

// view returns the page of q (normalized, with a valid cursor and a
// resolved limit), with the viewer's read state when withViewer.
func (s *Store) view(ctx context.Context, q storage.InboxQuery, withViewer bool) ([]storage.InboxEntry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	match := newSearch(q.Search)
	active := make([]*conversation, 0, min(len(s.convs), 4*q.Limit))
	for _, c := range s.convs {
		if c.LastSeq > 0 && (q.After.IsZero() || inboxCompare(c, q.After) > 0) &&
			inView(c, q) && (inTeams(s.users[c.UserID].Team, q.Teams) || deref(c.AssigneeID) == q.ViewerID) && match.conversation(c, s.users[c.UserID].Name) {
			active = append(active, c)
		}
	}
	slices.SortFunc(active, func(a, b *conversation) int {
		return inboxCompare(a, b.Cursor())
	})
	if len(active) > q.Limit {
		active = active[:q.Limit]
	}
	entries := make([]storage.InboxEntry, 0, len(active))
	for _, c := range active {
		e := s.entry(c)
		if withViewer {
			e.ReadSeq = s.marks[markKey{userID: q.ViewerID, conversationID: c.ID}]
			e.Unread = unread(c, e.ReadSeq, q.ViewerID)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// ConversationEntry implements storage.Desk.
func (s *Store) ConversationEntry(ctx context.Context, viewerID, conversationID int64) (storage.InboxEntry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return storage.InboxEntry{}, err
	}
	c, ok := s.convs[conversationID]
	if !ok {
		return storage.InboxEntry{}, storage.Errorf(storage.ENOTFOUND, "conversation %d not found", conversationID)
	}
	e := s.entry(c)
	e.ReadSeq = s.marks[markKey{userID: viewerID, conversationID: c.ID}]
	e.Unread = unread(c, e.ReadSeq, viewerID)
	return e, nil
}

// inView reports whether c passes q's status and assignee filters.
func inView(c *conversation, q storage.InboxQuery) bool {
	if q.Status != "" && c.Status != q.Status {
		return false
	}
	switch q.Assignee {
	case storage.AssigneeNone:
		return c.AssigneeID == nil
	case storage.AssigneeUser:
		return deref(c.AssigneeID) == q.AssigneeID
	}
	return true
}

// inTeams reports whether a conversation whose visitor's team is team is
// one that teams keeps (storage.InboxQuery.Teams).
func inTeams(team string, teams []string) bool {
	return teams == nil || team == "" || slices.Contains(teams, team)
}

// entry is c as the inbox shows it, without read state (LastMessage nil
// when c has no message). The caller holds s.mu.
func (s *Store) entry(c *conversation) storage.InboxEntry {
	snap := c.snapshot()
	u := s.users[c.UserID]
	var last *storage.Message
	if n := len(c.messages); n > 0 {
		m := c.messages[n-1]
		last = &m
	}
	var page *storage.VisitorPage
	if p, ok := s.pages[u.ID]; ok {
		page = &p
	}
	return storage.InboxEntry{
		Page:           page,
		ConversationID: c.ID,
		UserID:         u.ID,
		UserExternalID: u.ExternalID,
		UserName:       u.Name,
		UserEmail:      u.Email,
		UserContext:    u.Context,
		Team:           u.Team,
		LastSeq:        snap.LastSeq,
		LastMessageAt:  snap.LastMessageAt,
		LastMessage:    last,
		Status:         c.Status,
		Assignee:       s.assignee(c),
	}
}

// unread counts c's messages after seq mark not sent by viewer, at most
// storage.MaxUnread.
func unread(c *conversation, mark, viewer int64) int64 {
	var n int64
	for _, m := range c.messages[mark:] {
		if m.SenderID != viewer {
			if n++; n == storage.MaxUnread {
				break
			}
		}
	}
	return n
}

// search is a normalized InboxQuery.Search: the text, and its words in
// lower case.
type search struct {
	text  string
	words []string
}

func newSearch(text string) search {
	return search{text: strings.ToLower(text), words: words(text)}
}

// conversation reports whether c matches: no search, a visitor name that
// contains the text, or a message or internal note that has every word.
func (m search) conversation(c *conversation, name string) bool {
	if m.text == "" || strings.Contains(strings.ToLower(name), m.text) {
		return true
	}
	if len(m.words) == 0 {
		return false
	}
	for _, msg := range c.messages {
		if m.matches(msg.Body) {
			return true
		}
	}
	for _, e := range c.events {
		if e.Kind == storage.EventNote && m.matches(e.Body) {
			return true
		}
	}
	return false
}

// matches reports whether body has every word of the search.
func (m search) matches(body string) bool {
	have := words(body)
	for _, w := range m.words {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// words splits s into its runs of letters and digits, in lower case.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}
