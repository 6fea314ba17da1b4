// Package pgtest gives tests a fresh PostgreSQL database each.
//
// The server is the one named by the CHAT_TEST_DATABASE_URL environment
// variable (a postgres:// URL of a database the test user may connect to and
// create databases from), by default DefaultURL. Tests never skip when the
// server is missing: they fail and say how to start one.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq" // the "postgres" database/sql driver

	"github.com/grainchat/grainchat/storage/pgstore"
)

// EnvURL names the environment variable that overrides DefaultURL.
const EnvURL = "CHAT_TEST_DATABASE_URL"

// DefaultURL is the server used when EnvURL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// NewDatabase creates an empty database with a unique name
// (grainchat_test_<package>_<random>) and returns its DSN. The database is
// dropped, with its remaining connections, when the test ends. It fails the
// test if the server cannot be reached.
func NewDatabase(tb testing.TB) (dsn string) {
	tb.Helper()
	admin := adminURL(tb)
	name := databaseName(tb)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := openAdmin(ctx, tb, admin)
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}

	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db := openAdmin(ctx, tb, admin)
		defer db.Close()
		if _, err := db.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})

	u := *admin
	u.Path = "/" + name
	return u.String()
}

// NewStore opens a pgstore.Store, migrated, on a fresh database (see
// NewDatabase), with a pool of 8 connections and logs going to the test's
// output. It is closed when the test ends.
func NewStore(tb testing.TB) *pgstore.Store {
	tb.Helper()
	dsn := NewDatabase(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, Logger(tb), dsn, pgstore.Options{MaxOpenConns: 8})
	if err != nil {
		tb.Fatalf("pgtest: open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("pgtest: close store: %v", err)
		}
	})
	return s
}

// Logger returns a logger that writes to the test's output (shown with -v or
// when the test fails).
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), nil))
}

// adminURL returns the server's URL from EnvURL or DefaultURL.
func adminURL(tb testing.TB) *url.URL {
	tb.Helper()
	raw := os.Getenv(EnvURL)
	if raw == "" {
		raw = DefaultURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("pgtest: %s must be a postgres:// URL, got %q", EnvURL, raw)
	}
	q := u.Query()
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", "5")
		u.RawQuery = q.Encode()
	}
	return u
}

// openAdmin connects to the server's admin database and checks that it
// answers, or fails the test saying what to start.
func openAdmin(ctx context.Context, tb testing.TB, admin *url.URL) *sql.DB {
	tb.Helper()
	db, err := sql.Open("postgres", admin.String())
	if err != nil {
		tb.Fatalf("pgtest: open %s: %v", admin.Redacted(), err)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		tb.Fatalf("pgtest: no PostgreSQL server answers at %s: %v\n"+
			"Start the local one with:  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"+
			"or install it with:        apt-get install -y postgresql\n"+
			"or point %s at another server.", admin.Redacted(), err, EnvURL)
	}
	return db
}

// databaseName returns grainchat_test_<package>_<random>, a valid unquoted
// identifier of at most 63 bytes. The package is the directory the test
// runs in.
func databaseName(tb testing.TB) string {
	tb.Helper()
	pkg := "pkg"
	if wd, err := os.Getwd(); err == nil {
		pkg = filepath.Base(wd)
	}
	pkg = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '_'
	}, pkg)
	if len(pkg) > 24 {
		pkg = pkg[:24]
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("pgtest: random database name: %v", err)
	}
	return fmt.Sprintf("grainchat_test_%s_%s", pkg, hex.EncodeToString(b[:]))
}
