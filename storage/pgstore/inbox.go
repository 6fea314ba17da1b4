package pgstore

import (
	"context"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

// Inbox implements storage.Store with one query: the conversations with
// messages, by a top-N sort (migration 00004 explains why no index serves it).
func (s *Store) Inbox(ctx context.Context, limit int) ([]storage.InboxEntry, error) {
	limit = rules.InboxLimit(limit)
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `
		SELECT c.id, c.user_id, u.external_id, u.name, c.last_seq, c.last_message_at,
			`+messageColumns+`
		FROM conversations c
		JOIN users u ON u.id = c.user_id
		JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq
		WHERE c.last_seq > 0
		ORDER BY c.last_message_at DESC, c.id DESC
		LIMIT $1`, limit)
	if err != nil {
		return nil, dbError(ctx, "pgstore: inbox", err)
	}
	defer rows.Close()

	entries := []storage.InboxEntry{}
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
