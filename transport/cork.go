package transport

import (
	"net"
	"sync"
)

// corkConn is a socket's net.Conn as gws sees it. While it is corked, what
// gws writes (whole frames, each under gws's write lock) is collected in a
// buffer, and uncork sends it with one write: the frames queued for a client
// cost one system call instead of one each. Writes while not corked (pongs
// from the read loop, close frames) go straight to the network, after what
// was collected, so frames are never reordered or interleaved.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

// corkBuffers recycles the buffers of corked writes: an idle socket holds
// none.
var corkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledCork keeps buffers grown by a big burst out of the pool.
const maxPooledCork = 64 << 10

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// cork starts collecting writes.
func (c *corkConn) cork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		c.corked = true
		c.buf = (*corkBuffers.Get().(*[]byte))[:0]
	}
}

// uncork writes what was collected, in one write, and stops collecting.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *corkConn) flushLocked() error {
	if !c.corked {
		return nil
	}
	c.corked = false
	buf := c.buf
	c.buf = nil
	var err error
	if len(buf) > 0 {
		_, err = c.Conn.Write(buf)
	}
	if cap(buf) <= maxPooledCork {
		buf = buf[:0]
		corkBuffers.Put(&buf)
	}
	return err
}

// Close writes what was collected (a close frame among it) before closing.
func (c *corkConn) Close() error {
	c.mu.Lock()
	_ = c.flushLocked()
	c.mu.Unlock()
	return c.Conn.Close()
}
