package transport

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/lxzan/gws"

	"github.com/grainchat/grainchat/actors"
	"github.com/grainchat/grainchat/transport/wire"
)

// conn is one WebSocket: it implements actors.Sink with a bounded write queue.
//
// Frames wait in pending; one flush job at a time (in gws's write queue, so
// never concurrently with another write job) takes all of them and writes
// them through frameConn.writeFrames: a burst of frames for one client is one
// system call.
type conn struct {
	id string
	// seq numbers the connection on this node (id is seq in base 36); it
	// picks the connection's registry shard.
	seq    uint64
	server *Server
	userID int64
	user   *userState
	// maxQueued bounds the frames waiting to be written.
	maxQueued int
	pid       *actor.PID
	v1        bool
	// subject and admin are the token's identity: a fresh token in an auth
	// frame must carry the same.
	subject string
	admin   bool
	// anonIP is an anonymous visitor's client address, counted in the
	// server's anonIPs ("" for others).
	anonIP string

	mu sync.Mutex
	// socket is nil until the handshake completes; frames written before
	// wait in pending and are flushed by attach.
	socket   *gws.Conn
	net      *frameConn
	pending  [][]byte
	spare    [][]byte // the last written queue's slice, emptied, for reuse
	flushing bool     // a flush job is scheduled or running

	// Flow control (see Server.OnMessage): unsettled counts the message
	// frames handed to the session and not yet settled (PostSettled); the
	// read goroutine, the only one that waits, waits on wake, made on first
	// need, for room or for the close.
	unsettled int
	wake      chan struct{}
	// expiry closes the socket when its token expires.
	expiry *time.Timer
	// closeReq is a close asked for before the socket was attached.
	closeReq *wire.Disconnect

	closing atomic.Bool
	once    sync.Once
}

var _ actors.Sink = (*conn)(nil)

var connSeq atomic.Uint64

// connID is the id of the connection numbered seq (from connSeq).
func connID(seq uint64) string { return strconv.FormatUint(seq, 36) }

// Write queues frame. When more than the configured number of frames are
// waiting, the client is not reading: it is closed with CloseSlowConsumer.
// Write never blocks on the network.
func (c *conn) Write(frame []byte) {
	if c.closing.Load() {
		return
	}
	c.mu.Lock()
	if len(c.pending) >= c.maxQueued {
		c.mu.Unlock()
		c.server.metrics.SlowConsumer()
		c.Close(wire.DisconnectSlowConsumer)
		return
	}
	if c.pending == nil && c.spare != nil {
		c.pending, c.spare = c.spare, nil
	}
	c.pending = append(c.pending, frame)
	schedule := c.socket != nil && !c.flushing
	if schedule {
		c.flushing = true
	}
	c.mu.Unlock()
	if schedule {
		c.socket.Async(c.flush)
	}
}

// attach binds the upgraded socket and flushes the frames written before,
// behind the handshake response that nc holds (alone if there are none).
func (c *conn) attach(socket *gws.Conn, nc *frameConn) {
	c.mu.Lock()
	c.socket, c.net = socket, nc
	schedule := len(c.pending) > 0 && !c.flushing
	if schedule {
		c.flushing = true
	}
	requested := c.closeReq
	c.mu.Unlock()
	if schedule {
		socket.Async(c.flush) // the handshake response goes with the frames
	} else {
		_ = nc.release()
	}
	if requested != nil {
		// The session closed the connection before it had a socket (after
		// the handshake's last check): close it now, behind the frames
		// queued before.
		socket.Async(func() { writeClose(socket, *requested) })
	}
}

