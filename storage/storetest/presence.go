package storetest

import (
	"strings"
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

// testPresenceVisitorPages: a visitor's reported page is stored with their
// user and shown in their conversation's entries; the latest report wins
// (an older one, in a later call or the same batch, replaces nothing);
// unknown users are skipped; pages out of bounds are refused, the whole
// batch with them; appending messages leaves the page as it was.
func testPresenceVisitorPages(t *testing.T, s storage.Store) {
	ctx := t.Context()
	w := newWorld(t, s, 2)
	a, b := w.users[0], w.users[1]
	mustAppend(t, s, []storage.NewMessage{w.msg(w.convs[0], "hi"), w.msg(w.convs[1], "hello")})
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 123456789, time.UTC)
	save := func(pages ...storage.VisitorPage) {
		t.Helper()
		if err := s.SaveVisitorPages(ctx, pages); err != nil {
			t.Fatalf("SaveVisitorPages(%+v): %v", pages, err)
		}
	}
	pageOf := func(conv storage.Conversation) *storage.VisitorPage {
		t.Helper()
		e, err := s.ConversationEntry(ctx, w.admin.ID, conv.ID)
		if err != nil {
			t.Fatalf("ConversationEntry: %v", err)
		}
		var fromView *storage.VisitorPage
		for _, v := range mustView(t, s, storage.InboxQuery{ViewerID: w.admin.ID}) {
			if v.ConversationID == conv.ID {
				fromView = v.Page
			}
		}
		if (e.Page == nil) != (fromView == nil) || (e.Page != nil && *e.Page != *fromView) {
			t.Fatalf("ConversationEntry's page %+v, InboxView's %+v", e.Page, fromView)
		}
		return e.Page
	}
	check := func(conv storage.Conversation, want *storage.VisitorPage) {
		t.Helper()
		got := pageOf(conv)
		if want == nil {
			if got != nil {
				t.Fatalf("page of conversation %d = %+v, want none", conv.ID, got)
			}
			return
		}
		w := *want
		w.At = w.At.Truncate(time.Microsecond)
		if got == nil || got.UserID != w.UserID || got.URL != w.URL || got.Title != w.Title ||
			got.UserAgent != w.UserAgent || !got.At.Equal(w.At) {
			t.Fatalf("page of conversation %d = %+v, want %+v", conv.ID, got, w)
		}
	}
	check(w.convs[0], nil)

	hostile := `<img src=x onerror=alert(1)> "quotes" & ünïcödé ✓`
	p1 := storage.VisitorPage{UserID: a.ID, URL: "https://shop.example.com/cart?x=1#top", Title: hostile,
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", At: t0}
	save(p1, storage.VisitorPage{UserID: b.ID + 100000, URL: "https://x.example/", At: t0}) // unknown user skipped
	check(w.convs[0], &p1)
	check(w.convs[1], nil)

	// The latest wins: within a batch, and against what is stored.
	p2 := storage.VisitorPage{UserID: a.ID, URL: "https://shop.example.com/checkout", Title: "", UserAgent: "", At: t0.Add(2 * time.Second)}
	older := storage.VisitorPage{UserID: a.ID, URL: "https://shop.example.com/old", Title: "old", At: t0.Add(time.Second)}
	save(p2, older)
	check(w.convs[0], &p2)
	save(storage.VisitorPage{UserID: a.ID, URL: "https://shop.example.com/older", At: t0})
	check(w.convs[0], &p2)
	pb := storage.VisitorPage{UserID: b.ID, URL: "http://127.0.0.1:8080/", Title: "Local", UserAgent: "curl", At: t0}
	save(pb)
	check(w.convs[1], &pb)

	// Bounds: the limits themselves pass, one byte more is refused, and a
	// refused batch stores nothing.
	big := storage.VisitorPage{UserID: a.ID, URL: "https://e.example/" + strings.Repeat("a", storage.MaxPageURLBytes-len("https://e.example/")),
		Title: strings.Repeat("é", storage.MaxPageTitleBytes/2), UserAgent: strings.Repeat("u", storage.MaxUserAgentBytes), At: t0.Add(time.Minute)}
	save(big)
	check(w.convs[0], &big)
	later := t0.Add(time.Hour)
	for _, bad := range []storage.VisitorPage{
		{URL: ""},
		{URL: big.URL + "a"},
		{URL: "https://e.example/", Title: big.Title + "t"},
		{URL: "https://e.example/", UserAgent: big.UserAgent + "u"},
		{URL: "https://e.example/\x00"},
		{URL: "https://e.example/", Title: "bad \xff"},
	} {
		bad.UserID, bad.At = b.ID, later
		good := storage.VisitorPage{UserID: a.ID, URL: "https://e.example/fine", At: later}
		wantCode(t, s.SaveVisitorPages(ctx, []storage.VisitorPage{good, bad}), storage.EINVALID)
	}
	tooMany := make([]storage.VisitorPage, storage.MaxVisitorPageBatch+1)
	for i := range tooMany {
		tooMany[i] = storage.VisitorPage{UserID: a.ID, URL: "https://e.example/many", At: later}
	}
	wantCode(t, s.SaveVisitorPages(ctx, tooMany), storage.EINVALID)
	check(w.convs[0], &big)
	check(w.convs[1], &pb)

	// Not on the message path: appends neither read nor change it.
	mustAppend(t, s, []storage.NewMessage{w.msg(w.convs[0], "again"), w.msg(w.convs[1], "again")})
	check(w.convs[0], &big)
	check(w.convs[1], &pb)
	if err := s.SaveVisitorPages(ctx, nil); err != nil {
		t.Fatalf("an empty batch: %v", err)
	}
}
