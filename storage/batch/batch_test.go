package batch_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/batch"
	"github.com/grainchat/grainchat/storage/memstore"
)

// waitTimeout bounds every wait of these tests. It is generous: a healthy run
// takes milliseconds; only a hang reaches it.
const waitTimeout = 10 * time.Second

// fixture is a memstore with one visitor and conversation per index.
type fixture struct {
	store *memstore.Store
	users []storage.User
	convs []storage.Conversation
}

func newFixture(tb testing.TB, n int) *fixture {
	tb.Helper()
	s := memstore.New(memstore.Options{})
	tb.Cleanup(func() { _ = s.Close() })
	f := &fixture{store: s}
	for i := range n {
		u, err := s.UpsertUser(context.Background(), storage.UserInput{ExternalID: fmt.Sprintf("visitor-%d", i), Name: fmt.Sprintf("Visitor %d", i)})
		if err != nil {
			tb.Fatalf("UpsertUser: %v", err)
		}
		c, err := s.EnsureConversation(context.Background(), u.ID)
		if err != nil {
			tb.Fatalf("EnsureConversation: %v", err)
		}
		f.users = append(f.users, u)
		f.convs = append(f.convs, c)
	}
	return f
}

// msg returns a message from visitor i into their own conversation.
func (f *fixture) msg(i int, body, clientMsgID string) storage.NewMessage {
	return storage.NewMessage{
		ConversationID: f.convs[i].ID, SenderID: f.users[i].ID, SenderName: f.users[i].Name,
		Body: body, ClientMsgID: clientMsgID,
	}
}

// gate wraps a Store. Its AppendMessages records each call and, while the gate
// is shut, blocks until Release (or until its ctx ends: then EUNAVAILABLE, as
// a real store would answer).
type gate struct {
	storage.Store

	// blockFirstOnly makes only the first call wait for Release.
	blockFirstOnly bool
	// err, when set, is returned instead of writing.
	err error
	// dropLast makes the store return one result too few.
	dropLast bool

	entered     chan int // the size of each call, as it starts
	release     chan struct{}
	releaseOnce sync.Once

	mu       sync.Mutex
	calls    int
	received int // messages handed to AppendMessages so far
}

func newGate(inner storage.Store) *gate {
	return &gate{Store: inner, entered: make(chan int, 10000), release: make(chan struct{})}
}

// Release opens the gate for good. It is idempotent.
func (g *gate) Release() { g.releaseOnce.Do(func() { close(g.release) }) }

func (g *gate) AppendMessages(ctx context.Context, msgs []storage.NewMessage) ([]storage.AppendResult, error) {
	g.mu.Lock()
	g.calls++
	first := g.calls == 1
	g.received += len(msgs)
	g.mu.Unlock()
	g.entered <- len(msgs)
	if first || !g.blockFirstOnly {
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, storage.Unavailable("append messages", ctx.Err())
		}
	}
	if g.err != nil {
		return nil, g.err
	}
	res, err := g.Store.AppendMessages(ctx, msgs)
	if err == nil && g.dropLast && len(res) > 0 {
		res = res[:len(res)-1]
	}
	return res, err
}

func (g *gate) receivedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.received
}

// waitEntered waits until the store has been called once more.
func (g *gate) waitEntered(t *testing.T) int {
	t.Helper()
	select {
	case n := <-g.entered:
		return n
	case <-time.After(waitTimeout):
		t.Fatalf("the store was not called within %v", waitTimeout)
		return 0
	}
}

// observer records what Options.Observe reports.
type observer struct {
	mu    sync.Mutex
	sizes []int
	errs  []error
}

func (o *observer) observe(size int, _ time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sizes = append(o.sizes, size)
	o.errs = append(o.errs, err)
}

func (o *observer) snapshot() ([]int, []error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.sizes), slices.Clone(o.errs)
}

// mustNewAppender starts an Appender that is closed when the test ends (after
// g, when given, is released, so that Close cannot wait on a shut gate).
func mustNewAppender(t *testing.T, store storage.Store, g *gate, opts batch.Options) *batch.Appender {
	t.Helper()
	a := batch.New(slog.New(slog.DiscardHandler), store, opts)
	t.Cleanup(a.Close)
	if g != nil {
		t.Cleanup(g.Release) // runs before a.Close
	}
	return a
}

