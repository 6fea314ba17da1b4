//go:build !race

package actors

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// BenchmarkInboxFanout measures the inbox grain's cost per delivery, the
// first bound of docs/SCALING.md's model: one message notified to the inbox
// reaches every subscribed staff session, each of which writes its frame
// (to a sink that only counts). "local": the staff sessions live on the
// inbox's member; "remote": on another member, each delivery serialized and
// sent over protoactor's remote (gRPC on loopback). ns/op is per message;
// ns/delivery per message and staff session. "teams=10": each staff session
// shows one of 10 teams (SessionConfig.Teams) and each message is of one of
// them: the inbox sends it to a tenth of the sessions.
//
//	go test -run '^$' -bench InboxFanout -benchtime 2000x ./actors/
//
// Not under -race (two members in one process; see
// TestTwoMembersShareGrainsAndSurviveALeave).
func BenchmarkInboxFanout(b *testing.B) {
	for _, where := range []string{"local", "remote"} {
		for _, staff := range []int{10, 100} {
			b.Run(fmt.Sprintf("%s/staff=%d", where, staff), func(b *testing.B) {
				benchInboxFanout(b, where == "remote", staff, 0)
			})
		}
		b.Run(fmt.Sprintf("%s/staff=100/teams=10", where), func(b *testing.B) {
			benchInboxFanout(b, where == "remote", 100, 10)
		})
	}
}

// countingSink counts the message frames a session writes (each delivery
// also writes an inbox_update frame, which it does not count).
type countingSink struct{ n *atomic.Int64 }

func (s countingSink) Write(frame []byte) {
	if bytes.HasPrefix(frame, []byte(`{"type":"message"`)) {
		s.n.Add(1)
	}
}
func (countingSink) Close(wire.Disconnect) {}
func (countingSink) PostSettled()          {}

func benchInboxFanout(b *testing.B, remote bool, staff, teams int) {
	lab := newClusterLab(b)
	m1, m2 := lab.member(b), lab.member(b)
	waitUntil(b, 10*time.Second, func() bool { return m1.node.Members() == 2 && m2.node.Members() == 2 })
	inbox := m1.node.lookup(inboxIdentity, InboxKind)
	if inbox == nil {
		b.Fatal("no inbox")
	}
	on := m1
	if (inbox.GetAddress() == m1.node.system.Address()) == remote {
		on = m2
	}
	admin, err := lab.store.UpsertUser(context.Background(), storage.UserInput{ExternalID: "staff", Name: "Staff", IsAdmin: true})
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	for i := range staff {
		ready := make(chan struct{})
		cfg := SessionConfig{ConnID: fmt.Sprint("s", i), User: admin, V1: true, Sink: countingSink{&got}, Ready: ready}
		if teams > 0 {
			cfg.Teams = []string{fmt.Sprint("t", i%teams)}
		}
		pid := on.node.SpawnSession(cfg)
		b.Cleanup(func() { on.node.StopSession(pid) })
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			b.Fatal("staff session not ready")
		}
	}
	// Every session subscribed: the inbox relays to all of them.
	probe := int64(2_000_000) // the warm-up probes' conversations, one each
	waitUntil(b, 10*time.Second, func() bool {
		before := got.Load()
		probe++
		on.node.system.Root.Send(inbox, benchNotify(probe, 1))
		for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if got.Load()-before == int64(staff) {
				return true
			}
		}
		return false
	})
	got.Store(0)
	notes := make([]*chatpb.InboxNotify, b.N)
	for i := range notes {
		notes[i] = benchNotify(1_000_000, int64(i+1))
		if teams > 0 {
			// One conversation per team, each message the next of its
			// conversation (a gap would be filled from the store).
			notes[i] = benchNotify(int64(1_000_000+i%teams), int64(i/teams+1))
			notes[i].Entry.Team = fmt.Sprint("t", i%teams)
		}
	}
	want := int64(b.N) * int64(staff)
	if teams > 0 {
		want = int64(b.N) * int64(staff/teams)
	}
	b.ResetTimer()
	start := time.Now()
	for _, n := range notes {
		m1.node.system.Root.Send(inbox, n)
	}
	for got.Load() < want {
		if time.Since(start) > time.Minute {
			b.Fatalf("%d of %d deliveries within a minute", got.Load(), want)
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(want), "ns/delivery")
}
