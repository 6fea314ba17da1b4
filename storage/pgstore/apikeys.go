package pgstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/grainchat/grainchat/storage"
)

// This file owns API keys (storage.APIKeys). Table api_keys: migration
// 00015.

// apiKeyColumns are a key's columns with its bot (b) and creator (c), as
// scanAPIKey reads them.
const apiKeyColumns = `k.id, k.name, k.created_at, k.last_used_at, k.revoked_at,
	b.id, b.external_id, b.name, c.id, c.external_id, c.name`

// apiKeyJoins joins a key k with its bot and creator.
const apiKeyJoins = ` JOIN users b ON b.id = k.bot_user_id LEFT JOIN users c ON c.id = k.created_by`

// apiKeyByHashQuery reads the key not revoked whose hash is $1: once for
// every request a key authenticates, prepared.
const apiKeyByHashQuery = `SELECT ` + apiKeyColumns + ` FROM api_keys k` + apiKeyJoins + `
	WHERE k.key_hash = $1 AND k.revoked_at IS NULL`

// apiKeyListQuery reads the keys newest first, revoked ones only when $1,
// at most $2.
const apiKeyListQuery = `SELECT ` + apiKeyColumns + ` FROM api_keys k` + apiKeyJoins + `
	WHERE $1 OR k.revoked_at IS NULL
	ORDER BY k.id DESC
	LIMIT $2`

// apiKeyLockQuery orders a creation with every other write of the table
// (as cannedLockQuery does for canned replies): the count and the name
// check that createAPIKey makes stay true until it commits.
const apiKeyLockQuery = `LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE`

// apiKeyRevokeQuery revokes key $1 (keeping the first revocation's time):
// no row when there is no such key.
const apiKeyRevokeQuery = `
	WITH k AS (
		UPDATE api_keys SET revoked_at = coalesce(revoked_at, clock_timestamp())
		WHERE id = $1
		RETURNING *
	)
	SELECT ` + apiKeyColumns + ` FROM k` + apiKeyJoins

// scanAPIKey reads apiKeyColumns.
func scanAPIKey(row rowScanner) (storage.APIKey, error) {
	var (
		k                 storage.APIKey
		lastUsed, revoked sql.NullTime
		byID              sql.NullInt64
		byExt, byName     sql.NullString
	)
	err := row.Scan(&k.ID, &k.Name, &k.CreatedAt, &lastUsed, &revoked,
		&k.Bot.ID, &k.Bot.ExternalID, &k.Bot.Name, &byID, &byExt, &byName)
	if err != nil {
		return k, err
	}
	if lastUsed.Valid {
		t := lastUsed.Time
		k.LastUsedAt = &t
	}
	if revoked.Valid {
		t := revoked.Time
		k.RevokedAt = &t
	}
	if byID.Valid {
		k.CreatedBy = &storage.UserRef{ID: byID.Int64, ExternalID: byExt.String, Name: byName.String}
	}
	return k, nil
}

