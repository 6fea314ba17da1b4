package pgstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

const userColumns = `id, external_id, name, is_admin, created_at, COALESCE(email, '') AS email, COALESCE(context, '') AS context,
	team, COALESCE(merged_into, 0) AS merged_into`

// UpsertUser implements storage.Store. The name is cleaned as described in
// storage (truncated to storage.MaxNameBytes; empty means the external id).
func (s *Store) UpsertUser(ctx context.Context, in storage.UserInput) (storage.User, error) {
	if err := rules.UserExternalID(in.ExternalID); err != nil {
		return storage.User{}, err
	}
	name := rules.Name(in.Name, in.ExternalID)
	email, details, err := rules.UserDetails(in.Email, in.Context)
	if err != nil {
		return storage.User{}, err
	}
	if err := rules.Team(in.Team); err != nil {
		return storage.User{}, err
	}

	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	// Usually the user exists, unchanged: one read, no write (a write on
	// every connection cost a commit, and its fsync, per connection).
	var u storage.User
	err = s.getPrepared(ctx, &u, `SELECT `+userColumns+` FROM users WHERE external_id = $1`, in.ExternalID)
	switch {
	case err == nil && u.Name == name && u.IsAdmin == in.IsAdmin && u.Email == email && u.Context == details && u.Team == in.Team:
		return u, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return storage.User{}, dbError(ctx, "pgstore: upsert user", err)
	}
	err = s.db.GetContext(ctx, &u, `
		INSERT INTO users (external_id, name, is_admin, email, context, team)
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6)
		ON CONFLICT (external_id) DO UPDATE
			SET name = EXCLUDED.name, is_admin = EXCLUDED.is_admin, email = EXCLUDED.email, context = EXCLUDED.context,
				team = EXCLUDED.team
		RETURNING `+userColumns,
		in.ExternalID, name, in.IsAdmin, email, details, in.Team)
	if err != nil {
		return storage.User{}, dbError(ctx, "pgstore: upsert user", err)
	}
	return u, nil
}

// User implements storage.Store.
func (s *Store) User(ctx context.Context, id int64) (storage.User, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var u storage.User
	err := s.getPrepared(ctx, &u, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.User{}, storage.Errorf(storage.ENOTFOUND, "user %d not found", id)
	}
	if err != nil {
		return storage.User{}, dbError(ctx, "pgstore: get user", err)
	}
	return u, nil
}

// connectQuery reads a user by external id with their conversation, if any,
// and its read receipts.
const connectQuery = `SELECT u.id, u.external_id, u.name, u.is_admin, u.created_at,
	COALESCE(u.email, ''), COALESCE(u.context, ''), u.team, COALESCE(u.merged_into, 0), c.id, c.last_seq, c.last_message_at, c.created_at, c.status, c.assignee_id,
	COALESCE(r.staff_seq, 0), COALESCE(r.visitor_seq, 0)
	FROM users u LEFT JOIN conversations c ON c.user_id = u.id LEFT JOIN read_receipts r ON r.conversation_id = c.id
	WHERE u.external_id = $1`

// Connect implements storage.Store: one prepared read for a returning user
// whose name and role are unchanged (and, for a visitor, whose conversation
// exists, read with its receipts); UpsertUser and EnsureConversation
// otherwise (Receipts is then nil).
func (s *Store) Connect(ctx context.Context, in storage.UserInput) (storage.User, storage.Conversation, error) {
	if err := rules.UserExternalID(in.ExternalID); err != nil {
		return storage.User{}, storage.Conversation{}, err
	}
	name := rules.Name(in.Name, in.ExternalID)
	email, details, err := rules.UserDetails(in.Email, in.Context)
	if err != nil {
		return storage.User{}, storage.Conversation{}, err
	}
	qctx, cancel := s.withTimeout(ctx)
	defer cancel()
	st, err := s.prepared(qctx, connectQuery)
	if err != nil {
		return storage.User{}, storage.Conversation{}, dbError(qctx, "pgstore: connect: prepare", err)
	}
	var (
		u         storage.User
		convID    sql.NullInt64
		lastSeq   sql.NullInt64
		lastAt    sql.NullTime
		convSince sql.NullTime
		status    sql.NullString
		assignee  sql.NullInt64
		receipts  storage.ReadReceipts
	)
	err = st.QueryRowContext(qctx, in.ExternalID).Scan(&u.ID, &u.ExternalID, &u.Name, &u.IsAdmin, &u.CreatedAt,
		&u.Email, &u.Context, &u.Team, &u.MergedInto, &convID, &lastSeq, &lastAt, &convSince, &status, &assignee,
		&receipts.Staff, &receipts.Visitor)
	switch {
	case err == nil && u.Name == name && u.IsAdmin == in.IsAdmin && u.Email == email && u.Context == details &&
		u.Team == in.Team && (in.IsAdmin || convID.Valid):
		var c storage.Conversation
		if !in.IsAdmin {
			c = storage.Conversation{ID: convID.Int64, UserID: u.ID, LastSeq: lastSeq.Int64, CreatedAt: convSince.Time,
				Status: status.String, Receipts: &receipts}
			if assignee.Valid {
				id := assignee.Int64
				c.AssigneeID = &id
			}
			if lastAt.Valid {
				t := lastAt.Time
				c.LastMessageAt = &t
			}
		}
		return u, c, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return storage.User{}, storage.Conversation{}, dbError(qctx, "pgstore: connect", s.checkPrepared(connectQuery, err))
	}
	// New, changed, or without a conversation yet.
	u, err = s.UpsertUser(ctx, in)
	if err != nil || u.IsAdmin {
		return u, storage.Conversation{}, err
	}
	c, err := s.EnsureConversation(ctx, u.ID)
	return u, c, err
}

// MergeUser implements storage.Store.
func (s *Store) MergeUser(ctx context.Context, from, into int64) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var merged sql.NullInt64
	err := s.db.QueryRowContext(ctx, `
		UPDATE users SET merged_into = $2
		WHERE id = $1 AND (merged_into IS NULL OR merged_into = $2) AND EXISTS (SELECT 1 FROM users WHERE id = $2)
		RETURNING merged_into`, from, into).Scan(&merged)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return dbError(ctx, "pgstore: merge user", err)
	}
	// Nothing updated: say why.
	var current sql.NullInt64
	var intoExists bool
	err = s.db.QueryRowContext(ctx, `SELECT merged_into, EXISTS (SELECT 1 FROM users WHERE id = $2) FROM users WHERE id = $1`,
		from, into).Scan(&current, &intoExists)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return storage.Errorf(storage.ENOTFOUND, "user %d not found", from)
	case err != nil:
		return dbError(ctx, "pgstore: merge user", err)
	case !intoExists:
		return storage.Errorf(storage.ENOTFOUND, "user %d not found", into)
	default:
		return storage.Errorf(storage.ECONFLICT, "user %d was merged into user %d already", from, current.Int64)
	}
}
