package pgstore_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/pgstore"
	"github.com/grainchat/grainchat/storage/pgtest"
)

// deskFixture is a data set written in bulk by SQL (see newDeskFixture).
type deskFixture struct {
	staff  storage.User // Ann, staff, assigned every 50th conversation
	rare   int64        // the conversation whose one message holds rareWord
	target string       // the name of the visitor of conversation rare
}

// rareWord is in exactly one message of a deskFixture; absentWord in none.
const (
	rareWord   = "zyzzyva"
	noteWord   = "zanzibarnote" // in a note only
	absentWord = "wombat"
)

// newDeskFixture writes convs visitors, each with a conversation of
// perConv messages ("Hello, I have a question about order <n>", n unique),
// the conversations' activity spread over 30 days; 95 % of them resolved,
// the others open; every 50th assigned to a staff user; one message of one
// conversation also holds rareWord. The messages are made searchable by
// the indexer (viaIndexer: queued in ranges of 1,000 ids, as migration
// 00008 queues existing messages, then IndexSearch until it returns 0) or
// in bulk (message_search filled by one INSERT with its GIN index dropped,
// then built again: what a restore does). Then everything is vacuumed and
// analyzed.
func newDeskFixture(tb testing.TB, s *pgstore.Store, convs, perConv int, viaIndexer bool) deskFixture {
	tb.Helper()
	ctx := context.Background()
	staff, err := s.UpsertUser(ctx, storage.UserInput{ExternalID: "ann", Name: "Ann", IsAdmin: true})
	if err != nil {
		tb.Fatalf("UpsertUser: %v", err)
	}
	start := time.Now()
	exec := func(q string) {
		tb.Helper()
		q = strings.NewReplacer("$1", fmt.Sprint(convs), "$2", fmt.Sprint(perConv)).Replace(q)
		if _, err := s.DB().ExecContext(ctx, q); err != nil {
			tb.Fatalf("fixture: %v\n%s", err, q)
		}
	}
	for _, q := range []string{
		`INSERT INTO users (external_id, name) SELECT 'visitor-' || g, 'Visitor ' || g FROM generate_series(1, $1) g`,
		`INSERT INTO conversations (user_id) SELECT id FROM users WHERE NOT is_admin ORDER BY id`,
		`INSERT INTO messages (conversation_id, seq, sender_id, sender_name, sender_is_admin, body, created_at)
			SELECT c.id, k, c.user_id, 'Visitor', false,
				'Hello, I have a question about order ' || (c.id::bigint * $2 + k),
				now() - interval '30 days' + c.id * interval '10 ms' + k * interval '1 us'
			FROM conversations c, generate_series(1, $2) k`,
		`UPDATE conversations SET last_seq = $2,
			last_message_at = now() - interval '30 days' + id * interval '10 ms' + $2 * interval '1 us',
			status = CASE WHEN id % 20 = 0 THEN 'open' ELSE 'resolved' END,
			assignee_id = CASE WHEN id % 50 = 0 THEN ` + fmt.Sprint(staff.ID) + ` END`,
		`UPDATE messages SET body = body || ' ` + rareWord + `'
			WHERE conversation_id = (SELECT min(id) + $1 / 3 FROM conversations) AND seq = ($2 + 1) / 2`,
	} { // $1: convs, $2: perConv
		exec(q)
	}
	if viaIndexer {
		exec(`INSERT INTO search_queue (first_id, last_id)
			SELECT g, g + 999 FROM generate_series((SELECT min(id) FROM messages), (SELECT max(id) FROM messages), 1000) g`)
		indexStart, total := time.Now(), 0
		for {
			n, err := s.IndexSearch(ctx)
			if err != nil {
				tb.Fatalf("IndexSearch: %v", err)
			}
			if n == 0 {
				break
			}
			total += n
		}
		tb.Logf("fixture: IndexSearch indexed %d messages in %v", total, time.Since(indexStart).Round(time.Millisecond))
	} else {
		exec(`DROP INDEX message_search_tsv_idx`)
		exec(`INSERT INTO message_search (message_id, conversation_id, tsv)
			SELECT id, conversation_id, to_tsvector('simple', body) FROM messages`)
		exec(`CREATE INDEX message_search_tsv_idx ON message_search USING gin (tsv)`)
	}
	exec(`VACUUM ANALYZE`)
	f := deskFixture{staff: staff}
	err = s.DB().QueryRowContext(ctx, `SELECT c.id, u.name FROM message_search m
		JOIN conversations c ON c.id = m.conversation_id JOIN users u ON u.id = c.user_id
		WHERE m.tsv @@ plainto_tsquery('simple', $1)`, rareWord).Scan(&f.rare, &f.target)
	if err != nil {
		tb.Fatalf("fixture: find the rare word: %v", err)
	}
	tb.Logf("fixture: %d conversations, %d messages in %v", convs, convs*perConv, time.Since(start).Round(time.Millisecond))
	return f
}

