package pgstore

import (
	"context"
	"database/sql"
	"embed"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/grainchat/grainchat/storage"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate applies the pending migrations to the database named by dsn and
// returns once the schema is current. It is what `chatd migrate` runs, and
// what Open does unless Options.SkipMigrations.
//
// Several processes may migrate the same database at once: each takes a
// PostgreSQL session advisory lock first (goose's session locker), so one
// applies the migrations while the others wait (up to 10 minutes), then find
// nothing left to do. A nil logger discards logs. Errors are *storage.Error
// (EUNAVAILABLE when the server cannot be reached).
func Migrate(ctx context.Context, logger *slog.Logger, dsn string) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db, _, err := openDB(dsn, Options{MaxOpenConns: 2}.withDefaults())
	if err != nil {
		return err
	}
	defer db.Close()
	return migrate(ctx, logger, db)
}

// migrate applies the pending migrations over db.
func migrate(ctx context.Context, logger *slog.Logger, db *sql.DB) error {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return &storage.Error{Code: storage.EINTERNAL, Message: "pgstore: migrate: open embedded migrations", Err: err}
	}
	// Poll for the lock every second, for at most 10 minutes; release it
	// within a minute.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 600), lock.WithUnlockTimeout(1, 60))
	if err != nil {
		return &storage.Error{Code: storage.EINTERNAL, Message: "pgstore: migrate: create locker", Err: err}
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true), // only our embedded SQL files
	)
	if err != nil {
		return &storage.Error{Code: storage.EINTERNAL, Message: "pgstore: migrate: create goose provider", Err: err}
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return dbError(ctx, "pgstore: migrate", err)
	}
	for _, r := range results {
		logger.Info("pgstore: migration applied",
			"version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}
