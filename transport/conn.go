package transport

import (
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
type conn struct {
	id string
	// socket is nil until the handshake completes; frames written before are
	// kept in early and flushed by attach.
	mu       sync.Mutex
	socket   *gws.Conn
	early    [][]byte
	attached atomic.Bool
	server   *Server
	userID   int64
	user     *userState
	// maxQueued bounds the frames waiting to be written.
	maxQueued int
	pid       *actor.PID
	v1        bool
	queued    atomic.Int32
	closing   atomic.Bool
	once      sync.Once
}

var _ actors.Sink = (*conn)(nil)

var connSeq atomic.Uint64

func newConnID() string { return strconv.FormatUint(connSeq.Add(1), 36) }

// Write queues frame. When more than the configured number of frames are
// queued, the client is not reading: it is closed with CloseSlowConsumer.
func (c *conn) Write(frame []byte) {
	if c.closing.Load() {
		return
	}
	if !c.attached.Load() && c.writeEarly(frame) {
		return
	}
	c.send(frame)
}

// writeEarly keeps frame for attach; false when the socket is attached.
func (c *conn) writeEarly(frame []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.socket != nil {
		return false
	}
	if len(c.early) < c.maxQueued {
		c.early = append(c.early, frame)
	}
	return true
}

// attach binds the upgraded socket and flushes the frames written before.
func (c *conn) attach(socket *gws.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.socket = socket
	for _, f := range c.early {
		c.send(f)
	}
	c.early = nil
	c.attached.Store(true)
}

func (c *conn) send(frame []byte) {
	if int(c.queued.Add(1)) > c.maxQueued {
		c.queued.Add(-1)
		c.server.metrics.SlowConsumer()
		c.Close(CloseSlowConsumer, "slow consumer: reconnect and resume")
		return
	}
	c.socket.Async(func() {
		defer c.queued.Add(-1)
		if c.closing.Load() {
			return
		}
		_ = c.socket.SetWriteDeadline(time.Now().Add(c.server.cfg.WriteTimeout))
		if err := c.socket.WriteMessage(gws.OpcodeText, frame); err == nil {
			c.server.metrics.FrameOut()
		}
	})
}

// Close sends a close frame with code and reason, then closes the socket. It
// is idempotent and never blocks the caller.
func (c *conn) Close(code uint16, reason string) {
	c.once.Do(func() {
		c.closing.Store(true)
		if !c.attached.Load() {
			return // the handshake sees closing and refuses
		}
		go func() {
			_ = c.socket.SetWriteDeadline(time.Now().Add(time.Second))
			_ = c.socket.WriteClose(code, []byte(reason))
			_ = c.socket.NetConn().Close()
		}()
	})
}

func (c *conn) ping() {
	if c.closing.Load() || int(c.queued.Load()) >= c.maxQueued {
		return
	}
	c.queued.Add(1)
	c.socket.Async(func() {
		defer c.queued.Add(-1)
		_ = c.socket.SetWriteDeadline(time.Now().Add(c.server.cfg.WriteTimeout))
		_ = c.socket.WritePing(nil)
	})
}
