package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
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

// fakeSink records what a session writes. It stands in for a socket, which
// the transport's end-to-end tests cover for real.
type fakeSink struct {
	mu     sync.Mutex
	frames []map[string]any
	closed []uint16
	// settled counts PostSettled calls.
	settled int
	notify  chan struct{}
}

// liveFrames are the presence frames a session writes unasked; the fake sink
// leaves them out, so that these tests see the chat alone (cmd/chatd's
// tests cover presence).
var liveFrames = map[any]bool{"availability": true, "presence": true}

func newFakeSink() *fakeSink { return &fakeSink{notify: make(chan struct{}, 1)} }

func (f *fakeSink) Write(frame []byte) {
	var m map[string]any
	if err := json.Unmarshal(frame, &m); err != nil {
		panic(fmt.Sprintf("session wrote invalid JSON %q", frame))
	}
	if liveFrames[m["type"]] {
		return
	}
	f.mu.Lock()
	f.frames = append(f.frames, m)
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

func (f *fakeSink) Close(d wire.Disconnect) {
	f.mu.Lock()
	f.closed = append(f.closed, d.Code)
	f.mu.Unlock()
}

func (f *fakeSink) PostSettled() {
	f.mu.Lock()
	f.settled++
	f.mu.Unlock()
}

// waitFrames waits until at least n frames were written and returns them all.
func (f *fakeSink) waitFrames(t *testing.T, n int) []map[string]any {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		f.mu.Lock()
		got := append([]map[string]any(nil), f.frames...)
		f.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-f.notify:
		case <-deadline:
			t.Fatalf("waited for %d frames, have %d: %v", n, len(got), got)
		}
	}
}

type countingMetrics struct {
	mu        sync.Mutex
	activated map[string]int
	passived  map[string]int
	gapFilled int
}

func (m *countingMetrics) GrainActivated(kind string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.activated[kind]++
}

func (m *countingMetrics) GrainPassivated(kind string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.passived[kind]++
}
func (m *countingMetrics) MessageStored() {}
func (m *countingMetrics) GrainMoved()    {}
func (m *countingMetrics) GapFilled(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gapFilled += n
}

func (m *countingMetrics) get(kind string) (activated, passivated int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.activated[kind], m.passived[kind]
}

type testEnv struct {
	node     *Node
	store    storage.Store
	metrics  *countingMetrics
	sessions []*actor.PID
}

func newTestEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	return newTestEnvOn(t, cfg, memstore.New(memstore.Options{}))
}

// newTestEnvOn is newTestEnv on a store of the test's.
func newTestEnvOn(t *testing.T, cfg Config, store storage.Store) *testEnv {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	app := batch.New(logger, store, batch.Options{})
	t.Cleanup(app.Close)
	cfg.Provider = clustertest.NewTestProvider(clustertest.NewInMemAgent())
	m := &countingMetrics{activated: map[string]int{}, passived: map[string]int{}}
	n, err := New(logger, cfg, store, app, m)
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
	return &testEnv{node: n, store: store, metrics: m}
}

func (e *testEnv) visitor(t *testing.T, sub string) (storage.User, storage.Conversation) {
	t.Helper()
	ctx := context.Background()
	u, err := e.store.UpsertUser(ctx, storage.UserInput{ExternalID: sub, Name: sub})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.store.EnsureConversation(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u, c
}

func (e *testEnv) appendDirect(t *testing.T, u storage.User, conv int64, bodies ...string) []storage.Message {
	t.Helper()
	var msgs []storage.NewMessage
	for _, b := range bodies {
		msgs = append(msgs, storage.NewMessage{ConversationID: conv, SenderID: u.ID, SenderName: u.Name, Body: b})
	}
	res, err := e.store.AppendMessages(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]storage.Message, len(res))
	for i, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		out[i] = r.Message
	}
	return out
}

func (e *testEnv) spawn(t *testing.T, cfg SessionConfig) *fakeSink {
	t.Helper()
	sink := newFakeSink()
	cfg.Sink = sink
	cfg.Ready = make(chan struct{})
	if cfg.ConversationID != 0 {
		// As the transport does: the visitor's starting point is read
		// with the user, before the session starts.
		c, err := e.store.Conversation(context.Background(), cfg.ConversationID)
		if err != nil {
			t.Fatal(err)
		}
		cfg.LastSeq = c.LastSeq
	}
	pid := e.node.SpawnSession(cfg)
	t.Cleanup(func() { e.node.StopSession(pid) })
	select {
	case <-cfg.Ready:
	case <-time.After(5 * time.Second):
		t.Fatal("session did not become ready")
	}
	e.sessions = append(e.sessions, pid)
	return sink
}

func seqs(frames []map[string]any) []int64 {
	var out []int64
	for _, f := range frames {
		if f["type"] == "message" {
			out = append(out, int64(f["seq"].(float64)))
		}
	}
	return out
}

