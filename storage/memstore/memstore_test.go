package memstore_test

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/memstore"
	"github.com/grainchat/grainchat/storage/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		s := memstore.New(memstore.Options{})
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestClose(t *testing.T) {
	s := memstore.New(memstore.Options{})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if code := storage.ErrorCode(s.Ping(t.Context())); code != storage.EUNAVAILABLE {
		t.Fatalf("Ping after Close: code %q, want %q", code, storage.EUNAVAILABLE)
	}
	_, err := s.AppendMessages(t.Context(), []storage.NewMessage{{ConversationID: 1, SenderID: 1, Body: "x"}})
	if code := storage.ErrorCode(err); code != storage.EUNAVAILABLE {
		t.Fatalf("AppendMessages after Close: code %q, want %q", code, storage.EUNAVAILABLE)
	}
	_, err = s.InboxPage(t.Context(), storage.InboxCursor{}, 0)
	if code := storage.ErrorCode(err); code != storage.EUNAVAILABLE {
		t.Fatalf("InboxPage after Close: code %q, want %q", code, storage.EUNAVAILABLE)
	}
}

// TestStoreID_perStore: each Store is a data set of its own, with its own id.
func TestStoreID_perStore(t *testing.T) {
	a, b := memstore.New(memstore.Options{}), memstore.New(memstore.Options{})
	if a.StoreID() == "" || a.StoreID() == b.StoreID() {
		t.Fatalf("two stores: StoreID %q and %q", a.StoreID(), b.StoreID())
	}
}

// issued is what one fixture run handed out: ids of each kind in order.
type issued struct {
	users, convs, msgs []int64
}

func (is issued) all() []int64 {
	return slices.Concat(is.users, is.convs, is.msgs)
}

// issueIDs creates n visitors, interleaving each one's user, conversation
// and first message (so that a counter shared by the three kinds would show
// as gaps), then one more message in every conversation.
func issueIDs(t *testing.T, s *memstore.Store, n int) issued {
	t.Helper()
	ctx := t.Context()
	var is issued
	var convs []storage.Conversation
	for i := range n {
		u, err := s.UpsertUser(ctx, storage.UserInput{ExternalID: fmt.Sprintf("visitor-%d", i)})
		if err != nil {
			t.Fatalf("UpsertUser: %v", err)
		}
		c, err := s.EnsureConversation(ctx, u.ID)
		if err != nil {
			t.Fatalf("EnsureConversation: %v", err)
		}
		res, err := s.AppendMessages(ctx, []storage.NewMessage{{ConversationID: c.ID, SenderID: u.ID, Body: "first"}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("AppendMessages: %v, %+v", err, res)
		}
		is.users = append(is.users, u.ID)
		is.convs = append(is.convs, c.ID)
		is.msgs = append(is.msgs, res[0].Message.ID)
		convs = append(convs, c)
	}
	for _, c := range convs {
		res, err := s.AppendMessages(ctx, []storage.NewMessage{{ConversationID: c.ID, SenderID: c.UserID, Body: "second"}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("AppendMessages: %v, %+v", err, res)
		}
		is.msgs = append(is.msgs, res[0].Message.ID)
	}
	return is
}

// TestIDs_independentSequences: users, conversations and messages are each
// numbered by their own sequence, consecutively, from the origin taken at New.
func TestIDs_independentSequences(t *testing.T) {
	origin := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	s := memstore.New(memstore.Options{Now: func() time.Time { return origin }})
	t.Cleanup(func() { _ = s.Close() })
	is := issueIDs(t, s, 3)
	first := origin.UnixMicro() + 1
	for kind, ids := range map[string][]int64{"user": is.users, "conversation": is.convs, "message": is.msgs} {
		for i, id := range ids {
			if id != first+int64(i) {
				t.Fatalf("%s ids %v, want %d, %d, … (a sequence of their own from the origin)", kind, ids, first, first+1)
			}
		}
	}
}

// TestIDs_disjointAcrossStores: a store created after another, as after a
// restart of the program, hands out none of the earlier store's ids, on the
// documented assumption that the earlier one handed out fewer ids than
// microseconds passed.
func TestIDs_disjointAcrossStores(t *testing.T) {
	a := memstore.New(memstore.Options{})
	earlier := issueIDs(t, a, 5)
	_ = a.Close()
	highest := slices.Max(earlier.all())
	// The assumption: wait (bounded) until the clock has passed a's ids.
	deadline := time.Now().Add(time.Second)
	for time.Now().UnixMicro() <= highest {
		if time.Now().After(deadline) {
			t.Fatalf("clock at %d µs did not pass the highest id %d within 1s", time.Now().UnixMicro(), highest)
		}
		runtime.Gosched()
	}
	b := memstore.New(memstore.Options{})
	t.Cleanup(func() { _ = b.Close() })
	later := issueIDs(t, b, 5)
	seen := make(map[int64]bool)
	for _, id := range earlier.all() {
		seen[id] = true
	}
	for _, id := range later.all() {
		if seen[id] {
			t.Fatalf("id %d handed out by both stores (earlier %+v, later %+v)", id, earlier, later)
		}
		if id <= highest {
			t.Fatalf("later store's id %d is not above the earlier store's highest %d", id, highest)
		}
	}
}

// TestIDs_originClamped: ids stay positive with a clock before 1970 and below
// 2^53 (JavaScript's safe integers) with a clock far in the future.
func TestIDs_originClamped(t *testing.T) {
	for _, tc := range []struct {
		name  string
		clock time.Time
		first int64
	}{
		{"zero time", time.Time{}, 1},
		{"1960", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), 1},
		{"year 3000", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), memstore.MaxIDOrigin + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := memstore.New(memstore.Options{Now: func() time.Time { return tc.clock }})
			t.Cleanup(func() { _ = s.Close() })
			is := issueIDs(t, s, 2)
			if is.users[0] != tc.first || is.convs[0] != tc.first || is.msgs[0] != tc.first {
				t.Fatalf("first ids %d, %d, %d; want %d", is.users[0], is.convs[0], is.msgs[0], tc.first)
			}
			for _, id := range is.all() {
				if id <= 0 || id >= 1<<53 {
					t.Fatalf("id %d outside 1..2^53-1", id)
				}
			}
		})
	}
}
