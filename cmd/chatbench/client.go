package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lxzan/gws"

	"github.com/grainchat/grainchat/transport/wire"
)

// frame is the part of a server frame chatbench reads; decodeFrame (in
// frame.go) decodes it. Of the message text chatbench only needs the send
// time it ends with.
type frame struct {
	Type           string       `json:"type"`
	Code           string       `json:"code"`
	ConversationID int64        `json:"conversation_id"`
	Seq            int64        `json:"seq"`
	LastSeq        int64        `json:"last_seq"`
	SenderIsAdmin  bool         `json:"sender_is_admin"`
	ClientMsgID    string       `json:"client_msg_id"`
	Duplicate      bool         `json:"duplicate"`
	Conversations  []inboxEntry `json:"conversations"`

	// sentAt is parseSentAt of the message text; timed reports whether
	// the text ended with a send time.
	sentAt time.Time
	timed  bool
}

type inboxEntry struct {
	ConversationID int64 `json:"conversation_id"`
	LastSeq        int64 `json:"last_seq"`
}

// msgKey names a stored message.
type msgKey struct{ conv, seq int64 }

// identity is who a connection authenticates as.
type identity struct {
	sub, name string
	admin     bool
	idx       int // admins: which admin; visitors: which user
}

// client is one WebSocket connection and what arrived on it. Its handlers
// run on the connection's read goroutine.
type client struct {
	b     *bench
	id    identity
	conn  *gws.Conn
	start time.Time // when the dial began

	welcomed chan struct{} // closed once the welcome frame arrived
	closed   chan struct{} // closed when the connection ended
	notify   chan struct{} // signalled after each ack, error, message and the close
	window   chan struct{} // flat out: a slot per unacknowledged message
	closing  atomic.Bool   // we are closing it: its end is expected
	once     sync.Once

	conv int64 // visitors: their conversation, set before welcomed is closed (seed: see seedState)

	opened atomic.Int64 // admins: opened frames received (--open-per-admin)

	seed *seedState // the seed dialect's state; nil in v1

	mu         sync.Mutex
	last       map[int64]int64      // conversation → last seq delivered on this connection
	seen       seenSet              // the messages delivered on this connection
	pending    map[string]time.Time // client_msg_id → sent at
	own        []msgKey             // this connection's own acknowledged messages
	replyQueue []int64              // admins: replies waiting for room under maxPending
	closeCode  int                  // the server's close code when it closed the connection
	lat        latencies
}

// latencies are the durations one connection measured.
type latencies struct {
	ack, userToAdmin, adminToUser []time.Duration
	// The same, of the messages sent after --warmup (when set).
	ackSteady, userToAdminSteady, adminToUserSteady []time.Duration
	// The same, of each conversation's first message (seq 1), whose post
	// activates the conversation's grain.
	ackFirst, userToAdminFirst []time.Duration
}

func (l *latencies) add(o latencies) {
	l.ack = append(l.ack, o.ack...)
	l.userToAdmin = append(l.userToAdmin, o.userToAdmin...)
	l.adminToUser = append(l.adminToUser, o.adminToUser...)
	l.ackSteady = append(l.ackSteady, o.ackSteady...)
	l.userToAdminSteady = append(l.userToAdminSteady, o.userToAdminSteady...)
	l.adminToUserSteady = append(l.adminToUserSteady, o.adminToUserSteady...)
	l.ackFirst = append(l.ackFirst, o.ackFirst...)
	l.userToAdminFirst = append(l.userToAdminFirst, o.userToAdminFirst...)
}

// dialError is a failed connection attempt with a short class for the
// report ("http 503", "timeout", "refused", …).
type dialError struct {
	class string
	err   error
}

