package pgstore_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/pgstore"
	"github.com/grainchat/grainchat/storage/pgtest"
	"github.com/grainchat/grainchat/storage/storetest"
)

// TestStore runs the conformance suite, each subtest on a database of its own.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store { return pgtest.NewStore(t) })
}

func openStore(t *testing.T, dsn string, opts pgstore.Options) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(t.Context(), pgtest.Logger(t), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestMigrate_idempotent: opening twice and migrating again change nothing.
func TestMigrate_idempotent(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s1 := openStore(t, dsn, pgstore.Options{MaxOpenConns: 2})
	u, err := s1.UpsertUser(t.Context(), storage.UserInput{ExternalID: "kept"})
	if err != nil {
		t.Fatalf("UpsertUser: %v", err)
	}
	s2 := openStore(t, dsn, pgstore.Options{MaxOpenConns: 2})
	if err := pgstore.Migrate(t.Context(), pgtest.Logger(t), dsn); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	got, err := s2.User(t.Context(), u.ID)
	if err != nil || got.ExternalID != "kept" {
		t.Fatalf("User after re-migrating = %+v, %v", got, err)
	}
	checkMigrated(t, s2.DB())
}

// TestMigrate_concurrent: three processes migrating a fresh database at once
// all succeed, and each migration is applied once.
func TestMigrate_concurrent(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	const n = 3
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = pgstore.Migrate(t.Context(), pgtest.Logger(t), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Migrate #%d: %v", i, err)
		}
	}
	s := openStore(t, dsn, pgstore.Options{MaxOpenConns: 2, SkipMigrations: true})
	checkMigrated(t, s.DB())
}

// checkMigrated checks that every migration was recorded exactly once and
// that the tables exist.
func checkMigrated(t *testing.T, db *sql.DB) {
	t.Helper()
	var applied, distinct int
	err := db.QueryRowContext(t.Context(),
		`SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0 AND is_applied`).
		Scan(&applied, &distinct)
	if err != nil {
		t.Fatalf("read goose_db_version: %v", err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) < 2 {
		t.Fatalf("migration files: %v, %v", files, err)
	}
	if applied != len(files) || distinct != len(files) {
		t.Fatalf("goose_db_version: %d applied rows, %d versions; want %d, %d", applied, distinct, len(files), len(files))
	}
	for _, table := range []string{"users", "conversations", "messages"} {
		var n int
		if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatalf("table %s: %v", table, err)
		}
	}
}

