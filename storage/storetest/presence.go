package storetest

import (
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// testPresenceLastSeen: last-seen times are kept per conversation, never
// move backwards, skip unknown conversations, and a batch may name one
// conversation twice.
func testPresenceLastSeen(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 3)
	a, b, c := w.convs[0].ID, w.convs[1].ID, w.convs[2].ID
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 123456000, time.UTC)
	save := func(seen ...storage.LastSeen) {
		t.Helper()
		if err := s.SaveLastSeen(t.Context(), seen); err != nil {
			t.Fatalf("SaveLastSeen(%v): %v", seen, err)
		}
	}
	check := func(want map[int64]time.Time) {
		t.Helper()
		got, err := s.LastSeen(t.Context(), []int64{a, b, c, c + 1000})
		if err != nil {
			t.Fatalf("LastSeen: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("LastSeen = %v, want %v", got, want)
		}
		for id, at := range want {
			if !got[id].Equal(at) {
				t.Fatalf("LastSeen[%d] = %v, want %v (all: %v)", id, got[id], at, got)
			}
		}
	}
	check(map[int64]time.Time{})
	save(storage.LastSeen{ConversationID: a, At: t0}, storage.LastSeen{ConversationID: c + 1000, At: t0})
	check(map[int64]time.Time{a: t0})
	save(storage.LastSeen{ConversationID: a, At: t0.Add(-time.Hour)}, // never backwards
		storage.LastSeen{ConversationID: b, At: t0.Add(time.Second)},
		storage.LastSeen{ConversationID: b, At: t0.Add(2 * time.Second)}) // twice in one batch
	check(map[int64]time.Time{a: t0, b: t0.Add(2 * time.Second)})
	save(storage.LastSeen{ConversationID: a, At: t0.Add(time.Minute)})
	check(map[int64]time.Time{a: t0.Add(time.Minute), b: t0.Add(2 * time.Second)})
	if err := s.SaveLastSeen(t.Context(), nil); err != nil {
		t.Fatalf("an empty batch: %v", err)
	}
}