// outcome is the answer to one message submitted alone.
type outcome struct {
	msg storage.NewMessage
	res storage.AppendResult
	err error
}

// goAppend submits msg alone, as a grain submits its batch (expiring at
// ctx's deadline, else in 10 s); the outcome arrives on the channel.
func goAppend(ctx context.Context, a *batch.Appender, msg storage.NewMessage) <-chan outcome {
	ch := make(chan outcome, 1)
	expires := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok {
		expires = d
	}
	err := a.Submit([]storage.NewMessage{msg}, expires, func(res []storage.AppendResult, err error) {
		o := outcome{msg: msg, err: err}
		if err == nil {
			o.res = res[0]
		}
		ch <- o
	})
	if err != nil {
		ch <- outcome{msg: msg, err: err}
	}
	return ch
}

// submitWait submits msg alone and waits for its answer or for ctx: an
// answer that never comes ends in ctx's error.
func submitWait(ctx context.Context, a *batch.Appender, msg storage.NewMessage) (storage.AppendResult, error) {
	select {
	case o := <-goAppend(ctx, a, msg):
		return o.res, o.err
	case <-ctx.Done():
		return storage.AppendResult{}, ctx.Err()
	}
}

// appendOne submits msg alone and waits for its answer.
func appendOne(t *testing.T, a *batch.Appender, msg storage.NewMessage) (storage.AppendResult, error) {
	t.Helper()
	o := await(t, goAppend(t.Context(), a, msg))
	return o.res, o.err
}

// await returns the outcome of goAppend, failing the test if Append hangs.
func await(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(waitTimeout):
		t.Fatalf("Append did not return within %v", waitTimeout)
		return outcome{}
	}
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkStored checks that a conversation holds exactly seqs 1..n and returns
// its messages.
func checkStored(t *testing.T, s storage.Store, convID int64, n int) []storage.Message {
	t.Helper()
	msgs, err := s.Messages(context.Background(), convID, storage.Page{Limit: storage.MaxPageSize})
	if err != nil {
		t.Fatalf("Messages(%d): %v", convID, err)
	}
	if len(msgs) != n {
		t.Fatalf("conversation %d holds %d messages, want %d", convID, len(msgs), n)
	}
	for i, m := range msgs {
		if m.Seq != int64(i+1) {
			t.Fatalf("conversation %d: message %d has seq %d", convID, i, m.Seq)
		}
	}
	return msgs
}

// checkOwnResult checks that a successful, non-duplicate outcome is the
// caller's own message.
func checkOwnResult(t *testing.T, o outcome) {
	t.Helper()
	if o.err != nil || o.res.Err != nil {
		t.Fatalf("Append(%q): err %v, result err %v", o.msg.Body, o.err, o.res.Err)
	}
	m := o.res.Message
	if m.ID == 0 || m.Seq == 0 || m.ConversationID != o.msg.ConversationID || m.SenderID != o.msg.SenderID ||
		m.Body != o.msg.Body || m.ClientMsgID != o.msg.ClientMsgID {
		t.Fatalf("Append(%+v) returned someone else's message %+v", o.msg, m)
	}
}

