package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"sync"
)

// frameConn is a socket's net.Conn as gws sees it, with writeFrames, which
// encodes the server's text frames itself and sends the frames queued for a
// client in as few system calls as fit in one pooled buffer: no per-frame
// copy and lock in gws, no buffer that grows with a burst.
//
// Every write holds mu and carries whole frames — gws's own (the handshake
// response, pongs, pings, the close frame: one Write call each) and
// writeFrames' — so frames are never interleaved. Once gws has written a
// close frame, writeFrames writes nothing more (RFC 6455 §5.5.1).
//
// While hold is set, the handshake response is kept (held) and goes out with
// whatever is written next — usually the welcome frame, in one system call
// (release sends it alone when nothing follows).
type frameConn struct {
	net.Conn
	mu     sync.Mutex
	closed bool // a close frame was written, or a write failed
	broken bool // a write of writeFrames failed
	hold   bool
	held   []byte
}

// errClosedFrame is writeFrames' error after the close frame; errBroken is
// Write's after a failed write of writeFrames.
var (
	errClosedFrame = errors.New("close frame sent")
	errBroken      = errors.New("connection broken by a failed write")
)

// frameBufferSize is the most one write system call carries from
// writeFrames; a bigger frame is sent on its own.
const frameBufferSize = 16 << 10

// frameBuffers holds writeFrames' buffers between flushes: an idle socket
// holds none.
var frameBuffers = sync.Pool{New: func() any { b := make([]byte, 0, frameBufferSize); return &b }}

// closeFrameByte starts every close frame gws writes (FIN, opcode 8); the
// handshake response starts with 'H'.
const closeFrameByte = 0x88

// switchingProtocols starts the only response frameConn holds: a refused
// upgrade's 400 goes out at once (gws closes the connection right after).
var switchingProtocols = []byte("HTTP/1.1 101 ")

// Write is gws's path to the network.
func (c *frameConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken {
		return 0, errBroken
	}
	if c.hold && c.held == nil && bytes.HasPrefix(p, switchingProtocols) {
		c.held = append([]byte(nil), p...) // the handshake response
		return len(p), nil
	}
	if len(p) > 0 && p[0] == closeFrameByte {
		c.closed = true
	}
	if c.held != nil {
		buf := append(c.takeHeld(), p...)
		if _, err := c.Conn.Write(buf); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// takeHeld returns the held handshake response and stops holding.
func (c *frameConn) takeHeld() []byte {
	h := c.held
	c.hold, c.held = false, nil
	return h
}

// release sends the held handshake response, unless a write took it along
// already, and stops holding.
func (c *frameConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.takeHeld()
	if len(h) == 0 {
		return nil
	}
	_, err := c.Conn.Write(h)
	if err != nil {
		c.closed, c.broken = true, true
	}
	return err
}

// writeFrames writes each payload as an unmasked, unfragmented text frame, in
// order, and returns how many it wrote. It does not check the payloads as gws
// does: they must be valid UTF-8, which the wire encoders' output is (they
// escape invalid bytes as encoding/json does; FuzzEncodersMatchJSON checks
// it), and are far below any frame limit. After a failed write (possibly
// part of a frame) nothing more is written: the caller closes the socket.
func (c *frameConn) writeFrames(payloads [][]byte) (int, error) {
	bp := frameBuffers.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() {
		*bp = buf[:0]
		frameBuffers.Put(bp)
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, errClosedFrame
	}
	if c.held != nil {
		buf = append(buf, c.takeHeld()...)
	}
	n, err := c.writeLocked(payloads, buf)
	if err != nil {
		// Part of a frame may have gone out: nothing may follow it.
		c.closed, c.broken = true, true
	}
	return n, err
}

// writeLocked is writeFrames under c.mu, packing frames into buf.
func (c *frameConn) writeLocked(payloads [][]byte, buf []byte) (int, error) {
	written, buffered := 0, 0
	for _, p := range payloads {
		size := frameHeaderSize(len(p)) + len(p)
		if len(buf)+size > cap(buf) && len(buf) > 0 {
			if _, err := c.Conn.Write(buf); err != nil {
				return written, err
			}
			written += buffered
			buf, buffered = buf[:0], 0
		}
		if size > cap(buf) {
			// Bigger than the buffer: header and payload in one writev.
			bufs := net.Buffers{textFrameHeader(nil, len(p)), p}
			if _, err := bufs.WriteTo(c.Conn); err != nil {
				return written, err
			}
			written++
			continue
		}
		buf = textFrameHeader(buf, len(p))
		buf = append(buf, p...)
		buffered++
	}
	if len(buf) > 0 {
		if _, err := c.Conn.Write(buf); err != nil {
			return written, err
		}
		written += buffered
	}
	return written, nil
}

// frameHeaderSize is the length of textFrameHeader's header for n bytes.
func frameHeaderSize(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	default:
		return 10
	}
}

// textFrameHeader appends the header of a final, unmasked text frame with a
// payload of n bytes (RFC 6455 §5.2).
func textFrameHeader(dst []byte, n int) []byte {
	const finText = 0x81
	switch {
	case n < 126:
		return append(dst, finText, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, finText, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, finText, 127), uint64(n))
	}
}
