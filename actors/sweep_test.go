package actors

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	clustertest "github.com/asynkron/protoactor-go/cluster/clusterproviders/test"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/batch"
	"github.com/grainchat/grainchat/storage/memstore"
	"github.com/grainchat/grainchat/transport/wire"
)

// stalledStore is a Store whose appends wait until released (or their
// context ends).
type stalledStore struct {
	storage.Store
	release chan struct{}
}

func (s *stalledStore) AppendMessages(ctx context.Context, msgs []storage.NewMessage) ([]storage.AppendResult, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, storage.Unavailable("stalled store", ctx.Err())
	}
	return s.Store.AppendMessages(ctx, msgs)
}

// Each post that the grain does not answer times out once, at its own
// deadline, with unavailable; one timer per session serves all of them.
func TestPostsTimeOutEachOnceAtTheirDeadline(t *testing.T) {
	const postTimeout = 400 * time.Millisecond
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	store := &stalledStore{Store: memstore.New(memstore.Options{}), release: make(chan struct{})}
	app := batch.New(logger, store, batch.Options{WriteTimeout: 3 * time.Second})
	t.Cleanup(app.Close)
	n, err := New(logger, Config{PostTimeout: postTimeout, Provider: clustertest.NewTestProvider(clustertest.NewInMemAgent())}, store, app, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	t.Cleanup(func() { close(store.release) }) // runs first: lets the stalled appends finish
	e := &testEnv{node: n, store: store}
	u, conv := e.visitor(t, "dora")
	sink := e.spawn(t, SessionConfig{ConnID: "d", User: u, ConversationID: conv.ID, V1: true})
	sink.waitFrames(t, 1) // welcome

	start := time.Now()
	n.SendInbound(e.sessions[0], &Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: "one", ClientMsgID: "p1"}})
	time.Sleep(postTimeout / 2)
	n.SendInbound(e.sessions[0], &Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: "two", ClientMsgID: "p2"}})

	// Each error arrives on its own, the first at its deadline, the second
	// at its own, half a timeout later.
	var at [2]time.Duration
	for i, want := range []string{"p1", "p2"} {
		f := sink.waitFrames(t, 2+i)[1+i]
		at[i] = time.Since(start)
		if f["type"] != "error" || f["code"] != "unavailable" || f["client_msg_id"] != want {
			t.Fatalf("frame %d = %v, want unavailable for %s", 1+i, f, want)
		}
	}
	if at[0] < postTimeout || at[1] < postTimeout+postTimeout/2 {
		t.Fatalf("timed out after %v and %v; the deadlines were %v and %v", at[0], at[1], postTimeout, postTimeout+postTimeout/2)
	}
	// Nothing more: no second timeout for either post.
	time.Sleep(2 * postTimeout)
	if got := sink.waitFrames(t, 3); len(got) != 3 {
		t.Fatalf("%d frames after the timeouts, want 3: %v", len(got), got)
	}
}
