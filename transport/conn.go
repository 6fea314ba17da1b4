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
)

// Close codes of the transport (see docs/PROTOCOL.md).
const (
	CloseGoingAway    = 1001 // the server is shutting down: reconnect elsewhere
	ClosePolicy       = 1008 // the client broke a rule the protocol cannot express otherwise
	CloseSlowConsumer = 4008 // the client did not read fast enough; reconnect and resume by seq
)

// conn is one WebSocket: it implements actors.Sink with a bounded write queue.
//
// Frames wait in pending; one flush job at a time (in gws's write queue, so
// never concurrently with another write job) takes all of them and writes
// them through frameConn.writeFrames: a burst of frames for one client is one
// system call.
type conn struct {
	id     string
	server *Server
	userID int64
	user   *userState
	// maxQueued bounds the frames waiting to be written.
	maxQueued int
	pid       *actor.PID
	v1        bool

	mu sync.Mutex
	// socket is nil until the handshake completes; frames written before
	// wait in pending and are flushed by attach.
	socket   *gws.Conn
	net      *frameConn
	pending  [][]byte
	spare    [][]byte // the last written queue's slice, emptied, for reuse
	flushing bool     // a flush job is scheduled or running

	closing atomic.Bool
	once    sync.Once
}

var _ actors.Sink = (*conn)(nil)

var connSeq atomic.Uint64

func newConnID() string { return strconv.FormatUint(connSeq.Add(1), 36) }

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
		c.Close(CloseSlowConsumer, "slow consumer: reconnect and resume")
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

// attach binds the upgraded socket and flushes the frames written before.
func (c *conn) attach(socket *gws.Conn, nc *frameConn) {
	c.mu.Lock()
	c.socket, c.net = socket, nc
	schedule := len(c.pending) > 0 && !c.flushing
	if schedule {
		c.flushing = true
	}
	c.mu.Unlock()
	if schedule {
		socket.Async(c.flush)
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

// Close sends a close frame with code and reason, then closes the socket. It
// is idempotent and never blocks the caller.
func (c *conn) Close(code uint16, reason string) {
	c.once.Do(func() {
		c.closing.Store(true)
		c.mu.Lock()
		socket := c.socket
		c.mu.Unlock()
		if socket == nil {
			return // the handshake sees closing and refuses
		}
		go func() {
			// The deadline also ends a write blocked on a client that does
			// not read, which holds gws's write lock.
			_ = socket.SetWriteDeadline(time.Now().Add(time.Second))
			_ = socket.WriteClose(code, []byte(reason))
			_ = socket.NetConn().Close()
		}()
	})
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