func (e *dialError) Error() string { return e.class + ": " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dialTimeout bounds the TCP connect and HTTP upgrade, and separately the
// wait for the welcome frame.
const dialTimeout = 30 * time.Second

// dial connects as id and waits for the welcome frame (visitors) or the
// inbox (admins, whose welcome comes first).
func (b *bench) dial(ctx context.Context, id identity) (*client, error) {
	tok, err := b.token(id)
	if err != nil {
		return nil, err
	}
	c := &client{b: b, id: id, start: time.Now(), welcomed: make(chan struct{}), closed: make(chan struct{}),
		notify: make(chan struct{}, 1), last: map[int64]int64{}, pending: map[string]time.Time{}}
	if !id.admin && b.o.rate == 0 && b.o.window > 0 && (b.o.scenario == scenarioChat || b.o.scenario == scenarioAdmins) {
		c.window = make(chan struct{}, b.o.window)
	}
	h := map[string][]string{"Authorization": {"Bearer " + tok}, "Sec-WebSocket-Protocol": {wire.Subprotocol}}
	if b.o.dialect == dialectSeed {
		// No subprotocol: the seed dialect, whose only frames are messages.
		delete(h, "Sec-WebSocket-Protocol")
		c.seed = newSeedState()
	}
	conn, resp, err := gws.NewClient(c, &gws.ClientOption{Addr: b.o.url, RequestHeader: h,
		HandshakeTimeout: dialTimeout, ReadBufferSize: 2048})
	if err != nil {
		class := classify(err)
		if resp != nil && resp.StatusCode != 101 {
			class = "http " + strconv.Itoa(resp.StatusCode)
		}
		return nil, &dialError{class, err}
	}
	c.conn = conn
	if c.seed != nil {
		// No welcome in seed: the server subscribed the socket before it
		// answered the upgrade, so it is ready now.
		if id.admin {
			c.seed.startReplier(c)
		}
		c.markWelcomed()
	}
	go conn.ReadLoop()
	t := time.NewTimer(dialTimeout)
	defer t.Stop()
	select {
	case <-c.welcomed:
		return c, nil
	case <-c.closed:
		return nil, &dialError{"closed before welcome", fmt.Errorf("%s: the server closed the connection (code %d)", id.sub, c.code())}
	case <-t.C:
		c.close()
		return nil, &dialError{"timeout", fmt.Errorf("%s: no welcome within %v", id.sub, dialTimeout)}
	case <-ctx.Done():
		c.close()
		return nil, ctx.Err()
	}
}

// classify names a dial error's cause.
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no free local port"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other"
}

// close closes the connection from our side; its end is then expected.
func (c *client) close() {
	c.closing.Store(true)
	_ = c.conn.WriteClose(1000, nil)
}

// ended reports whether the connection has ended.
func (c *client) ended() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func (c *client) code() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode
}

func (c *client) signal() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// OnOpen implements gws.Event.
func (c *client) OnOpen(*gws.Conn) {}

// OnPing implements gws.Event: it answers with a pong, as browsers do.
func (c *client) OnPing(conn *gws.Conn, p []byte) { _ = conn.WritePong(p) }

// OnPong implements gws.Event.
func (c *client) OnPong(*gws.Conn, []byte) {}

// OnClose implements gws.Event. A connection that ends without our asking is
// counted as closed early, by close code.
func (c *client) OnClose(_ *gws.Conn, err error) {
	code := 0
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		code = int(ce.Code)
	}
	c.mu.Lock()
	c.closeCode = code
	c.mu.Unlock()
	if !c.closing.Load() && !c.b.finished.Load() {
		c.b.closedEarly(code)
	}
	c.once.Do(func() { close(c.closed) })
	if c.seed != nil {
		c.seed.stopReplier()
	}
	c.signal()
}

// OnMessage implements gws.Event.
func (c *client) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	c.handle(m.Bytes())
}

// inboxUpdatePrefix starts every inbox_update frame chatd sends.
const inboxUpdatePrefix = `{"type":"inbox_update",`

