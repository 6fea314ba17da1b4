package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grainchat/grainchat/transport/auth"
)

// bench is one run's connections and counters.
type bench struct {
	o         options
	issuer    *auth.Issuer
	tokenTTL  time.Duration
	runID     string // makes client_msg_ids unique across runs
	fileLimit uint64

	ids atomic.Int64

	// admins and users are the connections that stay open for the whole
	// run (users: chat and admins scenarios). Set before messages flow.
	admins []*client
	users  []*client

	sent, replies, acked, refusedN, delivered atomic.Int64
	dups, outOfOrder, doubleAcked, badFrames  atomic.Int64
	closedEarlyN, misrouted, typingSent       atomic.Int64
	typingReceived                            atomic.Int64
	finished, stopReplies                     atomic.Bool

	mu        sync.Mutex
	ackedMsgs map[msgKey]struct{} // every message acknowledged to any connection
	refusedBy map[string]int
	closedBy  map[int]int  // connections the server closed, by close code
	lat       latencies    // of connections that ended
	steadyAt  atomic.Int64 // Unix ns: messages sent from then on are past --warmup; 0 = not yet set
	slow      []slowDelivery
	tokens    map[string]string
	warnings  map[string]bool
}

func newBench(o options) (*bench, error) {
	iss, err := auth.NewIssuer(auth.Config{Secret: []byte(o.secret)})
	if err != nil {
		return nil, err
	}
	return &bench{o: o, issuer: iss, runID: strconv.FormatInt(time.Now().UnixNano(), 36),
		tokenTTL:  o.duration + o.drain + o.settle + o.settleTimeout + 2*time.Hour,
		ackedMsgs: map[msgKey]struct{}{}, refusedBy: map[string]int{}, closedBy: map[int]int{},
		tokens: map[string]string{}, warnings: map[string]bool{}}, nil
}

func (b *bench) nextID() string {
	return b.runID + "." + strconv.FormatInt(b.ids.Add(1), 36)
}

// token returns id's token, minted once per run.
func (b *bench) token(id identity) (string, error) {
	b.mu.Lock()
	tok, ok := b.tokens[id.sub]
	b.mu.Unlock()
	if ok {
		return tok, nil
	}
	tok, err := b.issuer.Mint(auth.Identity{Subject: id.sub, Name: id.name, Admin: id.admin}, b.tokenTTL)
	if err != nil {
		return "", fmt.Errorf("mint a token for %s: %w", id.sub, err)
	}
	b.mu.Lock()
	b.tokens[id.sub] = tok
	b.mu.Unlock()
	return tok, nil
}

func (b *bench) adminIdentity(i int) identity {
	return identity{sub: fmt.Sprintf("%s-staff-%d", b.o.prefix, i), name: fmt.Sprintf("Staff %d", i), admin: true, idx: i}
}

func (b *bench) userIdentity(i int) identity {
	return identity{sub: fmt.Sprintf("%s-user-%d", b.o.prefix, i), name: fmt.Sprintf("User %d", i), idx: i}
}

func (b *bench) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.mu.Lock()
	b.warnings[msg] = true
	b.mu.Unlock()
}

func (b *bench) acknowledged(k msgKey, admin, duplicate bool) {
	b.acked.Add(1)
	b.mu.Lock()
	_, again := b.ackedMsgs[k]
	b.ackedMsgs[k] = struct{}{}
	b.mu.Unlock()
	// chatbench never resends: a second ack of one (conversation, seq), or
	// an ack that calls a fresh post a duplicate, is the server's mistake.
	if again || duplicate {
		b.doubleAcked.Add(1)
	}
}

func (b *bench) refused(code string) {
	b.refusedN.Add(1)
	b.mu.Lock()
	b.refusedBy[code]++
	b.mu.Unlock()
}

func (b *bench) closedEarly(code int) {
	b.closedEarlyN.Add(1)
	b.mu.Lock()
	b.closedBy[code]++
	b.mu.Unlock()
}

// keep adds an ended connection's latencies to the run's.
func (b *bench) keep(c *client) {
	l := c.takeLatencies()
	b.mu.Lock()
	b.lat.add(l)
	b.mu.Unlock()
}

// connectStats describes one batch of connection attempts.
type connectStats struct {
	Attempted int            `json:"attempted"`
	Held      int            `json:"held"`
	Failed    int            `json:"failed"`
	FailedBy  map[string]int `json:"failed_by,omitempty"`
	FirstErr  string         `json:"first_error,omitempty"`
	Seconds   float64        `json:"seconds"`
	PerSecond float64        `json:"per_second"` // connections that got their welcome, per second
	Handshake latency        `json:"handshake"`  // from the dial to the welcome frame
	CPU       *cpuReport     `json:"cpu,omitempty"`
}

// connectMany opens n connections, ident(i) for i in [0, n), with
// concurrency dialers, at most rate per second (0: no bound). clients[i] is
// nil when connection i failed.
func (b *bench) connectMany(ctx context.Context, n, concurrency int, rate float64, ident func(int) identity) ([]*client, connectStats) {
	st := connectStats{Attempted: n, FailedBy: map[string]int{}}
	clients := make([]*client, n)
	if n == 0 {
		return clients, st
	}
	jobs := make(chan int)
	var mu sync.Mutex
	hs := make([]time.Duration, 0, n)
	start := time.Now()
	var wg sync.WaitGroup
	for range min(concurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				c, err := b.dial(ctx, ident(i))
				mu.Lock()
				if err != nil {
					st.Failed++
					st.FailedBy[failureClass(err)]++
					if st.FirstErr == "" {
						st.FirstErr = err.Error()
					}
				} else {
					clients[i] = c
					st.Held++
					hs = append(hs, time.Since(c.start))
				}
				mu.Unlock()
			}
		}()
	}
	p := newPacer(rate)
	for i := range n {
		if p.wait(ctx) != nil {
			break
		}
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(jobs)
	wg.Wait()
	st.Seconds = time.Since(start).Seconds()
	st.PerSecond = float64(st.Held) / st.Seconds
	st.Handshake = summarize(hs)
	if len(st.FailedBy) == 0 {
		st.FailedBy = nil
	}
	return clients, st
}

