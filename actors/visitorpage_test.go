package actors

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/memstore"
	"github.com/grainchat/grainchat/transport/wire"
)

// pageCountingStore records every SaveVisitorPages call.
type pageCountingStore struct {
	storage.Store
	mu    sync.Mutex
	calls []time.Time
	pages []storage.VisitorPage
}

func (s *pageCountingStore) SaveVisitorPages(ctx context.Context, pages []storage.VisitorPage) error {
	s.mu.Lock()
	s.calls = append(s.calls, time.Now())
	s.pages = append(s.pages, pages...)
	s.mu.Unlock()
	return s.Store.SaveVisitorPages(ctx, pages)
}

func (s *pageCountingStore) written() ([]time.Time, []storage.VisitorPage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.calls...), append([]storage.VisitorPage(nil), s.pages...)
}

// A visitor flooding page frames cannot flood the store: its pages are
// written at most once per pageSaveEvery, the latest one last, and a staff
// session that opened the conversation sees every change; one that did not,
// and the visitor, see none.
func TestVisitorPagesCoalesced(t *testing.T) {
	store := &pageCountingStore{Store: memstore.New(memstore.Options{})}
	e := newTestEnvOn(t, Config{}, store)
	n := e.node
	u, conv := e.visitor(t, "vera")
	e.appendDirect(t, u, conv.ID, "hi")
	ann, err := store.UpsertUser(context.Background(), storage.UserInput{ExternalID: "ann", Name: "Ann", IsAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	annSink := e.spawn(t, SessionConfig{ConnID: "ann", User: ann, V1: true})
	bobSink := e.spawn(t, SessionConfig{ConnID: "bob", User: ann, V1: true}) // never opens it
	n.SendInbound(e.sessions[0], &Inbound{Req: wire.Request{Type: wire.TypeOpen, ConversationID: conv.ID}})
	veraSink := e.spawn(t, SessionConfig{ConnID: "vera", User: u, ConversationID: conv.ID, V1: true, UserAgent: "TestAgent/1"})
	vera := e.sessions[2]

	const reports = 60
	start := time.Now()
	for i := range reports {
		n.SendInbound(vera, &Inbound{Req: wire.Request{Type: wire.TypePage, URL: fmt.Sprintf("https://e.example/%d", i), Title: "T"}})
		if i%10 == 9 {
			time.Sleep(100 * time.Millisecond) // a flood that lasts over half a second
		}
	}
	last := fmt.Sprintf("https://e.example/%d", reports-1)
	waitUntil(t, 10*time.Second, func() bool {
		e, err := store.ConversationEntry(context.Background(), ann.ID, conv.ID)
		return err == nil && e.Page != nil && e.Page.URL == last && e.Page.UserAgent == "TestAgent/1"
	})
	took := time.Since(start)
	calls, pages := store.written()
	if most := int(took/pageSaveEvery) + 1; len(calls) > most || len(pages) > most {
		t.Errorf("%d reports over %v: %d writes of %d pages, want at most %d", reports, took, len(calls), len(pages), most)
	}
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Sub(calls[i-1]); gap < pageSaveEvery-50*time.Millisecond {
			t.Errorf("writes %v apart, want at least %v", gap, pageSaveEvery)
		}
	}

	// Ann, who opened the conversation, saw every report in order.
	var urls []string
	waitUntil(t, 5*time.Second, func() bool {
		urls = urls[:0]
		for _, f := range annSink.waitFrames(t, 1) {
			if f["type"] == "visitor" {
				if p, ok := f["user"].(map[string]any)["page"].(map[string]any); ok {
					urls = append(urls, p["url"].(string))
				}
			}
		}
		return len(urls) == reports
	})
	if urls[reports-1] != last {
		t.Errorf("Ann's last visitor frame is of %s", urls[reports-1])
	}
	for name, sink := range map[string]*fakeSink{"Bob": bobSink, "Vera": veraSink} {
		for _, f := range sink.waitFrames(t, 1) {
			if f["type"] == "visitor" {
				t.Errorf("%s got %v", name, f)
			}
		}
	}
}
