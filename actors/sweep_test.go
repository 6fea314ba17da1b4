package actors

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	clustertest "github.com/asynkron/protoactor-go/cluster/clusterproviders/test"

	"github.com/grainchat/grainchat/actors/chatpb"
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

// A post sent to an activation that ends without answering it — stopped as
// "owned by another node" before the post reached it — is resent to the
// activation the session moves to, at once, not at --post-timeout. (chatchaos
// saw the post wait 10 s: the session had already moved on when the old
// activation's Terminated came, and ignored it.)
func TestPostsMoveWithTheirConversationsLink(t *testing.T) {
	e := newTestEnv(t, Config{PostTimeout: time.Minute, SubscribeTimeout: time.Minute})
	u, conv := e.visitor(t, "erin")
	sink := e.spawn(t, SessionConfig{ConnID: "e", User: u, ConversationID: conv.ID, V1: true})
	sink.waitFrames(t, 1) // welcome
	session := e.sessions[0]

	// An "activation" that swallows posts, as one that stopped would.
	swallowed := make(chan any, 4)
	silent := e.node.system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if p, ok := ctx.Message().(*chatpb.Post); ok {
			swallowed <- p
		}
	}))
	t.Cleanup(func() { e.node.system.Root.Stop(silent) })
	e.node.system.Root.Send(session, &refResolved{key: conv.ID, pid: silent})
	e.node.SendInbound(session, &Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: "hello", ClientMsgID: "m1"}})
	select {
	case <-swallowed:
	case <-time.After(5 * time.Second):
		t.Fatal("the post never reached the activation the link named")
	}

	// The link moves to the real grain: the unanswered post follows.
	real := e.node.lookup(conversationIdentity(conv.ID), ConversationKind)
	if real == nil {
		t.Fatal("no grain")
	}
	e.node.system.Root.Send(session, &refResolved{key: conv.ID, pid: real})
	frames := sink.waitFrames(t, 3) // welcome, ack, message
	if frames[1]["type"] != "ack" || frames[1]["client_msg_id"] != "m1" || frames[1]["seq"].(float64) != 1 || frames[1]["duplicate"] == true {
		t.Fatalf("frames %v, want the post acknowledged with seq 1 after the move", frames)
	}
	msgs, err := e.store.Messages(context.Background(), conv.ID, storage.Page{Limit: 10})
	if err != nil || len(msgs) != 1 || msgs[0].Body != "hello" {
		t.Fatalf("stored %v (%v), want the one post", msgs, err)
	}
}
