package actors

// A grain or session that panics must not take its node down nor leave a
// client waiting: the panic is injected through the store (a test-only
// wrapper whose methods panic when armed), so that it happens inside the
// actor's Receive exactly where a bug in the actor's own code would.

import (
	"context"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	clustertest "github.com/asynkron/protoactor-go/cluster/clusterproviders/test"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/batch"
	"github.com/grainchat/grainchat/storage/memstore"
	"github.com/grainchat/grainchat/transport/wire"
)

// panicStore is a Store whose read methods panic while armed.
type panicStore struct {
	storage.Store
	mu    sync.Mutex
	armed map[string]int // method → panics left
	fired map[string]int // method → panics raised
}

func newPanicStore(s storage.Store) *panicStore {
	return &panicStore{Store: s, armed: map[string]int{}, fired: map[string]int{}}
}

// arm makes the next n calls of method panic.
func (p *panicStore) arm(method string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed[method] += n
}

func (p *panicStore) firedCount(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fired[method]
}

func (p *panicStore) maybePanic(method string) {
	p.mu.Lock()
	fire := p.armed[method] > 0
	if fire {
		p.armed[method]--
		p.fired[method]++
	}
	p.mu.Unlock()
	if fire {
		panic("injected panic in Store." + method)
	}
}

func (p *panicStore) Conversation(ctx context.Context, id int64) (storage.Conversation, error) {
	p.maybePanic("Conversation")
	return p.Store.Conversation(ctx, id)
}

// ConversationStates is a grain's load on activation (batch.Loader): its
// panic fails the load with internal.
func (p *panicStore) ConversationStates(ctx context.Context, ids []int64) ([]storage.ConversationState, error) {
	p.maybePanic("ConversationState")
	return p.Store.ConversationStates(ctx, ids)
}

func (p *panicStore) User(ctx context.Context, id int64) (storage.User, error) {
	p.maybePanic("User")
	return p.Store.User(ctx, id)
}

func (p *panicStore) Messages(ctx context.Context, conv int64, page storage.Page) ([]storage.Message, error) {
	p.maybePanic("Messages")
	return p.Store.Messages(ctx, conv, page)
}

func (p *panicStore) Inbox(ctx context.Context, limit int) ([]storage.InboxEntry, error) {
	p.maybePanic("Inbox")
	return p.Store.Inbox(ctx, limit)
}

// newPanicEnv is newTestEnv over a panicStore. The panic records go to the
// test log only when the test fails.
func newPanicEnv(t *testing.T) (*testEnv, *panicStore) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 1}))
	store := newPanicStore(memstore.New(memstore.Options{}))
	app := batch.New(logger, store, batch.Options{})
	t.Cleanup(app.Close)
	m := &countingMetrics{activated: map[string]int{}, passived: map[string]int{}}
	n, err := New(logger, Config{Provider: clustertest.NewTestProvider(clustertest.NewInMemAgent())}, store, app, m)
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
	return &testEnv{node: n, store: store, metrics: m}, store
}

func (e *testEnv) admin(t *testing.T, sub string) storage.User {
	t.Helper()
	u, err := e.store.UpsertUser(context.Background(), storage.UserInput{ExternalID: sub, Name: sub, IsAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// waitFrame waits until the sink has a frame matching match, from index from
// on, and returns it with its index.
func (f *fakeSink) waitFrame(t *testing.T, from int, what string, match func(map[string]any) bool) (map[string]any, int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		frames := append([]map[string]any(nil), f.frames...)
		f.mu.Unlock()
		for i := from; i < len(frames); i++ {
			if match(frames[i]) {
				return frames[i], i
			}
		}
		select {
		case <-f.notify:
		case <-deadline:
			t.Fatalf("no %s within 10s; frames: %v", what, frames)
		}
	}
}

func (f *fakeSink) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.frames)
}

func (f *fakeSink) closeCodes() []uint16 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint16(nil), f.closed...)
}

// answerTo matches the ack or error frame of a client_msg_id.
func answerTo(id string) func(map[string]any) bool {
	return func(f map[string]any) bool {
		return (f["type"] == "ack" || f["type"] == "error") && f["client_msg_id"] == id
	}
}