// flush writes the waiting frames until none is left. It runs as a gws
// write job.
func (c *conn) flush() {
	for {
		c.mu.Lock()
		frames := c.pending
		c.pending = nil
		if len(frames) == 0 || c.closing.Load() {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		_ = c.net.SetWriteDeadline(time.Now().Add(c.server.cfg.WriteTimeout))
		written, err := c.net.writeFrames(frames)
		if err != nil && !errors.Is(err, errClosedFrame) {
			// The client is gone or did not read within WriteTimeout: the
			// read loop sees the closed socket and ends the session.
			_ = c.net.Close()
		}
		c.server.metrics.FramesOut(written)
		if cap(frames) <= maxReusedQueue {
			// Keep the slice for the next frames rather than grow a new one.
			clear(frames)
			c.mu.Lock()
			c.spare = frames[:0]
			c.mu.Unlock()
		}
	}
}

// maxReusedQueue keeps a queue slice grown by a burst from being kept.
const maxReusedQueue = 64

// Close sends a close frame with d's code and reason, then closes the socket.
// It is idempotent and never blocks the caller.
func (c *conn) Close(d wire.Disconnect) {
	c.once.Do(func() {
		c.closed()
		c.mu.Lock()
		socket := c.socket
		if socket == nil {
			// The handshake sees closing and refuses; if it got past its
			// last check already, attach closes the socket.
			c.closeReq = &d
		}
		c.mu.Unlock()
		if socket != nil {
			go writeClose(socket, d)
		}
	})
}

// writeClose sends d's close frame and closes the socket. The deadline also
// ends a write blocked on a client that does not read, which holds gws's
// write lock.
func writeClose(socket *gws.Conn, d wire.Disconnect) {
	_ = socket.SetWriteDeadline(time.Now().Add(time.Second))
	_ = socket.WriteClose(d.Code, []byte(d.Reason))
	_ = socket.NetConn().Close()
}

// PostSettled implements actors.Sink: one message frame's place is free.
func (c *conn) PostSettled() {
	c.mu.Lock()
	c.unsettled--
	c.mu.Unlock()
	c.signal()
}

// signal wakes the read goroutine if it waits (see waitForRoom).
func (c *conn) signal() {
	c.mu.Lock()
	w := c.wake
	c.mu.Unlock()
	if w != nil {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// waitForRoom counts one more unsettled message frame, first waiting while
// max are unsettled. It reports false when the socket closes meanwhile or
// when no frame settled for stall (the socket is then closed).
func (c *conn) waitForRoom(max int, stall time.Duration) bool {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	c.mu.Lock()
	for c.unsettled >= max {
		if c.wake == nil {
			c.wake = make(chan struct{}, 1)
		}
		w := c.wake
		c.mu.Unlock()
		if c.closing.Load() {
			return false
		}
		if timer == nil {
			timer = time.NewTimer(stall)
		}
		select {
		case <-w:
		case <-timer.C:
			c.server.logger.Warn("no post settled in time: closing", "conn_id", c.id, "user_id", c.userID, "stall", stall)
			c.Close(wire.DisconnectUnavailable)
			return false
		}
		c.mu.Lock()
	}
	c.unsettled++
	c.mu.Unlock()
	return !c.closing.Load()
}

// expireAt arranges for the socket to close at t, when its token expires
// (replacing an earlier expiry).
func (c *conn) expireAt(t time.Time) {
	d := time.Until(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expiry == nil {
		c.expiry = time.AfterFunc(d, c.expired)
		return
	}
	c.expiry.Reset(d)
}

// expired closes the socket whose token expired: grainchat.v1 clients get an
// error frame first. The close is queued behind the frames already queued
// (gws runs a socket's write jobs in order).
func (c *conn) expired() {
	if c.v1 {
		c.Write(wire.ErrorFrame(&wire.Error{Code: wire.CodeTokenExpired,
			Message: "the token expired; reconnect with a fresh one, or send an auth frame before expiry"}))
	}
	c.mu.Lock()
	socket := c.socket
	c.mu.Unlock()
	socket.Async(func() { c.Close(wire.DisconnectTokenExpired) })
}

// closed records that the socket is gone: waits end, the expiry is off.
func (c *conn) closed() {
	c.closing.Store(true)
	c.signal()
	c.mu.Lock()
	expiry := c.expiry
	c.mu.Unlock()
	if expiry != nil {
		expiry.Stop()
	}
}

// full reports whether max message frames are unsettled.
func (c *conn) full(max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unsettled >= max
}

// wait blocks for d unless the socket closes first; it reports whether the
// socket is still open.
func (c *conn) wait(d time.Duration) bool {
	c.mu.Lock()
	if c.wake == nil {
		c.wake = make(chan struct{}, 1)
	}
	w := c.wake
	c.mu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for !c.closing.Load() {
		select {
		case <-timer.C:
			return !c.closing.Load()
		case <-w: // a settled post or the close: check again
		}
	}
	return false
}

func (c *conn) ping() {
	c.mu.Lock()
	socket, full := c.socket, len(c.pending) >= c.maxQueued
	c.mu.Unlock()
	if c.closing.Load() || socket == nil || full {
		return
	}
	socket.Async(func() {
		_ = socket.SetWriteDeadline(time.Now().Add(c.server.cfg.WriteTimeout))
		_ = socket.WritePing(nil)
	})
}
