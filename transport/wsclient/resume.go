package wsclient

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Resumer is a grainchat.v1 client that survives lost connections the way
// docs/PROTOCOL.md describes: it reconnects (to the next of its URLs),
// resumes every conversation from the last seq it delivered — history after
// that seq, then live messages, which it holds back until the history is
// complete — and resends unacknowledged posts with the same client_msg_id.
//
// It records, per conversation, the seqs it delivered to its user in order,
// and counts the server's violations of the protocol's promises: a live
// message that repeats a delivered seq (Duplicates) or skips one (Gaps).
// Tests and the load program use it to check "nothing lost, nothing doubled".
type Resumer struct {
	urls  []string
	token string

	mu      sync.Mutex
	conn    *Client
	url     string // conn's URL
	observe func(Event)
	seqs    map[int64][]int64
	last    map[int64]int64
	texts   map[int64]map[int64]string
	pending map[string]resumePost // client_msg_id → unacknowledged post
	acked   map[string]Ack
	refused map[string]string // client_msg_id → error code
	conv    int64             // a visitor's own conversation
	// retryIDs are posts refused as unavailable, resent by retry (a timer
	// that Run stops when it returns).
	retryIDs   []string
	retry      *time.Timer
	posted     uint64 // Post calls so far
	connects   int
	duplicates int
	gaps       []string
	changed    chan struct{}
}

type resumePost struct {
	id   string
	conv int64
	text string
	n    uint64 // the order of Post calls: resends keep it
}

// inOrder lists posts in the order they were posted.
func inOrder(posts map[string]resumePost) []resumePost {
	out := make([]resumePost, 0, len(posts))
	for _, p := range posts {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b resumePost) int { return cmp.Compare(a.n, b.n) })
	return out
}

// Ack is an acknowledged post.
type Ack struct {
	ConversationID int64
	Seq            int64
}

// EventKind tells what an Event reports.
type EventKind int

const (
	// Delivered: a message was delivered to the Resumer's user.
	Delivered EventKind = iota + 1
	// Acknowledged: a post was acknowledged.
	Acknowledged
)

// Event is something a Resumer saw, reported to the function given to
// Observe.
type Event struct {
	Kind EventKind
	// At is when the frame arrived; for a message delivered from history
	// or held back while resuming, when the Resumer delivered it.
	At time.Time
	// URL is the URL of the connection the frame arrived on.
	URL            string
	ConversationID int64
	Seq            int64
	// Text is a delivered message's text.
	Text string
	// ClientMsgID is an acknowledged post's client_msg_id.
	ClientMsgID string
	// Live is true for a message delivered as its live frame arrived (not
	// from history, not held back while resuming).
	Live bool
}

// NewResumer returns a Resumer; Run connects it.
func NewResumer(urls []string, token string) *Resumer {
	return &Resumer{
		urls: urls, token: token,
		seqs: map[int64][]int64{}, last: map[int64]int64{}, texts: map[int64]map[int64]string{},
		pending: map[string]resumePost{}, acked: map[string]Ack{}, refused: map[string]string{},
		changed: make(chan struct{}, 1),
	}
}

// Observe makes the Resumer call f for each message it delivers to its user
// and for each post when it is first acknowledged, in the order it sees them,
// on its reading goroutine, without holding its lock: f must return quickly.
// Call Observe before Run.
func (r *Resumer) Observe(f func(Event)) {
	r.mu.Lock()
	r.observe = f
	r.mu.Unlock()
}

// URL is the URL of the Resumer's current connection, "" while it has none.
func (r *Resumer) URL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.url
}

