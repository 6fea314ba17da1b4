//go:build !race

package actors

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	clustertest "github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/grainchat/grainchat/actors/chatpb"

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
	tc := newClusterLab(t)
	var envs []*testEnv
	for i := 0; i < n; i++ {
		envs = append(envs, tc.member(t))
	}
	for _, e := range envs {
		waitUntil(t, 10*time.Second, func() bool { return e.node.Members() == n })
	}
	return envs
}

// clusterLab is what members started in this process share: one in-memory
// membership agent and one store.
type clusterLab struct {
	logger *slog.Logger
	store  storage.Store
	agent  *clustertest.InMemAgent
}

func newClusterLab(t testing.TB) *clusterLab {
	return &clusterLab{
		logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		store:  memstore.New(memstore.Options{}),
		agent:  clustertest.NewInMemAgent(),
	}
}

// member starts one more member; it does not wait for the others to see it.
func (l *clusterLab) member(t testing.TB) *testEnv {
	t.Helper()
	app := batch.New(l.logger, l.store, batch.Options{})
	t.Cleanup(app.Close)
	m := &countingMetrics{activated: map[string]int{}, passived: map[string]int{}}
	node, err := New(l.logger, Config{
		ClusterName:     "unit",
		Provider:        clustertest.NewTestProvider(l.agent),
		LeaveGracefully: true,
		LeaveGrace:      200 * time.Millisecond,
	}, l.store, app, m)
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
	return &testEnv{node: node, store: l.store, metrics: m}
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
// Not under -race: two members in one process race inside protoactor (its
// gossip loop reads the remote block list that a membership update writes,
// and message sizes are computed while the gossip state is updated). The
// Makefile runs this file without -race; the multi-process tests in cmd/chatd
// cover the same paths under -race. (The race on grpc's global logger, set at
// every remote.Start, is gone: third_party/protoactor-go/PATCHES.md.)
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

// A message of a type this binary does not know — what a newer node sends an
// older one during a rolling upgrade — is dropped by the receiving node,
// which keeps running and keeps the connection: the message after it on the
// same stream arrives. Unpatched, protoactor's deserializer dereferenced a
// nil type and the receiving process died (third_party/protoactor-go/PATCHES.md;
// found by chatchaos --upgrade-from, an old node crashing on a new node's
// message).
func TestUnknownMessageTypeFromAPeerIsDropped(t *testing.T) {
	envs := newTestCluster(t, 2)
	got := make(chan any, 4)
	pid := envs[1].node.system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *chatpb.InboxQuery:
			got <- m
		case *dynamicpb.Message:
			got <- m
		}
	}))
	t.Cleanup(func() { envs[1].node.system.Root.Stop(pid) })

	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:    proto.String("future.proto"),
		Package: proto.String("grainchat.future"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Unknown"),
			Field: []*descriptorpb.FieldDescriptorProto{{Name: proto.String("text"), Number: proto.Int32(1),
				Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
				JsonName: proto.String("text")}},
		}},
	}, nil) // not registered: no node of this process knows the type
	if err != nil {
		t.Fatal(err)
	}
	unknown := dynamicpb.NewMessage(fd.Messages().Get(0))
	unknown.Set(fd.Messages().Get(0).Fields().Get(0), protoreflect.ValueOfString("from a newer release"))

	root := envs[0].node.system.Root
	root.Send(pid, unknown)
	root.Send(pid, &chatpb.InboxQuery{})
	select {
	case m := <-got:
		if _, ok := m.(*chatpb.InboxQuery); !ok {
			t.Fatalf("the receiving node delivered %T, want only the known message", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the message after the unknown one never arrived: the stream did not survive")
	}
	if envs[1].node.Members() != 2 || envs[0].node.Members() != 2 {
		t.Fatalf("members %d / %d after the unknown message, want 2 / 2", envs[0].node.Members(), envs[1].node.Members())
	}
}

// A member joins a cluster whose conversations are active: the grains stay
// where they are (the joining member, their identities' new owner, grants
// them), no activation stops as "owned by another node", a session on the
// joining member posts into the activation that lives on the first one, and
// a conversation nobody has activated yet is placed on the joining member
// when it owns it. Without placement (upstream disthash) a third to a half
// of the active grains stop and activate again on the joining member.
//
// Not under -race (see TestTwoMembersShareGrainsAndSurviveALeave).
func TestTwoMembersJoiningMemberLeavesActiveGrainsWhereTheyAre(t *testing.T) {
	lab := newClusterLab(t)
	a := lab.member(t)
	waitUntil(t, 10*time.Second, func() bool { return a.node.Members() == 1 })
	const n = 16 // the chance that the joining member owns none of them: 2^-16
	type conv struct {
		user storage.User
		id   int64
	}
	var convs []conv
	for i := range n {
		u, c := a.visitor(t, fmt.Sprintf("v%d", i))
		sink := a.spawn(t, SessionConfig{ConnID: fmt.Sprint("v", i), User: u, ConversationID: c.ID, V1: true})
		a.node.SendInbound(a.sessions[len(a.sessions)-1], &Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: "before", ClientMsgID: "1"}})
		sink.waitFrames(t, 3) // welcome, ack, message
		convs = append(convs, conv{user: u, id: c.ID})
	}
	if got := a.node.Status().Conversations; len(got) != n {
		t.Fatalf("first member hosts %v, want %d conversations", got, n)
	}

	b := lab.member(t)
	waitUntil(t, 10*time.Second, func() bool { return a.node.Members() == 2 && b.node.Members() == 2 })
	bAddr := b.node.system.Address()
	var owned []conv // the conversations the joining member owns now
	for _, c := range convs {
		if b.node.ownerOf(conversationIdentity(c.id), ConversationKind) == bAddr {
			owned = append(owned, c)
		}
	}
	if len(owned) == 0 {
		t.Fatal("the joining member owns none of the conversations")
	}
	// Every grain it owns is granted to its activation on the first member.
	waitUntil(t, 10*time.Second, func() bool { return b.node.placement.grants() >= len(owned) })

	// A session on the joining member posts into an owned conversation:
	// the first member's activation serves it (seq 2 follows seq 1).
	c := owned[0]
	sink := b.spawn(t, SessionConfig{ConnID: "moved", User: c.user, ConversationID: c.id, V1: true})
	b.node.SendInbound(b.sessions[len(b.sessions)-1], &Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: "after", ClientMsgID: "2"}})
	frames := sink.waitFrames(t, 3)
	if frames[1]["type"] != "ack" || frames[1]["seq"].(float64) != 2 || frames[2]["message"] != "after" {
		t.Fatalf("the post on the joining member got %v", frames)
	}

	// A conversation nobody activated, owned by the joining member, is
	// activated there.
	var fresh conv
	for i := 0; fresh.id == 0; i++ {
		u, cv := a.visitor(t, fmt.Sprintf("new%d", i))
		if b.node.ownerOf(conversationIdentity(cv.ID), ConversationKind) == bAddr {
			fresh = conv{user: u, id: cv.ID}
		}
	}
	fs := a.spawn(t, SessionConfig{ConnID: "fresh", User: fresh.user, ConversationID: fresh.id, V1: true})
	a.node.SendInbound(a.sessions[len(a.sessions)-1], &Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: "new", ClientMsgID: "3"}})
	fs.waitFrames(t, 3)

	sa, sb := a.node.Status(), b.node.Status()
	if len(sa.OwnershipStops) != 0 || len(sb.OwnershipStops) != 0 {
		t.Errorf("ownership stops: first member %v, joining member %v; want none", sa.OwnershipStops, sb.OwnershipStops)
	}
	if len(sa.Conversations) != n || !slices.Equal(sb.Conversations, []int64{fresh.id}) {
		t.Errorf("first member hosts %v (want the %d first conversations), joining member %v (want [%d])",
			sa.Conversations, n, sb.Conversations, fresh.id)
	}
	if got, _ := a.metrics.get(ConversationKind); got != n {
		t.Errorf("first member activated %d conversations, want %d", got, n)
	}
	if got, _ := b.metrics.get(ConversationKind); got != 1 {
		t.Errorf("joining member activated %d conversations, want 1", got)
	}
}

