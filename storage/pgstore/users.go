package pgstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

const userColumns = `id, external_id, name, is_admin, created_at`

// UpsertUser implements storage.Store. The name is cleaned as described in
// storage (truncated to storage.MaxNameBytes; empty means the external id).
func (s *Store) UpsertUser(ctx context.Context, in storage.UserInput) (storage.User, error) {
	if err := rules.ExternalID(in.ExternalID); err != nil {
		return storage.User{}, err
	}
	name := rules.Name(in.Name, in.ExternalID)

	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	// Usually the user exists, unchanged: one read, no write (a write on
	// every connection cost a commit, and its fsync, per connection).
	var u storage.User
	err := s.db.GetContext(ctx, &u, `SELECT `+userColumns+` FROM users WHERE external_id = $1`, in.ExternalID)
	switch {
	case err == nil && u.Name == name && u.IsAdmin == in.IsAdmin:
		return u, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return storage.User{}, dbError(ctx, "pgstore: upsert user", err)
	}
	err = s.db.GetContext(ctx, &u, `
		INSERT INTO users (external_id, name, is_admin)
		VALUES ($1, $2, $3)
		ON CONFLICT (external_id) DO UPDATE
			SET name = EXCLUDED.name, is_admin = EXCLUDED.is_admin
		RETURNING `+userColumns,
		in.ExternalID, name, in.IsAdmin)
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
	err := s.db.GetContext(ctx, &u, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.User{}, storage.Errorf(storage.ENOTFOUND, "user %d not found", id)
	}
	if err != nil {
		return storage.User{}, dbError(ctx, "pgstore: get user", err)
	}
	return u, nil
}