// A session delivers each conversation's messages in seq order, never twice:
// a delivery with a gap is preceded by the missing messages read from the
// store, and a delivery it has already made is dropped.
func TestSessionDropsDuplicatesAndFillsGaps(t *testing.T) {
	e := newTestEnv(t, Config{})
	u, conv := e.visitor(t, "alice")
	e.appendDirect(t, u, conv.ID, "one", "two", "three")
	sink := e.spawn(t, SessionConfig{ConnID: "c1", User: u, ConversationID: conv.ID, V1: true})
	welcome := sink.waitFrames(t, 1)[0]
	if welcome["type"] != "welcome" || welcome["last_seq"].(float64) != 3 {
		t.Fatalf("welcome = %v, want last_seq 3", welcome)
	}

	// Messages 4..6 were stored by someone else (another activation);
	// this session only hears about 6.
	stored := e.appendDirect(t, u, conv.ID, "four", "five", "six", "seven")
	pid := e.sessions[0]
	send := func(m storage.Message) { e.node.system.Root.Send(pid, newDelivery(toProto(m))) }
	send(stored[2]) // seq 6: fill 4, 5 first
	send(stored[1]) // seq 5 again: duplicate
	send(stored[2]) // seq 6 again: duplicate
	send(stored[3]) // seq 7
	frames := sink.waitFrames(t, 5)
	got := seqs(frames)
	want := []int64{4, 5, 6, 7}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered seqs %v, want %v (frames %v)", got, want, frames)
	}
	for i, body := range []string{"four", "five", "six", "seven"} {
		if frames[i+1]["message"] != body {
			t.Errorf("frame %d message = %v, want %q", i+1, frames[i+1]["message"], body)
		}
	}
	if e.metrics.gapFilled != 2 {
		t.Errorf("gap filled %d messages, want 2", e.metrics.gapFilled)
	}
}

// A post is stored, acknowledged to its sender, and delivered to the
// sender's other tabs and to admins through the inbox grain.
func TestPostIsStoredAckedAndFannedOut(t *testing.T) {
	e := newTestEnv(t, Config{})
	u, conv := e.visitor(t, "bob")
	admin, err := e.store.UpsertUser(context.Background(), storage.UserInput{ExternalID: "staff", Name: "Staff", IsAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	adminSink := e.spawn(t, SessionConfig{ConnID: "a", User: admin, V1: true})
	tab1 := e.spawn(t, SessionConfig{ConnID: "t1", User: u, ConversationID: conv.ID, V1: true})
	tab2 := e.spawn(t, SessionConfig{ConnID: "t2", User: u, ConversationID: conv.ID})
	e.node.SendInbound(e.sessions[1], &Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: "hello", ClientMsgID: "m1"}})

	f1 := tab1.waitFrames(t, 3) // welcome, ack, message (ack before the message)
	if f1[1]["type"] != "ack" || f1[1]["seq"].(float64) != 1 || f1[1]["client_msg_id"] != "m1" {
		t.Fatalf("tab1 frame 1 = %v, want the ack of seq 1", f1[1])
	}
	if f1[2]["type"] != "message" || f1[2]["message"] != "hello" {
		t.Fatalf("tab1 frame 2 = %v, want the message", f1[2])
	}
	f2 := tab2.waitFrames(t, 1) // seed dialect: the message only
	// JSON numbers decode as float64 (ids stay below 2^53, so exactly).
	want := fmt.Sprintf(`map[conversation_id:%v message:hello sender_id:%v sender_is_admin:false sender_name:bob]`, float64(conv.ID), float64(u.ID))
	if fmt.Sprint(f2[0]) != want {
		t.Fatalf("tab2 got %v, want %s", f2[0], want)
	}
	fa := adminSink.waitFrames(t, 4) // welcome, inbox, message, inbox_update
	if fa[2]["type"] != "message" || fa[2]["message"] != "hello" || fa[3]["type"] != "inbox_update" {
		t.Fatalf("admin frames = %v", fa)
	}
	msgs, err := e.store.Messages(context.Background(), conv.ID, storage.Page{})
	if err != nil || len(msgs) != 1 || msgs[0].Body != "hello" || msgs[0].Seq != 1 {
		t.Fatalf("stored = %v, %v", msgs, err)
	}
}

