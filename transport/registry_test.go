package transport

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/time/rate"
)

// newTestRegistry returns a registry bounded by maxConns and maxPerUser with
// unlimited rate limiters.
func newTestRegistry(maxConns, maxPerUser int) *registry {
	return newRegistry(maxConns, maxPerUser, func(bool) *rate.Limiter { return rate.NewLimiter(rate.Inf, 1) })
}

// newTestConn returns a conn numbered seq for userID, not attached to any
// socket.
func newTestConn(seq uint64, userID int64) *conn {
	return &conn{id: connID(seq), seq: seq, userID: userID}
}

// TestRegistryBounds: reserve refuses the node's (maxConns) and a user's
// (maxPerUser) next socket, the node's bound first, and gives a user's
// sockets one state; release makes room again and drops a user's state with
// its last socket.
func TestRegistryBounds(t *testing.T) {
	r := newTestRegistry(3, 2)
	u1, err := r.reserve(1, false)
	if err != nil {
		t.Fatalf("first socket of user 1: %v", err)
	}
	u1b, err := r.reserve(1, false)
	if err != nil {
		t.Fatalf("second socket of user 1: %v", err)
	}
	if u1 != u1b {
		t.Error("two sockets of user 1 got two states (two rate limiters)")
	}
	if _, err := r.reserve(1, false); !errors.Is(err, errUserConns) {
		t.Errorf("third socket of user 1: %v, want errUserConns", err)
	}
	if _, err := r.reserve(2, false); err != nil {
		t.Fatalf("first socket of user 2: %v", err)
	}
	if _, err := r.reserve(3, false); !errors.Is(err, errRegistryFull) {
		t.Errorf("fourth socket of the node: %v, want errRegistryFull", err)
	}
	if _, err := r.reserve(1, false); !errors.Is(err, errRegistryFull) {
		t.Errorf("third socket of user 1 on a full node: %v, want errRegistryFull (the node's bound first)", err)
	}
	r.release(2)
	if _, err := r.reserve(3, false); err != nil {
		t.Errorf("a socket after a release: %v", err)
	}
	r.release(3)
	r.release(1)
	r.release(1)
	if n := r.reserved.Load(); n != 0 {
		t.Errorf("reserved = %d after every release, want 0", n)
	}
	if n := r.users(); n != 0 {
		t.Errorf("%d users kept after every release, want 0", n)
	}
}

// users counts the users with state in r.
func (r *registry) users() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		n += len(sh.users)
		sh.mu.Unlock()
	}
	return n
}

// TestRegistryBoundsConcurrent: goroutines reserving and releasing sockets
// of a few users at random never hold more than maxConns sockets, nor more
// than maxPerUser of one user, and every bound is reached.
func TestRegistryBoundsConcurrent(t *testing.T) {
	const (
		maxConns   = 40
		maxPerUser = 5
		users      = 12 // 12 × 5 > 40: both bounds are reached
		workers    = 16
		rounds     = 3000
	)
	r := newTestRegistry(maxConns, maxPerUser)
	var total atomic.Int64
	var perUser [users]atomic.Int64
	var fullSeen, userFullSeen atomic.Bool
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			var held []int64
			for range rounds {
				if len(held) > 0 && rng.IntN(2) == 0 {
					i := rng.IntN(len(held))
					u := held[i]
					held[i] = held[len(held)-1]
					held = held[:len(held)-1]
					// The test's counts go down before the registry's,
					// and up after: they never exceed the registry's.
					total.Add(-1)
					perUser[u].Add(-1)
					r.release(u)
					continue
				}
				u := rng.Int64N(users)
				_, err := r.reserve(u, false)
				switch {
				case errors.Is(err, errRegistryFull):
					fullSeen.Store(true)
					continue
				case errors.Is(err, errUserConns):
					userFullSeen.Store(true)
					continue
				case err != nil:
					t.Errorf("reserve: %v", err)
					return
				}
				if n := total.Add(1); n > maxConns {
					t.Errorf("%d sockets reserved at once, bound %d", n, maxConns)
				}
				if n := perUser[u].Add(1); n > maxPerUser {
					t.Errorf("%d sockets of user %d reserved at once, bound %d", n, u, maxPerUser)
				}
				held = append(held, u)
			}
			for _, u := range held {
				total.Add(-1)
				perUser[u].Add(-1)
				r.release(u)
			}
		}()
	}
	wg.Wait()
	if !fullSeen.Load() || !userFullSeen.Load() {
		t.Errorf("node full seen %v, user full seen %v: the test did not reach both bounds", fullSeen.Load(), userFullSeen.Load())
	}
	if n := r.reserved.Load(); n != 0 {
		t.Errorf("reserved = %d after every release, want 0", n)
	}
	if n := r.users(); n != 0 {
		t.Errorf("%d users kept after every release, want 0", n)
	}
}

