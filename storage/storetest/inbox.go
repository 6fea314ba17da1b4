package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// --- inbox pages

// newWorldFast is newWorld for big fixtures: the visitors and their
// conversations are created by a few goroutines at once.
func newWorldFast(t *testing.T, s storage.Store, n int) *world {
	t.Helper()
	w := &world{
		t:     t,
		admin: mustUser(t, s, storage.UserInput{ExternalID: "admin", Name: "Admin", IsAdmin: true}),
		owner: make(map[int64]storage.User),
		users: make([]storage.User, n),
		convs: make([]storage.Conversation, n),
	}
	const workers = 4
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for k := range workers {
		wg.Go(func() {
			for i := k; i < n; i += workers {
				u, c, err := s.Connect(t.Context(), storage.UserInput{
					ExternalID: fmt.Sprintf("visitor-%d", i), Name: fmt.Sprintf("Visitor %d", i)})
				if err != nil {
					errs <- fmt.Errorf("Connect(visitor-%d): %w", i, err)
					return
				}
				w.users[i], w.convs[i] = u, c
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, c := range w.convs {
		w.owner[c.ID] = w.users[i]
	}
	return w
}

// inboxBefore reports whether a comes before b in inbox order.
func inboxBefore(a, b storage.InboxCursor) bool {
	if c := a.LastMessageAt.Compare(b.LastMessageAt); c != 0 {
		return c > 0
	}
	return a.ConversationID > b.ConversationID
}

// otherZone returns c with its time in another location: cursors compare
// instants, not representations.
func otherZone(c storage.InboxCursor) storage.InboxCursor {
	c.LastMessageAt = c.LastMessageAt.In(time.FixedZone("UTC+5:30", 5*3600+1800))
	return c
}

// mustInboxPage reads a page and checks that it is in strict inbox order,
// after the cursor, with entries that carry their newest message.
func mustInboxPage(t *testing.T, s storage.Store, after storage.InboxCursor, limit int) []storage.InboxEntry {
	t.Helper()
	page, err := s.InboxPage(t.Context(), after, limit)
	if err != nil {
		t.Fatalf("InboxPage(%+v, %d): %v", after, limit, err)
	}
	prev := after
	for i, e := range page {
		if e.LastMessageAt == nil || e.LastMessage == nil || e.LastMessage.Seq != e.LastSeq ||
			e.LastMessage.ConversationID != e.ConversationID || !e.LastMessage.CreatedAt.Equal(*e.LastMessageAt) {
			t.Fatalf("InboxPage(%+v)[%d] = %+v (last message %+v): inconsistent entry", after, i, e, e.LastMessage)
		}
		if !prev.IsZero() && !inboxBefore(prev, e.Cursor()) {
			t.Fatalf("InboxPage(%+v)[%d] at %+v does not come after %+v", after, i, e.Cursor(), prev)
		}
		prev = e.Cursor()
	}
	return page
}

// testInboxPageWalk pages through 2,500 conversations whose messages were
// stored 30 per call (so that runs of equal times straddle page boundaries):
// every conversation comes exactly once, in inbox order, and each page is
// full but the last.
func testInboxPageWalk(t *testing.T, s storage.Store) {
	const (
		n     = 2500
		batch = 30
		limit = 50
	)
	w := newWorldFast(t, s, n)
	// Conversations get their messages in a shuffled order, some two.
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	last := make(map[int64]storage.Message) // conversation → newest message
	for start := 0; start < n; start += batch {
		var msgs []storage.NewMessage
		for _, i := range order[start:min(start+batch, n)] {
			msgs = append(msgs, w.msg(w.convs[i], fmt.Sprintf("to %d", i)))
			if i%7 == 0 {
				msgs = append(msgs, w.msg(w.convs[i], fmt.Sprintf("again to %d", i)))
			}
		}
		for _, r := range mustAppend(t, s, msgs) {
			last[r.Message.ConversationID] = r.Message
		}
	}
	want := make([]storage.InboxCursor, 0, n)
	for id, m := range last {
		want = append(want, storage.InboxCursor{LastMessageAt: m.CreatedAt, ConversationID: id})
	}
	slices.SortFunc(want, func(a, b storage.InboxCursor) int {
		if inboxBefore(a, b) {
			return -1
		}
		return 1
	})

	var got []storage.InboxEntry
	var after storage.InboxCursor
	for pages := 0; ; pages++ {
		if pages > n/limit+1 {
			t.Fatalf("still paging after %d pages", pages)
		}
		page := mustInboxPage(t, s, after, limit)
		if len(page) != min(limit, n-len(got)) {
			t.Fatalf("page %d after %d conversations has %d entries, want %d", pages, len(got), len(page), min(limit, n-len(got)))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].Cursor()
		if pages%2 == 1 {
			after = otherZone(after)
		}
	}
	if len(got) != n {
		t.Fatalf("walk returned %d conversations, want %d", len(got), n)
	}
	for i, e := range got {
		m := last[e.ConversationID]
		if e.ConversationID != want[i].ConversationID || !e.LastMessageAt.Equal(want[i].LastMessageAt) {
			t.Fatalf("walk[%d] = conversation %d at %v, want %d at %v",
				i, e.ConversationID, e.LastMessageAt, want[i].ConversationID, want[i].LastMessageAt)
		}
		u := w.owner[e.ConversationID]
		if e.UserID != u.ID || e.UserExternalID != u.ExternalID || e.UserName != u.Name {
			t.Fatalf("walk[%d] = %+v, want the user %+v", i, e, u)
		}
		if d := diffMessage(*e.LastMessage, m); d != "" {
			t.Fatalf("walk[%d].LastMessage: %s", i, d)
		}
	}

	// The first page is Inbox's; page sizes default and cap.
	inbox, err := s.Inbox(t.Context(), storage.MaxInboxSize)
	if err != nil || len(inbox) != storage.MaxInboxSize {
		t.Fatalf("Inbox = %d entries, %v; want %d", len(inbox), err, storage.MaxInboxSize)
	}
	for i, e := range inbox {
		if e.ConversationID != got[i].ConversationID {
			t.Fatalf("Inbox[%d] is conversation %d, InboxPage walk's is %d", i, e.ConversationID, got[i].ConversationID)
		}
	}
	for _, tc := range []struct{ limit, want int }{
		{0, storage.DefaultInboxPage},
		{1, 1},
		{storage.MaxInboxPage + 1, storage.MaxInboxPage},
		{storage.MaxInboxSize, storage.MaxInboxPage},
	} {
		page := mustInboxPage(t, s, got[0].Cursor(), tc.limit)
		if len(page) != tc.want || page[0].ConversationID != got[1].ConversationID {
			t.Fatalf("InboxPage(after the first, %d): %d entries, want %d from the second", tc.limit, len(page), tc.want)
		}
	}
	// After the last conversation: nothing.
	if page := mustInboxPage(t, s, got[n-1].Cursor(), limit); len(page) != 0 {
		t.Fatalf("InboxPage after the last conversation: %d entries", len(page))
	}
}

// testInboxPageTies: conversations whose last messages were stored by one
// call share one time; a cursor inside such a run continues with the lower
// ids of the run, then older activity.
func testInboxPageTies(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 5)
	c := w.convs
	mustAppend(t, s, []storage.NewMessage{w.msg(c[0], "old")})
	mustAppend(t, s, []storage.NewMessage{w.msg(c[1], "tie"), w.msg(c[2], "tie"), w.msg(c[3], "tie")})
	mustAppend(t, s, []storage.NewMessage{w.msg(c[4], "new")})
	top := mustInboxPage(t, s, storage.InboxCursor{}, 0)
	wantIDs := []int64{c[4].ID, c[3].ID, c[2].ID, c[1].ID, c[0].ID}
	if ids := inboxIDs(top); !slices.Equal(ids, wantIDs) {
		t.Fatalf("inbox %v, want %v", ids, wantIDs)
	}
	for k := range top {
		for _, cur := range []storage.InboxCursor{top[k].Cursor(), otherZone(top[k].Cursor())} {
			page := mustInboxPage(t, s, cur, 0)
			if ids := inboxIDs(page); !slices.Equal(ids, wantIDs[k+1:]) {
				t.Fatalf("InboxPage after %+v: %v, want %v", cur, ids, wantIDs[k+1:])
			}
		}
	}
	// A cursor between two entries (a time in the run, an id between the
	// run's ids) starts at the next lower id.
	mid := storage.InboxCursor{LastMessageAt: *top[2].LastMessageAt, ConversationID: c[2].ID}
	if ids := inboxIDs(mustInboxPage(t, s, mid, 0)); !slices.Equal(ids, wantIDs[3:]) {
		t.Fatalf("InboxPage after %+v: %v, want %v", mid, ids, wantIDs[3:])
	}
	// One microsecond later than the run, with the lowest id: the whole run.
	justAbove := storage.InboxCursor{LastMessageAt: top[1].LastMessageAt.Add(time.Microsecond), ConversationID: 1}
	if ids := inboxIDs(mustInboxPage(t, s, justAbove, 0)); !slices.Equal(ids, wantIDs[1:]) {
		t.Fatalf("InboxPage after %+v: %v, want %v", justAbove, ids, wantIDs[1:])
	}
}

func inboxIDs(entries []storage.InboxEntry) []int64 {
	ids := make([]int64, len(entries))
	for i, e := range entries {
		ids[i] = e.ConversationID
	}
	return ids
}

// testInboxPageInvalid: a negative limit and malformed cursors are EINVALID.
func testInboxPageInvalid(t *testing.T, s storage.Store) {
	at := time.Date(2026, 12, 5, 8, 0, 0, 123456000, time.UTC)
	_, err := s.InboxPage(t.Context(), storage.InboxCursor{}, -1)
	wantCode(t, err, storage.EINVALID)
	for _, c := range []storage.InboxCursor{
		{ConversationID: 1},                                        // no time
		{LastMessageAt: at},                                        // no conversation
		{LastMessageAt: at, ConversationID: -1},                    // negative id
		{LastMessageAt: at.Add(500), ConversationID: 1},            // finer than a microsecond
		{LastMessageAt: at.AddDate(8000, 0, 0), ConversationID: 1}, // past 9999
	} {
		_, err := s.InboxPage(t.Context(), c, 10)
		wantCode(t, err, storage.EINVALID)
	}
}

// testInboxPageMovesDuringWalk walks the inbox while conversations get new
// messages: between pages (one already returned and one not yet, each time)
// and from a concurrent writer. Invariants (storage.Store.InboxPage): no
// conversation is returned twice; every conversation that got no message
// during the walk is returned; one that moved before the walk reached it is
// not returned after its move (it is above the cursor).
func testInboxPageMovesDuringWalk(t *testing.T, s storage.Store) {
	const (
		n     = 300
		limit = 7
	)
	w := newWorldFast(t, s, n)
	for start := 0; start < n; start += 4 { // runs of 4 equal times
		var msgs []storage.NewMessage
		for i := start; i < min(start+4, n); i++ {
			msgs = append(msgs, w.msg(w.convs[i], "hello"))
		}
		mustAppend(t, s, msgs)
	}

	var (
		mu      sync.Mutex
		touched = make(map[int64]bool) // conversations that got a message during the walk
	)
	touch := func(id int64) {
		mu.Lock()
		touched[id] = true
		mu.Unlock()
	}
	stop := make(chan struct{})
	writerErr := make(chan error, 1)
	go func() { // the concurrent writer
		defer close(writerErr)
		rng := rand.New(rand.NewPCG(3, 4))
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			c := w.convs[rng.IntN(n)]
			touch(c.ID)
			res, err := s.AppendMessages(t.Context(), []storage.NewMessage{w.msg(c, fmt.Sprintf("writer %d", k))})
			if err == nil {
				err = res[0].Err
			}
			if err != nil {
				writerErr <- err
				return
			}
			time.Sleep(time.Millisecond) // a steady trickle, not a flood
		}
	}()

	returned := make(map[int64]int) // conversation → page it came in
	movedAt := make(map[int64]int)  // moved by the walk before being returned → page of the move
	var after storage.InboxCursor
	pages := 0
	for ; ; pages++ {
		if pages > 4*n {
			t.Fatalf("still paging after %d pages", pages)
		}
		page := mustInboxPage(t, s, after, limit)
		for _, e := range page {
			if p, dup := returned[e.ConversationID]; dup {
				t.Fatalf("conversation %d returned on page %d and again on page %d", e.ConversationID, p, pages)
			}
			if p, moved := movedAt[e.ConversationID]; moved {
				t.Fatalf("conversation %d moved to the top before page %d but was returned on page %d", e.ConversationID, p, pages)
			}
			returned[e.ConversationID] = pages
		}
		if len(page) < limit {
			break
		}
		after = page[len(page)-1].Cursor()
		// Move one conversation of this page, and the first one (in fixture
		// order) not returned yet, to the top.
		done := page[pages%len(page)]
		msgs := []storage.NewMessage{w.msg(storage.Conversation{ID: done.ConversationID}, "moved after its page")}
		touch(done.ConversationID)
		for _, c := range w.convs {
			_, r := returned[c.ID]
			_, m := movedAt[c.ID]
			if !r && !m {
				msgs = append(msgs, w.msg(c, "moved before its page"))
				touch(c.ID)
				movedAt[c.ID] = pages
				break
			}
		}
		mustAppend(t, s, msgs)
	}
	close(stop)
	if err := <-writerErr; err != nil {
		t.Fatalf("concurrent writer: %v", err)
	}

	missing := 0
	for _, c := range w.convs {
		if _, ok := returned[c.ID]; !ok && !touched[c.ID] {
			missing++
			t.Errorf("conversation %d got no message during the walk but was not returned", c.ID)
		}
	}
	if missing > 0 {
		t.FailNow()
	}
	t.Logf("%d pages, %d conversations returned, %d touched during the walk, %d moved ahead of the walk",
		pages+1, len(returned), len(touched), len(movedAt))
	if len(movedAt) == 0 || len(returned) < n-len(touched) {
		t.Fatalf("the walk moved %d conversations and returned %d: the test did not exercise moves", len(movedAt), len(returned))
	}
}

// --- identity

// testStoreID: the store id is not empty and the same on every call.
func testStoreID(t *testing.T, s storage.Store) {
	id := s.StoreID()
	if id == "" {
		t.Fatal("StoreID is empty")
	}
	w := newWorld(t, s, 1)
	mustAppend(t, s, []storage.NewMessage{w.msg(w.convs[0], "hello")})
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() { ids[i] = s.StoreID() })
	}
	wg.Wait()
	for _, got := range ids {
		if got != id {
			t.Fatalf("StoreID changed from %q to %q", id, got)
		}
	}
}