// handle reads one server frame.
func (c *client) handle(data []byte) {
	if c.seed != nil {
		c.handleSeed(data)
		return
	}
	if len(data) >= len(inboxUpdatePrefix) && string(data[:len(inboxUpdatePrefix)]) == inboxUpdatePrefix {
		// Staff get one per message; chatbench counts messages by their
		// message frames and does not read these (decoding their nested
		// objects took a fifth of chatbench's CPU).
		return
	}
	f, err := decodeFrame(data)
	if err != nil {
		c.b.badFrames.Add(1)
		return
	}
	now := time.Now()
	switch f.Type {
	case "welcome":
		if !c.id.admin {
			c.conv = f.ConversationID
			c.mu.Lock()
			c.last[f.ConversationID] = f.LastSeq
			c.mu.Unlock()
			c.markWelcomed()
		}
	case "inbox":
		c.mu.Lock()
		for _, e := range f.Conversations {
			if _, ok := c.last[e.ConversationID]; !ok {
				c.last[e.ConversationID] = e.LastSeq
			}
		}
		c.mu.Unlock()
		if c.id.admin {
			c.markWelcomed()
		}
	case "ack":
		c.onAck(f, now)
	case "error":
		c.mu.Lock()
		_, ok := c.pending[f.ClientMsgID]
		delete(c.pending, f.ClientMsgID)
		c.mu.Unlock()
		c.b.refused(f.Code)
		if ok {
			c.freeSlot()
			if c.id.admin {
				c.sendQueued()
			}
		}
		c.signal()
	case "message":
		c.onMessage(f, now)
		c.signal()
	case "opened":
		c.opened.Add(1)
		c.signal()
	case "typing":
		c.b.typingReceived.Add(1)
	}
}

// markWelcomed closes welcomed once; only the read goroutine calls it.
func (c *client) markWelcomed() {
	select {
	case <-c.welcomed:
	default:
		close(c.welcomed)
	}
}

func (c *client) freeSlot() {
	if c.window == nil {
		return
	}
	select {
	case <-c.window:
	default:
	}
}

func (c *client) onAck(f frame, now time.Time) {
	k := msgKey{f.ConversationID, f.Seq}
	c.mu.Lock()
	sentAt, ok := c.pending[f.ClientMsgID]
	delete(c.pending, f.ClientMsgID)
	if ok {
		c.own = append(c.own, k)
		c.lat.ack = append(c.lat.ack, now.Sub(sentAt))
		if c.b.steady(sentAt) {
			c.lat.ackSteady = append(c.lat.ackSteady, now.Sub(sentAt))
		}
		if f.Seq == 1 {
			c.lat.ackFirst = append(c.lat.ackFirst, now.Sub(sentAt))
		}
	}
	c.mu.Unlock()
	if ok {
		c.b.acknowledged(k, c.id.admin, f.Duplicate)
		c.freeSlot()
		if c.id.admin {
			c.sendQueued()
		}
	}
	c.signal()
}

func (c *client) onMessage(f frame, now time.Time) {
	k := msgKey{f.ConversationID, f.Seq}
	sentAt, timed := f.sentAt, f.timed
	c.mu.Lock()
	dup := !c.seen.add(k)
	last, known := c.last[f.ConversationID]
	if !dup {
		c.last[f.ConversationID] = max(last, f.Seq)
		if timed {
			switch {
			case c.id.admin && !f.SenderIsAdmin:
				c.lat.userToAdmin = append(c.lat.userToAdmin, now.Sub(sentAt))
				if c.b.steady(sentAt) {
					c.lat.userToAdminSteady = append(c.lat.userToAdminSteady, now.Sub(sentAt))
				}
				if f.Seq == 1 {
					c.lat.userToAdminFirst = append(c.lat.userToAdminFirst, now.Sub(sentAt))
				}
				if d := now.Sub(sentAt); c.b.o.slowLog != "" && d > c.b.o.slowOver {
					c.b.noteSlow(sentAt, d)
				}
			case !c.id.admin && f.SenderIsAdmin:
				c.lat.adminToUser = append(c.lat.adminToUser, now.Sub(sentAt))
				if c.b.steady(sentAt) {
					c.lat.adminToUserSteady = append(c.lat.adminToUserSteady, now.Sub(sentAt))
				}
			}
		}
	}
	c.mu.Unlock()
	switch {
	case dup:
		c.b.dups.Add(1)
		return
	case known && f.Seq != last+1:
		// Per connection and conversation, seqs follow the welcome's (or
		// the inbox's) last_seq one by one: a skip is a gap, anything
		// lower is out of order.
		c.b.outOfOrder.Add(1)
	}
	c.b.delivered.Add(1)
	b := c.b
	if c.id.admin && !f.SenderIsAdmin && b.o.replyEvery > 0 && f.Seq%int64(b.o.replyEvery) == 0 &&
		int(f.ConversationID%int64(b.o.admins)) == c.id.idx && !b.stopReplies.Load() {
		c.reply(f.ConversationID)
	}
}

