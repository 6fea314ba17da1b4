package pgstore

import (
	"context"
	"database/sql"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

// inboxQuery reads one inbox page: the conversations with messages after
// the cursor ($1, $2; $1 NULL for the top), at most $3, each with its user
// and newest message.
//
// No index serves the order (migration 00004 dropped it to keep the message
// path's conversation updates HOT), so the inner query reads the whole
// conversations table, narrow columns only, keeping the first $3 rows in a
// bounded top-N heap sort; the joins then probe users and messages by key
// for those rows only. The subquery's LIMIT keeps the planner from joining
// first.
const inboxQuery = `
	SELECT c.id, c.user_id, u.external_id, u.name, c.last_seq, c.last_message_at,
		` + messageColumns + `
	FROM (
		SELECT id, user_id, last_seq, last_message_at
		FROM conversations
		WHERE last_seq > 0
			AND ($1::timestamptz IS NULL OR (last_message_at, id) < ($1::timestamptz, $2::bigint))
		ORDER BY last_message_at DESC, id DESC
		LIMIT $3
	) c
	JOIN users u ON u.id = c.user_id
	JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq
	ORDER BY c.last_message_at DESC, c.id DESC`

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

// inboxPage runs inboxQuery with a valid cursor and a resolved limit.
func (s *Store) inboxPage(ctx context.Context, after storage.InboxCursor, limit int) ([]storage.InboxEntry, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	st, err := s.prepared(ctx, inboxQuery)
	if err != nil {
		return nil, dbError(ctx, "pgstore: inbox: prepare", err)
	}
	at := sql.NullTime{Time: after.LastMessageAt, Valid: !after.IsZero()}
	rows, err := st.QueryContext(ctx, at, after.ConversationID, limit)
	if err != nil {
		return nil, dbError(ctx, "pgstore: inbox", s.checkPrepared(inboxQuery, err))
	}
	defer rows.Close()

	entries := make([]storage.InboxEntry, 0, min(limit, storage.MaxInboxPage))
	for rows.Next() {
		var e storage.InboxEntry
		var m storage.Message
		err := rows.Scan(
			&e.ConversationID, &e.UserID, &e.UserExternalID, &e.UserName, &e.LastSeq, &e.LastMessageAt,
			&m.ID, &m.ConversationID, &m.Seq, &m.SenderID, &m.SenderName, &m.SenderIsAdmin,
			&m.Body, &m.ClientMsgID, &m.CreatedAt)
		if err != nil {
			return nil, dbError(ctx, "pgstore: inbox: scan", err)
		}
		e.LastMessage = &m
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: inbox", err)
	}
	return entries, nil
}