// postAs delivers a message frame to session pid.
func (e *testEnv) postAs(pid *actor.PID, conv int64, text, id string) {
	e.node.SendInbound(pid, &Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: text, ConversationID: conv, ClientMsgID: id}})
}

func storedTexts(t *testing.T, s storage.Store, conv int64) []string {
	t.Helper()
	msgs, err := s.Messages(context.Background(), conv, storage.Page{Limit: storage.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.Body)
	}
	return out
}

// A conversation grain that panics while handling a post answers that post
// with internal (no hang, nothing stored) and stops; the next post activates
// a fresh grain and is stored; every other session is served throughout.
func TestConversationGrainPanicAnswersInternal(t *testing.T) {
	for _, method := range []string{"ConversationState"} { // the grain's load on activation
		t.Run(method, func(t *testing.T) {
			e, store := newPanicEnv(t)
			alice, aliceConv := e.visitor(t, "alice")
			bob, bobConv := e.visitor(t, "bob")
			adminSink := e.spawn(t, SessionConfig{ConnID: "a", User: e.admin(t, "staff"), V1: true})
			bobSink := e.spawn(t, SessionConfig{ConnID: "b", User: bob, ConversationID: bobConv.ID, V1: true})
			adminPID, bobPID := e.sessions[0], e.sessions[1]
			bobSink.waitFrames(t, 1) // welcome
			before, _ := e.metrics.get(ConversationKind)

			// Alice's grain is not active: the admin's post activates it,
			// and its load panics.
			store.arm(method, 1)
			e.postAs(adminPID, aliceConv.ID, "boom", "p1")
			f, _ := adminSink.waitFrame(t, 0, "answer to p1", answerTo("p1"))
			if f["type"] != "error" || f["code"] != wire.CodeInternal || f["conversation_id"] != float64(aliceConv.ID) {
				t.Fatalf("answer to the post that panicked: %v, want error internal for conversation %d", f, aliceConv.ID)
			}
			if n := store.firedCount(method); n != 1 {
				t.Fatalf("Store.%s panicked %d times, want 1", method, n)
			}
			waitUntil(t, 10*time.Second, func() bool { _, p := e.metrics.get(ConversationKind); return p >= 1 })

			// The node serves another conversation meanwhile.
			e.postAs(bobPID, 0, "still here", "b1")
			if f, _ := bobSink.waitFrame(t, 0, "answer to b1", answerTo("b1")); f["type"] != "ack" || f["seq"] != float64(1) {
				t.Fatalf("bystander's post: %v, want ack seq 1", f)
			}

			// The retry reaches a fresh activation and is stored as seq 1:
			// nothing of the panicked post was stored.
			e.postAs(adminPID, aliceConv.ID, "after", "p2")
			if f, _ := adminSink.waitFrame(t, 0, "answer to p2", answerTo("p2")); f["type"] != "ack" || f["seq"] != float64(1) {
				t.Fatalf("post after the panic: %v, want ack seq 1", f)
			}
			if got := storedTexts(t, store, aliceConv.ID); !reflect.DeepEqual(got, []string{"after"}) {
				t.Errorf("alice's conversation holds %q, want only %q", got, "after")
			}
			// Bob's post activated his conversation's grain too (a
			// connected visitor costs none until then).
			if a, _ := e.metrics.get(ConversationKind); a != before+3 {
				t.Errorf("conversation activations %d, want %d (the panicked one and a fresh one for alice, one for bob)", a, before+3)
			}
			// Alice can connect and sees the stored message's seq.
			aliceSink := e.spawn(t, SessionConfig{ConnID: "al", User: alice, ConversationID: aliceConv.ID, V1: true})
			if w := aliceSink.waitFrames(t, 1)[0]; w["type"] != "welcome" || w["last_seq"] != float64(1) {
				t.Errorf("alice's welcome %v, want last_seq 1", w)
			}
			if codes := append(adminSink.closeCodes(), bobSink.closeCodes()...); len(codes) != 0 {
				t.Errorf("sessions were closed: %v", codes)
			}
		})
	}
}