// TestTwoStores_sameConversation: two pools (like two processes) appending to
// the same conversations at once still give gap-free seqs.
func TestTwoStores_sameConversation(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	stores := []*pgstore.Store{
		openStore(t, dsn, pgstore.Options{MaxOpenConns: 4}),
		openStore(t, dsn, pgstore.Options{MaxOpenConns: 4}),
	}
	ctx := t.Context()
	u, err := stores[0].UpsertUser(ctx, storage.UserInput{ExternalID: "visitor"})
	if err != nil {
		t.Fatalf("UpsertUser: %v", err)
	}
	u2, err := stores[1].UpsertUser(ctx, storage.UserInput{ExternalID: "visitor-2"})
	if err != nil {
		t.Fatalf("UpsertUser: %v", err)
	}
	c1, err := stores[0].EnsureConversation(ctx, u.ID)
	if err != nil {
		t.Fatalf("EnsureConversation: %v", err)
	}
	c2, err := stores[1].EnsureConversation(ctx, u2.ID)
	if err != nil {
		t.Fatalf("EnsureConversation: %v", err)
	}

	const (
		writersPerStore = 4
		batches         = 15
		perBatch        = 5
	)
	errs := make(chan error, 2*writersPerStore)
	var wg sync.WaitGroup
	for si, s := range stores {
		for g := range writersPerStore {
			wg.Go(func() {
				for n := range batches {
					var batch []storage.NewMessage
					for k := range perBatch {
						// Alternate which conversation comes first: row locks
						// are taken in id order, so this cannot deadlock.
						first, second := c1, c2
						if (g+n+k)%2 == 1 {
							first, second = c2, c1
						}
						body := fmt.Sprintf("s%d-w%d-b%d-m%d", si, g, n, k)
						batch = append(batch,
							storage.NewMessage{ConversationID: first.ID, SenderID: first.UserID, Body: body + "-a", ClientMsgID: body + "-a"},
							storage.NewMessage{ConversationID: second.ID, SenderID: second.UserID, Body: body + "-b", ClientMsgID: body + "-b"})
					}
					res, err := s.AppendMessages(ctx, batch)
					if err != nil {
						errs <- fmt.Errorf("store %d writer %d batch %d: %w", si, g, n, err)
						return
					}
					for i, r := range res {
						if r.Err != nil || r.Duplicate {
							errs <- fmt.Errorf("store %d writer %d batch %d message %d: %+v", si, g, n, i, r)
							return
						}
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	const perConv = 2 * writersPerStore * batches * perBatch
	for _, c := range []storage.Conversation{c1, c2} {
		seen := map[string]bool{}
		var after int64
		for {
			page, err := stores[0].Messages(ctx, c.ID, storage.Page{AfterSeq: after, Limit: storage.MaxPageSize})
			if err != nil {
				t.Fatalf("Messages: %v", err)
			}
			if len(page) == 0 {
				break
			}
			for _, m := range page {
				if m.Seq != after+1 {
					t.Fatalf("conversation %d: seq %d follows %d", c.ID, m.Seq, after)
				}
				if seen[m.Body] {
					t.Fatalf("conversation %d: %q stored twice", c.ID, m.Body)
				}
				seen[m.Body] = true
				after = m.Seq
			}
		}
		if after != perConv || len(seen) != perConv {
			t.Fatalf("conversation %d: last seq %d, %d bodies; want %d", c.ID, after, len(seen), perConv)
		}
	}
}

// TestOpen_noServer: nothing listens on the port, so Open fails with
// EUNAVAILABLE, quickly.
func TestOpen_noServer(t *testing.T) {
	addr := closedAddr(t)
	start := time.Now()
	_, err := pgstore.Open(t.Context(), nil, "postgres://postgres@"+addr+"/postgres?sslmode=disable", pgstore.Options{})
	if code := storage.ErrorCode(err); code != storage.EUNAVAILABLE {
		t.Fatalf("Open: error %v (code %q), want code %q", err, code, storage.EUNAVAILABLE)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Open took %v to fail", d)
	}
	err = pgstore.Migrate(t.Context(), nil, "postgres://postgres@"+addr+"/postgres?sslmode=disable")
	if code := storage.ErrorCode(err); code != storage.EUNAVAILABLE {
		t.Fatalf("Migrate: error %v (code %q), want code %q", err, code, storage.EUNAVAILABLE)
	}
}

// TestUnavailable_proxyCut: when the connection to the server is cut, calls
// fail with EUNAVAILABLE within a bounded time; once it is back, the same
// store works again.
func TestUnavailable_proxyCut(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	proxy, proxied := pgtest.ProxyDSN(t, dsn)
	s := openStore(t, proxied, pgstore.Options{MaxOpenConns: 4, QueryTimeout: 5 * time.Second})
	ctx := t.Context()

	u, err := s.UpsertUser(ctx, storage.UserInput{ExternalID: "visitor"})
	if err != nil {
		t.Fatalf("UpsertUser: %v", err)
	}
	c, err := s.EnsureConversation(ctx, u.ID)
	if err != nil {
		t.Fatalf("EnsureConversation: %v", err)
	}
	appendOne := func(body string) (storage.AppendResult, error) {
		res, err := s.AppendMessages(ctx, []storage.NewMessage{{ConversationID: c.ID, SenderID: u.ID, Body: body, ClientMsgID: body}})
		if err != nil {
			return storage.AppendResult{}, err
		}
		return res[0], res[0].Err
	}
	if r, err := appendOne("before the cut"); err != nil || r.Message.Seq != 1 {
		t.Fatalf("append before the cut: %+v, %v", r, err)
	}
	// Connect's statement is prepared before the cut; Conversation's is
	// first prepared during it: both must fail as unavailable.
	visitor := storage.UserInput{ExternalID: "visitor"}
	if _, got, err := s.Connect(ctx, visitor); err != nil || got.ID != c.ID {
		t.Fatalf("Connect before the cut: conversation %+v, %v", got, err)
	}

	proxy.SetDown(true)
	for _, call := range []struct {
		name string
		fn   func() error
	}{
		{"AppendMessages", func() error { _, err := appendOne("during the cut"); return err }},
		{"Ping", func() error { return s.Ping(ctx) }},
		{"Messages", func() error { _, err := s.Messages(ctx, c.ID, storage.Page{}); return err }},
		{"Inbox", func() error { _, err := s.Inbox(ctx, 0); return err }},
		{"InboxPage", func() error { _, err := s.InboxPage(ctx, storage.InboxCursor{}, 0); return err }},
		{"ResetStoreID", func() error { _, err := s.ResetStoreID(ctx); return err }},
		{"User", func() error { _, err := s.User(ctx, u.ID); return err }},
		{"Connect", func() error { _, _, err := s.Connect(ctx, visitor); return err }},
		{"Conversation", func() error { _, err := s.Conversation(ctx, c.ID); return err }},
	} {
		start := time.Now()
		err := call.fn()
		if code := storage.ErrorCode(err); code != storage.EUNAVAILABLE {
			t.Fatalf("%s during the cut: error %v (code %q), want %q", call.name, err, code, storage.EUNAVAILABLE)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("%s took %v to fail", call.name, d)
		}
		t.Logf("%s during the cut: %v (after %v)", call.name, err, time.Since(start).Round(time.Millisecond))
	}

	proxy.SetDown(false)
	var r storage.AppendResult
	checkFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		var err error
		r, err = appendOne("after the cut")
		return err
	})
	if r.Message.Seq != 2 {
		t.Fatalf("append after the cut = %+v, want seq 2", r)
	}
	if _, got, err := s.Connect(ctx, visitor); err != nil || got.ID != c.ID || got.LastSeq != 2 {
		t.Fatalf("Connect after the cut: conversation %+v, %v", got, err)
	}
	if got, err := s.Conversation(ctx, c.ID); err != nil || got.LastSeq != 2 {
		t.Fatalf("Conversation after the cut: %+v, %v", got, err)
	}
}

// TestUnavailable_cutDuringAppends: cutting the connection while writers
// are appending fails their calls with EUNAVAILABLE only, and leaves the
// conversation gap-free: a transaction either committed whole or not at all.
func TestUnavailable_cutDuringAppends(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	proxy, proxied := pgtest.ProxyDSN(t, dsn)
	s := openStore(t, proxied, pgstore.Options{MaxOpenConns: 4, QueryTimeout: 5 * time.Second})
	ctx := t.Context()
	u, err := s.UpsertUser(ctx, storage.UserInput{ExternalID: "visitor"})
	if err != nil {
		t.Fatalf("UpsertUser: %v", err)
	}
	c, err := s.EnsureConversation(ctx, u.ID)
	if err != nil {
		t.Fatalf("EnsureConversation: %v", err)
	}

	const writers = 4
	var (
		stop      atomic.Bool
		successes atomic.Int64
		failures  atomic.Int64
		mu        sync.Mutex
		stored    = map[string]int64{} // body → seq, from successful results
		badErrs   []error
		slowest   time.Duration
		wg        sync.WaitGroup
	)
	for g := range writers {
		wg.Go(func() {
			for n := 0; !stop.Load(); n++ {
				var batch []storage.NewMessage
				for k := range 5 {
					body := fmt.Sprintf("w%d-b%d-m%d", g, n, k)
					batch = append(batch, storage.NewMessage{ConversationID: c.ID, SenderID: u.ID, Body: body, ClientMsgID: body})
				}
				start := time.Now()
				res, err := s.AppendMessages(ctx, batch)
				took := time.Since(start)
				mu.Lock()
				slowest = max(slowest, took)
				if err != nil {
					if storage.ErrorCode(err) != storage.EUNAVAILABLE {
						badErrs = append(badErrs, err)
					}
				} else {
					for i, r := range res {
						stored[batch[i].Body] = r.Message.Seq
					}
				}
				mu.Unlock()
				if err != nil {
					failures.Add(1)
					time.Sleep(10 * time.Millisecond) // back off while the server is away
				} else {
					successes.Add(1)
				}
			}
		})
	}
	atLeast := func(v *atomic.Int64, n int64) func() error {
		return func() error {
			if got := v.Load(); got < n {
				return fmt.Errorf("%d so far, waiting for %d", got, n)
			}
			return nil
		}
	}
	checkFor(t, 20*time.Second, 5*time.Millisecond, atLeast(&successes, 20))
	proxy.SetDown(true)
	checkFor(t, 20*time.Second, 5*time.Millisecond, atLeast(&failures, 2*writers))
	proxy.SetDown(false)
	checkFor(t, 20*time.Second, 5*time.Millisecond, atLeast(&successes, successes.Load()+20))
	stop.Store(true)
	wg.Wait()

	for _, err := range badErrs {
		t.Errorf("error during the cut is not %q: %v", storage.EUNAVAILABLE, err)
	}
	if slowest > 10*time.Second {
		t.Errorf("slowest AppendMessages took %v", slowest)
	}
	after := int64(0)
	for {
		page, err := s.Messages(ctx, c.ID, storage.Page{AfterSeq: after, Limit: storage.MaxPageSize})
		if err != nil {
			t.Fatalf("Messages: %v", err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			if m.Seq != after+1 {
				t.Fatalf("seq %d follows %d", m.Seq, after)
			}
			if seq, ok := stored[m.Body]; ok && seq != m.Seq {
				t.Fatalf("%q: result said seq %d, stored with %d", m.Body, seq, m.Seq)
			}
			delete(stored, m.Body)
			after = m.Seq
		}
	}
	if len(stored) != 0 {
		t.Fatalf("%d messages reported stored are missing", len(stored))
	}
	t.Logf("%d successful and %d failed batches; %d messages stored; slowest call %v",
		successes.Load(), failures.Load(), after, slowest)
}

// TestAppendsHaveTheirOwnConnections: with every connection of the pool
// taken (hundreds of grains loading after a cold start), messages are still
// stored at once, on the appends' own pool; without it (AppendConns < 0) they
// wait for a connection until the query timeout.
func TestAppendsHaveTheirOwnConnections(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	for _, tt := range []struct {
		name        string
		appendConns int
		stored      bool
	}{
		{"own pool", 1, true},
		{"shared pool", -1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, dsn, pgstore.Options{MaxOpenConns: 2, AppendConns: tt.appendConns, QueryTimeout: time.Second})
			ctx := t.Context()
			u, err := s.UpsertUser(ctx, storage.UserInput{ExternalID: "visitor-" + tt.name})
			if err != nil {
				t.Fatalf("UpsertUser: %v", err)
			}
			c, err := s.EnsureConversation(ctx, u.ID)
			if err != nil {
				t.Fatalf("EnsureConversation: %v", err)
			}
			for range 2 { // the whole pool, held
				tx, err := s.DB().BeginTx(ctx, nil)
				if err != nil {
					t.Fatalf("begin: %v", err)
				}
				t.Cleanup(func() { _ = tx.Rollback() })
			}
			res, err := s.AppendMessages(ctx, []storage.NewMessage{{ConversationID: c.ID, SenderID: u.ID, Body: "hello"}})
			if tt.stored {
				if err != nil || len(res) != 1 || res[0].Err != nil || res[0].Message.Seq != 1 {
					t.Fatalf("AppendMessages with the pool taken: %+v, %v; want seq 1 stored", res, err)
				}
				return
			}
			if code := storage.ErrorCode(err); code != storage.EUNAVAILABLE {
				t.Fatalf("AppendMessages on a taken shared pool: %+v, %v; want EUNAVAILABLE after the timeout", res, err)
			}
		})
	}
}

// TestQueryTimeout: a call that waits on a lock longer than QueryTimeout
// fails with EUNAVAILABLE, and the store stays usable.
func TestQueryTimeout(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s := openStore(t, dsn, pgstore.Options{MaxOpenConns: 4, QueryTimeout: 300 * time.Millisecond})
	ctx := t.Context()
	u, err := s.UpsertUser(ctx, storage.UserInput{ExternalID: "visitor"})
	if err != nil {
		t.Fatalf("UpsertUser: %v", err)
	}
	c, err := s.EnsureConversation(ctx, u.ID)
	if err != nil {
		t.Fatalf("EnsureConversation: %v", err)
	}

	// Hold the conversation's row lock from another connection.
	locker := openStore(t, dsn, pgstore.Options{MaxOpenConns: 1, SkipMigrations: true})
	tx, err := locker.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE`, c.ID); err != nil {
		t.Fatalf("lock: %v", err)
	}
	msg := []storage.NewMessage{{ConversationID: c.ID, SenderID: u.ID, Body: "blocked"}}
	start := time.Now()
	_, err = s.AppendMessages(ctx, msg)
	if code := storage.ErrorCode(err); code != storage.EUNAVAILABLE {
		t.Fatalf("AppendMessages while locked: error %v (code %q), want %q", err, code, storage.EUNAVAILABLE)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("AppendMessages took %v to time out", d)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	res, err := s.AppendMessages(ctx, msg)
	if err != nil || res[0].Err != nil || res[0].Message.Seq != 1 {
		t.Fatalf("AppendMessages after the lock was released = %+v, %v; want seq 1", res, err)
	}
}

// checkFor calls fn every interval until it returns nil, and fails the test
// with fn's last error after total.
func checkFor(t *testing.T, total, interval time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %v: %v", total, err)
		}
		select {
		case <-time.After(interval):
		case <-t.Context().Done():
			t.Fatalf("test ended while waiting: %v", err)
		}
	}
}