// TestAppender_groupsConcurrentAppends guards the package's purpose: appends
// that arrive while a batch is being written are written together, and each
// caller still gets its own result.
func TestAppender_groupsConcurrentAppends(t *testing.T) {
	const convs, n, dups = 5, 50, 10
	f := newFixture(t, convs)
	g := newGate(f.store)
	g.blockFirstOnly = true
	var obs observer
	a := mustNewAppender(t, g, g, batch.Options{Writers: 1, Observe: obs.observe})

	first := goAppend(t.Context(), a, f.msg(0, "first", "first"))
	g.waitEntered(t)

	// 50 appends while the first is blocked: 40 new ones, 8 per conversation,
	// then 10 resends (same sender, conversation and client_msg_id, new body).
	chans := make([]<-chan outcome, n)
	for i := range n {
		id := fmt.Sprintf("id-%d", i)
		if i >= n-dups {
			id = fmt.Sprintf("id-%d", i-(n-dups)) // same conversation: (i-40)%5 == i%5
		}
		chans[i] = goAppend(t.Context(), a, f.msg(i%convs, fmt.Sprintf("m%d", i), id))
	}
	waitFor(t, "50 queued appends", func() bool { return a.QueuedForTest() == n })
	g.Release()

	firstOut := await(t, first)
	checkOwnResult(t, firstOut)
	if firstOut.res.Message.Seq != 1 {
		t.Fatalf("first message: seq %d, want 1", firstOut.res.Message.Seq)
	}
	outs := make([]outcome, n)
	for i, ch := range chans {
		outs[i] = await(t, ch)
	}

	if sizes, _ := obs.snapshot(); !slices.Equal(sizes, []int{1, n}) {
		t.Fatalf("batch sizes %v, want [1 %d]: the queued appends were not grouped", sizes, n)
	}

	// Pair up each client_msg_id's two appends: exactly one stored it.
	byID := map[string][]outcome{}
	for _, o := range outs {
		if o.err != nil || o.res.Err != nil {
			t.Fatalf("Append(%q): err %v, result err %v", o.msg.Body, o.err, o.res.Err)
		}
		byID[o.msg.ClientMsgID] = append(byID[o.msg.ClientMsgID], o)
	}
	seqs := map[int64][]int64{f.convs[0].ID: {1}}
	for id, group := range byID {
		var fresh, dup []outcome
		for _, o := range group {
			if o.res.Duplicate {
				dup = append(dup, o)
			} else {
				fresh = append(fresh, o)
			}
		}
		if len(fresh) != 1 || len(dup) != len(group)-1 {
			t.Fatalf("client_msg_id %s: %d stored, %d flagged duplicate of %d appends", id, len(fresh), len(dup), len(group))
		}
		checkOwnResult(t, fresh[0])
		for _, d := range dup {
			if d.res.Message != fresh[0].res.Message {
				t.Fatalf("client_msg_id %s: duplicate answered %+v, want the stored %+v", id, d.res.Message, fresh[0].res.Message)
			}
		}
		m := fresh[0].res.Message
		seqs[m.ConversationID] = append(seqs[m.ConversationID], m.Seq)
	}

	// Seqs are exact per conversation: 1..k without gaps or repeats, and the
	// store agrees with what the callers were told.
	for i, c := range f.convs {
		got := seqs[c.ID]
		slices.Sort(got)
		want := 8
		if i == 0 {
			want = 9
		}
		if len(got) != want {
			t.Fatalf("conversation %d: %d messages stored, want %d", c.ID, len(got), want)
		}
		for j, s := range got {
			if s != int64(j+1) {
				t.Fatalf("conversation %d: seqs %v, want 1..%d", c.ID, got, want)
			}
		}
		stored := checkStored(t, f.store, c.ID, want)
		for _, group := range byID {
			for _, o := range group {
				if m := o.res.Message; m.ConversationID == c.ID && stored[m.Seq-1] != m {
					t.Fatalf("conversation %d seq %d: caller told %+v, store holds %+v", c.ID, m.Seq, m, stored[m.Seq-1])
				}
			}
		}
	}
}

// TestAppender_groupsWithSeveralWriters checks grouping with the default
// number of writers, all of them blocked: the 50 waiting appends still come in
// a few batches (each writer holds one, then the rest is split among them).
func TestAppender_groupsWithSeveralWriters(t *testing.T) {
	const n, writers = 50, 4
	f := newFixture(t, 1)
	g := newGate(f.store)
	var obs observer
	a := mustNewAppender(t, g, g, batch.Options{Writers: writers, Observe: obs.observe})

	first := goAppend(t.Context(), a, f.msg(0, "first", ""))
	g.waitEntered(t)
	chans := make([]<-chan outcome, n)
	for i := range n {
		chans[i] = goAppend(t.Context(), a, f.msg(0, fmt.Sprintf("m%d", i), fmt.Sprintf("id-%d", i)))
	}
	waitFor(t, "all appends in the store or queued", func() bool { return g.receivedCount()+a.QueuedForTest() == n+1 })
	g.Release()

	seen := map[int64]bool{}
	for _, ch := range append([]<-chan outcome{first}, chans...) {
		o := await(t, ch)
		checkOwnResult(t, o)
		if seen[o.res.Message.Seq] {
			t.Fatalf("seq %d given twice", o.res.Message.Seq)
		}
		seen[o.res.Message.Seq] = true
	}
	checkStored(t, f.store, f.convs[0].ID, n+1)

	sizes, _ := obs.snapshot()
	total := 0
	for _, s := range sizes {
		total += s
	}
	if total != n+1 {
		t.Fatalf("batch sizes %v sum to %d, want %d", sizes, total, n+1)
	}
	if maxBatches := 1 + 2*writers - 1; len(sizes) > maxBatches {
		t.Fatalf("%d batches %v for %d appends, want at most %d", len(sizes), sizes, n+1, maxBatches)
	}
}

