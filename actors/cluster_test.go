//go:build !race

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

// newTestCluster starts n members in this process, sharing one in-memory
// membership agent and one store. Messages between members still cross
// protoactor's remote layer (gRPC on loopback); the multi-process tests in
// cmd/chatd cover real processes.
func newTestCluster(t *testing.T, n int) []*testEnv {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store := memstore.New(memstore.Options{})
	agent := clustertest.NewInMemAgent()
	var envs []*testEnv
	for i := 0; i < n; i++ {
		app := batch.New(logger, store, batch.Options{})
		t.Cleanup(app.Close)
		m := &countingMetrics{activated: map[string]int{}, passived: map[string]int{}}
		node, err := New(logger, Config{
			ClusterName:     "unit",
			Provider:        clustertest.NewTestProvider(agent),
			LeaveGracefully: true,
			LeaveGrace:      200 * time.Millisecond,
		}, store, app, m)
		if err != nil {
			t.Fatal(err)
		}
		if err := node.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = node.Shutdown(ctx)
		})
		envs = append(envs, &testEnv{node: node, store: store, metrics: m})
	}
	for _, e := range envs {
		waitUntil(t, 10*time.Second, func() bool { return e.node.Members() == n })
	}
	return envs
}

func activations(envs []*testEnv, kind string) (total int, where []int) {
	for i, e := range envs {
		a, _ := e.metrics.get(kind)
		total += a
		if a > 0 {
			where = append(where, i)
		}
	}
	return total, where
}

// Two members: a visitor on one and an admin on the other chat through
// grains placed by the cluster; each grain is activated exactly once; when
// the member hosting the conversation leaves, the grain is activated on the
// other and the chat goes on with seqs continuing.
//
// Not under -race: protoactor's remote.Start sets grpc's global logger, which
// the first member's gRPC server reads, so two members in one process always
// race inside the libraries. The Makefile runs this file without -race; the
// multi-process tests in cmd/chatd cover the same paths under -race.
func TestTwoMembersShareGrainsAndSurviveALeave(t *testing.T) {
	envs := newTestCluster(t, 2)
	u, conv := envs[0].visitor(t, "alice")
	admin, err := envs[0].store.UpsertUser(context.Background(), storage.UserInput{ExternalID: "staff", Name: "Staff", IsAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	adminSink := envs[1].spawn(t, SessionConfig{ConnID: "a", User: admin, V1: true})
	visitorSink := envs[0].spawn(t, SessionConfig{ConnID: "v", User: u, ConversationID: conv.ID, V1: true})
	envs[0].node.SendInbound(envs[0].sessions[0], &Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: "one", ClientMsgID: "1"}})
	got := adminSink.waitFrames(t, 3) // welcome, inbox, message
	if got[2]["message"] != "one" || got[2]["seq"].(float64) != 1 {
		t.Fatalf("admin frames %v", got)
	}
	if n, _ := activations(envs, ConversationKind); n != 1 {
		t.Fatalf("conversation activated %d times, want 1", n)
	}
	if n, _ := activations(envs, InboxKind); n != 1 {
		t.Fatalf("inbox activated %d times, want 1", n)
	}
	visitorSink.waitFrames(t, 3) // welcome, ack, message

	// The member hosting the conversation leaves; the other takes over,
	// with the conversation's state from the store.
	_, where := activations(envs, ConversationKind)
	host, other := where[0], 1-where[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := envs[host].node.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, func() bool { return envs[other].node.Members() == 1 })
	sink := envs[other].spawn(t, SessionConfig{ConnID: "v2", User: u, ConversationID: conv.ID, V1: true})
	if w := sink.waitFrames(t, 1)[0]; w["last_seq"].(float64) != 1 {
		t.Fatalf("welcome on the surviving member = %v, want last_seq 1", w)
	}
	envs[other].node.SendInbound(envs[other].sessions[len(envs[other].sessions)-1],
		&Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: "two", ClientMsgID: "2"}})
	frames := sink.waitFrames(t, 3) // welcome, ack, message
	if frames[1]["type"] != "ack" || frames[1]["seq"].(float64) != 2 || frames[2]["message"] != "two" {
		t.Fatalf("after the leave the visitor got %v", frames)
	}
	if a, _ := envs[other].metrics.get(ConversationKind); a != 1 {
		t.Fatalf("the surviving member activated the conversation %d times, want 1", a)
	}
}