// Run keeps the Resumer connected until ctx ends. It returns ctx's error.
func (r *Resumer) Run(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			r.closeConn()
			r.mu.Lock()
			if r.retry != nil {
				r.retry.Stop()
				r.retry = nil
			}
			r.mu.Unlock()
			return ctx.Err()
		}
		url := r.urls[i%len(r.urls)]
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := Dial(dctx, url, Options{Token: r.token, V1: true})
		cancel()
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		r.mu.Lock()
		r.conn, r.url = c, url
		r.connects++
		r.mu.Unlock()
		r.serve(ctx, c, url)
		r.mu.Lock()
		r.conn, r.url = nil, ""
		r.mu.Unlock()
		c.Close()
	}
}

func (r *Resumer) closeConn() {
	r.mu.Lock()
	c := r.conn
	r.conn, r.url = nil, ""
	r.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// Connects is how many connections the Resumer has opened.
func (r *Resumer) Connects() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connects
}

// Connected reports whether the Resumer has a live connection that finished
// resuming (its welcome, and for staff the inbox, arrived).
func (r *Resumer) Connected() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conn != nil
}

// resumeConn is one connection of a Resumer and what it alone knows: the
// live frames it holds back while a conversation catches up from history,
// and the last seq it delivered live per conversation.
type resumeConn struct {
	r       *Resumer
	c       *Client
	url     string
	observe func(Event)
	// syncing holds, per conversation catching up from history, the live
	// frames held back until the history is complete.
	syncing map[int64][]Frame
	// connLast is, per conversation, the last seq this connection delivered
	// live, starting at the last_seq of its welcome or inbox frame: the
	// protocol promises that live messages continue right after it.
	connLast map[int64]int64
	// ready is set once the welcome (visitors) or inbox (staff) arrived:
	// unacknowledged posts are then resent.
	ready bool
}

// serve processes one connection's frames in order until it closes.
func (r *Resumer) serve(ctx context.Context, c *Client, url string) {
	r.mu.Lock()
	rc := &resumeConn{r: r, c: c, url: url, observe: r.observe, syncing: map[int64][]Frame{}, connLast: map[int64]int64{}}
	r.mu.Unlock()
	for i := 0; ; i++ {
		f, _, err := c.WaitFor(ctx, i, func(Frame) bool { return true })
		if err != nil {
			return
		}
		rc.handle(f)
	}
}

// handle processes one frame.
func (rc *resumeConn) handle(f Frame) {
	conv := f.Int("conversation_id")
	switch f.Type() {
	case "welcome":
		if conv != 0 {
			rc.r.mu.Lock()
			rc.r.conv = conv
			rc.r.mu.Unlock()
			rc.startSync(conv, f.Int("last_seq"))
			rc.setReady()
		}
	case "inbox":
		entries, _ := f.Fields["conversations"].([]any)
		for _, e := range entries {
			m, _ := e.(map[string]any)
			id, _ := m["conversation_id"].(float64)
			ls, _ := m["last_seq"].(float64)
			rc.startSync(int64(id), int64(ls))
		}
		rc.setReady()
	case "history":
		rc.history(conv, f)
	case "message":
		if held, ok := rc.syncing[conv]; ok {
			rc.syncing[conv] = append(held, f)
			return
		}
		rc.r.checkLive(rc.connLast, conv, f.Int("seq"))
		rc.delivered(conv, f.Int("seq"), f.String("message"), true, f.At)
	case "ack":
		rc.ack(conv, f)
	case "error":
		rc.r.refusedPost(f.String("client_msg_id"), f.String("code"))
	}
}

func (rc *resumeConn) emit(e Event) {
	if rc.observe != nil {
		e.URL = rc.url
		rc.observe(e)
	}
}

// delivered delivers a message to the user unless it has it already.
func (rc *resumeConn) delivered(conv, seq int64, text string, live bool, at time.Time) {
	if rc.r.deliver(conv, seq, text) {
		if !live {
			at = time.Now()
		}
		rc.emit(Event{Kind: Delivered, At: at, ConversationID: conv, Seq: seq, Text: text, Live: live})
	}
}