// Staff sessions on a member other than the inbox's get every message, in
// order, through that member's inbox relay (one InboxRelay per message for
// all of them), as do those on the inbox's own member directly.
//
// Not under -race (see TestTwoMembersShareGrainsAndSurviveALeave).
func TestTwoMembersInboxRelaysToAnotherMembersStaff(t *testing.T) {
	lab := newClusterLab(t)
	m1, m2 := lab.member(t), lab.member(t)
	waitUntil(t, 10*time.Second, func() bool { return m1.node.Members() == 2 && m2.node.Members() == 2 })
	inbox := m1.node.lookup(inboxIdentity, InboxKind)
	if inbox == nil {
		t.Fatal("no inbox")
	}
	home, other := m1, m2
	if inbox.GetAddress() != m1.node.system.Address() {
		home, other = m2, m1
	}
	if !home.node.hasFeature(other.node.system.Address(), featureRelay) {
		t.Fatal("the inbox's member does not know that the other member runs a relay")
	}
	admin, err := lab.store.UpsertUser(context.Background(), storage.UserInput{ExternalID: "staff", Name: "Staff", IsAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	var sinks []*fakeSink
	for i := range 3 {
		sinks = append(sinks, other.spawn(t, SessionConfig{ConnID: fmt.Sprint("remote", i), User: admin, V1: true}))
	}
	sinks = append(sinks, home.spawn(t, SessionConfig{ConnID: "local", User: admin, V1: true}))
	for _, s := range sinks {
		s.waitFrames(t, 2) // welcome, inbox
	}
	u, conv := other.visitor(t, "visitor")
	other.spawn(t, SessionConfig{ConnID: "v", User: u, ConversationID: conv.ID, V1: true})
	const n = 20
	for i := 1; i <= n; i++ {
		other.node.SendInbound(other.sessions[len(other.sessions)-1],
			&Inbound{Req: wire.Request{Type: wire.TypeMessage, Message: fmt.Sprint("m", i), ClientMsgID: fmt.Sprint(i)}})
	}
	for i, s := range sinks {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var msgs []string
			var got []int64
			for _, f := range s.waitFrames(t, 2) {
				if f["type"] == "message" {
					msgs = append(msgs, f["message"].(string))
					got = append(got, int64(f["seq"].(float64)))
				}
			}
			if len(got) == n {
				for j, seq := range got {
					if seq != int64(j+1) || msgs[j] != fmt.Sprint("m", j+1) {
						t.Fatalf("staff session %d got messages %v (seqs %v), want m1..m%d in order", i, msgs, got, n)
					}
				}
				break
			}
			if len(got) > n || time.Now().After(deadline) {
				t.Fatalf("staff session %d got %d messages (%v), want %d", i, len(got), msgs, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
