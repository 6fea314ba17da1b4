package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/memstore"
	"github.com/grainchat/grainchat/transport/auth"
)

// touchCounter is a store that counts TouchAPIKey calls.
type touchCounter struct {
	storage.Store
	mu    sync.Mutex
	calls []time.Time
}

func (s *touchCounter) TouchAPIKey(ctx context.Context, id int64, at time.Time) error {
	s.mu.Lock()
	s.calls = append(s.calls, at)
	s.mu.Unlock()
	return s.Store.TouchAPIKey(ctx, id, at)
}

func (s *touchCounter) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// TestAPIKeyUseRecordedOncePerMinute: a node records a key's use at most
// once a minute, whatever the number of requests, and off their path.
func TestAPIKeyUseRecordedOncePerMinute(t *testing.T) {
	mem := memstore.New(memstore.Options{})
	t.Cleanup(func() { _ = mem.Close() })
	store := &touchCounter{Store: mem}
	key := auth.NewAPIKey()
	k, err := mem.CreateAPIKey(t.Context(), storage.NewAPIKey{Name: "crm", Hash: auth.HashAPIKey(key)})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.Config{Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	a := New(Config{Verifier: verifier, Store: store, Rate: -1, Now: clock})
	staff := a.Routes()["GET /api/v1/staff"]

	requests := func(n int, header string) {
		t.Helper()
		for range n {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/staff", nil)
			r.Header.Set("Authorization", header)
			w := httptest.NewRecorder()
			staff.ServeHTTP(w, r)
			if want := http.StatusOK; header != "Bearer "+key {
				want = http.StatusUnauthorized
				if w.Code != want {
					t.Fatalf("%q: %d %s, want %d", header, w.Code, w.Body, want)
				}
			} else if w.Code != want {
				t.Fatalf("with the key: %d %s", w.Code, w.Body)
			}
		}
	}
	waitTouches := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for store.count() < want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := store.count(); got != want {
			t.Fatalf("%d recordings, want %d", got, want)
		}
	}

	requests(20, "Bearer "+key)
	waitTouches(1)
	requests(5, "Bearer gck_unknown") // unknown keys record nothing
	advance(59 * time.Second)
	requests(20, "Bearer "+key)
	advance(2 * time.Second)
	requests(20, "Bearer "+key)
	waitTouches(2)
	a.Close()
	if got := store.count(); got != 2 {
		t.Fatalf("%d recordings after Close, want 2", got)
	}
	got, err := mem.APIKeyByHash(t.Context(), auth.HashAPIKey(key))
	if err != nil || got.ID != k.ID || got.LastUsedAt == nil || !got.LastUsedAt.Equal(now) {
		t.Fatalf("the key after the requests: %+v, %v; want last used %v", got, err, now)
	}
}