// setReady resends the unacknowledged posts once the connection is ready.
func (rc *resumeConn) setReady() {
	if rc.ready {
		return
	}
	rc.ready = true
	rc.r.mu.Lock()
	posts := inOrder(rc.r.pending)
	rc.r.mu.Unlock()
	for _, p := range posts {
		_ = rc.c.Send(postFrame(p))
	}
}

// startSync notes where the connection's live messages of conv start and,
// when the user has seen less than that, asks for the history in between.
func (rc *resumeConn) startSync(conv, target int64) {
	// A later inbox frame on the same connection (the inbox moved) may lag
	// what was delivered: live messages then continue after the newer of
	// the two.
	if last, ok := rc.connLast[conv]; !ok || target > last {
		rc.connLast[conv] = target
	}
	rc.r.mu.Lock()
	last, known := rc.r.last[conv]
	if !known {
		rc.r.last[conv] = target // first sight: live messages continue after target
	}
	rc.r.mu.Unlock()
	if known && target > last {
		rc.syncing[conv] = nil
		rc.askHistory(conv, last)
	}
}

func (rc *resumeConn) askHistory(conv, after int64) {
	_ = rc.c.Send(map[string]any{"type": "history", "conversation_id": conv, "after_seq": after, "limit": 100})
}

// history delivers a history page, asks for the next one, or, at the end,
// delivers the live messages held back meanwhile.
func (rc *resumeConn) history(conv int64, f Frame) {
	msgs, _ := f.Fields["messages"].([]any)
	for _, m := range msgs {
		mm, _ := m.(map[string]any)
		seq, _ := mm["seq"].(float64)
		text, _ := mm["message"].(string)
		rc.delivered(conv, int64(seq), text, false, f.At)
	}
	if f.Fields["has_more"] == true {
		rc.r.mu.Lock()
		last := rc.r.last[conv]
		rc.r.mu.Unlock()
		rc.askHistory(conv, last)
		return
	}
	held := rc.syncing[conv]
	delete(rc.syncing, conv)
	for _, h := range held {
		rc.r.checkLive(rc.connLast, conv, h.Int("seq"))
		rc.delivered(conv, h.Int("seq"), h.String("message"), false, h.At)
	}
}

// ack records a post's first acknowledgement.
func (rc *resumeConn) ack(conv int64, f Frame) {
	r := rc.r
	r.mu.Lock()
	id := f.String("client_msg_id")
	_, first := r.pending[id]
	if first {
		delete(r.pending, id)
		r.acked[id] = Ack{ConversationID: conv, Seq: f.Int("seq")}
	}
	r.mu.Unlock()
	r.notify()
	if first {
		rc.emit(Event{Kind: Acknowledged, At: f.At, ConversationID: conv, Seq: f.Int("seq"), ClientMsgID: id})
	}
}

// refusedPost handles an error frame naming a post: unavailable (and, from
// servers before flow control, too_many_pending) is retried after a pause on
// whatever connection is current then; any other code is final.
func (r *Resumer) refusedPost(id, code string) {
	if id == "" {
		return
	}
	r.mu.Lock()
	if _, ok := r.pending[id]; ok {
		if code == "unavailable" || code == "too_many_pending" {
			r.retryIDs = append(r.retryIDs, id)
			if r.retry == nil {
				r.retry = time.AfterFunc(retryPause, r.resendRefused)
			}
		} else {
			delete(r.pending, id)
			r.refused[id] = code
		}
	}
	r.mu.Unlock()
	r.notify()
}

// retryPause is how long a post refused as unavailable waits for its resend.
const retryPause = 200 * time.Millisecond

// resendRefused resends the posts refused as unavailable that are still
// unacknowledged, on the current connection (Run stops its timer).
func (r *Resumer) resendRefused() {
	r.mu.Lock()
	ids := r.retryIDs
	r.retryIDs, r.retry = nil, nil
	cur := r.conn
	posts := make(map[string]resumePost, len(ids))
	for _, id := range ids {
		if p, ok := r.pending[id]; ok {
			posts[id] = p
		}
	}
	r.mu.Unlock()
	if cur == nil {
		return // the next connection resends every pending post when ready
	}
	for _, p := range inOrder(posts) {
		_ = cur.Send(postFrame(p))
	}
}

