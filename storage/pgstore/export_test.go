package pgstore

import (
	"context"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/grainchat/grainchat/storage"
)

// ViewQuery exposes viewQuery to the external tests, which EXPLAIN it: the
// query InboxView runs for q (normalized), with the plan searchWalk picks.
func (s *Store) ViewQuery(ctx context.Context, q storage.InboxQuery, viewer bool) (string, []any, error) {
	spec := viewSpec{viewer: viewer}
	var err error
	if spec.walk, err = s.searchWalk(ctx, q, spec); err != nil {
		return "", nil, err
	}
	query, args := viewQuery(q, spec)
	return query, args, nil
}

// MigrateTo applies the migrations up to version (included) to the
// database named by dsn, for tests of a migration over existing data; with
// down, it rolls back the ones after version instead.
func MigrateTo(ctx context.Context, dsn string, version int64, down bool) error {
	db, _, err := openDB(dsn, Options{MaxOpenConns: 1}.withDefaults())
	if err != nil {
		return err
	}
	defer db.Close()
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	if down {
		_, err = provider.DownTo(ctx, version)
	} else {
		_, err = provider.UpTo(ctx, version)
	}
	return err
}

// HoldAppending makes the indexer's loop see an AppendMessages call in
// flight (a saturated message path) until release is called.
func (s *Store) HoldAppending() (release func()) {
	s.appending.enter(time.Now())
	return func() { s.appending.exit(time.Now()) }
}

// YieldedIndexPasses is how many passes the indexer's loop skipped to
// yield to the message path.
func (s *Store) YieldedIndexPasses() int64 { return s.yielded.Load() }
