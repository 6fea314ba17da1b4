package batch_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/batch"
)

// stateGate wraps a Store: its ConversationStates records each call's ids
// and blocks its first call until release is closed; err, when set, is its
// answer.
type stateGate struct {
	storage.Store
	entered chan []int64
	release chan struct{}
	err     error
	once    sync.Once
}

func (g *stateGate) ConversationStates(ctx context.Context, ids []int64) ([]storage.ConversationState, error) {
	g.entered <- append([]int64(nil), ids...)
	first := false
	g.once.Do(func() { first = true })
	if first {
		<-g.release
	}
	if g.err != nil {
		return nil, g.err
	}
	return g.Store.ConversationStates(ctx, ids)
}

// TestLoaderGroupsConcurrentLoads: 200 grains loading while a read is in
// flight cost one more read (not 200), and each gets its own conversation's
// state. In a synctest bubble: synctest.Wait returns once the 200 are all
// blocked handing their load to the loader, without a sleep.
func TestLoaderGroupsConcurrentLoads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 201)
		g := &stateGate{Store: f.store, entered: make(chan []int64, 300), release: make(chan struct{})}
		l := batch.NewLoader(slog.New(slog.DiscardHandler), g, time.Second)
		defer l.Close()

		type result struct {
			i   int
			st  storage.ConversationState
			err error
		}
		results := make(chan result, 201)
		load := func(i int) {
			st, err := l.Load(t.Context(), f.convs[i].ID)
			results <- result{i, st, err}
		}
		go load(0)
		if ids := <-g.entered; len(ids) != 1 || ids[0] != f.convs[0].ID {
			t.Fatalf("first read %v, want conversation %d alone", ids, f.convs[0].ID)
		}
		for i := 1; i <= 200; i++ {
			go load(i)
		}
		synctest.Wait() // the 200 wait for the loader, which waits for the first read
		close(g.release)
		for range 201 {
			r := <-results
			if r.err != nil || r.st.Conversation.ID != f.convs[r.i].ID || r.st.Visitor.ID != f.users[r.i].ID ||
				r.st.Conversation.Receipts == nil {
				t.Fatalf("load %d: %+v, %v; want conversation %d of user %d", r.i, r.st, r.err, f.convs[r.i].ID, f.users[r.i].ID)
			}
		}
		reads := 1
		total := 1
		for len(g.entered) > 0 {
			ids := <-g.entered
			reads++
			total += len(ids)
		}
		if total != 201 || reads != 2 {
			t.Fatalf("%d reads for %d ids, want 201 ids in 2 reads (1, then the 200 that waited)", reads, total)
		}
	})
}

// TestLoaderErrors: an unknown conversation is ENOTFOUND for its caller
// only; a failed read fails every load it carried; a cancelled caller gets
// unavailable; after Close, ErrClosed.
func TestLoaderErrors(t *testing.T) {
	f := newFixture(t, 1)
	l := batch.NewLoader(slog.New(slog.DiscardHandler), f.store, time.Second)
	if _, err := l.Load(t.Context(), f.convs[0].ID+1000); storage.ErrorCode(err) != storage.ENOTFOUND {
		t.Fatalf("unknown conversation: %v, want ENOTFOUND", err)
	}
	if st, err := l.Load(t.Context(), f.convs[0].ID); err != nil || st.Conversation.ID != f.convs[0].ID {
		t.Fatalf("known conversation: %+v, %v", st, err)
	}
	l.Close()
	if _, err := l.Load(t.Context(), f.convs[0].ID); !errors.Is(err, batch.ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}

	down := storage.Errorf(storage.EUNAVAILABLE, "database down")
	g := &stateGate{Store: f.store, entered: make(chan []int64, 10), release: make(chan struct{}), err: down}
	l2 := batch.NewLoader(slog.New(slog.DiscardHandler), g, time.Second)
	defer l2.Close()
	close(g.release)
	if _, err := l2.Load(t.Context(), f.convs[0].ID); !errors.Is(err, down) {
		t.Fatalf("failed read: %v, want the store's error", err)
	}

	blocked := &stateGate{Store: f.store, entered: make(chan []int64, 10), release: make(chan struct{})}
	l3 := batch.NewLoader(slog.New(slog.DiscardHandler), blocked, time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := l3.Load(ctx, f.convs[0].ID); storage.ErrorCode(err) != storage.EUNAVAILABLE {
		t.Fatalf("cancelled caller: %v, want EUNAVAILABLE", err)
	}
	close(blocked.release)
	l3.Close()
}

// panicStates panics in ConversationStates.
type panicStates struct{ storage.Store }

func (panicStates) ConversationStates(context.Context, []int64) ([]storage.ConversationState, error) {
	panic("injected")
}

// TestLoaderSurvivesAPanickingStore: a store that panics fails the loads it
// carried with internal; the loader keeps serving.
func TestLoaderSurvivesAPanickingStore(t *testing.T) {
	f := newFixture(t, 1)
	l := batch.NewLoader(slog.New(slog.DiscardHandler), panicStates{f.store}, time.Second)
	defer l.Close()
	for range 2 {
		if _, err := l.Load(t.Context(), f.convs[0].ID); storage.ErrorCode(err) != storage.EINTERNAL {
			t.Fatalf("load through a panicking store: %v, want EINTERNAL", err)
		}
	}
}
