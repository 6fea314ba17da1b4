// Package bidi is a small, test-only WebDriver BiDi client for driving
// Firefox without geckodriver: Start runs a headless Firefox with a fresh
// profile whose preferences keep it off the network, connects to the BiDi
// endpoint Firefox itself serves (--remote-debugging-port) and opens a
// session; Browser, Page and Subscription wrap the few commands and events
// grainchat's browser tests use (user contexts, windows, navigation, script,
// viewport, screenshots, keyboard and mouse input, cookies, log entries).
//
// The protocol is the W3C WebDriver BiDi specification
// (https://w3c.github.io/webdriver-bidi/): JSON commands {id, method, params}
// over a WebSocket, answered by {type: "success"|"error", id, …}, and events
// {type: "event", method, params} for what the session subscribed to.
//
// Every call takes a context; a context without a deadline gets
// DefaultTimeout. Conn, Browser and Page are safe for concurrent use.
// Nothing here knows about testing.T.
package bidi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/lxzan/gws"
)

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// maxMessageBytes bounds one message from the browser (a screenshot of a
// large page is a few MiB of base64).
const maxMessageBytes = 64 << 20

// maxQueuedEvents bounds the events a Subscription holds for its reader;
// beyond it the Subscription fails with ErrEventsDropped.
const maxQueuedEvents = 10000

// ErrClosed is returned by calls on a connection that has ended.
var ErrClosed = errors.New("bidi: connection closed")

// ErrEventsDropped is returned by Subscription.Next once the subscription's
// reader fell more than maxQueuedEvents events behind and events were lost.
var ErrEventsDropped = errors.New("bidi: subscription overflowed, events were dropped")

// Error is an error answer of the remote end: Code is the specification's
// error code ("no such frame", "invalid argument", "unknown error", …).
type Error struct {
	Method     string
	Code       string
	Message    string
	Stacktrace string
}

func (e *Error) Error() string {
	return fmt.Sprintf("bidi %s: %s: %s", e.Method, e.Code, e.Message)
}

// ErrorCode returns the specification's error code of err if it is (or
// wraps) an *Error, "" otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Event is one event the remote end sent.
type Event struct {
	Method string
	Params json.RawMessage
}

// message is any message of the remote end.
type message struct {
	Type       string          `json:"type"`
	ID         *uint64         `json:"id"`
	Result     json.RawMessage `json:"result"`
	Error      string          `json:"error"`
	Message    string          `json:"message"`
	Stacktrace string          `json:"stacktrace"`
	Method     string          `json:"method"`
	Params     json.RawMessage `json:"params"`
}

// Conn is a WebDriver BiDi connection: commands are matched to their answers
// by id, events go to every Subscription that listens for their method.
type Conn struct {
	ws *gws.Conn

	writeMu sync.Mutex // one frame at a time, each with its own write deadline

	mu        sync.Mutex
	nextID    uint64
	pending   map[uint64]chan *message
	listeners map[*Subscription]struct{}
	err       error // why the connection ended
	done      chan struct{}
}

