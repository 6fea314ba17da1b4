package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// The seed dialect (--dialect seed): connections offer no subprotocol, so
// the server sends them only message frames ({message, sender_id,
// sender_name, sender_is_admin, conversation_id}: no seq, no ack, no error).
// chatbench then numbers each sender's messages in their text and checks, on
// every receiving socket, that each sender's messages arrive once each, in
// the order sent, with none missing:
//
//	visitor message: "seed <run> u<visitor> <n> t=<unix ns>"            n = 1, 2, … per visitor
//	admin reply:     "reply <run> a<admin> c<conversation> <n> t=<ns>"   n = 1, 2, … per admin and conversation
//
// A visitor message must come back to its visitor (that is how a seed
// client learns it was stored: the server delivers only what it stored) and
// reach every admin; a reply must come back to its admin and reach every
// admin and the conversation's visitor. Admins reply as in v1 (every
// --reply-every'th message of a conversation, the admin conversation_id mod
// admins), from a goroutine of their own, so that a slow write never stops
// their reading.

// streamKey names one sender's numbered messages.
type streamKey struct {
	admin bool
	idx   int   // the sending visitor or admin
	conv  int64 // replies: their conversation; visitor messages: 0
}

// stream is what one socket received of one sender's messages.
type stream struct {
	last int64   // highest number received
	seen seenSet // numbers received, as msgKey{0, n}
}

// seedState is a seed connection's state besides client's. streams, conv
// and replies are guarded by the client's mu.
type seedState struct {
	streams map[streamKey]*stream
	conv    int64           // visitors: their conversation, from their first message back
	sent    int64           // visitors: messages written
	replies map[int64]int64 // admins: replies written per conversation

	qmu      sync.Mutex
	queue    []int64       // admins: conversations to reply into
	inFlight atomic.Int64  // admins: replies queued and not yet written (or dropped)
	wake     chan struct{} // signalled when queue grows
	stop     chan struct{} // closed when the connection ends
	once     sync.Once
}