// A conversation grain that panics while the visitor's hub subscribes (the
// first load of its activation) stops; the visitor's post, sent to it
// meanwhile, is resent to a fresh activation, which announces itself to the
// hub: the post is acknowledged once and delivered, nothing hangs.
func TestConversationGrainPanicOnHubSubscribe(t *testing.T) {
	e, store := newPanicEnv(t)
	alice, conv := e.visitor(t, "alice")
	e.appendDirect(t, alice, conv.ID, "one", "two")
	sink := e.spawn(t, SessionConfig{ConnID: "a", User: alice, ConversationID: conv.ID, V1: true})
	if w := sink.waitFrames(t, 1)[0]; w["type"] != "welcome" || w["last_seq"] != float64(2) {
		t.Fatalf("welcome %v, want last_seq 2", w)
	}
	if a, _ := e.metrics.get(ConversationKind); a != 0 {
		t.Fatalf("activations before the post: %d, want 0 (a connected visitor costs none)", a)
	}
	store.arm("ConversationState", 1)
	e.postAs(e.sessions[0], 0, "three", "c3")
	// The activation's first load panics: the hub's subscription's (the post
	// is resent to a fresh activation and acknowledged) or, when the post
	// reached the grain first, the post's (answered internal; the client
	// retries with the same client_msg_id).
	f, at := sink.waitFrame(t, 0, "answer to c3", answerTo("c3"))
	if f["type"] == "error" && f["code"] == wire.CodeInternal {
		e.postAs(e.sessions[0], 0, "three", "c3")
		f, _ = sink.waitFrame(t, at+1, "answer to the retry of c3", answerTo("c3"))
	}
	if f["type"] != "ack" || f["seq"] != float64(3) {
		t.Fatalf("post: %v, want ack seq 3", f)
	}
	if n := store.firedCount("ConversationState"); n != 1 {
		t.Fatalf("Store.ConversationState panicked %d times, want 1", n)
	}
	// The message is delivered to the session through the new activation.
	f, _ = sink.waitFrame(t, 0, "message three", func(f map[string]any) bool { return f["type"] == "message" && f["message"] == "three" })
	if f["seq"] != float64(3) {
		t.Errorf("delivered %v, want seq 3", f)
	}
	if a, _ := e.metrics.get(ConversationKind); a != 2 {
		t.Errorf("conversation activations %d, want 2 (the one that panicked, a fresh one)", a)
	}
	if got := storedTexts(t, store, conv.ID); !reflect.DeepEqual(got, []string{"one", "two", "three"}) {
		t.Errorf("stored %q, want one, two, three", got)
	}
}