// Dial connects to a BiDi WebSocket URL (ws://127.0.0.1:PORT/session). It
// does not open a session: see Conn.NewSession.
func Dial(ctx context.Context, url string) (*Conn, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	deadline, _ := ctx.Deadline()
	c := &Conn{
		pending:   map[uint64]chan *message{},
		listeners: map[*Subscription]struct{}{},
		done:      make(chan struct{}),
	}
	ws, _, err := gws.NewClient(&handler{c: c}, &gws.ClientOption{
		Addr:               url,
		HandshakeTimeout:   time.Until(deadline),
		ReadMaxPayloadSize: maxMessageBytes,
		NewDialer: func() (gws.Dialer, error) {
			return &net.Dialer{Deadline: deadline}, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("bidi: dial %s: %w", url, err)
	}
	c.ws = ws
	go ws.ReadLoop()
	return c, nil
}

// Call sends the command method with params (nil means {}) and decodes the
// result into result (unless nil). It returns an *Error when the remote end
// answers with an error, ErrClosed when the connection ends first, and the
// context's error when ctx ends first (the answer is then discarded).
func (c *Conn) Call(ctx context.Context, method string, params, result any) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if params == nil {
		params = struct{}{}
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("bidi %s: %w", method, err)
	}
	c.nextID++
	id := c.nextID
	ch := make(chan *message, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()

	b, err := json.Marshal(struct {
		ID     uint64 `json:"id"`
		Method string `json:"method"`
		Params any    `json:"params"`
	}{id, method, params})
	if err != nil {
		return fmt.Errorf("bidi %s: encode params: %w", method, err)
	}
	if err := c.write(ctx, b); err != nil {
		return fmt.Errorf("bidi %s: send: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Type == "error" {
			return &Error{Method: method, Code: m.Error, Message: m.Message, Stacktrace: m.Stacktrace}
		}
		if result != nil {
			if err := json.Unmarshal(m.Result, result); err != nil {
				return fmt.Errorf("bidi %s: decode result: %w (%.300s)", method, err, m.Result)
			}
		}
		return nil
	case <-c.done:
		return fmt.Errorf("bidi %s: %w", method, c.Err())
	case <-ctx.Done():
		return fmt.Errorf("bidi %s: %w", method, ctx.Err())
	}
}

// write sends one text frame, bounded by ctx's deadline.
func (c *Conn) write(ctx context.Context, b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	deadline, _ := ctx.Deadline()
	_ = c.ws.NetConn().SetWriteDeadline(deadline)
	defer func() { _ = c.ws.NetConn().SetWriteDeadline(time.Time{}) }()
	return c.ws.WriteMessage(gws.OpcodeText, b)
}

// Listen returns a Subscription that receives the events of the given
// methods ("log.entryAdded", …; none means every event) from now on. It
// only filters what arrives: the session must also subscribe to them (see
// Browser.Subscribe).
func (c *Conn) Listen(methods ...string) *Subscription {
	s := &Subscription{c: c, notify: make(chan struct{}, 1)}
	if len(methods) > 0 {
		s.methods = map[string]bool{}
		for _, m := range methods {
			s.methods[m] = true
		}
	}
	c.mu.Lock()
	c.listeners[s] = struct{}{}
	c.mu.Unlock()
	return s
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection ended (wrapping ErrClosed), nil while it is up.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection. It is idempotent.
func (c *Conn) Close() error {
	c.writeMu.Lock()
	_ = c.ws.NetConn().SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.ws.WriteClose(1000, nil)
	c.writeMu.Unlock()
	_ = c.ws.NetConn().Close()
	c.closed(ErrClosed)
	return nil
}

// closed records why the connection ended, once, and wakes every waiter.
func (c *Conn) closed(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	if !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("%w: %v", ErrClosed, err)
	}
	c.err = err
	close(c.done)
}

// dispatch routes one message: an answer to its caller, an event to its
// listeners. It runs on the reading goroutine, in arrival order.
func (c *Conn) dispatch(raw []byte) {
	var m message
	if err := json.Unmarshal(raw, &m); err != nil {
		return // not JSON: nothing can be waiting for it
	}
	switch {
	case m.Type == "event":
		ev := Event{Method: m.Method, Params: m.Params}
		c.mu.Lock()
		for s := range c.listeners {
			s.push(ev)
		}
		c.mu.Unlock()
	case m.ID != nil:
		c.mu.Lock()
		ch := c.pending[*m.ID]
		c.mu.Unlock()
		if ch != nil {
			ch <- &m // buffered, and each id is answered once
		}
	}
	// An error without an id answers a command that could not be parsed:
	// ours always parse, so there is no caller to tell.
}

// handler is the gws callback side of a Conn.
type handler struct {
	gws.BuiltinEventHandler
	c *Conn
}

func (h *handler) OnMessage(_ *gws.Conn, msg *gws.Message) {
	raw := append([]byte(nil), msg.Bytes()...) // msg's buffer is reused after Close
	_ = msg.Close()
	h.c.dispatch(raw)
}

func (h *handler) OnClose(_ *gws.Conn, err error) {
	if err == nil {
		err = ErrClosed
	}
	h.c.closed(err)
}

// Subscription is a queue of events for one reader (see Conn.Listen).
type Subscription struct {
	c       *Conn
	methods map[string]bool // nil: every method

	mu       sync.Mutex
	queue    []Event
	dropped  bool
	notify   chan struct{}
	isClosed bool
}

// push queues ev if the subscription wants it; called with c.mu held.
func (s *Subscription) push(ev Event) {
	if s.methods != nil && !s.methods[ev.Method] {
		return
	}
	s.mu.Lock()
	if len(s.queue) >= maxQueuedEvents {
		s.dropped = true
	} else {
		s.queue = append(s.queue, ev)
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Next returns the oldest queued event, waiting for one until ctx ends
// (DefaultTimeout if ctx has no deadline); queued events come first, so a
// done context drains the queue. It returns ErrEventsDropped once events
// were lost, ErrClosed after Close, and the connection's error when it has
// ended and nothing is queued.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	for {
		s.mu.Lock()
		switch {
		case s.isClosed:
			s.mu.Unlock()
			return Event{}, ErrClosed
		case s.dropped:
			s.mu.Unlock()
			return Event{}, ErrEventsDropped
		case len(s.queue) > 0:
			ev := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return ev, nil
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-s.c.done:
			s.mu.Lock()
			empty := len(s.queue) == 0
			s.mu.Unlock()
			if empty {
				return Event{}, s.c.Err()
			}
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Close stops the subscription's queue (the session stays subscribed; other
// Subscriptions still receive the events). It is idempotent.
func (s *Subscription) Close() {
	s.c.mu.Lock()
	delete(s.c.listeners, s)
	s.c.mu.Unlock()
	s.mu.Lock()
	s.isClosed = true
	s.queue = nil
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// withDefaultTimeout gives ctx DefaultTimeout unless it has a deadline.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}