// TestSearch_100kMessages: among 100,000 messages, a search finds the one
// conversation whose message has the word, none for an absent word, a
// visitor by part of their name, and the filters apply; the plan reads the
// GIN index. A word of every message gives the inbox's pages, by walking
// the conversations. The messages are indexed by IndexSearch.
func TestSearch_100kMessages(t *testing.T) {
	s := pgtest.NewStore(t)
	f := newDeskFixture(t, s, 1000, 100, true)
	view := func(q storage.InboxQuery) []int64 {
		t.Helper()
		q.ViewerID = f.staff.ID
		start := time.Now()
		page, err := s.InboxView(t.Context(), q)
		if err != nil {
			t.Fatalf("InboxView(%+v): %v", q, err)
		}
		t.Logf("InboxView(search %q, status %q, assignee %q): %d in %v", q.Search, q.Status, q.Assignee, len(page), time.Since(start))
		ids := make([]int64, len(page))
		for i, e := range page {
			ids[i] = e.ConversationID
		}
		return ids
	}
	status := storage.StatusResolved
	if f.rare%20 == 0 {
		status = storage.StatusOpen
	}
	for _, tt := range []struct {
		q    storage.InboxQuery
		want []int64
	}{
		{storage.InboxQuery{Search: rareWord}, []int64{f.rare}},
		{storage.InboxQuery{Search: strings.ToUpper(rareWord) + " question"}, []int64{f.rare}},
		{storage.InboxQuery{Search: rareWord, Status: status}, []int64{f.rare}},
		{storage.InboxQuery{Search: rareWord, Status: storage.StatusPending}, nil},
		{storage.InboxQuery{Search: absentWord}, nil},
		{storage.InboxQuery{Search: rareWord + " " + absentWord}, nil},
		{storage.InboxQuery{Search: f.target[2:]}, []int64{f.rare}}, // "sitor 334": by name
	} {
		if got := view(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("InboxView(%+v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	plan := explain(t, s, storage.InboxQuery{ViewerID: f.staff.ID, Search: rareWord, Assignee: storage.AssigneeAny, Limit: 50})
	if !strings.Contains(plan, "message_search_tsv_idx") {
		t.Errorf("the search does not read message_search_tsv_idx:\n%s", plan)
	}

	// A word in every message: the inbox's pages, read by walking the
	// conversations (viewQuery), the second after the first's cursor.
	all := view(storage.InboxQuery{Limit: 100})
	if got := view(storage.InboxQuery{Search: "question", Limit: 50}); !slices.Equal(got, all[:50]) {
		t.Errorf("search for a word of every message: %v, want the inbox's first 50 %v", got, all[:50])
	}
	first, err := s.InboxView(t.Context(), storage.InboxQuery{ViewerID: f.staff.ID, Search: "question", Limit: 50})
	if err != nil || len(first) != 50 {
		t.Fatalf("InboxView: %d, %v", len(first), err)
	}
	if got := view(storage.InboxQuery{Search: "question", Limit: 50, After: first[49].Cursor()}); !slices.Equal(got, all[50:]) {
		t.Errorf("second page of a word of every message: %v, want %v", got, all[50:])
	}
	plan = explain(t, s, storage.InboxQuery{ViewerID: f.staff.ID, Search: "question", Assignee: storage.AssigneeAny, Limit: 50})
	if !walked(plan) {
		t.Errorf("the search for a word of every message does not walk the conversations:\n%s", plan)
	}
	if plan := explain(t, s, storage.InboxQuery{ViewerID: f.staff.ID, Search: rareWord, Assignee: storage.AssigneeAny, Limit: 50}); walked(plan) {
		t.Errorf("the search for a rare word walks the conversations:\n%s", plan)
	}

	// Internal notes, by both plans: a new conversation (the newest) whose
	// only message has neither word, with a note that has both the word of
	// every message (found by the walk) and a word of its own (from the
	// matches).
	ctx := t.Context()
	u, err := s.UpsertUser(ctx, storage.UserInput{ExternalID: "noted", Name: "Noted Visitor"})
	if err != nil {
		t.Fatal(err)
	}
	conv, err := s.EnsureConversation(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessages(ctx, []storage.NewMessage{{ConversationID: conv.ID, SenderID: u.ID, SenderName: u.Name, Body: "thanks"}}); err != nil {
		t.Fatal(err)
	}
	note := "Question asked by phone, see " + noteWord
	if _, err := s.ChangeConversation(ctx, conv.ID, storage.Change{ActorID: f.staff.ID, Note: &note}); err != nil {
		t.Fatal(err)
	}
	if got := view(storage.InboxQuery{Search: noteWord}); !slices.Equal(got, []int64{conv.ID}) {
		t.Errorf("search for a word of a note: %v, want [%d]", got, conv.ID)
	}
	if got := view(storage.InboxQuery{Search: "question", Limit: 2}); !slices.Equal(got, []int64{conv.ID, all[0]}) {
		t.Errorf("search (walking) for a word of every message and of a note: %v, want [%d %d]", got, conv.ID, all[0])
	}
	if plan := explain(t, s, storage.InboxQuery{ViewerID: f.staff.ID, Search: "question", Assignee: storage.AssigneeAny, Limit: 2}); !walked(plan) {
		t.Errorf("the search for a word of every message does not walk the conversations:\n%s", plan)
	}
}

// walked reports whether a search's plan, run, probed conversations one by
// one (the walk of viewQuery) rather than starting from the matches.
func walked(plan string) bool {
	for _, line := range strings.Split(plan, "\n") {
		if strings.Contains(line, "using message_search_pkey") && !strings.Contains(line, "never executed") {
			return true
		}
	}
	return false
}

// explain returns the plan of q's view query, run (EXPLAIN ANALYZE).
func explain(tb testing.TB, s *pgstore.Store, q storage.InboxQuery) string {
	tb.Helper()
	query, args, err := s.ViewQuery(context.Background(), q, true)
	if err != nil {
		tb.Fatalf("view query: %v", err)
	}
	rows, err := s.DB().QueryContext(context.Background(), "EXPLAIN (ANALYZE, COSTS OFF) "+query, args...)
	if err != nil {
		tb.Fatalf("explain: %v", err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			tb.Fatalf("explain: %v", err)
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// BenchmarkInboxView reads one page of 50 of several views of 100,000
// conversations of ten messages each (a million messages), one InboxView
// call per iteration, and logs each plan. Its fixture takes minutes: it runs
// only with GRAINCHAT_BENCH_1M=1.
func BenchmarkInboxView(b *testing.B) {
	if os.Getenv("GRAINCHAT_BENCH_1M") != "1" {
		b.Skip("set GRAINCHAT_BENCH_1M=1 to run it (a fixture of a million messages)")
	}
	const (
		convs   = 100_000
		perConv = 10
	)
	s, err := pgstore.Open(b.Context(), nil, pgtest.NewDatabase(b), pgstore.Options{MaxOpenConns: 2})
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	defer s.Close()
	f := newDeskFixture(b, s, convs, perConv, false)
	for _, v := range []struct {
		name string
		q    storage.InboxQuery
		want int
	}{
		{"all", storage.InboxQuery{}, 50},
		{"open", storage.InboxQuery{Status: storage.StatusOpen}, 50},
		{"open_unassigned", storage.InboxQuery{Status: storage.StatusOpen, Assignee: storage.AssigneeNone}, 50},
		{"mine", storage.InboxQuery{Assignee: storage.AssigneeMe}, 50},
		{"resolved", storage.InboxQuery{Status: storage.StatusResolved}, 50},
		{"search_rare_word", storage.InboxQuery{Search: rareWord}, 1},
		{"search_absent_word", storage.InboxQuery{Search: absentWord}, 0},
		{"search_common_word", storage.InboxQuery{Search: "question"}, 50},
		{"search_name", storage.InboxQuery{Search: f.target}, 1},
	} {
		v.q.ViewerID, v.q.Limit = f.staff.ID, 50
		b.Run(v.name, func(b *testing.B) {
			b.Logf("plan:\n%s", explain(b, s, mustNormalize(b, v.q)))
			b.ReportAllocs()
			for b.Loop() {
				page, err := s.InboxView(b.Context(), v.q)
				if err != nil || len(page) != v.want {
					b.Fatalf("InboxView: %d entries, %v; want %d", len(page), err, v.want)
				}
			}
		})
	}
	b.Run("view_counts", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.ViewCounts(b.Context(), f.staff.ID, nil); err != nil {
				b.Fatalf("ViewCounts: %v", err)
			}
		}
	})
}

// mustNormalize is q.Normalize, failing on an error.
func mustNormalize(tb testing.TB, q storage.InboxQuery) storage.InboxQuery {
	tb.Helper()
	n, err := q.Normalize()
	if err != nil {
		tb.Fatalf("Normalize(%+v): %v", q, err)
	}
	return n
}
