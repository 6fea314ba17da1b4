package pgstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"
	"go.uber.org/goleak"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/pgstore"
	"github.com/grainchat/grainchat/storage/pgtest"
	"github.com/grainchat/grainchat/storage/storetest"
)

// The conformance suite indexes a pgstore.Store before it searches.
var _ storetest.SearchIndexer = (*pgstore.Store)(nil)

// searchWorld is a store without the indexer's loop (IndexSearch is called
// by the test) and n visitors with a conversation each, plus a staff user
// to search as.
type searchWorld struct {
	s     *pgstore.Store
	staff storage.User
	convs []storage.Conversation
}

func newSearchWorld(t *testing.T, dsn string, n int) *searchWorld {
	t.Helper()
	w := &searchWorld{s: openStore(t, dsn, pgstore.Options{MaxOpenConns: 4, SearchIndexInterval: -1})}
	var err error
	if w.staff, err = w.s.UpsertUser(t.Context(), storage.UserInput{ExternalID: "ann", Name: "Ann", IsAdmin: true}); err != nil {
		t.Fatalf("UpsertUser: %v", err)
	}
	for i := range n {
		u, err := w.s.UpsertUser(t.Context(), storage.UserInput{ExternalID: fmt.Sprintf("visitor-%d", i), Name: fmt.Sprintf("Visitor %d", i)})
		if err != nil {
			t.Fatalf("UpsertUser: %v", err)
		}
		c, err := w.s.EnsureConversation(t.Context(), u.ID)
		if err != nil {
			t.Fatalf("EnsureConversation: %v", err)
		}
		w.convs = append(w.convs, c)
	}
	return w
}

// search returns the ids of the conversations InboxView finds for text.
func (w *searchWorld) search(t *testing.T, text string) []int64 {
	t.Helper()
	page, err := w.s.InboxView(t.Context(), storage.InboxQuery{ViewerID: w.staff.ID, Search: text, Limit: storage.MaxInboxPage})
	if err != nil {
		t.Fatalf("InboxView(search %q): %v", text, err)
	}
	var ids []int64
	for _, e := range page {
		ids = append(ids, e.ConversationID)
	}
	return ids
}

