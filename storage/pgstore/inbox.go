package pgstore

import (
	"context"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

// The inbox query (viewQuery in view.go, without filters or viewer; called
// inboxQuery below) reads one inbox page: the conversations with messages after
// the cursor ($1, $2; $1 NULL for the top), at most $3, each with its user
// and newest message.
//
// No index serves the order (migration 00004 dropped it to keep the message
// path's conversation updates HOT), so the inner query reads the whole
// conversations table, narrow columns only, keeping the first $3 rows in a
// bounded top-N heap sort (the old Inbox query joined first and sorted every
// joined row, spilling to disk at 100,000 conversations). Its LIMIT keeps
// the planner from joining first. The joins are LATERAL subqueries with
// LIMIT 1, so that every plan, the generic plan of the prepared statement
// included, probes users and messages by key for those rows only (a generic
// plan of plain joins, which cannot know $3, hash-joined the whole messages
// table: 200 ms instead of 40 at 100,000 conversations). Migration 00006
// keeps the scan serial. Cost: one scan of conversations per page, whatever
// its depth. Measured on the 2-core reference machine (server execution
// time, generic plan, fastest of 15 runs): a page of 50 takes 0.4 ms at
// 2,500 conversations and 6.5 to 13 ms at 100,000 (a 13 MB table; 1.1
// million messages); Inbox's 1,000 take 16 ms there, where the old Inbox
// query took 960 ms. A walk through all 100,000 in pages of 50 thus costs
// the database some 20 s: clients should page on demand, not walk the inbox.
// Every view of the inbox (InboxView) has this shape, with its filters
// inside the scan (see viewQuery).

// Inbox implements storage.Store: the first page, up to
// storage.MaxInboxSize conversations.
func (s *Store) Inbox(ctx context.Context, limit int) ([]storage.InboxEntry, error) {
	return s.inboxPage(ctx, storage.InboxCursor{}, rules.InboxLimit(limit))
}

// InboxPage implements storage.Store with one prepared query (inboxQuery).
// The cursor's time is compared exactly: both it and the stored
// last_message_at are whole microseconds.
func (s *Store) InboxPage(ctx context.Context, after storage.InboxCursor, limit int) ([]storage.InboxEntry, error) {
	limit, err := rules.InboxPageLimit(limit)
	if err != nil {
		return nil, err
	}
	if err := rules.InboxCursor(after); err != nil {
		return nil, err
	}
	return s.inboxPage(ctx, after, limit)
}

// inboxPage reads a page of the whole inbox (no filter, no viewer) with a
// valid cursor and a resolved limit.
func (s *Store) inboxPage(ctx context.Context, after storage.InboxCursor, limit int) ([]storage.InboxEntry, error) {
	return s.view(ctx, storage.InboxQuery{Assignee: storage.AssigneeAny, After: after, Limit: limit}, viewSpec{})
}