// testIDsSafeIntegers: ids are positive and below 2^53, so pages can hold
// them in JavaScript numbers.
func testIDsSafeIntegers(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 3)
	var ids []int64
	for i, c := range w.convs {
		ids = append(ids, w.users[i].ID, c.ID)
		for _, r := range mustAppend(t, s, []storage.NewMessage{w.msg(c, "a"), w.msg(c, "b")}) {
			ids = append(ids, r.Message.ID)
		}
	}
	ids = append(ids, w.admin.ID)
	for _, id := range ids {
		if id <= 0 || id >= 1<<53 {
			t.Fatalf("id %d is outside 1..2^53-1 (ids %v)", id, ids)
		}
	}
}

// testAppendTimesNeverGoBack appends to one conversation from several
// goroutines at once. Invariant (relied on by InboxPage's walk): created_at
// never decreases along a conversation's seqs, and last_message_at is the
// newest message's, so a conversation only ever moves up the inbox.
func testAppendTimesNeverGoBack(t *testing.T, s storage.Store) {
	const (
		writers = 8
		calls   = 25
	)
	w := newWorld(t, s, 2)
	a, b := w.convs[0], w.convs[1]
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for k := range writers {
		wg.Go(func() {
			for i := range calls {
				// Half the calls also touch b, so that they wait on two locks.
				msgs := []storage.NewMessage{w.msg(a, fmt.Sprintf("w%d c%d", k, i))}
				if i%2 == 0 {
					msgs = append(msgs, w.msg(b, fmt.Sprintf("w%d c%d", k, i)))
				}
				res, err := s.AppendMessages(t.Context(), msgs)
				if err == nil {
					err = res[0].Err
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("AppendMessages: %v", err)
	}
	for _, c := range []storage.Conversation{a, b} {
		msgs := allMessages(t, s, c.ID)
		for i := 1; i < len(msgs); i++ {
			if msgs[i].CreatedAt.Before(msgs[i-1].CreatedAt) {
				t.Fatalf("conversation %d: seq %d stored at %v, before seq %d at %v",
					c.ID, msgs[i].Seq, msgs[i].CreatedAt, msgs[i-1].Seq, msgs[i-1].CreatedAt)
			}
		}
		got, err := s.Conversation(t.Context(), c.ID)
		if err != nil {
			t.Fatalf("Conversation: %v", err)
		}
		if last := msgs[len(msgs)-1]; got.LastMessageAt == nil || !got.LastMessageAt.Equal(last.CreatedAt) {
			t.Fatalf("conversation %d: last_message_at %v, newest message at %v", c.ID, got.LastMessageAt, last.CreatedAt)
		}
	}
}
