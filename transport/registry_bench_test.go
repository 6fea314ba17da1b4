package transport

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// The registry's benchmarks compare it with the single-mutex table it
// replaced (mutexRegistry), at the size of issue 14: 19,000 open sockets.
// Commands and figures: docs/BENCHMARKS.md, "Session 9".

// benchConns is the number of sockets open in each benchmark's registry.
const benchConns = 19000

// benchRegistry is what the benchmarks call, implemented by the sharded
// registry and by mutexRegistry.
type benchRegistry interface {
	reserve(userID int64, admin bool) (*userState, error)
	release(userID int64)
	add(c *conn) bool
	remove(c *conn) bool
	appendOpen(dst []*conn) []*conn
}

var (
	_ benchRegistry = (*registry)(nil)
	_ benchRegistry = (*mutexRegistry)(nil)
)

// mutexRegistry is the connection table as it was before issue 14 (commit
// 5e951f6, in Server): one mutex over the open sockets, the users and the
// reserved count. Its open sockets are keyed by *conn, not *gws.Conn: both
// are pointers, hashed alike. It is kept here only as the benchmarks'
// baseline.
type mutexRegistry struct {
	maxConns, maxPerUser int
	newLimiter           func(admin bool) *rate.Limiter

	mu       sync.Mutex
	conns    map[*conn]*conn
	users    map[int64]*userState
	reserved int
	closing  bool
}

func newMutexRegistry(maxConns, maxPerUser int, newLimiter func(admin bool) *rate.Limiter) *mutexRegistry {
	return &mutexRegistry{maxConns: maxConns, maxPerUser: maxPerUser, newLimiter: newLimiter,
		conns: make(map[*conn]*conn), users: make(map[int64]*userState)}
}

// reserve is the old Server.reserve.
func (r *mutexRegistry) reserve(userID int64, admin bool) (*userState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing || r.reserved >= r.maxConns {
		return nil, errRegistryFull
	}
	u := r.users[userID]
	if u == nil {
		u = &userState{limiter: r.newLimiter(admin)}
		r.users[userID] = u
	}
	if u.conns >= r.maxPerUser {
		return nil, errUserConns
	}
	u.conns++
	r.reserved++
	return u, nil
}

// release is the old Server.release.
func (r *mutexRegistry) release(userID int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reserved--
	if u := r.users[userID]; u != nil {
		if u.conns--; u.conns <= 0 {
			delete(r.users, userID)
		}
	}
}

// add is the old ServeHTTP's insertion.
func (r *mutexRegistry) add(c *conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing || c.closing.Load() {
		return false
	}
	r.conns[c] = c
	return true
}

// remove is the old OnClose's deletion.
func (r *mutexRegistry) remove(c *conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.conns[c]
	delete(r.conns, c)
	return ok
}

// appendOpen is the old Server.openConns: the whole copy under the lock.
func (r *mutexRegistry) appendOpen(dst []*conn) []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		dst = append(dst, c)
	}
	return dst
}

// benchLimiter is a visitor's limiter with chatd's defaults.
func benchLimiter(bool) *rate.Limiter {
	return rate.NewLimiter(DefaultMessageRate, DefaultMessageBurst)
}

// benchImpls are the two registries, each filled with benchConns open
// sockets of as many users (ids and seqs 1 to benchConns), under
// DefaultMaxConns.
var benchImpls = []struct {
	name string
	make func() benchRegistry
}{
	{"single-mutex", func() benchRegistry {
		return newMutexRegistry(DefaultMaxConns, DefaultMaxConnsPerUser, benchLimiter)
	}},
	{"sharded", func() benchRegistry {
		return newRegistry(DefaultMaxConns, DefaultMaxConnsPerUser, benchLimiter)
	}},
}

// fillRegistry opens benchConns sockets in r.
func fillRegistry(tb testing.TB, r benchRegistry) {
	tb.Helper()
	for i := int64(1); i <= benchConns; i++ {
		if _, err := r.reserve(i, false); err != nil {
			tb.Fatalf("reserve %d: %v", i, err)
		}
		if !r.add(newTestConn(uint64(i), i)) {
			tb.Fatalf("add %d refused", i)
		}
	}
}

// handshakeCycle is one socket's registry work over its life: reserve (the
// handshake), add (the upgrade), remove and release (the close).
func handshakeCycle(b *testing.B, r benchRegistry, c *conn) {
	if _, err := r.reserve(c.userID, false); err != nil {
		b.Fatalf("reserve: %v", err)
	}
	if !r.add(c) {
		b.Fatal("add refused")
	}
	r.remove(c)
	r.release(c.userID)
}