// TestAppender_lightTraffic checks that there is no waiting window: one
// waiting append is written at once, alone.
func TestAppender_lightTraffic(t *testing.T) {
	f := newFixture(t, 1)
	var obs observer
	a := mustNewAppender(t, f.store, nil, batch.Options{Observe: obs.observe})
	const n = 20
	for i := range n {
		start := time.Now()
		res, err := appendOne(t, a, f.msg(0, fmt.Sprintf("m%d", i), ""))
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Append %d took %v: a lone append must not wait", i, d)
		}
		if err != nil || res.Err != nil {
			t.Fatalf("Append %d: %v %v", i, err, res.Err)
		}
		if res.Message.Seq != int64(i+1) || res.Duplicate {
			t.Fatalf("Append %d: seq %d duplicate %v", i, res.Message.Seq, res.Duplicate)
		}
	}
	sizes, errs := obs.snapshot()
	if len(sizes) != n {
		t.Fatalf("%d batches, want %d", len(sizes), n)
	}
	for i := range sizes {
		if sizes[i] != 1 || errs[i] != nil {
			t.Fatalf("batch %d: size %d err %v, want one message and no error", i, sizes[i], errs[i])
		}
	}
	checkStored(t, f.store, f.convs[0].ID, n)
}

// TestAppender_perMessageErrors checks that a problem with one message is that
// caller's alone.
func TestAppender_perMessageErrors(t *testing.T) {
	f := newFixture(t, 1)
	g := newGate(f.store)
	g.blockFirstOnly = true
	a := mustNewAppender(t, g, g, batch.Options{Writers: 1})

	first := goAppend(t.Context(), a, f.msg(0, "first", ""))
	g.waitEntered(t)
	good := goAppend(t.Context(), a, f.msg(0, "good", ""))
	unknown := f.msg(0, "lost", "")
	unknown.ConversationID = 999999
	bad := goAppend(t.Context(), a, unknown)
	empty := goAppend(t.Context(), a, f.msg(0, "", ""))
	waitFor(t, "3 queued appends", func() bool { return a.QueuedForTest() == 3 })
	g.Release()

	checkOwnResult(t, await(t, first))
	checkOwnResult(t, await(t, good))
	for name, want := range map[string]struct {
		ch   <-chan outcome
		code string
	}{"unknown conversation": {bad, storage.ENOTFOUND}, "empty body": {empty, storage.EINVALID}} {
		o := await(t, want.ch)
		if o.err != nil {
			t.Fatalf("%s: batch error %v, want a per-message error", name, o.err)
		}
		if code := storage.ErrorCode(o.res.Err); code != want.code {
			t.Fatalf("%s: result error %v (code %q), want %q", name, o.res.Err, code, want.code)
		}
	}
	checkStored(t, f.store, f.convs[0].ID, 2)
}

// TestAppender_storeFailure checks that when the write fails, every caller of
// that batch gets the error, with a code, and nothing hangs.
func TestAppender_storeFailure(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(g *gate)
		wantCode string
	}{
		{"unavailable", func(g *gate) {
			g.err = storage.Unavailable("append messages", errors.New("connection refused"))
		}, storage.EUNAVAILABLE},
		{"plain error becomes internal", func(g *gate) { g.err = errors.New("boom") }, storage.EINTERNAL},
		{"wrong result count becomes internal", func(g *gate) { g.dropLast = true }, storage.EINTERNAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 10
			f := newFixture(t, 1)
			g := newGate(f.store)
			g.blockFirstOnly = true
			tt.setup(g)
			var obs observer
			a := mustNewAppender(t, g, g, batch.Options{Writers: 1, Observe: obs.observe})

			chans := []<-chan outcome{goAppend(t.Context(), a, f.msg(0, "first", ""))}
			g.waitEntered(t)
			for i := range n {
				chans = append(chans, goAppend(t.Context(), a, f.msg(0, fmt.Sprintf("m%d", i), "")))
			}
			waitFor(t, "queued appends", func() bool { return a.QueuedForTest() == n })
			g.Release()

			for _, ch := range chans {
				o := await(t, ch)
				if code := storage.ErrorCode(o.err); code != tt.wantCode {
					t.Fatalf("Append(%q): error %v (code %q), want code %q", o.msg.Body, o.err, code, tt.wantCode)
				}
				if o.res != (storage.AppendResult{}) {
					t.Fatalf("Append(%q): result %+v with a batch error", o.msg.Body, o.res)
				}
			}
			sizes, errs := obs.snapshot()
			if !slices.Equal(sizes, []int{1, n}) {
				t.Fatalf("batch sizes %v, want [1 %d]", sizes, n)
			}
			for i, err := range errs {
				if err == nil {
					t.Errorf("Observe: batch %d (size %d) reported no error, yet its callers all got one", i, sizes[i])
				}
			}
		})
	}
}