// TestRegistryStopRefuses: after stop, reserve and add refuse; a closing
// conn is refused before it too; stop reports only its first call.
func TestRegistryStopRefuses(t *testing.T) {
	r := newTestRegistry(10, 10)
	closing := newTestConn(1, 1)
	closing.closing.Store(true)
	if r.add(closing) {
		t.Error("a closing conn was added")
	}
	if !r.stop() {
		t.Error("the first stop reported it was not the first")
	}
	if r.stop() {
		t.Error("the second stop reported it was the first")
	}
	if _, err := r.reserve(1, false); !errors.Is(err, errRegistryFull) {
		t.Errorf("reserve after stop: %v, want errRegistryFull", err)
	}
	if r.add(newTestConn(2, 1)) {
		t.Error("a conn was added after stop")
	}
	if n := r.openCount(); n != 0 {
		t.Errorf("%d open after refused adds, want 0", n)
	}
}

// TestRegistryAddRacesStop: of conns added while stop runs, each is either
// refused or seen by the appendOpen that follows stop (what Shutdown closes):
// none is left open and unseen.
func TestRegistryAddRacesStop(t *testing.T) {
	for round := range 50 {
		r := newTestRegistry(1000, 1000)
		const adders = 8
		var added [adders][]*conn
		var wg sync.WaitGroup
		start := make(chan struct{})
		for a := range adders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := range 100 {
					c := newTestConn(uint64(a*100+i), int64(a))
					if !r.add(c) {
						return
					}
					added[a] = append(added[a], c)
				}
			}()
		}
		close(start)
		r.stop()
		seen := make(map[*conn]bool)
		for _, c := range r.appendOpen(nil) {
			seen[c] = true
		}
		wg.Wait()
		for a := range adders {
			for _, c := range added[a] {
				if !seen[c] {
					t.Fatalf("round %d: conn %d was added but not seen after stop", round, c.seq)
				}
			}
		}
		if n, m := r.openCount(), len(seen); n != m {
			t.Fatalf("round %d: openCount %d, but %d open after stop", round, n, m)
		}
	}
}

// TestRegistryDrained: drained is closed at stop when nothing is open, else
// when the last open conn is removed after stop, and not before.
func TestRegistryDrained(t *testing.T) {
	t.Run("empty", func(t *testing.T) {
		r := newTestRegistry(10, 10)
		r.stop()
		select {
		case <-r.drainedC():
		default:
			t.Error("drained not closed at stop with no socket open")
		}
	})
	t.Run("open", func(t *testing.T) {
		r := newTestRegistry(1000, 1000)
		var conns []*conn
		for i := range 500 {
			c := newTestConn(uint64(i), int64(i))
			if !r.add(c) {
				t.Fatal("add refused before stop")
			}
			conns = append(conns, c)
		}
		// A conn removed before stop does not count.
		if !r.remove(conns[0]) || r.remove(conns[0]) {
			t.Fatal("remove did not report once that the conn was open")
		}
		conns = conns[1:]
		r.stop()
		last := conns[len(conns)-1]
		var wg sync.WaitGroup
		for _, c := range conns[:len(conns)-1] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.remove(c)
			}()
		}
		wg.Wait()
		select {
		case <-r.drainedC():
			t.Fatal("drained closed while a conn is open")
		default:
		}
		r.remove(last)
		select {
		case <-r.drainedC():
		case <-time.After(time.Second):
			t.Fatal("drained not closed after the last conn was removed")
		}
	})
}

// TestRegistryAppendOpen: appendOpen returns each open conn once.
func TestRegistryAppendOpen(t *testing.T) {
	r := newTestRegistry(1000, 1000)
	want := make(map[*conn]bool)
	for i := range 300 {
		c := newTestConn(uint64(i), int64(i%7))
		r.add(c)
		if i%3 != 0 {
			want[c] = true
		} else {
			r.remove(c)
		}
	}
	got := r.appendOpen(nil)
	if len(got) != len(want) || r.openCount() != len(want) {
		t.Fatalf("appendOpen gave %d, openCount %d, want %d", len(got), r.openCount(), len(want))
	}
	for _, c := range got {
		if !want[c] {
			t.Errorf("appendOpen gave conn %d, removed or twice", c.seq)
		}
		delete(want, c)
	}
}

// TestRegistryShardSize: a shard fills one 64-byte cache line.
func TestRegistryShardSize(t *testing.T) {
	if n := unsafe.Sizeof(registryShard{}); n != 64 {
		t.Errorf("a registry shard is %d bytes, want 64 (fix its padding)", n)
	}
}
