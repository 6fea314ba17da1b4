package pgstore_test

import (
	"fmt"
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