// A connected visitor costs no grain: its session follows the conversation
// through the node's hub. The grain activates when a message is posted,
// passivates when the conversation is quiet for the idle timeout although the
// visitor stays connected, and activates again for the next message, which
// still reaches the visitor.
func TestGrainPassivatesWhileVisitorConnected(t *testing.T) {
	// The idle timeout is several owner-check periods: the periodic check
	// must not count as activity (it did, and grains never passivated).
	e := newTestEnv(t, Config{GrainIdleTimeout: 800 * time.Millisecond, OwnerCheckInterval: 100 * time.Millisecond})
	u, conv := e.visitor(t, "carol")
	staff, err := e.store.UpsertUser(context.Background(), storage.UserInput{ExternalID: "staff", Name: "Staff", IsAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	sink := e.spawn(t, SessionConfig{ConnID: "c", User: u, ConversationID: conv.ID, V1: true})
	if w := sink.waitFrames(t, 1)[0]; w["type"] != "welcome" || w["last_seq"].(float64) != 0 {
		t.Fatalf("welcome = %v, want last_seq 0", w)
	}
	if a, _ := e.metrics.get(ConversationKind); a != 0 {
		t.Fatalf("activations after the visitor connected = %d, want 0", a)
	}

	// An admin (its own session, not subscribed to the conversation)
	// answers; the visitor gets it live, twice over two activations.
	e.spawn(t, SessionConfig{ConnID: "a", User: staff, V1: true})
	adminPID := e.sessions[1]
	for round, body := range []string{"first", "second"} {
		e.node.SendInbound(adminPID, &Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: body, ConversationID: conv.ID}})
		frames := sink.waitFrames(t, 2+round)
		if f := frames[1+round]; f["type"] != "message" || f["message"] != body || f["seq"].(float64) != float64(round+1) {
			t.Fatalf("visitor frame %d = %v, want %q with seq %d", 1+round, f, body, round+1)
		}
		if a, _ := e.metrics.get(ConversationKind); a != round+1 {
			t.Fatalf("activations = %d, want %d", a, round+1)
		}
		// Quiet for the idle timeout: the grain passivates with the
		// visitor still connected.
		waitUntil(t, 5*time.Second, func() bool { _, p := e.metrics.get(ConversationKind); return p == round+1 })
		waitUntil(t, 5*time.Second, func() bool { return e.localGrains() == 0 })
	}
	if got := seqs(sink.waitFrames(t, 3)); fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("visitor seqs = %v, want [1 2]", got)
	}
}

// A message stored while no grain delivers it (stored by an activation that
// died before delivering, here written straight to the store) reaches the
// connected visitor when the hub learns the grain terminated, from the store.
func TestHubCatchesUpAfterGrainTerminated(t *testing.T) {
	e := newTestEnv(t, Config{GrainIdleTimeout: 300 * time.Millisecond, OwnerCheckInterval: 100 * time.Millisecond})
	u, conv := e.visitor(t, "dave")
	sink := e.spawn(t, SessionConfig{ConnID: "d", User: u, ConversationID: conv.ID, V1: true})
	pid := e.sessions[0]
	e.node.SendInbound(pid, &Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: "hi", ClientMsgID: "m1"}})
	sink.waitFrames(t, 3) // welcome, ack, message
	// The grain is active and announced; "lost" is stored behind its back.
	e.appendDirect(t, u, conv.ID, "lost")
	// When the idle grain passivates, the hub reads the store.
	frames := sink.waitFrames(t, 4)
	if f := frames[3]; f["type"] != "message" || f["message"] != "lost" || f["seq"].(float64) != 2 {
		t.Fatalf("frame 3 = %v, want the message stored behind the grain's back", f)
	}
}

// localGrains is how many conversation activations the node's registry
// holds (see Node.checkGrainOwners).
func (e *testEnv) localGrains() int {
	e.node.grainsMu.Lock()
	defer e.node.grainsMu.Unlock()
	return len(e.node.grains)
}

func waitUntil(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A post committed by an activation that stopped before delivering it (here:
// stored behind the grain's back), then resent to the current activation with
// the same key, is answered as a duplicate and delivered: before, a duplicate
// was never delivered, and such a message reached no one until the next one.
func TestResentDuplicateIsDeliveredIfNew(t *testing.T) {
	e := newTestEnv(t, Config{})
	u, conv := e.visitor(t, "gus")
	sink := e.spawn(t, SessionConfig{ConnID: "g", User: u, ConversationID: conv.ID, V1: true})
	pid := e.sessions[0]
	e.node.SendInbound(pid, &Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: "one", ClientMsgID: "k1"}})
	sink.waitFrame(t, 1, "message one", func(f map[string]any) bool { return f["type"] == "message" && f["message"] == "one" })

	res, err := e.store.AppendMessages(context.Background(), []storage.NewMessage{{
		ConversationID: conv.ID, SenderID: u.ID, SenderName: u.Name, Body: "two", ClientMsgID: "k2"}})
	if err != nil || res[0].Err != nil || res[0].Message.Seq != 2 {
		t.Fatalf("stored %+v, %v; want seq 2", res, err)
	}
	e.node.SendInbound(pid, &Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: "two", ClientMsgID: "k2"}})
	ack, _ := sink.waitFrame(t, 1, "ack of k2", answerTo("k2"))
	if ack["type"] != "ack" || ack["seq"] != float64(2) || ack["duplicate"] != true {
		t.Fatalf("answer %v, want a duplicate ack of seq 2", ack)
	}
	f, _ := sink.waitFrame(t, 0, "message two", func(f map[string]any) bool { return f["type"] == "message" && f["message"] == "two" })
	if f["seq"] != float64(2) {
		t.Fatalf("delivered %v, want seq 2", f)
	}
}
