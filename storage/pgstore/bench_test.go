package pgstore_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/pgstore"
	"github.com/grainchat/grainchat/storage/pgtest"
)

// BenchmarkAppendMessages appends batches of n messages, spread over up to 50
// conversations and each with a client message id (so the duplicate lookup
// runs), one AppendMessages call per iteration.
func BenchmarkAppendMessages(b *testing.B) {
	for _, n := range []int{1, 10, 100, 500} {
		b.Run(fmt.Sprintf("batch_%d", n), func(b *testing.B) {
			s, err := pgstore.Open(b.Context(), nil, pgtest.NewDatabase(b), pgstore.Options{MaxOpenConns: 4})
			if err != nil {
				b.Fatalf("Open: %v", err)
			}
			defer s.Close()
			convs := min(n, 50)
			var conversations []storage.Conversation
			for i := range convs {
				u, err := s.UpsertUser(b.Context(), storage.UserInput{ExternalID: fmt.Sprintf("visitor-%d", i)})
				if err != nil {
					b.Fatalf("UpsertUser: %v", err)
				}
				c, err := s.EnsureConversation(b.Context(), u.ID)
				if err != nil {
					b.Fatalf("EnsureConversation: %v", err)
				}
				conversations = append(conversations, c)
			}
			batch := make([]storage.NewMessage, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				for k := range batch {
					c := conversations[k%convs]
					batch[k] = storage.NewMessage{
						ConversationID: c.ID,
						SenderID:       c.UserID,
						SenderName:     "Visitor",
						Body:           "Hello, I have a question about my order #12345. Could somebody help me?",
						ClientMsgID:    fmt.Sprintf("%d-%d", i, k),
					}
				}
				res, err := s.AppendMessages(b.Context(), batch)
				if err != nil {
					b.Fatalf("AppendMessages: %v", err)
				}
				if res[0].Err != nil || res[0].Duplicate {
					b.Fatalf("AppendMessages: %+v", res[0])
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkInboxPage reads one page of 50 at the top, the middle and near the
// end of inboxes of 2,500 and 100,000 conversations (three messages each,
// last activity spread over 30 days), one InboxPage call per iteration. The
// fixture is written in SQL, in bulk, then vacuumed and analyzed.
func BenchmarkInboxPage(b *testing.B) {
	for _, n := range []int{2500, 100_000} {
		b.Run(fmt.Sprintf("conversations_%d", n), func(b *testing.B) {
			s, err := pgstore.Open(b.Context(), nil, pgtest.NewDatabase(b), pgstore.Options{MaxOpenConns: 2})
			if err != nil {
				b.Fatalf("Open: %v", err)
			}
			defer s.Close()
			for _, q := range []string{
				`INSERT INTO users (external_id, name) SELECT 'visitor-' || g, 'Visitor ' || g FROM generate_series(1, $1) g`,
				`INSERT INTO conversations (user_id) SELECT id FROM users ORDER BY id`,
				`CREATE TABLE bench_t0 AS SELECT id, user_id, now() - random() * interval '30 days' AS t0 FROM conversations`,
				`INSERT INTO messages (conversation_id, seq, sender_id, sender_name, sender_is_admin, body, created_at)
					SELECT t.id, k, t.user_id, 'Visitor', false, 'Hello, I have a question about my order #12345.',
						t.t0 + k * interval '1 minute'
					FROM bench_t0 t, generate_series(1, 3) k`,
				`UPDATE conversations c SET last_seq = 3, last_message_at = t.t0 + interval '3 minutes'
					FROM bench_t0 t WHERE t.id = c.id`,
				`DROP TABLE bench_t0`,
				`VACUUM ANALYZE`,
			} {
				var args []any
				if strings.Contains(q, "$1") {
					args = append(args, n)
				}
				if _, err := s.DB().ExecContext(b.Context(), q, args...); err != nil {
					b.Fatalf("fixture: %v", err)
				}
			}
			cursorAt := func(offset int) storage.InboxCursor {
				var c storage.InboxCursor
				err := s.DB().QueryRowContext(b.Context(), `SELECT last_message_at, id FROM conversations
					ORDER BY last_message_at DESC, id DESC OFFSET $1 LIMIT 1`, offset).Scan(&c.LastMessageAt, &c.ConversationID)
				if err != nil {
					b.Fatalf("cursor at %d: %v", offset, err)
				}
				return c
			}
			for _, pos := range []struct {
				name  string
				after storage.InboxCursor
				want  int
			}{
				{"top", storage.InboxCursor{}, 50},
				{"middle", cursorAt(n / 2), 50},
				{"end", cursorAt(n - 31), 30},
			} {
				b.Run(pos.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						page, err := s.InboxPage(b.Context(), pos.after, 50)
						if err != nil || len(page) != pos.want {
							b.Fatalf("InboxPage: %d entries, %v; want %d", len(page), err, pos.want)
						}
					}
				})
			}
		})
	}
}