// A session that panics closes its socket with 1011 and stops; the grain
// forgets it, and the user's other tabs, other users and new sessions are
// served as before.
func TestSessionPanicClosesWith1011(t *testing.T) {
	for _, tc := range []struct {
		name, method string
		admin        bool
	}{
		{"visitor history", "Messages", false},
		{"admin history", "Conversation", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, store := newPanicEnv(t)
			alice, conv := e.visitor(t, "alice")
			victimCfg := SessionConfig{ConnID: "victim", User: alice, ConversationID: conv.ID, V1: true}
			if tc.admin {
				victimCfg = SessionConfig{ConnID: "victim", User: e.admin(t, "staff"), V1: true}
			}
			victim := e.spawn(t, victimCfg)
			tab := e.spawn(t, SessionConfig{ConnID: "tab", User: alice, ConversationID: conv.ID, V1: true})
			victimPID, tabPID := e.sessions[0], e.sessions[1]
			gone := watch(t, e, victimPID)
			tab.waitFrames(t, 1)

			store.arm(tc.method, 1)
			e.node.SendInbound(victimPID, &Inbound{Req: wire.Request{Type: wire.TypeHistory, ConversationID: conv.ID}})
			select {
			case <-gone:
			case <-time.After(10 * time.Second):
				t.Fatal("the session that panicked did not stop within 10s")
			}
			if got := victim.closeCodes(); !reflect.DeepEqual(got, []uint16{wire.DisconnectInternal.Code}) {
				t.Fatalf("the session's socket was closed with %v, want [1011]", got)
			}
			if n := store.firedCount(tc.method); n != 1 {
				t.Fatalf("Store.%s panicked %d times, want 1", tc.method, n)
			}
			written := victim.count()

			// The other tab posts: acknowledged and delivered to it, and
			// nothing more is written to the stopped session.
			e.postAs(tabPID, 0, "after", "t1")
			if f, _ := tab.waitFrame(t, 0, "answer to t1", answerTo("t1")); f["type"] != "ack" {
				t.Fatalf("the other tab's post: %v, want an ack", f)
			}
			tab.waitFrame(t, 0, "message after", func(f map[string]any) bool { return f["type"] == "message" && f["message"] == "after" })
			// A new session of the same user starts and reads history.
			fresh := e.spawn(t, victimCfg)
			e.node.SendInbound(e.sessions[len(e.sessions)-1], &Inbound{Req: wire.Request{Type: wire.TypeHistory, ConversationID: conv.ID}})
			h, _ := fresh.waitFrame(t, 0, "history", func(f map[string]any) bool { return f["type"] == "history" })
			if msgs, _ := h["messages"].([]any); len(msgs) != 1 {
				t.Errorf("history after the panic %v, want the one message", h)
			}
			if n := victim.count(); n != written {
				t.Errorf("%d frames were written to the stopped session", n-written)
			}
		})
	}
}

// The inbox grain that panics while an admin subscribes stops; the admin's
// session subscribes to a fresh activation and gets its inbox; messages
// reach it through the new inbox.
func TestInboxGrainPanicOnSubscribe(t *testing.T) {
	e, store := newPanicEnv(t)
	alice, conv := e.visitor(t, "alice")
	e.appendDirect(t, alice, conv.ID, "one")
	store.arm("Inbox", 1)
	admin := e.spawn(t, SessionConfig{ConnID: "a", User: e.admin(t, "staff"), V1: true})
	inbox, _ := admin.waitFrame(t, 0, "inbox", func(f map[string]any) bool { return f["type"] == "inbox" })
	if convs, _ := inbox["conversations"].([]any); len(convs) != 1 {
		t.Fatalf("inbox %v, want alice's conversation", inbox)
	}
	if n := store.firedCount("Inbox"); n != 1 {
		t.Fatalf("Store.Inbox panicked %d times, want 1", n)
	}
	if a, _ := e.metrics.get(InboxKind); a != 2 {
		t.Errorf("inbox activations %d, want 2", a)
	}
	aliceSink := e.spawn(t, SessionConfig{ConnID: "al", User: alice, ConversationID: conv.ID, V1: true})
	aliceSink.waitFrames(t, 1)
	e.postAs(e.sessions[1], 0, "two", "a2")
	admin.waitFrame(t, 0, "message two", func(f map[string]any) bool { return f["type"] == "message" && f["message"] == "two" })
	admin.waitFrame(t, 0, "inbox_update of seq 2", func(f map[string]any) bool {
		c, _ := f["conversation"].(map[string]any)
		return f["type"] == "inbox_update" && c["last_seq"] == float64(2)
	})
	if codes := admin.closeCodes(); len(codes) != 0 {
		t.Errorf("the admin's session was closed: %v", codes)
	}
}

// watch returns a channel closed when pid stops.
func watch(t *testing.T, e *testEnv, pid *actor.PID) <-chan struct{} {
	t.Helper()
	gone := make(chan struct{})
	watching := make(chan struct{})
	var once sync.Once
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		switch msg := ctx.Message().(type) {
		case *actor.Started:
			ctx.Watch(pid)
			close(watching)
		case *actor.Terminated:
			if msg.Who.Equal(pid) {
				once.Do(func() { close(gone) })
			}
		}
	})
	w := e.node.system.Root.Spawn(props)
	t.Cleanup(func() { e.node.system.Root.Stop(w) })
	select {
	case <-watching:
	case <-time.After(5 * time.Second):
		t.Fatalf("watcher of %s did not start", pid)
	}
	return gone
}
