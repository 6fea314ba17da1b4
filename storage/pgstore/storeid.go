package pgstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/lib/pq"

	"github.com/grainchat/grainchat/storage"
)

// StoreID implements storage.Store: the id read from the table
// grainchat_store (migration 00005) when the store was opened, or the one
// set since by this Store's ResetStoreID.
func (s *Store) StoreID() string {
	s.idMu.RLock()
	defer s.idMu.RUnlock()
	return s.id
}

// readStoreID reads the store's id from the database.
func (s *Store) readStoreID(ctx context.Context) (string, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM grainchat_store`).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", storage.Errorf(storage.EINTERNAL,
			"pgstore: read store id: table grainchat_store is empty (restore its row with ResetStoreID)")
	case pq.As(err, "42P01") != nil: // undefined_table
		return "", &storage.Error{Code: storage.EINTERNAL,
			Message: "pgstore: read store id: the schema is not migrated (run chatd migrate)", Err: err}
	case err != nil:
		return "", dbError(ctx, "pgstore: read store id", err)
	}
	return id, nil
}

// ResetStoreID gives the database a new random store id, and returns it.
// Run it after restoring a backup, before any chatd serves the restored
// database (see StoreID in package storage for why): pages then drop what
// they cached from the database as it was before, whose ids the restored
// database will hand out again. It also recreates the table's row if it was
// lost.
//
// This Store's StoreID returns the new id from then on; other Stores open on
// the same database (other nodes) keep returning the id they read at Open
// until they are opened again. So run it with every chatd stopped, for
// example from a command that opens the store, calls ResetStoreID and
// closes it. Errors: EUNAVAILABLE when the database cannot be reached,
// EINTERNAL otherwise.
func (s *Store) ResetStoreID(ctx context.Context) (string, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var id string
	err := s.db.QueryRowContext(ctx, `
		INSERT INTO grainchat_store (singleton, id) VALUES (true, gen_random_uuid()::text)
		ON CONFLICT (singleton) DO UPDATE SET id = EXCLUDED.id
		RETURNING id`).Scan(&id)
	if err != nil {
		return "", dbError(ctx, "pgstore: reset store id", err)
	}
	s.idMu.Lock()
	old := s.id
	s.id = id
	s.idMu.Unlock()
	s.logger.Warn("pgstore: store id reset", "old_store_id", old, "store_id", id)
	return id, nil
}
