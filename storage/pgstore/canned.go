package pgstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/lib/pq"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

// This file owns the desk's canned replies and the staff list
// (storage.Desk): CannedReplies, SaveCannedReply, DeleteCannedReply and
// StaffUsers. Table canned_replies: migration 00009.

// cannedColumns are a canned reply's columns with its last saver, as
// scanCanned reads them, from r (the reply) joined with u (the user).
const cannedColumns = `r.id, r.name, r.body, r.updated_at, u.id, u.external_id, u.name`

// cannedListQuery reads the replies in byte order of their names (as
// memstore sorts them, whatever the database's collation), at most $1.
const cannedListQuery = `
	SELECT ` + cannedColumns + `
	FROM canned_replies r JOIN users u ON u.id = r.updated_by
	ORDER BY r.name COLLATE "C"
	LIMIT $1`

// cannedLockQuery orders a creation with every other write of the table
// (SHARE ROW EXCLUSIVE conflicts with itself and with the ROW EXCLUSIVE of
// an insert, update or delete; reads go on): the count cannedCreateQuery
// reads then stays true until the creation commits.
const cannedLockQuery = `LOCK TABLE canned_replies IN SHARE ROW EXCLUSIVE MODE`

// cannedCreateQuery inserts a reply (name $1, body $2, by $3) unless there
// are $4 already: no row then.
const cannedCreateQuery = `
	WITH r AS (
		INSERT INTO canned_replies (name, body, updated_by, updated_at)
		SELECT $1, $2, $3, clock_timestamp()
		WHERE (SELECT count(*) FROM canned_replies) < $4
		RETURNING *
	)
	SELECT ` + cannedColumns + ` FROM r JOIN users u ON u.id = r.updated_by`

// cannedUpdateQuery replaces reply $1's name ($2) and body ($3), by $4: no
// row when there is no such reply.
const cannedUpdateQuery = `
	WITH r AS (
		UPDATE canned_replies SET name = $2, body = $3, updated_by = $4, updated_at = clock_timestamp()
		WHERE id = $1
		RETURNING *
	)
	SELECT ` + cannedColumns + ` FROM r JOIN users u ON u.id = r.updated_by`

// staffQuery reads the staff users in the order of users_staff_idx
// (00009), at most $1.
const staffQuery = `
	SELECT id, external_id, name FROM users
	WHERE is_admin
	ORDER BY name COLLATE "C", id
	LIMIT $1`

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// scanCanned reads cannedColumns.
func scanCanned(row rowScanner) (storage.CannedReply, error) {
	var r storage.CannedReply
	err := row.Scan(&r.ID, &r.Name, &r.Body, &r.UpdatedAt, &r.UpdatedBy.ID, &r.UpdatedBy.ExternalID, &r.UpdatedBy.Name)
	return r, err
}

// CannedReplies implements storage.Desk with one query.
func (s *Store) CannedReplies(ctx context.Context) ([]storage.CannedReply, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, cannedListQuery, storage.MaxCannedReplies)
	if err != nil {
		return nil, dbError(ctx, "pgstore: canned replies", err)
	}
	defer rows.Close()
	out := []storage.CannedReply{}
	for rows.Next() {
		r, err := scanCanned(rows)
		if err != nil {
			return nil, dbError(ctx, "pgstore: canned replies: scan", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: canned replies", err)
	}
	return out, nil
}

// SaveCannedReply implements storage.Desk: a creation in a transaction that
// locks the table (cannedLockQuery) and counts, an update in one statement.
func (s *Store) SaveCannedReply(ctx context.Context, in storage.CannedReplyInput) (storage.CannedReply, error) {
	in, err := in.Normalize()
	if err != nil {
		return storage.CannedReply{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if in.ID == 0 {
		return s.createCanned(ctx, in)
	}
	r, err := scanCanned(s.db.QueryRowContext(ctx, cannedUpdateQuery, in.ID, in.Name, in.Body, in.ActorID))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.CannedReply{}, storage.Errorf(storage.ENOTFOUND, "canned reply %d not found", in.ID)
	}
	if err != nil {
		return storage.CannedReply{}, cannedError(ctx, "pgstore: update canned reply", in, err)
	}
	return r, nil
}

// createCanned creates the (normalized) reply in, within the bound.
func (s *Store) createCanned(ctx context.Context, in storage.CannedReplyInput) (storage.CannedReply, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return storage.CannedReply{}, dbError(ctx, "pgstore: create canned reply: begin", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, cannedLockQuery); err != nil {
		return storage.CannedReply{}, dbError(ctx, "pgstore: create canned reply: lock", err)
	}
	r, err := scanCanned(tx.QueryRowContext(ctx, cannedCreateQuery, in.Name, in.Body, in.ActorID, storage.MaxCannedReplies))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.CannedReply{}, storage.Errorf(storage.EINVALID,
			"there are %d canned replies already, the most there can be", storage.MaxCannedReplies)
	}
	if err != nil {
		return storage.CannedReply{}, cannedError(ctx, "pgstore: create canned reply", in, err)
	}
	if err := tx.Commit(); err != nil {
		return storage.CannedReply{}, dbError(ctx, "pgstore: create canned reply: commit", err)
	}
	return r, nil
}

// cannedError translates the violations a save can meet: the name's unique
// constraint (ECONFLICT), the actor's foreign key (EINVALID).
func cannedError(ctx context.Context, what string, in storage.CannedReplyInput, err error) error {
	switch {
	case pq.As(err, "23505") != nil: // unique_violation: canned_replies_name_key, the only unique key written
		return storage.Errorf(storage.ECONFLICT, "another canned reply has that name")
	case pq.As(err, "23503") != nil: // foreign_key_violation: updated_by, the only foreign key
		return storage.Errorf(storage.EINVALID, "user %d not found", in.ActorID)
	}
	return dbError(ctx, what, err)
}

// DeleteCannedReply implements storage.Desk with one statement.
func (s *Store) DeleteCannedReply(ctx context.Context, id int64) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	res, err := s.db.ExecContext(ctx, `DELETE FROM canned_replies WHERE id = $1`, id)
	if err != nil {
		return dbError(ctx, "pgstore: delete canned reply", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(ctx, "pgstore: delete canned reply", err)
	}
	if n == 0 {
		return storage.Errorf(storage.ENOTFOUND, "canned reply %d not found", id)
	}
	return nil
}

// StaffUsers implements storage.Desk with one query (staffQuery).
func (s *Store) StaffUsers(ctx context.Context, limit int) ([]storage.UserRef, error) {
	limit, err := rules.StaffLimit(limit)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, staffQuery, limit)
	if err != nil {
		return nil, dbError(ctx, "pgstore: staff users", err)
	}
	defer rows.Close()
	out := []storage.UserRef{}
	for rows.Next() {
		var u storage.UserRef
		if err := rows.Scan(&u.ID, &u.ExternalID, &u.Name); err != nil {
			return nil, dbError(ctx, "pgstore: staff users: scan", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: staff users", err)
	}
	return out, nil
}