func newSeedState() *seedState {
	return &seedState{streams: map[streamKey]*stream{}, replies: map[int64]int64{},
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

// seedBody is the text of a seed message; kind is "seed" or "reply".
func seedBody(kind, run, sender string, conv, n int64, at time.Time) string {
	var sb strings.Builder
	sb.Grow(64)
	sb.WriteString(kind)
	sb.WriteByte(' ')
	sb.WriteString(run)
	sb.WriteByte(' ')
	sb.WriteString(sender)
	if conv != 0 {
		sb.WriteString(" c")
		sb.WriteString(strconv.FormatInt(conv, 10))
	}
	sb.WriteByte(' ')
	sb.WriteString(strconv.FormatInt(n, 10))
	sb.WriteString(" t=")
	sb.WriteString(strconv.FormatInt(at.UnixNano(), 10))
	return sb.String()
}

// parseSeedBody reads a seedBody of run; ok is false for anything else
// (another run's messages, other clients').
func parseSeedBody(s, run string) (k streamKey, n int64, at time.Time, ok bool) {
	f := strings.Fields(s)
	if len(f) < 5 || f[1] != run {
		return k, 0, at, false
	}
	var who, num string
	switch {
	case f[0] == "seed" && len(f) == 5:
		who, num = f[2], f[3]
	case f[0] == "reply" && len(f) == 6:
		who, num = f[2], f[4]
		if !strings.HasPrefix(f[3], "c") {
			return k, 0, at, false
		}
		c, err := strconv.ParseInt(f[3][1:], 10, 64)
		if err != nil || c == 0 {
			return k, 0, at, false
		}
		k.conv = c
	default:
		return k, 0, at, false
	}
	if len(who) < 2 || (who[0] == 'a') != (f[0] == "reply") || (who[0] != 'a' && who[0] != 'u') {
		return k, 0, at, false
	}
	k.admin = who[0] == 'a'
	idx, err := strconv.Atoi(who[1:])
	if err != nil || idx < 0 {
		return k, 0, at, false
	}
	k.idx = idx
	n, err = strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 {
		return k, 0, at, false
	}
	var timed bool
	if at, timed = parseSentAt(s); !timed {
		return k, 0, at, false
	}
	return k, n, at, true
}

// seedFrame is what chatbench reads of a seed message frame.
type seedFrame struct {
	Message        string `json:"message"`
	ConversationID int64  `json:"conversation_id"`
	SenderIsAdmin  bool   `json:"sender_is_admin"`
}

func decodeSeedFrame(data []byte) (seedFrame, error) {
	if ff, ok := scanFrame(data); ok {
		return seedFrame{Message: ff.message.String(), ConversationID: ff.conversationID, SenderIsAdmin: ff.senderIsAdmin}, nil
	}
	var f seedFrame
	err := json.Unmarshal(data, &f)
	return f, err
}

// handleSeed reads one frame of a seed connection.
func (c *client) handleSeed(data []byte) {
	f, err := decodeSeedFrame(data)
	if err != nil {
		c.b.badFrames.Add(1)
		return
	}
	k, n, sentAt, ok := parseSeedBody(f.Message, c.b.runID)
	if !ok {
		return // not this run's
	}
	now := time.Now()
	b := c.b
	s := c.seed
	own := k.admin == c.id.admin && k.idx == c.id.idx
	c.mu.Lock()
	if own && !k.admin && s.conv == 0 {
		s.conv, c.conv = f.ConversationID, f.ConversationID
	}
	// A visitor's socket receives only its own conversation; a reply names
	// its conversation in its text.
	misrouted := f.SenderIsAdmin != k.admin || (k.admin && f.ConversationID != k.conv) ||
		(!c.id.admin && s.conv != 0 && f.ConversationID != s.conv)
	st := s.streams[k]
	if st == nil {
		st = &stream{}
		s.streams[k] = st
	}
	dup := !st.seen.add(msgKey{0, n})
	outOfOrder := !dup && n != st.last+1
	if !dup {
		st.last = max(st.last, n)
		switch {
		case own:
			c.lat.ack = append(c.lat.ack, now.Sub(sentAt))
		case c.id.admin && !k.admin:
			c.lat.userToAdmin = append(c.lat.userToAdmin, now.Sub(sentAt))
		case !c.id.admin && k.admin:
			c.lat.adminToUser = append(c.lat.adminToUser, now.Sub(sentAt))
		}
	}
	c.mu.Unlock()
	if misrouted {
		b.misrouted.Add(1)
	}
	switch {
	case dup:
		b.dups.Add(1)
	case outOfOrder:
		b.outOfOrder.Add(1)
	}
	if !dup {
		b.delivered.Add(1)
		if c.id.admin && !k.admin && b.o.replyEvery > 0 && n%int64(b.o.replyEvery) == 0 &&
			int(f.ConversationID%int64(b.o.admins)) == c.id.idx && !b.stopReplies.Load() {
			s.queueReply(f.ConversationID)
		}
	}
	c.signal()
}

// sendSeed writes a visitor's next message. With wait it blocks until the
// frame is written to the socket (the server may be slowing it down);
// without, it queues the frame.
func (c *client) sendSeed(wait bool) error {
	c.mu.Lock()
	c.seed.sent++
	n := c.seed.sent
	c.mu.Unlock()
	data := make([]byte, 0, 96)
	data = append(data, `{"message":`...)
	data = strconv.AppendQuote(data, seedBody("seed", c.b.runID, "u"+strconv.Itoa(c.id.idx), 0, n, time.Now()))
	data = append(data, '}')
	c.b.sent.Add(1)
	if !wait {
		c.conn.WriteAsync(gws.OpcodeText, data, nil)
		return nil
	}
	return c.conn.WriteMessage(gws.OpcodeText, data)
}

// queueReply asks the admin's replier for a reply into conv.
func (s *seedState) queueReply(conv int64) {
	s.inFlight.Add(1)
	s.qmu.Lock()
	s.queue = append(s.queue, conv)
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// startReplier starts the goroutine that writes an admin's replies; it ends
// with the connection.
func (s *seedState) startReplier(c *client) {
	go func() {
		defer func() {
			// Queued replies that will never be written are not awaited.
			s.qmu.Lock()
			s.inFlight.Add(-int64(len(s.queue)))
			s.queue = nil
			s.qmu.Unlock()
		}()
		for {
			select {
			case <-s.wake:
			case <-s.stop:
				return
			}
			for {
				s.qmu.Lock()
				if len(s.queue) == 0 {
					s.qmu.Unlock()
					break
				}
				conv := s.queue[0]
				s.queue = s.queue[1:]
				s.qmu.Unlock()
				if c.b.stopReplies.Load() {
					s.inFlight.Add(-1)
					continue
				}
				err := c.writeReply(conv)
				s.inFlight.Add(-1)
				if err != nil {
					return
				}
			}
		}
	}()
}

func (s *seedState) stopReplier() { s.once.Do(func() { close(s.stop) }) }

// writeReply writes an admin's next reply into conv.
func (c *client) writeReply(conv int64) error {
	c.mu.Lock()
	c.seed.replies[conv]++
	n := c.seed.replies[conv]
	c.mu.Unlock()
	data := make([]byte, 0, 128)
	data = append(data, `{"message":`...)
	data = strconv.AppendQuote(data, seedBody("reply", c.b.runID, "a"+strconv.Itoa(c.id.idx), conv, n, time.Now()))
	data = append(data, `,"conversation_id":`...)
	data = strconv.AppendInt(data, conv, 10)
	data = append(data, '}')
	c.b.replies.Add(1)
	return c.conn.WriteMessage(gws.OpcodeText, data)
}

// received is how many of k's messages this seed socket received.
func (c *client) received(k streamKey) int64 {
	if st := c.seed.streams[k]; st != nil {
		return int64(st.seen.len())
	}
	return 0
}

// seedTally is a seed run's accounting at one moment.
type seedTally struct {
	missing    int64 // (message, receiver) pairs not delivered, the senders' own included
	unanswered int64 // messages not back at their sender
}

// seedTally counts what the open seed connections still miss: every
// visitor message at its visitor and every admin, every reply at its admin,
// every admin and the conversation's visitor.
func (b *bench) seedTally() seedTally {
	var t seedTally
	type sent struct {
		k streamKey
		n int64
	}
	var all []sent
	byConv := map[int64]*client{}
	byIdx := map[int]*client{}
	for _, u := range b.users {
		byIdx[u.id.idx] = u
		u.mu.Lock()
		all = append(all, sent{streamKey{idx: u.id.idx}, u.seed.sent})
		if u.seed.conv != 0 {
			byConv[u.seed.conv] = u
		}
		u.mu.Unlock()
	}
	for _, a := range b.admins {
		a.mu.Lock()
		for conv, n := range a.seed.replies {
			all = append(all, sent{streamKey{admin: true, idx: a.id.idx, conv: conv}, n})
		}
		a.mu.Unlock()
	}
	for _, s := range all {
		var receivers []*client
		if s.k.admin {
			receivers = append(receivers, b.admins...)
			if v := byConv[s.k.conv]; v != nil {
				receivers = append(receivers, v)
			} else {
				t.missing += s.n // the visitor never learnt its conversation
			}
		} else {
			receivers = append(receivers, b.admins...)
			receivers = append(receivers, byIdx[s.k.idx])
		}
		for _, r := range receivers {
			r.mu.Lock()
			got := r.received(s.k)
			r.mu.Unlock()
			t.missing += s.n - got
			if r.id.admin == s.k.admin && r.id.idx == s.k.idx {
				t.unanswered += s.n - got
			}
		}
	}
	return t
}

// repliesInFlight counts the admins' replies queued and not yet written.
func (b *bench) repliesInFlight() int64 {
	var n int64
	for _, a := range b.admins {
		n += a.seed.inFlight.Load()
	}
	return n
}

// drainSeed waits until every seed message reached all its receivers, or no
// frame arrived for --drain.
func (b *bench) drainSeed(ctx context.Context) {
	last := b.delivered.Load()
	quiet := time.Now()
	for {
		if (b.seedTally().missing == 0 && b.repliesInFlight() == 0) || ctx.Err() != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
		if d := b.delivered.Load(); d != last {
			last, quiet = d, time.Now()
		} else if time.Since(quiet) > b.o.drain {
			return
		}
	}
}
