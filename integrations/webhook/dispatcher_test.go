package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grainchat/grainchat/integrations/webhook"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/pgstore"
	"github.com/grainchat/grainchat/storage/pgtest"
)

const testSecret = "dispatcher-test-secret"

// recorder is an endpoint that records the message.created it accepts per
// conversation, and refuses what refuse says to.
type recorder struct {
	mu     sync.Mutex
	seqs   map[int64][]int64 // accepted message seqs per conversation, in arrival order
	bad    int
	refuse func(conv int64) bool
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if webhook.Verify([]byte(testSecret), req.Header.Get(webhook.HeaderSignature), body, time.Now(), 0) != nil {
		r.mu.Lock()
		r.bad++
		r.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var env struct {
		Type string `json:"type"`
		Data struct {
			Message *struct {
				ConversationID int64 `json:"conversation_id"`
				Seq            int64 `json:"seq"`
			} `json:"message"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &env)
	if m := env.Data.Message; m != nil {
		if r.refuse != nil && r.refuse(m.ConversationID) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		r.mu.Lock()
		r.seqs[m.ConversationID] = append(r.seqs[m.ConversationID], m.Seq)
		r.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

func (r *recorder) count(conv int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if conv != 0 {
		return len(r.seqs[conv])
	}
	n := 0
	for _, s := range r.seqs {
		n += len(s)
	}
	return n
}

// A dead endpoint (it never answers) holds up only its own events, and a
// conversation whose events one endpoint refuses holds up only that
// conversation there: everything else arrives, in seq order.
func TestDispatcherIsolation(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	store, err := pgstore.Open(ctx, pgtest.Logger(t), dsn, pgstore.Options{MaxOpenConns: 8, Webhooks: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })

	const convs, perConv = 10, 20
	var conversations []storage.Conversation
	var users []storage.User
	for i := range convs {
		u, _ := store.UpsertUser(ctx, storage.UserInput{ExternalID: fmt.Sprint("v", i), Name: "V"})
		c, err := store.EnsureConversation(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		users, conversations = append(users, u), append(conversations, c)
	}
	blocked := conversations[3].ID

	good := &recorder{seqs: map[int64][]int64{}, refuse: func(conv int64) bool { return conv == blocked }}
	goodSrv := httptest.NewServer(good)
	t.Cleanup(goodSrv.Close)
	hang := make(chan struct{})
	deadSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(deadSrv.Close)
	t.Cleanup(func() { close(hang) })

	d, err := webhook.New(slog.New(slog.NewTextHandler(t.Output(), nil)), webhook.Config{
		URLs: []string{deadSrv.URL + "/dead", goodSrv.URL + "/good"}, Secret: []byte(testSecret),
		Timeout: time.Second, RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		Concurrency: 4, ExpandInterval: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond, LockInterval: 100 * time.Millisecond,
	}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })

	for k := range perConv {
		var ms []storage.NewMessage
		for i, c := range conversations {
			ms = append(ms, storage.NewMessage{ConversationID: c.ID, SenderID: users[i].ID, SenderName: "V", Body: fmt.Sprint("m", k)})
		}
		if _, err := store.AppendMessages(ctx, ms); err != nil {
			t.Fatal(err)
		}
	}
	want := (convs - 1) * perConv
	deadline := time.Now().Add(30 * time.Second)
	for good.count(0) < want {
		if time.Now().After(deadline) {
			t.Fatalf("the good endpoint got %d of %d messages in 30 s, with the other endpoint dead and one conversation refused", good.count(0), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	good.mu.Lock()
	defer good.mu.Unlock()
	for conv, seqs := range good.seqs {
		for i, s := range seqs {
			if s != int64(i+1) {
				t.Fatalf("conversation %d: arrivals %v, want 1…%d in order", conv, seqs, perConv)
			}
		}
	}
	if len(good.seqs[blocked]) != 0 || good.bad != 0 {
		t.Errorf("refused conversation got %d, bad signatures %d", len(good.seqs[blocked]), good.bad)
	}
	// The refused conversation's first event is retried, and its others wait.
	var attempts int
	if err := store.DB().QueryRowContext(ctx, `SELECT max(attempts) FROM webhook_deliveries WHERE conversation_id = $1`, blocked).Scan(&attempts); err != nil || attempts < 2 {
		t.Errorf("the refused conversation's head has %d attempts (%v), want retries", attempts, err)
	}
}

// saturatedStore reports the message path saturated while on is set: its
// busy time then grows with the clock.
type saturatedStore struct {
	*pgstore.Store
	on    atomic.Bool
	epoch time.Time
}

func (s *saturatedStore) AppendBusy(now time.Time) time.Duration {
	if s.on.Load() {
		return now.Sub(s.epoch)
	}
	return 0
}

// newSaturatedStore opens a store with webhooks (not saturated yet) and a
// visitor's conversation.
func newSaturatedStore(t *testing.T) (*saturatedStore, storage.User, storage.Conversation) {
	t.Helper()
	ctx := context.Background()
	pg, err := pgstore.Open(ctx, pgtest.Logger(t), pgtest.NewDatabase(t), pgstore.Options{MaxOpenConns: 4, Webhooks: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	u, err := pg.UpsertUser(ctx, storage.UserInput{ExternalID: "v", Name: "V"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pg.EnsureConversation(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return &saturatedStore{Store: pg, epoch: time.Now()}, u, c
}

// While the message path is saturated the expander yields: events wait, up
// to MaxLag, then go out all the same; once it is not, they go out at once.
func TestDispatcherYieldsToTheMessagePath(t *testing.T) {
	ctx := context.Background()
	store, u, c := newSaturatedStore(t)
	pg := store.Store
	store.on.Store(true)
	rec := &recorder{seqs: map[int64][]int64{}}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	const maxLag = 3 * time.Second
	d, err := webhook.New(slog.New(slog.NewTextHandler(t.Output(), nil)), webhook.Config{
		URLs: []string{srv.URL}, Secret: []byte(testSecret), MaxLag: maxLag,
		ExpandInterval: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond, LockInterval: 100 * time.Millisecond,
	}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	started := time.Now()
	post := func(body string) {
		t.Helper()
		if _, err := pg.AppendMessages(ctx, []storage.NewMessage{{ConversationID: c.ID, SenderID: u.ID, SenderName: "V", Body: body}}); err != nil {
			t.Fatal(err)
		}
	}
	waitCount := func(n int, within time.Duration) time.Duration {
		t.Helper()
		deadline := time.Now().Add(within)
		for rec.count(c.ID) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d events arrived within %v", rec.count(c.ID), n, within)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(started)
	}

	post("busy")
	deadline := time.Now().Add(10 * time.Second)
	for d.Yielded() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("the expander yielded %d passes in 10 s of a saturated message path", d.Yielded())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := rec.count(c.ID); n != 0 && time.Since(started) < maxLag {
		t.Fatalf("%d events sent %v into a saturated message path (max lag %v)", n, time.Since(started), maxLag)
	}
	if at := waitCount(1, maxLag+10*time.Second); at < maxLag/2 {
		t.Errorf("the event went out %v after the start, under a saturated message path (max lag %v)", at, maxLag)
	}
	store.on.Store(false)
	sent := time.Now()
	post("quiet")
	waitCount(2, 10*time.Second)
	if took := time.Since(sent); took > maxLag {
		t.Errorf("with the message path quiet the event took %v", took)
	}
}

// The sender yields too: events expanded already (their receiver refused
// them) are not sent again while the message path is saturated, up to
// MaxLag; once it is not, they go out at once.
func TestSenderYieldsToTheMessagePath(t *testing.T) {
	ctx := context.Background()
	store, u, c := newSaturatedStore(t)
	pg := store.Store
	var refusing atomic.Bool
	refusing.Store(true)
	rec := &recorder{seqs: map[int64][]int64{}, refuse: func(int64) bool { return refusing.Load() }}
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		rec.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	const maxLag = 4 * time.Second
	d, err := webhook.New(slog.New(slog.NewTextHandler(t.Output(), nil)), webhook.Config{
		URLs: []string{srv.URL}, Secret: []byte(testSecret), MaxLag: maxLag, RetryMin: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		ExpandInterval: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond, LockInterval: 100 * time.Millisecond,
	}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	if _, err := pg.AppendMessages(ctx, []storage.NewMessage{{ConversationID: c.ID, SenderID: u.ID, SenderName: "V", Body: "hi"}}); err != nil {
		t.Fatal(err)
	}
	// Expanded, and refused at least once.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var attempts int
		err := pg.DB().QueryRowContext(ctx, `SELECT COALESCE(max(attempts), 0) FROM webhook_deliveries`).Scan(&attempts)
		if err == nil && attempts > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the event was not attempted within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Saturated: once a poll has seen it, no attempt starts (one started
	// before may still reach the receiver, which keeps refusing).
	yielded := d.Yielded()
	store.on.Store(true)
	for d.Yielded() < yielded+2 {
		if time.Now().After(deadline) {
			t.Fatal("no sender poll yielded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	before := requests.Load()
	quietUntil := time.Now().Add(time.Second)
	for time.Now().Before(quietUntil) {
		if n := requests.Load() - before; n > 1 {
			t.Fatalf("the sender made %d attempts into a saturated message path (retries every 20-50 ms otherwise)", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	refusing.Store(false)
	store.on.Store(false)
	deadline = time.Now().Add(5 * time.Second)
	for rec.count(c.ID) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the event did not go out within 5 s of the message path going quiet")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
