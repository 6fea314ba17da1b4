package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/grainchat/grainchat/storage/pgstore"
)

// runMigrate applies the database migrations and exits.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("chatd migrate", flag.ContinueOnError)
	fs.SetOutput(stdout)
	cfg.register(fs, getenv)
	if err := parseConfig(fs, &cfg, args, getenv); err != nil {
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
