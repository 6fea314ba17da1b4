// Package wsclient is a small WebSocket client for grainchat's protocol, used
// by the tests and the load program. It keeps every received frame in order
// and lets the caller wait for frames with a deadline.
package wsclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/lxzan/gws"

	"github.com/grainchat/grainchat/transport/wire"
)

// Options configure Dial.
type Options struct {
	// Token is sent as "Authorization: Bearer"; empty sends none.
	Token string
	// V1 offers the grainchat.v1 subprotocol.
	V1 bool
	// Origin, when set, is sent as the Origin header.
	Origin string
	// Header holds extra handshake headers.
	Header http.Header
	// MaxFrameBytes bounds a received frame. Zero means 1 MiB.
	MaxFrameBytes int
}

// Frame is one received text frame.
type Frame struct {
	Raw []byte
	// Fields is Raw decoded as a JSON object.
	Fields map[string]any
	At     time.Time
}

// Type returns the frame's "type" field ("" for seed frames).
func (f Frame) Type() string { s, _ := f.Fields["type"].(string); return s }

// Int returns a numeric field as int64.
func (f Frame) Int(name string) int64 { n, _ := f.Fields[name].(float64); return int64(n) }

// String returns a string field.
func (f Frame) String(name string) string { s, _ := f.Fields[name].(string); return s }

// Closed describes how the connection ended.
type Closed struct {
	Code   uint16
	Reason string
	Err    error
}

// Client is one connection.
type Client struct {
	conn *gws.Conn
	Resp *http.Response

	mu       sync.Mutex
	frames   []Frame
	notify   chan struct{}
	closed   *Closed
	doneOnce sync.Once
	done     chan struct{}
}

// Dial connects to url (ws://host/ws/chat/).
func Dial(ctx context.Context, url string, opts Options) (*Client, error) {
	h := http.Header{}
	for k, v := range opts.Header {
		h[k] = v
	}
	if opts.Token != "" {
		h.Set("Authorization", "Bearer "+opts.Token)
	}
	if opts.Origin != "" {
		h.Set("Origin", opts.Origin)
	}
	if opts.V1 {
		h.Set("Sec-WebSocket-Protocol", wire.Subprotocol)
	}
	max := opts.MaxFrameBytes
	if max <= 0 {
		max = 1 << 20
	}
	c := &Client{notify: make(chan struct{}, 1), done: make(chan struct{})}
	deadline, ok := ctx.Deadline()
	timeout := 10 * time.Second
	if ok {
		timeout = time.Until(deadline)
	}
	conn, resp, err := gws.NewClient(c, &gws.ClientOption{
		Addr:               url,
		RequestHeader:      h,
		ReadMaxPayloadSize: max,
		HandshakeTimeout:   timeout,
	})
	c.Resp = resp
	if err != nil {
		return c, fmt.Errorf("dial %s: %w", url, err)
	}
	c.conn = conn
	go conn.ReadLoop()
	return c, nil
}

// Send writes v as a JSON text frame.
func (c *Client) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.conn.WriteMessage(gws.OpcodeText, b)
}

// SendRaw writes a frame with the given opcode as it is.
func (c *Client) SendRaw(op gws.Opcode, b []byte) error { return c.conn.WriteMessage(op, b) }

// Ping sends a ping with payload.
func (c *Client) Ping(payload []byte) error { return c.conn.WritePing(payload) }

// Close closes the connection normally.
func (c *Client) Close() {
	if c.conn != nil {
		_ = c.conn.WriteClose(1000, nil)
		_ = c.conn.NetConn().Close()
	}
}

// Frames returns a copy of every frame received so far.
func (c *Client) Frames() []Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Frame(nil), c.frames...)
}

// WaitFor returns the first frame from index from on for which match is true,
// and its index, waiting until ctx ends.
func (c *Client) WaitFor(ctx context.Context, from int, match func(Frame) bool) (Frame, int, error) {
	for {
		c.mu.Lock()
		for i := from; i < len(c.frames); i++ {
			if match(c.frames[i]) {
				f := c.frames[i]
				c.mu.Unlock()
				return f, i, nil
			}
		}
		from = max(from, len(c.frames))
		closed := c.closed
		c.mu.Unlock()
		if closed != nil {
			return Frame{}, -1, fmt.Errorf("connection closed (code %d %q): %w", closed.Code, closed.Reason, errConnClosed)
		}
		select {
		case <-ctx.Done():
			return Frame{}, -1, fmt.Errorf("waiting for a frame: %w", ctx.Err())
		case <-c.notify:
		case <-c.done:
		}
	}
}

var errConnClosed = errors.New("closed")

// WaitClosed waits until the connection ends and tells how.
func (c *Client) WaitClosed(ctx context.Context) (Closed, error) {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return *c.closed, nil
	case <-ctx.Done():
		return Closed{}, ctx.Err()
	}
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// OnOpen implements gws.Event.
func (c *Client) OnOpen(*gws.Conn) {}

// OnClose implements gws.Event.
func (c *Client) OnClose(_ *gws.Conn, err error) {
	cl := &Closed{Err: err}
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		cl.Code = ce.Code
		cl.Reason = string(ce.Reason)
	}
	c.mu.Lock()
	c.closed = cl
	c.mu.Unlock()
	c.doneOnce.Do(func() { close(c.done) })
}

// OnPing implements gws.Event.
func (c *Client) OnPing(conn *gws.Conn, payload []byte) { _ = conn.WritePong(payload) }

// OnPong implements gws.Event.
func (c *Client) OnPong(*gws.Conn, []byte) {}

// OnMessage implements gws.Event.
func (c *Client) OnMessage(_ *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	raw := append([]byte(nil), msg.Bytes()...)
	f := Frame{Raw: raw, At: time.Now()}
	_ = json.Unmarshal(raw, &f.Fields)
	c.mu.Lock()
	c.frames = append(c.frames, f)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}