// TestAppender_writeTimeout checks that a store that never answers cannot
// hold callers beyond WriteTimeout.
func TestAppender_writeTimeout(t *testing.T) {
	f := newFixture(t, 1)
	g := newGate(f.store) // never released before the callers return
	a := mustNewAppender(t, g, g, batch.Options{WriteTimeout: 20 * time.Millisecond})
	o := await(t, goAppend(t.Context(), a, f.msg(0, "m", "")))
	if code := storage.ErrorCode(o.err); code != storage.EUNAVAILABLE {
		t.Fatalf("Append: error %v (code %q), want %q", o.err, code, storage.EUNAVAILABLE)
	}
}

// TestAppender_queueBound checks that appends beyond Queue are refused at once
// with EUNAVAILABLE instead of waiting.
func TestAppender_queueBound(t *testing.T) {
	f := newFixture(t, 1)
	g := newGate(f.store)
	a := mustNewAppender(t, g, g, batch.Options{Writers: 1, Queue: 2})

	accepted := []<-chan outcome{goAppend(t.Context(), a, f.msg(0, "in store", ""))}
	g.waitEntered(t)
	accepted = append(accepted,
		goAppend(t.Context(), a, f.msg(0, "queued 1", "")),
		goAppend(t.Context(), a, f.msg(0, "queued 2", "")))
	waitFor(t, "a full queue", func() bool { return a.QueuedForTest() == 2 })

	for i := range 3 {
		// The store is still blocked: a refusal that returns proves it did not wait.
		o := await(t, goAppend(t.Context(), a, f.msg(0, fmt.Sprintf("extra %d", i), "")))
		if code := storage.ErrorCode(o.err); code != storage.EUNAVAILABLE {
			t.Fatalf("extra append %d: error %v (code %q), want %q", i, o.err, code, storage.EUNAVAILABLE)
		}
	}
	g.Release()
	for _, ch := range accepted {
		checkOwnResult(t, await(t, ch))
	}
	checkStored(t, f.store, f.convs[0].ID, 3)
}

// TestAppender_close checks that Close writes what is queued, answers every
// caller, refuses later appends with ErrClosed and is idempotent.
func TestAppender_close(t *testing.T) {
	const n = 10
	f := newFixture(t, 1)
	g := newGate(f.store)
	g.blockFirstOnly = true
	a := mustNewAppender(t, g, g, batch.Options{Writers: 1})

	chans := []<-chan outcome{goAppend(t.Context(), a, f.msg(0, "first", ""))}
	g.waitEntered(t)
	for i := range n {
		chans = append(chans, goAppend(t.Context(), a, f.msg(0, fmt.Sprintf("m%d", i), "")))
	}
	waitFor(t, "queued appends", func() bool { return a.QueuedForTest() == n })

	closed := make(chan struct{})
	go func() {
		a.Close()
		close(closed)
	}()
	waitFor(t, "Close to begin", a.ClosingForTest)
	select {
	case <-closed:
		t.Fatal("Close returned while a batch was still being written")
	default:
	}

	// After Close: refused at once, nothing queued.
	o := await(t, goAppend(t.Context(), a, f.msg(0, "late", "")))
	if !errors.Is(o.err, batch.ErrClosed) || storage.ErrorCode(o.err) != storage.EUNAVAILABLE {
		t.Fatalf("Append after Close: %v, want ErrClosed (%s)", o.err, storage.EUNAVAILABLE)
	}

	g.Release()
	for _, ch := range chans {
		checkOwnResult(t, await(t, ch))
	}
	select {
	case <-closed:
	case <-time.After(waitTimeout):
		t.Fatal("Close did not return after the queue was drained")
	}
	checkStored(t, f.store, f.convs[0].ID, n+1)

	second := make(chan struct{})
	go func() {
		a.Close()
		close(second)
	}()
	select {
	case <-second:
	case <-time.After(waitTimeout):
		t.Fatal("second Close did not return")
	}
}

