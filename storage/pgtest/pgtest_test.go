package pgtest_test

import (
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/grainchat/grainchat/storage/pgtest"
)

func TestNewDatabase_createsAndDrops(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse DSN %q: %v", dsn, err)
		}
		name = strings.TrimPrefix(u.Path, "/")
		if !strings.HasPrefix(name, "grainchat_test_pgtest_") {
			t.Fatalf("database name %q lacks the grainchat_test_pgtest_ prefix", name)
		}
		db, err := sql.Open("postgres", dsn)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer db.Close()
		var current string
		if err := db.QueryRowContext(t.Context(), `SELECT current_database()`).Scan(&current); err != nil {
			t.Fatalf("query: %v", err)
		}
		if current != name {
			t.Fatalf("connected to %q, want %q", current, name)
		}
	})
	if exists(t, name) {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}

func exists(t *testing.T, name string) bool {
	t.Helper()
	admin := os.Getenv(pgtest.EnvURL)
	if admin == "" {
		admin = pgtest.DefaultURL
	}
	db, err := sql.Open("postgres", admin)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
		t.Fatalf("query: %v", err)
	}
	return n > 0
}

// fatalTB records Fatalf and stops the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestNewDatabase_noServerSaysWhatToStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	t.Setenv(pgtest.EnvURL, "postgres://postgres@"+addr+"/postgres?sslmode=disable")

	f := &fatalTB{TB: t}
	var wg sync.WaitGroup
	wg.Go(func() { pgtest.NewDatabase(f) })
	wg.Wait()
	if !strings.Contains(f.msg, "pg_ctlcluster --skip-systemctl-redirect") || !strings.Contains(f.msg, addr) {
		t.Fatalf("failure message does not say what to start:\n%s", f.msg)
	}
}