// drain calls IndexSearch until it returns 0 and returns the sum.
func drain(t *testing.T, s *pgstore.Store) int {
	t.Helper()
	total := 0
	for {
		n, err := s.IndexSearch(t.Context())
		if err != nil {
			t.Fatalf("IndexSearch: %v", err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

// checkIndexed fails unless message_search holds exactly the messages, each
// with its conversation, and the queue is empty.
func checkIndexed(t *testing.T, s *pgstore.Store, wantMessages int) {
	t.Helper()
	var messages, indexed, missing, wrong, queued int
	err := s.DB().QueryRowContext(t.Context(), `SELECT
		(SELECT count(*) FROM messages),
		(SELECT count(*) FROM message_search),
		(SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM message_search x WHERE x.message_id = m.id)),
		(SELECT count(*) FROM message_search x LEFT JOIN messages m ON m.id = x.message_id
			WHERE m.id IS NULL OR m.conversation_id <> x.conversation_id OR x.tsv <> to_tsvector('simple', m.body)),
		(SELECT count(*) FROM search_queue)`).Scan(&messages, &indexed, &missing, &wrong, &queued)
	if err != nil {
		t.Fatalf("check message_search: %v", err)
	}
	if messages != wantMessages || indexed != messages || missing != 0 || wrong != 0 || queued != 0 {
		t.Fatalf("%d messages (want %d), %d indexed, %d missing, %d wrong, %d queue rows left",
			messages, wantMessages, indexed, missing, wrong, queued)
	}
}

// TestIndexSearch_outOfIDOrder: ids are taken when a batch runs, not when it
// commits. A batch with the lower id that commits after a batch with a
// higher id has been indexed is still indexed (a "max indexed id"
// watermark would skip it for ever).
func TestIndexSearch_outOfIDOrder(t *testing.T) {
	w := newSearchWorld(t, pgtest.NewDatabase(t), 2)
	ctx := t.Context()
	a, b := w.convs[0], w.convs[1]

	// The first batch takes its id and stays uncommitted.
	tx, err := w.s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback() }()
	var earlyID int64
	err = tx.QueryRowContext(ctx, `SELECT id FROM grainchat_append_messages($1, $2, $3, $4, $5, $6)`,
		pq.Int64Array{a.ID}, pq.Int64Array{a.UserID}, pq.StringArray{"Visitor 0"}, pq.BoolArray{false},
		pq.StringArray{"an early aardvark"}, pq.StringArray{""}).Scan(&earlyID)
	if err != nil {
		t.Fatalf("append in a transaction: %v", err)
	}
	// The second takes a higher id and commits first; it is indexed.
	res, err := w.s.AppendMessages(ctx, []storage.NewMessage{{ConversationID: b.ID, SenderID: b.UserID, Body: "a late llama"}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("AppendMessages: %v, %+v", err, res)
	}
	if res[0].Message.ID <= earlyID {
		t.Fatalf("ids %d then %d: the test needs the uncommitted batch to hold the lower id", earlyID, res[0].Message.ID)
	}
	if n := drain(t, w.s); n != 1 {
		t.Fatalf("IndexSearch took %d messages, want 1 (the committed one)", n)
	}
	if got := w.search(t, "llama"); !slices.Equal(got, []int64{b.ID}) {
		t.Fatalf("search llama: %v, want [%d]", got, b.ID)
	}
	if got := w.search(t, "aardvark"); len(got) != 0 {
		t.Fatalf("search aardvark before its commit: %v", got)
	}

	// The lower id commits last, and is indexed.
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if n := drain(t, w.s); n != 1 {
		t.Fatalf("IndexSearch after the late commit took %d messages, want 1", n)
	}
	if got := w.search(t, "aardvark"); !slices.Equal(got, []int64{a.ID}) {
		t.Fatalf("search aardvark: %v, want [%d]", got, a.ID)
	}
	checkIndexed(t, w.s, 2)
}

// TestIndexSearch_concurrentIndexers: two stores on one database (two
// nodes) index while messages arrive; every message is taken by exactly
// one of them (the sums add up to the number of messages) and indexed once.
// Then the same with several writers at once, whose batches' id ranges
// interleave: every message is indexed, once.
func TestIndexSearch_concurrentIndexers(t *testing.T) {
	for _, writers := range []int{1, 4} {
		t.Run(fmt.Sprintf("writers_%d", writers), func(t *testing.T) {
			dsn := pgtest.NewDatabase(t)
			w := newSearchWorld(t, dsn, 8)
			other := openStore(t, dsn, pgstore.Options{MaxOpenConns: 4, SearchIndexInterval: -1})
			const (
				batches  = 30
				perBatch = 25
			)
			var (
				writing atomic.Int32
				taken   [2]int
				wg      sync.WaitGroup
				errs    = make(chan error, writers+2)
			)
			writing.Store(int32(writers))
			for g := range writers {
				wg.Go(func() {
					defer writing.Add(-1)
					for b := range batches / writers {
						var batch []storage.NewMessage
						for k := range perBatch {
							c := w.convs[(b+k+g)%len(w.convs)]
							batch = append(batch, storage.NewMessage{ConversationID: c.ID, SenderID: c.UserID,
								Body: fmt.Sprintf("word%d_%d_%d and more", g, b, k)})
						}
						if _, err := w.s.AppendMessages(t.Context(), batch); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			for i, s := range []*pgstore.Store{w.s, other} {
				wg.Go(func() {
					for {
						done := writing.Load() == 0 // read before indexing: what was written is then queued
						n, err := s.IndexSearch(t.Context())
						if err != nil {
							errs <- fmt.Errorf("indexer %d: %w", i, err)
							return
						}
						taken[i] += n
						if n == 0 && done {
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			total := (batches / writers) * writers * perBatch
			// A store's drain waits only for its own calls: both have
			// returned, so nothing is in flight.
			taken[0] += drain(t, w.s)
			t.Logf("indexer 0 took %d, indexer 1 took %d, of %d messages", taken[0], taken[1], total)
			if writers == 1 && taken[0]+taken[1] != total {
				t.Errorf("the indexers took %d + %d messages, want %d in all", taken[0], taken[1], total)
			}
			if writers > 1 && taken[0]+taken[1] < total {
				t.Errorf("the indexers took %d + %d messages, want at least %d", taken[0], taken[1], total)
			}
			checkIndexed(t, w.s, total)
			if got := w.search(t, "word0_1_2"); len(got) != 1 {
				t.Errorf("search word0_1_2: %v, want one conversation", got)
			}
		})
	}
}

// TestIndexSearch_loop: the Store's own loop indexes new messages within
// its interval, and Close stops it (no goroutine outlives the Store).
func TestIndexSearch_loop(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	w := newSearchWorld(t, dsn, 1)
	// The message goes first: w.s's message pool starts its goroutines at
	// its first use, which must not count as the loop's.
	c := w.convs[0]
	if _, err := w.s.AppendMessages(t.Context(), []storage.NewMessage{{ConversationID: c.ID, SenderID: c.UserID, Body: "find the quokka"}}); err != nil {
		t.Fatalf("AppendMessages: %v", err)
	}
	ignore := goleak.IgnoreCurrent()
	s, err := pgstore.Open(t.Context(), pgtest.Logger(t), dsn, pgstore.Options{MaxOpenConns: 2, SearchIndexInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(w.search(t, "quokka")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the loop did not index the message within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := goleak.Find(ignore); err != nil {
		t.Fatalf("after Close: %v", err)
	}

	// Closed, it indexes nothing more.
	if _, err := w.s.AppendMessages(t.Context(), []storage.NewMessage{{ConversationID: c.ID, SenderID: c.UserID, Body: "a numbat"}}); err != nil {
		t.Fatalf("AppendMessages: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	var queued int
	if err := w.s.DB().QueryRowContext(context.Background(), `SELECT count(*) FROM search_queue`).Scan(&queued); err != nil || queued != 1 {
		t.Fatalf("queue after Close: %d rows, %v; want 1", queued, err)
	}
}

// TestIndexSearch_yields: while the message path is saturated (an append
// in flight all the time), the loop skips its passes and a new message is
// not indexed; after SearchIndexMaxLag it is, saturated or not; once the
// message path is quiet, a new message is indexed within the interval.
func TestIndexSearch_yields(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	w := newSearchWorld(t, dsn, 1)
	const maxLag = 3 * time.Second
	s := openStore(t, dsn, pgstore.Options{MaxOpenConns: 2, SearchIndexInterval: 20 * time.Millisecond, SearchIndexMaxLag: maxLag})
	c := w.convs[0]
	appendText := func(text string) time.Time {
		t.Helper()
		if _, err := s.AppendMessages(t.Context(), []storage.NewMessage{{ConversationID: c.ID, SenderID: c.UserID, Body: text}}); err != nil {
			t.Fatalf("AppendMessages: %v", err)
		}
		return time.Now()
	}
	waitFound := func(word string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for len(w.search(t, word)) == 0 {
			if time.Since(start) > within {
				t.Fatalf("%q not searchable after %v", word, within)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start)
	}
	waitYielded := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for s.YieldedIndexPasses() < n {
			if time.Now().After(deadline) {
				t.Fatalf("the loop yielded %d passes, want %d", s.YieldedIndexPasses(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// Quiet: indexed.
	appendText("a quiet wombat")
	waitFound("wombat", 30*time.Second)

	release := s.HoldAppending()
	waitYielded(s.YieldedIndexPasses() + 1)
	appended := appendText("a busy quokka")
	// Passes skipped after the append: not indexed.
	waitYielded(s.YieldedIndexPasses() + 5)
	if got := w.search(t, "quokka"); len(got) != 0 && time.Since(appended) < maxLag {
		t.Fatalf("indexed while the message path was saturated, %v after the append (max lag %v)", time.Since(appended), maxLag)
	}
	// The lag bound: indexed all the same.
	waitFound("quokka", 30*time.Second)
	if lag := time.Since(appended); lag < maxLag/2 {
		t.Errorf("indexed %v after the append, under a saturated message path (max lag %v)", lag, maxLag)
	}
	release()

	// Quiet again: the next message within a pass or two.
	appendText("a calm numbat")
	waitFound("numbat", 30*time.Second)
}

// TestMigrate_queuesExistingMessages: messages stored before migration
// 00008 become searchable through the indexer; rolled back to 00007 and
// migrated again, they are queued again.
func TestMigrate_queuesExistingMessages(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	if err := pgstore.MigrateTo(t.Context(), dsn, 7, false); err != nil {
		t.Fatalf("migrate to 7: %v", err)
	}
	old := openStore(t, dsn, pgstore.Options{MaxOpenConns: 2, SkipMigrations: true, SearchIndexInterval: -1})
	for _, q := range []string{
		`INSERT INTO users (external_id, name) SELECT 'visitor-' || g, 'Visitor ' || g FROM generate_series(1, 30) g`,
		`INSERT INTO conversations (user_id) SELECT id FROM users ORDER BY id`,
		`INSERT INTO messages (conversation_id, seq, sender_id, sender_name, sender_is_admin, body, created_at)
			SELECT c.id, k, c.user_id, 'Visitor', false, 'old message ' || c.id || '_' || k, now()
			FROM conversations c, generate_series(1, 100) k`,
		`UPDATE conversations SET last_seq = 100, last_message_at = now()`,
	} {
		if _, err := old.DB().ExecContext(t.Context(), q); err != nil {
			t.Fatalf("fixture: %v", err)
		}
	}
	w := newSearchWorld(t, dsn, 0) // migrates to the latest version
	if n := drain(t, w.s); n != 3000 {
		t.Fatalf("IndexSearch took %d messages, want 3000", n)
	}
	checkIndexed(t, w.s, 3000)
	var conv int64
	if err := w.s.DB().QueryRowContext(t.Context(), `SELECT min(id) + 7 FROM conversations`).Scan(&conv); err != nil {
		t.Fatalf("conversation: %v", err)
	}
	if got := w.search(t, fmt.Sprintf("message %d_42", conv)); !slices.Equal(got, []int64{conv}) {
		t.Fatalf("search an old message: %v, want [%d]", got, conv)
	}

	if err := pgstore.MigrateTo(t.Context(), dsn, 7, true); err != nil {
		t.Fatalf("migrate down to 7: %v", err)
	}
	if err := pgstore.MigrateTo(t.Context(), dsn, 8, false); err != nil {
		t.Fatalf("migrate up to 8 again: %v", err)
	}
	var queued int
	if err := w.s.DB().QueryRowContext(t.Context(), `SELECT sum(last_id - first_id + 1) FROM search_queue`).Scan(&queued); err != nil || queued < 3000 {
		t.Fatalf("queued after migrating again: ids %d, %v; want at least 3000", queued, err)
	}
}
