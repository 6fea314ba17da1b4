package pgstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/lib/pq"

	"github.com/grainchat/grainchat/storage"
)

const conversationColumns = `id, user_id, last_seq, last_message_at, created_at, status, assignee_id`

// conversationStateColumns are a conversation's, its receipts', its
// visitor's and its assignee's (scanState reads them).
const conversationStateColumns = `c.id, c.user_id, c.last_seq, c.last_message_at, c.created_at, c.status, c.assignee_id,
	COALESCE(r.staff_seq, 0), COALESCE(r.visitor_seq, 0),
	u.id, u.external_id, u.name, u.is_admin, u.created_at, COALESCE(u.email, ''), COALESCE(u.context, ''), u.team, COALESCE(u.merged_into, 0),
	a.id, a.external_id, a.name, a.is_admin, a.created_at, COALESCE(a.email, ''), COALESCE(a.context, ''), COALESCE(a.merged_into, 0)
	FROM conversations c JOIN users u ON u.id = c.user_id
	LEFT JOIN users a ON a.id = c.assignee_id
	LEFT JOIN read_receipts r ON r.conversation_id = c.id`

const conversationStatesQuery = `SELECT ` + conversationStateColumns + ` WHERE c.id = ANY($1)`

// scanState reads one row of conversationStateColumns.
func scanState(scan func(dest ...any) error) (storage.ConversationState, error) {
	var (
		out      storage.ConversationState
		c        = &out.Conversation
		v        = &out.Visitor
		receipts storage.ReadReceipts
		aID      sql.NullInt64
		aExt     sql.NullString
		aName    sql.NullString
		aAdmin   sql.NullBool
		aCreated sql.NullTime
		aEmail   sql.NullString
		aContext sql.NullString
		aMerged  sql.NullInt64
	)
	err := scan(&c.ID, &c.UserID, &c.LastSeq, &c.LastMessageAt, &c.CreatedAt, &c.Status, &c.AssigneeID,
		&receipts.Staff, &receipts.Visitor,
		&v.ID, &v.ExternalID, &v.Name, &v.IsAdmin, &v.CreatedAt, &v.Email, &v.Context, &v.Team, &v.MergedInto,
		&aID, &aExt, &aName, &aAdmin, &aCreated, &aEmail, &aContext, &aMerged)
	if err != nil {
		return storage.ConversationState{}, err
	}
	c.Receipts = &receipts
	if aID.Valid {
		out.Assignee = &storage.User{ID: aID.Int64, ExternalID: aExt.String, Name: aName.String, IsAdmin: aAdmin.Bool,
			CreatedAt: aCreated.Time, Email: aEmail.String, Context: aContext.String, MergedInto: aMerged.Int64}
	}
	return out, nil
}

// ConversationStates implements storage.Store with one prepared read.
func (s *Store) ConversationStates(ctx context.Context, ids []int64) ([]storage.ConversationState, error) {
	if len(ids) > storage.MaxStateBatch {
		return nil, storage.Errorf(storage.EINVALID, "%d conversations asked at once, at most %d", len(ids), storage.MaxStateBatch)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	st, err := s.prepared(ctx, conversationStatesQuery)
	if err != nil {
		return nil, dbError(ctx, "pgstore: conversation states: prepare", err)
	}
	rows, err := st.QueryContext(ctx, pq.Int64Array(ids))
	if err != nil {
		return nil, dbError(ctx, "pgstore: conversation states", s.checkPrepared(conversationStatesQuery, err))
	}
	defer rows.Close()
	out := make([]storage.ConversationState, 0, len(ids))
	for rows.Next() {
		cs, err := scanState(rows.Scan)
		if err != nil {
			return nil, dbError(ctx, "pgstore: conversation states: scan", err)
		}
		out = append(out, cs)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: conversation states", err)
	}
	return out, nil
}

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