// maxPending is how many posts of one socket the server lets await their
// ack (it reads no more until one settles; older servers refused them with
// too_many_pending).
const maxPending = 64

// reply posts an admin's reply into conv, or queues it while maxPending
// posts await their ack, as a client that respects the limit would.
func (c *client) reply(conv int64) {
	c.mu.Lock()
	full := len(c.pending) >= maxPending
	if full {
		c.replyQueue = append(c.replyQueue, conv)
	}
	c.mu.Unlock()
	if !full {
		c.send(conv, "reply")
	}
}

// sendQueued sends queued replies while the window has room; it runs on the
// read goroutine after each ack or error.
func (c *client) sendQueued() {
	for {
		c.mu.Lock()
		if len(c.replyQueue) == 0 || len(c.pending) >= maxPending || c.b.stopReplies.Load() {
			c.mu.Unlock()
			return
		}
		conv := c.replyQueue[0]
		c.replyQueue = c.replyQueue[1:]
		c.mu.Unlock()
		c.send(conv, "reply")
	}
}

// Message bodies: "<kind> <client_msg_id> t=<unix nanoseconds of the send>".
func body(kind, id string, at time.Time) string {
	return kind + " " + id + " t=" + strconv.FormatInt(at.UnixNano(), 10)
}

func parseSentAt(s string) (time.Time, bool) {
	i := strings.LastIndex(s, " t=")
	if i < 0 {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(s[i+3:], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// send posts one message: visitors into their conversation, admins into
// conv. It does not wait.
func (c *client) send(conv int64, kind string) {
	id := c.b.nextID()
	now := time.Now()
	data := make([]byte, 0, 128)
	data = append(data, `{"message":`...)
	data = strconv.AppendQuote(data, body(kind, id, now))
	data = append(data, `,"client_msg_id":`...)
	data = strconv.AppendQuote(data, id)
	if c.id.admin {
		data = append(data, `,"conversation_id":`...)
		data = strconv.AppendInt(data, conv, 10)
	}
	data = append(data, '}')
	c.mu.Lock()
	c.pending[id] = now
	c.mu.Unlock()
	if c.id.admin {
		c.b.replies.Add(1)
	} else {
		c.b.sent.Add(1)
	}
	c.conn.WriteAsync(gws.OpcodeText, data, nil)
}

// pendingCount is how many of this connection's messages await their ack.
func (c *client) pendingCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// ownMissing counts this connection's own acknowledged messages that did not
// come back to it.
func (c *client) ownMissing() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, k := range c.own {
		if !c.seen.has(k) {
			n++
		}
	}
	return n
}

// missingOf counts the keys not delivered on this connection.
func (c *client) missingOf(keys []msgKey) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, k := range keys {
		if !c.seen.has(k) {
			n++
		}
	}
	return n
}

// seenCount is how many distinct messages arrived on this connection.
func (c *client) seenCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen.len()
}

// takeLatencies returns the connection's latencies and forgets them.
func (c *client) takeLatencies() latencies {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lat
	c.lat = latencies{}
	return l
}

// waitUntil waits until cond holds (checked after every frame), the timeout
// passes or ctx ends; it reports whether cond held.
func (c *client) waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for !cond() {
		select {
		case <-c.notify:
		case <-t.C:
			return cond()
		case <-ctx.Done():
			return cond()
		}
	}
	return true
}
