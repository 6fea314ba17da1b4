package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/grainchat/grainchat/storage/pgstore"
)

// runMigrate applies the database migrations and exits.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig("chatd migrate", args, getenv, stdout)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("migrate: no --database-url (CHAT_DATABASE_URL) given")
	}
	logger, err := newLogger(cfg, stdout)
	if err != nil {
		return err
	}
	if err := pgstore.Migrate(ctx, logger, cfg.DatabaseURL); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	_, err = fmt.Fprintln(stdout, "migrations applied")
	return err
}

// runResetStoreID gives the database a new store id (see
// storage.Store.StoreID): what an operator does after restoring a backup,
// with every node stopped, so that pages drop what they cached from the
// data set as it was before the restore.
func runResetStoreID(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig("chatd reset-store-id", args, getenv, stdout)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("reset-store-id: no --database-url (CHAT_DATABASE_URL) given")
	}
	logger, err := newLogger(cfg, stdout)
	if err != nil {
		return err
	}
	store, err := pgstore.Open(ctx, logger, cfg.DatabaseURL, pgstore.Options{SkipMigrations: !cfg.Migrate})
	if err != nil {
		return fmt.Errorf("reset-store-id: %w", err)
	}
	defer store.Close()
	id, err := store.ResetStoreID(ctx)
	if err != nil {
		return fmt.Errorf("reset-store-id: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "store id is now %s; start the nodes again\n", id)
	return err
}
