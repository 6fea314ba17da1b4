package actors

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
)

// A watch of an actor on another node is answered with Terminated however
// it races with the end of that node's connection (third_party/protoactor-go
// PATCHES.md, patch 5). Upstream, a watch made while its endpoint was being
// torn down went to an endpoint watcher that had already stopped and was
// dropped without a word: the watcher never heard that the actor was gone.
// A conversation grain that watched the inbox grain of a node leaving in a
// rolling restart that way sent its notifications into the void for good
// (TestClusterGracefulRollingRestart: staff stopped receiving four
// conversations).
func TestRemoteWatchRacingAnEndpointsEndIsAnswered(t *testing.T) {
	system := actor.NewActorSystem()
	cfg := remote.Configure("127.0.0.1", 0)
	cfg.MaxRetryCount = 1 // an endpoint that cannot connect gives up after 2 s
	r := remote.NewRemote(system, cfg)
	r.Start()
	t.Cleanup(func() { r.Shutdown(false) })

	// An address nothing listens on: every connection to it fails.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()

	// The connection to dead ends over and over while the watches are made.
	stop := make(chan struct{})
	var ending sync.WaitGroup
	ending.Add(1)
	go func() {
		defer ending.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			system.EventStream.Publish(&remote.EndpointTerminatedEvent{Address: dead})
			runtime.Gosched()
		}
	}()

	const watches = 3000
	answered := make(chan int, watches)
	for i := 0; i < watches; i++ {
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
		watchee := actor.NewPID(dead, fmt.Sprintf("gone-%d", i))
		system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actor.Started:
				ctx.Watch(watchee)
			case *actor.Terminated:
				if m.GetWho().Equal(watchee) {
					answered <- i
					ctx.Stop(ctx.Self())
				}
			}
		}))
	}
	close(stop)
	ending.Wait()

	// An endpoint still connecting gives up (MaxRetryCount) and then
	// answers its watches.
	seen := make(map[int]bool, watches)
	deadline := time.After(30 * time.Second)
	for len(seen) < watches {
		select {
		case i := <-answered:
			seen[i] = true
		case <-deadline:
			t.Fatalf("%d of %d watches of an actor on an unreachable node never got Terminated", watches-len(seen), watches)
		}
	}
}

// The end of one connection to a node does not end the next one (PATCHES.md,
// patch 5): upstream, the writer stopped with its ended endpoint closed its
// connection, and its reader then reported the address lost again, which
// ended the new, healthy endpoint and told every watcher of an actor there
// that it had terminated, though it lived on.
func TestRemoteEndedConnectionDoesNotEndTheNextOne(t *testing.T) {
	newRemote := func() *actor.ActorSystem {
		system := actor.NewActorSystem()
		r := remote.NewRemote(system, remote.Configure("127.0.0.1", 0))
		r.Start()
		t.Cleanup(func() { r.Shutdown(false) })
		return system
	}
	a := newRemote()
	type notice struct {
		round int
		first bool // of the round's first watchee (its connection ended)
		why   actor.TerminatedReason
	}
	terminated := make(chan notice, 64)
	watch := func(round int, first bool, watchee *actor.PID) {
		a.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actor.Started:
				ctx.Watch(watchee)
			case *actor.Terminated:
				terminated <- notice{round: round, first: first, why: m.GetWhy()}
			}
		}))
	}
	const rounds = 5
	for round := 0; round < rounds; round++ {
		b := newRemote() // a node of its own each round: one ended connection each
		alive := func(name string) *actor.PID {
			pid, err := b.Root.SpawnNamed(actor.PropsFromFunc(func(actor.Context) {}), name)
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		echo := alive("echo")
		touch := func() {
			t.Helper()
			if _, err := a.Root.RequestFuture(echo, &actor.Touch{}, 5*time.Second).Result(); err != nil {
				t.Fatalf("round %d: no answer from the other node: %v", round, err)
			}
		}
		watch(round, true, alive("first"))
		touch() // the connection is up, the watch in place before the request
		a.EventStream.Publish(&remote.EndpointTerminatedEvent{Address: b.Address()})
		watch(round, false, alive("second"))
		select {
		case n := <-terminated:
			if !n.first || n.round != round {
				t.Fatalf("round %d: a watch made after the connection ended got Terminated (%v): the next connection was ended too", round, n.why)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the watch of the ended connection got no Terminated", round)
		}
		touch() // over the next connection
		select {
		case n := <-terminated:
			t.Fatalf("round %d: a watch of a live actor over a healthy connection got Terminated (%v)", round, n.why)
		case <-time.After(300 * time.Millisecond):
		}
	}
}
