// Command chatbench is grainchat's load program. It connects visitors and
// admins to a running chatd over real WebSockets (grainchat.v1), has visitors
// send messages (flat out or at a rate) and admins reply, and reports
// throughput, latency and delivery correctness: every acknowledged message
// must reach its sender and every admin exactly once, in seq order.
//
//	chatbench --url ws://127.0.0.1:8080/ws/chat/ --jwt-secret S --users 300 --admins 2 --duration 20s
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lxzan/gws"

	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatbench:", err)
		os.Exit(1)
	}
}

type options struct {
	url         string
	secret      string
	users       int
	admins      int
	rate        float64
	window      int
	duration    time.Duration
	drain       time.Duration
	replyEvery  int
	connectRate float64
	prefix      string
	jsonOut     bool
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("chatbench", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "ws://127.0.0.1:8080/ws/chat/", "chatd WebSocket URL")
	fs.StringVar(&o.secret, "jwt-secret", getenv("CHAT_JWT_SECRET"), "chatd's HS256 secret (default CHAT_JWT_SECRET)")
	fs.IntVar(&o.users, "users", 300, "visitors, one conversation each")
	fs.IntVar(&o.admins, "admins", 2, "staff connections")
	fs.Float64Var(&o.rate, "rate", 0, "visitor messages per second in total; 0 = flat out")
	fs.IntVar(&o.window, "window", 4, "flat out: messages each visitor keeps waiting for their ack")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long visitors send")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "how long to wait for outstanding deliveries at the end")
	fs.IntVar(&o.replyEvery, "reply-every", 10, "admin 1 replies to every Nth visitor message it receives; 0 = never")
	fs.Float64Var(&o.connectRate, "connect-rate", 2000, "connections opened per second at start")
	fs.StringVar(&o.prefix, "prefix", "bench-"+strconv.FormatInt(time.Now().Unix(), 36), "prefix of the visitors' subs")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(o.secret) < 32 {
		return errors.New("--jwt-secret (or CHAT_JWT_SECRET) of at least 32 bytes is required")
	}
	if o.users < 1 || o.admins < 1 {
		return errors.New("--users and --admins must be at least 1")
	}
	b, err := newBench(o)
	if err != nil {
		return err
	}
	rep, err := b.run(ctx)
	if err != nil {
		return err
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.print(stdout)
	if rep.Lost > 0 || rep.Duplicates > 0 || rep.OutOfOrder > 0 {
		return fmt.Errorf("delivery errors: lost=%d duplicates=%d out_of_order=%d", rep.Lost, rep.Duplicates, rep.OutOfOrder)
	}
	return nil
}

// frame is the part of a server frame chatbench reads.
type frame struct {
	Type           string `json:"type"`
	Code           string `json:"code"`
	ConversationID int64  `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	LastSeq        int64  `json:"last_seq"`
	Message        string `json:"message"`
	SenderIsAdmin  bool   `json:"sender_is_admin"`
	ClientMsgID    string `json:"client_msg_id"`
	Duplicate      bool   `json:"duplicate"`
}

type bench struct {
	o      options
	issuer *auth.Issuer
	start  time.Time

	users  []*client
	admins []*client

	sent, acked, refused, delivered, dups, ooo atomic.Int64
	replies, closedEarly                       atomic.Int64
	finished                                   atomic.Bool

	mu          sync.Mutex
	latUA       []time.Duration // visitor → admin
	latAU       []time.Duration // admin → visitor
	latAck      []time.Duration
	ackedMsgs   map[msgKey]bool // (conversation, seq) acknowledged
	errorsByCod map[string]int
}

type msgKey struct{ conv, seq int64 }

// client is one connection and what it has seen.
type client struct {
	b       *bench
	admin   bool
	idx     int
	conn    *gws.Conn
	welcome chan frame
	conv    int64

	mu      sync.Mutex
	last    map[int64]int64 // conversation → last seq seen
	seen    map[msgKey]bool
	window  chan struct{}
	pending map[string]time.Time // client_msg_id → sent at
	closed  chan struct{}
	once    sync.Once
}

func newBench(o options) (*bench, error) {
	iss, err := auth.NewIssuer(auth.Config{Secret: []byte(o.secret)})
	if err != nil {
		return nil, err
	}
	return &bench{o: o, issuer: iss, ackedMsgs: map[msgKey]bool{}, errorsByCod: map[string]int{}}, nil
}

func (b *bench) dial(ctx context.Context, sub, name string, admin bool, idx int) (*client, error) {
	tok, err := b.issuer.Mint(auth.Identity{Subject: sub, Name: name, Admin: admin}, 2*time.Hour)
	if err != nil {
		return nil, err
	}
	c := &client{b: b, admin: admin, idx: idx, welcome: make(chan frame, 1), last: map[int64]int64{},
		seen: map[msgKey]bool{}, pending: map[string]time.Time{}, closed: make(chan struct{}),
		window: make(chan struct{}, max(b.o.window, 1))}
	h := map[string][]string{"Authorization": {"Bearer " + tok}, "Sec-WebSocket-Protocol": {wire.Subprotocol}}
	conn, _, err := gws.NewClient(c, &gws.ClientOption{Addr: b.o.url, RequestHeader: h, HandshakeTimeout: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", sub, err)
	}
	c.conn = conn
	go conn.ReadLoop()
	select {
	case w := <-c.welcome:
		c.conv = w.ConversationID
		c.mu.Lock()
		if !admin {
			c.last[c.conv] = w.LastSeq
		}
		c.mu.Unlock()
	case <-c.closed:
		return nil, fmt.Errorf("%s: closed before welcome", sub)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c, nil
}

func (c *client) OnOpen(*gws.Conn)                {}
func (c *client) OnPing(conn *gws.Conn, p []byte) { _ = conn.WritePong(p) }
func (c *client) OnPong(*gws.Conn, []byte)        {}
func (c *client) OnClose(*gws.Conn, error)        { c.once.Do(func() { close(c.closed) }) }
func (c *client) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	var f frame
	if err := json.Unmarshal(m.Bytes(), &f); err != nil {
		return
	}
	now := time.Now()
	switch f.Type {
	case "welcome":
		select {
		case c.welcome <- f:
		default:
		}
	case "ack":
		c.mu.Lock()
		sentAt, ok := c.pending[f.ClientMsgID]
		delete(c.pending, f.ClientMsgID)
		c.mu.Unlock()
		if ok {
			c.b.acked.Add(1)
			c.b.mu.Lock()
			c.b.latAck = append(c.b.latAck, now.Sub(sentAt))
			c.b.ackedMsgs[msgKey{f.ConversationID, f.Seq}] = true
			c.b.mu.Unlock()
			select {
			case <-c.window:
			default:
			}
		}
	case "error":
		c.mu.Lock()
		_, ok := c.pending[f.ClientMsgID]
		delete(c.pending, f.ClientMsgID)
		c.mu.Unlock()
		c.b.refused.Add(1)
		c.b.mu.Lock()
		c.b.errorsByCod[f.Code]++
		c.b.mu.Unlock()
		if ok {
			select {
			case <-c.window:
			default:
			}
		}
	case "message":
		c.onMessage(f, now)
	}
}

func (c *client) onMessage(f frame, now time.Time) {
	k := msgKey{f.ConversationID, f.Seq}
	c.mu.Lock()
	last, known := c.last[f.ConversationID]
	dup := c.seen[k]
	c.seen[k] = true
	c.last[f.ConversationID] = max(last, f.Seq)
	c.mu.Unlock()
	switch {
	case dup:
		c.b.dups.Add(1)
		return
	case known && f.Seq != last+1:
		c.b.ooo.Add(1)
	}
	c.b.delivered.Add(1)
	sentAt, ok := parseSentAt(f.Message)
	if !ok {
		return
	}
	lat := now.Sub(sentAt)
	c.b.mu.Lock()
	if c.admin && !f.SenderIsAdmin {
		c.b.latUA = append(c.b.latUA, lat)
	} else if !c.admin && f.SenderIsAdmin {
		c.b.latAU = append(c.b.latAU, lat)
	}
	c.b.mu.Unlock()
	if c.admin && c.idx == 0 && !f.SenderIsAdmin && c.b.o.replyEvery > 0 && f.Seq%int64(c.b.o.replyEvery) == 0 {
		c.send(f.ConversationID, "reply")
	}
}

// Message bodies carry their send time: "<kind> t=<unix nanos>".
func body(kind string) string { return kind + " t=" + strconv.FormatInt(time.Now().UnixNano(), 10) }

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

var msgSeq atomic.Int64

func (c *client) send(conv int64, kind string) {
	id := "b" + strconv.FormatInt(msgSeq.Add(1), 36)
	req := map[string]any{"message": body(kind), "client_msg_id": id}
	if c.admin {
		req["conversation_id"] = conv
	}
	data, _ := json.Marshal(req)
	c.mu.Lock()
	c.pending[id] = time.Now()
	c.mu.Unlock()
	if c.admin {
		c.b.replies.Add(1)
	} else {
		c.b.sent.Add(1)
	}
	c.conn.WriteAsync(gws.OpcodeText, data, nil)
}

func (b *bench) run(ctx context.Context) (*report, error) {
	// Connect admins first, then visitors, at the connect rate.
	connectStart := time.Now()
	interval := time.Duration(float64(time.Second) / max(b.o.connectRate, 1))
	for i := range b.o.admins {
		c, err := b.dial(ctx, fmt.Sprintf("%s-staff-%d", b.o.prefix, i), fmt.Sprintf("Staff %d", i), true, i)
		if err != nil {
			return nil, err
		}
		b.admins = append(b.admins, c)
	}
	var wg sync.WaitGroup
	users := make([]*client, b.o.users)
	errs := make(chan error, b.o.users)
	tick := time.NewTicker(interval)
	for i := range b.o.users {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := b.dial(ctx, fmt.Sprintf("%s-user-%d", b.o.prefix, i), fmt.Sprintf("User %d", i), false, i)
			if err != nil {
				errs <- err
				return
			}
			users[i] = c
		}()
	}
	tick.Stop()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	b.users = users
	connectDur := time.Since(connectStart)
	defer func() {
		for _, c := range append(b.users, b.admins...) {
			c.conn.WriteClose(1000, nil)
		}
	}()

	// Send.
	b.start = time.Now()
	sendCtx, cancel := context.WithTimeout(ctx, b.o.duration)
	defer cancel()
	if b.o.rate > 0 {
		// Each tick sends what the rate calls for by now, so that timer
		// granularity does not lower the rate.
		t := time.NewTicker(time.Millisecond)
		n := 0
	rateLoop:
		for {
			select {
			case <-sendCtx.Done():
				break rateLoop
			case now := <-t.C:
				due := int(b.o.rate * now.Sub(b.start).Seconds())
				for ; n < due; n++ {
					b.users[n%len(b.users)].send(0, "msg")
				}
			}
		}
		t.Stop()
	} else {
		var swg sync.WaitGroup
		for _, c := range b.users {
			swg.Add(1)
			go func() {
				defer swg.Done()
				for {
					select {
					case c.window <- struct{}{}:
					case <-sendCtx.Done():
						return
					case <-c.closed:
						return
					}
					if sendCtx.Err() != nil {
						return
					}
					c.send(0, "msg")
				}
			}()
		}
		swg.Wait()
	}
	sendDur := time.Since(b.start)

	// Drain: wait until every acknowledged message reached its sender and every admin.
	deadline := time.Now().Add(b.o.drain)
	for time.Now().Before(deadline) {
		if b.missing() == 0 && b.outstanding() == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	rep := b.report(connectDur, sendDur)
	b.finished.Store(true)
	return rep, nil
}

func (b *bench) outstanding() int {
	n := 0
	for _, c := range append(b.users, b.admins...) {
		c.mu.Lock()
		n += len(c.pending)
		c.mu.Unlock()
	}
	return n
}

// missing counts (acknowledged message, expected receiver) pairs not delivered.
func (b *bench) missing() int64 {
	b.mu.Lock()
	acked := make([]msgKey, 0, len(b.ackedMsgs))
	for k := range b.ackedMsgs {
		acked = append(acked, k)
	}
	b.mu.Unlock()
	byConv := map[int64]*client{}
	for _, u := range b.users {
		byConv[u.conv] = u
	}
	var miss int64
	for _, k := range acked {
		for _, c := range append([]*client{byConv[k.conv]}, b.admins...) {
			if c == nil {
				continue
			}
			c.mu.Lock()
			if !c.seen[k] {
				miss++
			}
			c.mu.Unlock()
		}
	}
	return miss
}

type latency struct {
	N                  int
	P50, P90, P99, Max float64 // milliseconds
}

func summarize(d []time.Duration) latency {
	if len(d) == 0 {
		return latency{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) float64 {
		return float64(s[min(len(s)-1, int(p*float64(len(s))))].Microseconds()) / 1000
	}
	return latency{N: len(s), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: float64(s[len(s)-1].Microseconds()) / 1000}
}

type report struct {
	Users, Admins      int
	ConnectSeconds     float64
	ConnectsPerSecond  float64
	SendSeconds        float64
	Sent, Acked        int64
	Replies            int64
	Refused            int64
	RefusedByCode      map[string]int
	StoredPerSecond    float64
	Delivered          int64
	DeliveredPerSecond float64
	Lost               int64
	Duplicates         int64
	OutOfOrder         int64
	ClosedEarly        int64
	Ack                latency
	UserToAdmin        latency
	AdminToUser        latency
}

func (b *bench) report(connectDur, sendDur time.Duration) *report {
	lost := b.missing()
	b.mu.Lock()
	defer b.mu.Unlock()
	r := &report{
		Users: b.o.users, Admins: b.o.admins,
		ConnectSeconds:    connectDur.Seconds(),
		ConnectsPerSecond: float64(b.o.users+b.o.admins) / connectDur.Seconds(),
		SendSeconds:       sendDur.Seconds(),
		Sent:              b.sent.Load(), Acked: b.acked.Load(), Replies: b.replies.Load(), Refused: b.refused.Load(),
		RefusedByCode: b.errorsByCod,
		ClosedEarly:   b.closedEarly.Load(),
		Delivered:     b.delivered.Load(), Duplicates: b.dups.Load(), OutOfOrder: b.ooo.Load(),
		Ack: summarize(b.latAck), UserToAdmin: summarize(b.latUA), AdminToUser: summarize(b.latAU),
	}
	r.StoredPerSecond = float64(r.Acked) / sendDur.Seconds()
	r.DeliveredPerSecond = float64(r.Delivered) / sendDur.Seconds()
	r.Lost = lost
	return r
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "connections: %d visitors + %d admins in %.2fs (%.0f/s)\n", r.Users, r.Admins, r.ConnectSeconds, r.ConnectsPerSecond)
	fmt.Fprintf(w, "sent %d visitor messages + %d admin replies in %.2fs; acked %d (%.0f msg/s stored); refused %d %v\n",
		r.Sent, r.Replies, r.SendSeconds, r.Acked, r.StoredPerSecond, r.Refused, r.RefusedByCode)
	fmt.Fprintf(w, "delivered %d frames (%.0f/s)\n", r.Delivered, r.DeliveredPerSecond)
	pl := func(name string, l latency) {
		fmt.Fprintf(w, "%-14s n=%-7d p50=%.2fms p90=%.2fms p99=%.2fms max=%.2fms\n", name, l.N, l.P50, l.P90, l.P99, l.Max)
	}
	pl("ack", r.Ack)
	pl("user→admin", r.UserToAdmin)
	pl("admin→user", r.AdminToUser)
	fmt.Fprintf(w, "lost=%d duplicates=%d out_of_order=%d connections_closed_early=%d\n", r.Lost, r.Duplicates, r.OutOfOrder, r.ClosedEarly)
}