func postFrame(p resumePost) map[string]any {
	f := map[string]any{"message": p.text, "client_msg_id": p.id}
	if p.conv != 0 {
		f["conversation_id"] = p.conv
	}
	return f
}

// checkLive checks one live message against what this connection delivered
// before: the server must never repeat a seq on a connection, nor skip one.
func (r *Resumer) checkLive(connLast map[int64]int64, conv, seq int64) {
	last, known := connLast[conv]
	connLast[conv] = max(last, seq)
	if !known {
		return // a conversation new to this connection starts anywhere
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case seq <= last:
		r.duplicates++
	case seq != last+1:
		r.gaps = append(r.gaps, fmt.Sprintf("conversation %d: live seq %d after %d on one connection", conv, seq, last))
	}
}

// deliver records seq for the user unless it was delivered already (a
// resume overlaps what the previous connection delivered), and reports
// whether it did.
func (r *Resumer) deliver(conv, seq int64, text string) bool {
	r.mu.Lock()
	last, known := r.last[conv]
	fresh := !known || seq > last
	switch {
	case known && seq <= last:
	case known && seq != last+1:
		r.gaps = append(r.gaps, fmt.Sprintf("conversation %d: seq %d after %d", conv, seq, last))
		fallthrough
	default:
		r.last[conv] = seq
		r.seqs[conv] = append(r.seqs[conv], seq)
		if r.texts[conv] == nil {
			r.texts[conv] = map[int64]string{}
		}
		r.texts[conv][seq] = text
	}
	r.mu.Unlock()
	r.notify()
	return fresh
}

func (r *Resumer) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Post sends a message (conv 0: a visitor's own conversation) with the given
// client_msg_id; it is resent on every reconnect until acknowledged.
func (r *Resumer) Post(conv int64, text, id string) {
	r.mu.Lock()
	r.posted++
	p := resumePost{id: id, conv: conv, text: text, n: r.posted}
	r.pending[id] = p
	c := r.conn
	r.mu.Unlock()
	if c != nil {
		_ = c.Send(postFrame(p))
	}
}

// Snapshot is what a Resumer has seen.
type Snapshot struct {
	ConversationID int64             // a visitor's own conversation
	Seqs           map[int64][]int64 // delivered seqs per conversation, in order
	Texts          map[int64]map[int64]string
	Acked          map[string]Ack
	Pending        int
	Refused        map[string]string
	Duplicates     int
	Gaps           []string
	Connects       int
}

// Snapshot copies the Resumer's record.
func (r *Resumer) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Snapshot{ConversationID: r.conv, Seqs: map[int64][]int64{}, Texts: map[int64]map[int64]string{},
		Acked: map[string]Ack{}, Pending: len(r.pending), Refused: map[string]string{},
		Duplicates: r.duplicates, Gaps: append([]string(nil), r.gaps...), Connects: r.connects}
	for k, v := range r.seqs {
		s.Seqs[k] = append([]int64(nil), v...)
	}
	for k, v := range r.texts {
		m := make(map[int64]string, len(v))
		for kk, vv := range v {
			m[kk] = vv
		}
		s.Texts[k] = m
	}
	for k, v := range r.acked {
		s.Acked[k] = v
	}
	for k, v := range r.refused {
		s.Refused[k] = v
	}
	return s
}

// WaitUntil waits until cond holds for the Resumer's snapshot or ctx ends.
func (r *Resumer) WaitUntil(ctx context.Context, cond func(Snapshot) bool) (Snapshot, error) {
	for {
		s := r.Snapshot()
		if cond(s) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-r.changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
}