func failureClass(err error) string {
	var de *dialError
	if errors.As(err, &de) {
		return de.class
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "cancelled"
	}
	return "other"
}

// pacer spaces events rate per second apart over all its callers; a zero
// rate does not wait.
type pacer struct {
	start time.Time
	rate  float64
	n     atomic.Int64
}

func newPacer(rate float64) *pacer { return &pacer{start: time.Now(), rate: rate} }

// wait returns when the caller's turn has come, or ctx's error.
func (p *pacer) wait(ctx context.Context) error {
	if p.rate <= 0 {
		return ctx.Err()
	}
	i := p.n.Add(1) - 1
	d := time.Until(p.start.Add(time.Duration(float64(i) / p.rate * float64(time.Second))))
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// compact returns the non-nil clients.
func compact(cs []*client) []*client {
	out := make([]*client, 0, len(cs))
	for _, c := range cs {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// closeAll closes the connections and waits (at most 10s) until they ended.
func closeAll(cs []*client) {
	for _, c := range cs {
		c.close()
	}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for _, c := range cs {
		select {
		case <-c.closed:
		case <-deadline.C:
			return
		}
	}
}

// ackedKeys returns every acknowledged message, and those of each
// conversation.
func (b *bench) ackedKeys() ([]msgKey, map[int64][]msgKey) {
	b.mu.Lock()
	all := make([]msgKey, 0, len(b.ackedMsgs))
	for k := range b.ackedMsgs {
		all = append(all, k)
	}
	b.mu.Unlock()
	byConv := map[int64][]msgKey{}
	for _, k := range all {
		byConv[k.conv] = append(byConv[k.conv], k)
	}
	return all, byConv
}

// missing counts the (acknowledged message, receiver) pairs not delivered
// among the connections that stayed open: every admin receives every
// message; a visitor of b.users receives those of its conversation.
func (b *bench) missing() int64 {
	all, byConv := b.ackedKeys()
	var miss int64
	for _, u := range b.users {
		miss += u.missingOf(byConv[u.conv])
	}
	for _, a := range b.admins {
		miss += a.missingOf(all)
	}
	return miss
}

// outstanding counts the posts of open connections still awaiting an ack.
func (b *bench) outstanding() int {
	n := 0
	for _, cs := range [][]*client{b.users, b.admins} {
		for _, c := range cs {
			if !c.ended() {
				n += c.pendingCount()
			}
		}
	}
	return n
}

// unanswered counts the posts of the open connections never answered.
func (b *bench) unanswered() int64 {
	var n int64
	for _, cs := range [][]*client{b.users, b.admins} {
		for _, c := range cs {
			n += int64(c.pendingCount())
		}
	}
	return n
}

// drain waits (at most --drain) until every post of the open connections is
// answered and every acknowledged message has reached its receivers.
func (b *bench) drain(ctx context.Context) {
	deadline := time.Now().Add(b.o.drain)
	for {
		if b.outstanding() == 0 && b.adminsCaughtUp() && b.missing() == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// adminsCaughtUp is a cheap necessary condition of missing() == 0.
func (b *bench) adminsCaughtUp() bool {
	b.mu.Lock()
	n := len(b.ackedMsgs)
	b.mu.Unlock()
	for _, a := range b.admins {
		if a.seenCount() < n {
			return false
		}
	}
	return true
}

// slowDelivery is a user→admin delivery slower than --slow-over.
type slowDelivery struct {
	sentAt  time.Time
	latency time.Duration
}

// noteSlow records a slow delivery for --slow-log.
func (b *bench) noteSlow(sentAt time.Time, latency time.Duration) {
	b.mu.Lock()
	b.slow = append(b.slow, slowDelivery{sentAt, latency})
	b.mu.Unlock()
}

// writeSlowLog writes the slow deliveries to path in send order.
func (b *bench) writeSlowLog(path string) error {
	b.mu.Lock()
	slow := slices.Clone(b.slow)
	b.mu.Unlock()
	slices.SortFunc(slow, func(x, y slowDelivery) int { return x.sentAt.Compare(y.sentAt) })
	var buf bytes.Buffer
	for _, d := range slow {
		fmt.Fprintf(&buf, "%d %.1f\n", d.sentAt.UnixMilli(), float64(d.latency.Microseconds())/1000)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("slow log: %w", err)
	}
	return nil
}

// startWarmup marks the start of the send phase: messages sent --warmup
// after it count in the after_warmup latencies.
func (b *bench) startWarmup(start time.Time) {
	if b.o.warmup > 0 {
		b.steadyAt.Store(start.Add(b.o.warmup).UnixNano())
	}
}

// steady reports whether a message sent at sentAt is past --warmup.
func (b *bench) steady(sentAt time.Time) bool {
	at := b.steadyAt.Load()
	return at != 0 && sentAt.UnixNano() >= at
}
