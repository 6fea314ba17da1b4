package pgstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/lib/pq"

	"github.com/grainchat/grainchat/storage"
)

const conversationColumns = `id, user_id, last_seq, last_message_at, created_at, status, assignee_id`

// EnsureConversation implements storage.Store.
func (s *Store) EnsureConversation(ctx context.Context, userID int64) (storage.Conversation, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()

	// Usually the conversation exists: one read, no write.
	c, err := s.conversationByUser(ctx, userID)
	switch {
	case err == nil:
		return c, nil
	case !errors.Is(err, sql.ErrNoRows):
		return storage.Conversation{}, dbError(ctx, "pgstore: ensure conversation", err)
	}

	// With webhooks, a new conversation is queued in the same statement
	// (00014).
	err = s.db.GetContext(ctx, &c, `
		WITH c AS (
			INSERT INTO conversations (user_id) VALUES ($1)
			ON CONFLICT (user_id) DO NOTHING
			RETURNING `+conversationColumns+`
		), q AS (
			INSERT INTO webhook_queue (kind, first_id, last_id)
			SELECT 'conversation', c.id, c.id FROM c WHERE $2::boolean
		)
		SELECT * FROM c`, userID, s.opts.Webhooks)
	switch {
	case err == nil:
		return c, nil
	case pq.As(err, "23503") != nil: // foreign_key_violation: no such user
		return storage.Conversation{}, storage.Errorf(storage.ENOTFOUND, "user %d not found", userID)
	case !errors.Is(err, sql.ErrNoRows):
		return storage.Conversation{}, dbError(ctx, "pgstore: create conversation", err)
	}

	// Another caller created it between our read and our insert; this new
	// statement's snapshot sees it.
	c, err = s.conversationByUser(ctx, userID)
	if err != nil {
		return storage.Conversation{}, dbError(ctx, "pgstore: ensure conversation", err)
	}
	return c, nil
}

func (s *Store) conversationByUser(ctx context.Context, userID int64) (storage.Conversation, error) {
	var c storage.Conversation
	err := s.getPrepared(ctx, &c, `SELECT `+conversationColumns+` FROM conversations WHERE user_id = $1`, userID)
	return c, err
}

// Conversation implements storage.Store.
func (s *Store) Conversation(ctx context.Context, id int64) (storage.Conversation, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var c storage.Conversation
	err := s.getPrepared(ctx, &c, `SELECT `+conversationColumns+` FROM conversations WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Conversation{}, storage.Errorf(storage.ENOTFOUND, "conversation %d not found", id)
	}
	if err != nil {
		return storage.Conversation{}, dbError(ctx, "pgstore: get conversation", err)
	}
	return c, nil
}
