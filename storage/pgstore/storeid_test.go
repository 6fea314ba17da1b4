package pgstore_test

import (
	"strings"
	"testing"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/pgstore"
	"github.com/grainchat/grainchat/storage/pgtest"
)

// TestStoreID_perDatabase: the store id is the database's: the same for two
// stores open at once and after reopening, another for another database.
func TestStoreID_perDatabase(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a := openStore(t, dsn, pgstore.Options{MaxOpenConns: 2})
	b := openStore(t, dsn, pgstore.Options{MaxOpenConns: 2})
	id := a.StoreID()
	if id == "" || b.StoreID() != id {
		t.Fatalf("two stores on one database: StoreID %q and %q", id, b.StoreID())
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	reopened := openStore(t, dsn, pgstore.Options{MaxOpenConns: 2, SkipMigrations: true})
	if got := reopened.StoreID(); got != id {
		t.Fatalf("reopened store: StoreID %q, want %q", got, id)
	}
	other := pgtest.NewStore(t)
	if got := other.StoreID(); got == "" || got == id {
		t.Fatalf("another database: StoreID %q (first database %q)", got, id)
	}
}

// TestResetStoreID: ResetStoreID gives the database a new id, which this
// store reports at once and any store opened afterwards reads; it recreates a
// lost row; the data is untouched.
func TestResetStoreID(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s := openStore(t, dsn, pgstore.Options{MaxOpenConns: 2})
	ctx := t.Context()
	u, err := s.UpsertUser(ctx, storage.UserInput{ExternalID: "kept"})
	if err != nil {
		t.Fatalf("UpsertUser: %v", err)
	}
	old := s.StoreID()
	id, err := s.ResetStoreID(ctx)
	if err != nil {
		t.Fatalf("ResetStoreID: %v", err)
	}
	if id == "" || id == old || s.StoreID() != id {
		t.Fatalf("ResetStoreID = %q (old %q), StoreID now %q", id, old, s.StoreID())
	}
	if got := openStore(t, dsn, pgstore.Options{MaxOpenConns: 2}).StoreID(); got != id {
		t.Fatalf("store opened after the reset: StoreID %q, want %q", got, id)
	}
	if got, err := s.User(ctx, u.ID); err != nil || got.ExternalID != "kept" {
		t.Fatalf("User after the reset = %+v, %v", got, err)
	}

	// A lost row: Open says so; ResetStoreID puts one back.
	if _, err := s.DB().ExecContext(ctx, `DELETE FROM grainchat_store`); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = pgstore.Open(ctx, pgtest.Logger(t), dsn, pgstore.Options{MaxOpenConns: 2})
	wantStoreCode(t, err, storage.EINTERNAL)
	if !strings.Contains(err.Error(), "ResetStoreID") {
		t.Fatalf("Open without a store id row: %v; want it to name ResetStoreID", err)
	}
	again, err := s.ResetStoreID(ctx)
	if err != nil || again == "" || again == id {
		t.Fatalf("ResetStoreID on an empty table = %q, %v", again, err)
	}
	if got := openStore(t, dsn, pgstore.Options{MaxOpenConns: 2}).StoreID(); got != again {
		t.Fatalf("store opened after recreating the row: StoreID %q, want %q", got, again)
	}
	var rows int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM grainchat_store`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("grainchat_store has %d rows (%v), want 1", rows, err)
	}
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO grainchat_store (singleton, id) VALUES (false, 'second')`); err == nil {
		t.Fatal("a second row was accepted")
	}
}

// TestOpen_unmigrated: opening a database without the schema, migrations
// skipped, fails and says to migrate.
func TestOpen_unmigrated(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	_, err := pgstore.Open(t.Context(), pgtest.Logger(t), dsn, pgstore.Options{MaxOpenConns: 2, SkipMigrations: true})
	wantStoreCode(t, err, storage.EINTERNAL)
	if !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("Open of an unmigrated database: %v; want it to say to migrate", err)
	}
}

func wantStoreCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := storage.ErrorCode(err); got != code {
		t.Fatalf("error %v (code %q), want code %q", err, got, code)
	}
}