// BenchmarkRegistryCycle measures one socket's reserve, add, remove and
// release with benchConns other sockets open: serial, and from GOMAXPROCS
// goroutines at once (-cpu).
func BenchmarkRegistryCycle(b *testing.B) {
	for _, impl := range benchImpls {
		b.Run(impl.name+"/serial", func(b *testing.B) {
			r := impl.make()
			fillRegistry(b, r)
			c := newTestConn(benchConns+1, benchConns+1)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				handshakeCycle(b, r, c)
			}
		})
		b.Run(impl.name+"/parallel", func(b *testing.B) {
			r := impl.make()
			fillRegistry(b, r)
			var next atomic.Int64
			next.Store(benchConns)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				// Each goroutine has its own user and conn.
				id := next.Add(1)
				c := newTestConn(uint64(id), id)
				for pb.Next() {
					handshakeCycle(b, r, c)
				}
			})
		})
	}
}

// BenchmarkPingSweepCopy measures the ping loop's copy of benchConns open
// sockets (ns/op). From 200 sweeps timed after the run it reports how long
// one lock is held — the whole copy for the single mutex, one shard's part
// for the sharded registry: max-hold-ns is the median over sweeps of a
// sweep's longest hold, hold-ns the median of all holds.
func BenchmarkPingSweepCopy(b *testing.B) {
	for _, impl := range benchImpls {
		b.Run(impl.name, func(b *testing.B) {
			r := impl.make()
			fillRegistry(b, r)
			batch := make([]*conn, 0, benchConns)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				batch = r.appendOpen(batch[:0])
			}
			b.StopTimer()
			if len(batch) != benchConns {
				b.Fatalf("the sweep copied %d conns, want %d", len(batch), benchConns)
			}
			var longest, all []time.Duration
			for range 200 {
				n := len(all)
				all = sweepHolds(r, batch[:0], all)
				longest = append(longest, slices.Max(all[n:]))
			}
			slices.Sort(longest)
			slices.Sort(all)
			b.ReportMetric(float64(longest[len(longest)/2].Nanoseconds()), "max-hold-ns")
			b.ReportMetric(float64(all[len(all)/2].Nanoseconds()), "hold-ns")
		})
	}
}

// sweepHolds sweeps r once as the ping loop does (into dst) and appends to
// holds how long it held each lock.
func sweepHolds(r benchRegistry, dst []*conn, holds []time.Duration) []time.Duration {
	switch r := r.(type) {
	case *registry:
		for i := range r.shards {
			start := time.Now()
			dst = r.shards[i].appendConns(dst)
			holds = append(holds, time.Since(start))
		}
		return holds
	default:
		start := time.Now()
		r.appendOpen(dst)
		return append(holds, time.Since(start))
	}
}

// BenchmarkReserveDuringSweeps measures how the ping loop's copy delays
// handshakes: one goroutine sweeps benchConns open sockets back to back
// (the worst case: chatd sweeps once every --ping-interval, 25 s) while the
// benchmark's goroutine runs handshake cycles and times each reserve. It
// reports the reserves' p50, p99, p99.9 and max latency and the sweeps done.
func BenchmarkReserveDuringSweeps(b *testing.B) {
	for _, impl := range benchImpls {
		b.Run(impl.name, func(b *testing.B) {
			r := impl.make()
			fillRegistry(b, r)
			stop := make(chan struct{})
			var sweeps atomic.Int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				batch := make([]*conn, 0, benchConns)
				for {
					select {
					case <-stop:
						return
					default:
					}
					batch = r.appendOpen(batch[:0])
					sweeps.Add(1)
				}
			}()
			c := newTestConn(benchConns+1, benchConns+1)
			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				_, err := r.reserve(c.userID, false)
				lat[i] = time.Since(start)
				if err != nil {
					b.Fatalf("reserve: %v", err)
				}
				r.add(c)
				r.remove(c)
				r.release(c.userID)
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			slices.Sort(lat)
			at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Nanoseconds()) }
			b.ReportMetric(at(0.5), "p50-ns")
			b.ReportMetric(at(0.99), "p99-ns")
			b.ReportMetric(at(0.999), "p99.9-ns")
			b.ReportMetric(at(1), "max-ns")
			b.ReportMetric(float64(sweeps.Load()), "sweeps")
		})
	}
}

// TestMutexRegistryMatches: the benchmarks' baseline refuses like the
// registry (errRegistryFull first, then errUserConns), so that both do the
// same work.
func TestMutexRegistryMatches(t *testing.T) {
	for _, impl := range []benchRegistry{
		newMutexRegistry(3, 2, benchLimiter), newRegistry(3, 2, benchLimiter),
	} {
		name := fmt.Sprintf("%T", impl)
		var errs []error
		for _, u := range []int64{1, 1, 1, 2, 3} {
			_, err := impl.reserve(u, false)
			errs = append(errs, err)
		}
		want := []error{nil, nil, errUserConns, nil, errRegistryFull}
		for i := range want {
			if !errors.Is(errs[i], want[i]) {
				t.Errorf("%s: reserve %d: %v, want %v", name, i, errs[i], want[i])
			}
		}
	}
}