// TestAppender_closeWhileAppending checks that appends racing with Close never
// hang: each returns a result or ErrClosed.
//
// The race it hunts is narrow (an Append that passed its closed check just
// before Close, and enqueues after the writers have drained the queue and
// exited), so it runs many rounds with more Ps than CPUs: a thread that the
// OS deschedules inside that window makes the race likely, while a correct
// Appender passes every round.
func TestAppender_closeWhileAppending(t *testing.T) {
	const rounds, appenders = 300, 8
	defer runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), 8))
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), 8))
	f := newFixture(t, 1)
	for round := range rounds {
		a := batch.New(slog.New(slog.DiscardHandler), f.store, batch.Options{Writers: 2})
		var wg sync.WaitGroup
		started := make(chan struct{}, appenders)
		hung := make(chan storage.NewMessage, appenders)
		for w := range appenders {
			wg.Go(func() {
				started <- struct{}{}
				for i := 0; ; i++ {
					msg := f.msg(0, fmt.Sprintf("r%d w%d m%d", round, w, i), "")
					// A healthy append returns in microseconds; only a lost
					// request waits for this deadline.
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					_, err := submitWait(ctx, a, msg)
					cancel()
					if errors.Is(err, context.DeadlineExceeded) {
						hung <- msg
						return
					}
					if errors.Is(err, batch.ErrClosed) {
						return
					}
				}
			})
		}
		for range appenders {
			<-started
		}
		a.Close()
		wg.Wait()
		close(hung)
		for msg := range hung {
			t.Fatalf("round %d: Append(%q) racing with Close was never answered: it was queued after the writers had "+
				"drained the queue and exited, and waited until its ctx expired", round, msg.Body)
		}
	}
}

// TestAppender_maxBatch checks that no batch exceeds MaxBatch.
func TestAppender_maxBatch(t *testing.T) {
	const n, maxBatch = 23, 5
	f := newFixture(t, 1)
	g := newGate(f.store)
	g.blockFirstOnly = true
	var obs observer
	a := mustNewAppender(t, g, g, batch.Options{Writers: 1, MaxBatch: maxBatch, Observe: obs.observe})

	chans := []<-chan outcome{goAppend(t.Context(), a, f.msg(0, "first", ""))}
	g.waitEntered(t)
	for i := range n {
		chans = append(chans, goAppend(t.Context(), a, f.msg(0, fmt.Sprintf("m%d", i), "")))
	}
	waitFor(t, "queued appends", func() bool { return a.QueuedForTest() == n })
	g.Release()
	for _, ch := range chans {
		checkOwnResult(t, await(t, ch))
	}
	if sizes, _ := obs.snapshot(); !slices.Equal(sizes, []int{1, 5, 5, 5, 5, 3}) {
		t.Fatalf("batch sizes %v, want [1 5 5 5 5 3]", sizes)
	}
	checkStored(t, f.store, f.convs[0].ID, n+1)
}

// BenchmarkAppender_parallel measures Append under contention with memstore;
// msgs/batch shows how much grouping happens.
func BenchmarkAppender_parallel(b *testing.B) {
	const convs = 64
	f := newFixture(b, convs)
	var mu sync.Mutex
	var batches, msgs int
	a := batch.New(slog.New(slog.DiscardHandler), f.store, batch.Options{Observe: func(size int, _ time.Duration, _ error) {
		mu.Lock()
		batches++
		msgs += size
		mu.Unlock()
	}})
	defer a.Close()
	var next sync.Mutex
	conv := 0
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		next.Lock()
		i := conv % convs
		conv++
		next.Unlock()
		msg := f.msg(i, "Bonjour, où en est ma commande ?", "")
		for pb.Next() {
			res, err := submitWait(context.Background(), a, msg)
			if err != nil || res.Err != nil {
				b.Errorf("Append: %v %v", err, res.Err)
				return
			}
		}
	})
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	if batches > 0 {
		b.ReportMetric(float64(msgs)/float64(batches), "msgs/batch")
	}
}