// CreateAPIKey implements storage.APIKeys in one transaction that locks
// the table (apiKeyLockQuery), checks the bound and the name, creates or
// renames the bot, and inserts the key.
func (s *Store) CreateAPIKey(ctx context.Context, in storage.NewAPIKey) (storage.APIKey, error) {
	in, err := in.Normalize()
	if err != nil {
		return storage.APIKey{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return storage.APIKey{}, dbError(ctx, "pgstore: create api key: begin", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, apiKeyLockQuery); err != nil {
		return storage.APIKey{}, dbError(ctx, "pgstore: create api key: lock", err)
	}
	var active int
	var taken bool
	err = tx.QueryRowContext(ctx, `SELECT count(*), coalesce(bool_or(lower(name) = lower($1)), false)
		FROM api_keys WHERE revoked_at IS NULL`, in.Name).Scan(&active, &taken)
	if err != nil {
		return storage.APIKey{}, dbError(ctx, "pgstore: create api key: count", err)
	}
	switch {
	case taken:
		return storage.APIKey{}, storage.Errorf(storage.ECONFLICT, "another API key has that name")
	case active >= storage.MaxAPIKeys:
		return storage.APIKey{}, storage.Errorf(storage.EINVALID, "there are %d API keys already, the most there can be", storage.MaxAPIKeys)
	}
	botID, err := ensureBot(ctx, tx, in.Name)
	if err != nil {
		return storage.APIKey{}, err
	}
	var createdBy sql.NullInt64
	if in.CreatedBy > 0 {
		createdBy = sql.NullInt64{Int64: in.CreatedBy, Valid: true}
	}
	k, err := scanAPIKey(tx.QueryRowContext(ctx, `
		WITH k AS (
			INSERT INTO api_keys (name, key_hash, bot_user_id, created_by)
			VALUES ($1, $2, $3, $4)
			RETURNING *
		)
		SELECT `+apiKeyColumns+` FROM k`+apiKeyJoins,
		in.Name, in.Hash, botID, createdBy))
	switch {
	case pq.As(err, "23505") != nil: // unique_violation: the name is checked above, so the hash
		return storage.APIKey{}, storage.Errorf(storage.ECONFLICT, "another API key has that hash")
	case pq.As(err, "23503") != nil: // foreign_key_violation: the bot exists, so the creator
		return storage.APIKey{}, storage.Errorf(storage.EINVALID, "user %d not found", in.CreatedBy)
	case err != nil:
		return storage.APIKey{}, dbError(ctx, "pgstore: create api key", err)
	}
	if err := tx.Commit(); err != nil {
		return storage.APIKey{}, dbError(ctx, "pgstore: create api key: commit", err)
	}
	return k, nil
}

// ensureBot creates the bot of the keys named name, or renames it (and
// makes it staff again), and returns its id. A user with the bot's external
// id that no key names as its bot (one a token made before such ids were
// reserved) is ECONFLICT: a key never takes over a person.
func ensureBot(ctx context.Context, tx *sqlx.Tx, name string) (int64, error) {
	ext := storage.BotExternalID(name)
	var (
		id    int64
		isBot bool
	)
	err := tx.QueryRowContext(ctx, `SELECT u.id, EXISTS (SELECT 1 FROM api_keys k WHERE k.bot_user_id = u.id)
		FROM users u WHERE u.external_id = $1`, ext).Scan(&id, &isBot)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = tx.QueryRowContext(ctx, `INSERT INTO users (external_id, name, is_admin) VALUES ($1, $2, true) RETURNING id`,
			ext, name).Scan(&id)
		if err != nil {
			return 0, dbError(ctx, "pgstore: create api key: bot", err)
		}
		return id, nil
	case err != nil:
		return 0, dbError(ctx, "pgstore: create api key: bot", err)
	case !isBot:
		return 0, storage.Errorf(storage.ECONFLICT, "a user who is not an API key's bot has the external id %s", ext)
	}
	err = tx.QueryRowContext(ctx, `UPDATE users SET name = $2, is_admin = true WHERE id = $1 RETURNING id`, id, name).Scan(&id)
	if err != nil {
		return 0, dbError(ctx, "pgstore: create api key: bot", err)
	}
	return id, nil
}

// APIKeyByHash implements storage.APIKeys with one prepared query.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (storage.APIKey, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	st, err := s.prepared(ctx, apiKeyByHashQuery)
	if err != nil {
		return storage.APIKey{}, dbError(ctx, "pgstore: api key: prepare", err)
	}
	k, err := scanAPIKey(st.QueryRowContext(ctx, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.APIKey{}, storage.Errorf(storage.ENOTFOUND, "no such API key")
	}
	if err != nil {
		return storage.APIKey{}, dbError(ctx, "pgstore: api key", s.checkPrepared(apiKeyByHashQuery, err))
	}
	return k, nil
}

// APIKeys implements storage.APIKeys with one query.
func (s *Store) APIKeys(ctx context.Context, includeRevoked bool) ([]storage.APIKey, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, apiKeyListQuery, includeRevoked, storage.MaxAPIKeyList)
	if err != nil {
		return nil, dbError(ctx, "pgstore: api keys", err)
	}
	defer rows.Close()
	out := []storage.APIKey{}
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, dbError(ctx, "pgstore: api keys: scan", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: api keys", err)
	}
	return out, nil
}

// RevokeAPIKey implements storage.APIKeys with one statement.
func (s *Store) RevokeAPIKey(ctx context.Context, id int64) (storage.APIKey, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	k, err := scanAPIKey(s.db.QueryRowContext(ctx, apiKeyRevokeQuery, id))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.APIKey{}, storage.Errorf(storage.ENOTFOUND, "API key %d not found", id)
	}
	if err != nil {
		return storage.APIKey{}, dbError(ctx, "pgstore: revoke api key", err)
	}
	return k, nil
}

// TouchAPIKey implements storage.APIKeys with one statement, which writes
// nothing when the recorded time is not older.
func (s *Store) TouchAPIKey(ctx context.Context, id int64, at time.Time) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.db.ExecContext(ctx, `UPDATE api_keys SET last_used_at = $2
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)`, id, at.UTC())
	if err != nil {
		return dbError(ctx, "pgstore: touch api key", err)
	}
	return nil
}
