package transport

import (
	"errors"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// registryShards is the number of shards of the connection registry, as in
// centrifuge's hub. A power of two, so that the shard of a key is a mask.
const registryShards = 64

// Errors of registry.reserve.
var (
	// errRegistryFull: the node has MaxConns sockets reserved, or it stopped
	// accepting sockets.
	errRegistryFull = errors.New("server full or shutting down")
	// errUserConns: the user has MaxConnsPerUser sockets reserved.
	errUserConns = errors.New("too many connections for this user")
)

// registry is the node's table of sockets: how many are reserved (open or
// being opened, bounded by maxConns), each user's reserved sockets (bounded
// by maxPerUser) and rate limiter, and the open sockets, which the ping loop
// and Shutdown walk.
//
// The table is split into registryShards shards, each with its own lock: a
// user's state lives in the shard of its id, an open socket in the shard of
// its conn's seq. No operation holds two shard locks except stop, and the
// ping loop's copy holds one shard's lock at a time, so a handshake or a
// close waits at most for one shard's part of a sweep.
//
// Guarantees, each guarded by a test in registry_test.go:
//   - reserve never lets more than maxConns sockets, or more than maxPerUser
//     sockets of one user, be reserved at once (TestRegistryBounds,
//     TestRegistryBoundsConcurrent);
//   - all the reserved sockets of a user share one *userState, so one rate
//     limiter, while the user has any (TestRegistryBounds);
//   - once stop has returned, reserve and add refuse, and every add that
//     succeeded before is seen by appendOpen (TestRegistryAddRacesStop);
//   - drained is closed once stop was called and no socket is open, never
//     before (TestRegistryDrained).
//
// All methods are safe for concurrent use.
type registry struct {
	maxConns   int64
	maxPerUser int
	// newLimiter makes the rate limiter of a user's first socket.
	newLimiter func(admin bool) *rate.Limiter

	// reserved counts the sockets reserved, open or being opened; only
	// reserve (a compare-and-swap under maxConns) raises it.
	reserved atomic.Int64
	// open counts the sockets in the shards' conns.
	open atomic.Int64
	// closing is set once, by stop, with every shard's lock held: an add,
	// which checks it under its shard's lock, is wholly before or wholly
	// after it.
	closing   atomic.Bool
	drained   chan struct{}
	drainOnce sync.Once

	shards [registryShards]registryShard
}

// registryShard is one shard of the registry. Its lock guards its maps.
type registryShard struct {
	mu    sync.Mutex
	conns map[*conn]struct{}   // open sockets whose conn's seq falls here
	users map[int64]*userState // users whose id falls here, with reserved sockets
	// _ pads the shard (24 bytes above) to a 64-byte cache line, so that
	// two shards' locks never share one (TestRegistryShardSize).
	_ [40]byte
}

// userState is what the server bounds per user: sockets and frame rate.
// conns is guarded by the lock of the user's registry shard; the limiter is
// safe for concurrent use.
type userState struct {
	conns   int
	limiter *rate.Limiter
}

// newRegistry returns an empty registry bounded by maxConns sockets and
// maxPerUser sockets a user; newLimiter makes each user's rate limiter.
func newRegistry(maxConns, maxPerUser int, newLimiter func(admin bool) *rate.Limiter) *registry {
	r := &registry{
		maxConns:   int64(maxConns),
		maxPerUser: maxPerUser,
		newLimiter: newLimiter,
		drained:    make(chan struct{}),
	}
	for i := range r.shards {
		r.shards[i].conns = make(map[*conn]struct{})
		r.shards[i].users = make(map[int64]*userState)
	}
	return r
}

// userShard is the shard that holds userID's state.
func (r *registry) userShard(userID int64) *registryShard {
	return &r.shards[uint64(userID)%registryShards]
}

// connShard is the shard that holds c while it is open.
func (r *registry) connShard(c *conn) *registryShard {
	return &r.shards[c.seq%registryShards]
}

// reserve counts a socket for userID before it opens and returns the user's
// state (made, with a limiter from newLimiter(admin), for the user's first
// socket). It returns errRegistryFull when maxConns sockets are reserved or
// the registry is stopped, else errUserConns when the user has maxPerUser;
// the node's bound is checked first. The caller must release a reservation
// when its socket closes or fails to open.
func (r *registry) reserve(userID int64, admin bool) (*userState, error) {
	if r.closing.Load() {
		return nil, errRegistryFull
	}
	for {
		n := r.reserved.Load()
		if n >= r.maxConns {
			return nil, errRegistryFull
		}
		if r.reserved.CompareAndSwap(n, n+1) {
			break
		}
	}
	sh := r.userShard(userID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	u := sh.users[userID]
	if u == nil {
		u = &userState{limiter: r.newLimiter(admin)}
		sh.users[userID] = u
	}
	if u.conns >= r.maxPerUser {
		r.reserved.Add(-1)
		return nil, errUserConns
	}
	u.conns++
	return u, nil
}

// release gives back a reservation of userID's; the user's state is dropped
// with its last one.
func (r *registry) release(userID int64) {
	sh := r.userShard(userID)
	sh.mu.Lock()
	if u := sh.users[userID]; u != nil {
		if u.conns--; u.conns <= 0 {
			delete(sh.users, userID)
		}
	}
	sh.mu.Unlock()
	r.reserved.Add(-1)
}

// add records c as open. It refuses (false) once stop was called, or if c is
// closing already; then the caller closes the socket itself.
func (r *registry) add(c *conn) bool {
	sh := r.connShard(c)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if r.closing.Load() || c.closing.Load() {
		return false
	}
	sh.conns[c] = struct{}{}
	r.open.Add(1)
	return true
}

// remove forgets c and reports whether it was open (added and not removed
// yet). After stop, the last socket's remove closes drained.
func (r *registry) remove(c *conn) bool {
	sh := r.connShard(c)
	sh.mu.Lock()
	_, ok := sh.conns[c]
	delete(sh.conns, c)
	sh.mu.Unlock()
	if !ok {
		return false
	}
	r.open.Add(-1)
	r.checkDrained()
	return true
}

// stop refuses reservations and sockets from now on; it reports whether it
// was the first call. It takes every shard's lock (in order), so that no add
// is half done while closing changes: an add either completed before (and
// appendOpen sees its socket) or is refused.
func (r *registry) stop() (first bool) {
	for i := range r.shards {
		r.shards[i].mu.Lock()
	}
	first = !r.closing.Load()
	r.closing.Store(true)
	for i := range r.shards {
		r.shards[i].mu.Unlock()
	}
	r.checkDrained()
	return first
}

// stopped reports whether stop was called.
func (r *registry) stopped() bool { return r.closing.Load() }

// checkDrained closes drained if stop was called and no socket is open. It
// reads closing before open: once closing is set no add succeeds, and every
// add that succeeded before counted its socket in open first, so open seen
// at zero then stays zero.
func (r *registry) checkDrained() {
	if r.closing.Load() && r.open.Load() == 0 {
		r.drainOnce.Do(func() { close(r.drained) })
	}
}

// drainedC is closed once stop was called and every socket has been removed.
func (r *registry) drainedC() <-chan struct{} { return r.drained }

// appendOpen appends the open sockets' conns to dst, one shard at a time:
// each shard's lock is held only while its own part is copied.
func (r *registry) appendOpen(dst []*conn) []*conn {
	for i := range r.shards {
		dst = r.shards[i].appendConns(dst)
	}
	return dst
}

// appendConns appends the shard's open conns to dst, under its lock.
func (sh *registryShard) appendConns(dst []*conn) []*conn {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for c := range sh.conns {
		dst = append(dst, c)
	}
	return dst
}

// openCount is the number of open sockets.
func (r *registry) openCount() int { return int(r.open.Load()) }
