package main

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/chatproc"
	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/wsclient"
)

// chaos is one run of the scenario.
type chaos struct {
	o        options
	cl       *chatproc.Cluster
	issuer   *auth.Issuer
	progress func(format string, a ...any)
	net      *network
	rnd      *rand.Rand
	prefix   string         // of the users' subs, unique per run
	nodeOf   map[string]int // WebSocket URL → node index

	visitors []*visitor
	admins   []*admin

	mu        sync.Mutex
	markerAck map[string]time.Time // marker client_msg_id → ack arrival
	toAdmin   []sample             // visitor → admin deliveries (live)
	acks      []sample             // post → ack
}

// visitor is one visitor's resuming client and what it posted.
type visitor struct {
	idx  int
	r    *wsclient.Resumer
	conv int64

	acked atomic.Int64 // acknowledged posts since the last kill
	total atomic.Int64 // acknowledged posts

	mu    sync.Mutex
	posts map[string]string // client_msg_id → text
}

// admin is one admin's resuming client.
type admin struct {
	idx int
	r   *wsclient.Resumer
}

// sample is one latency with the time its message was first sent.
type sample struct {
	sent      time.Time
	d         time.Duration
	crossNode bool // visitor → admin: the visitor posted through another node than the admin's
}

func newChaos(o options, cl *chatproc.Cluster, secret string, progress func(string, ...any)) (*chaos, error) {
	iss, err := auth.NewIssuer(auth.Config{Secret: []byte(secret)})
	if err != nil {
		return nil, err
	}
	c := &chaos{o: o, cl: cl, issuer: iss, progress: progress, rnd: rand.New(rand.NewSource(o.seed)),
		prefix: "chaos-" + strconv.FormatInt(time.Now().Unix(), 36), nodeOf: map[string]int{},
		markerAck: map[string]time.Time{}}
	for i, u := range cl.URLs() {
		c.nodeOf[u] = i
	}
	return c, nil
}

// node is the index of the node serving url, -1 for none.
func (c *chaos) node(url string) int {
	if i, ok := c.nodeOf[url]; ok {
		return i
	}
	return -1
}

// urlsFor returns the order in which client k (the k-th of its kind)
// tries the nodes, starting at node start (see nodeOrder).
func (c *chaos) urlsFor(k, start int) []string {
	urls := c.cl.URLs()
	var out []string
	for _, i := range nodeOrder(k, start, len(urls)) {
		out = append(out, urls[i])
	}
	return out
}

// nodeOrder is the order in which client k tries n nodes: it starts at
// node start and, when its connection ends, moves on to the next node,
// upwards for half the clients and downwards for the other half, so that
// the clients of a killed node spread over the others instead of all
// piling onto one.
func nodeOrder(k, start, n int) []int {
	out := make([]int, n)
	down := (k/n)%2 == 1
	for j := range out {
		i := start + j
		if down {
			i = start - j
		}
		out[j] = ((i % n) + n) % n
	}
	return out
}

func (c *chaos) token(sub, name string, isAdmin bool) (string, error) {
	return c.issuer.Mint(auth.Identity{Subject: sub, Name: name, Admin: isAdmin}, c.o.timeout+time.Hour)
}

// Message texts carry the node the visitor posted through and the first
// send time: "<kind> n=<node> t=<unix nanoseconds>".
func body(kind string, node int) string {
	return kind + " n=" + strconv.Itoa(node) + " t=" + strconv.FormatInt(time.Now().UnixNano(), 10)
}

func parseBody(s string) (node int, sent time.Time, ok bool) {
	i := strings.LastIndex(s, " t=")
	j := strings.LastIndex(s, " n=")
	if i < 0 || j < 0 || j > i {
		return 0, time.Time{}, false
	}
	ns, err := strconv.ParseInt(s[i+3:], 10, 64)
	if err != nil {
		return 0, time.Time{}, false
	}
	node, err = strconv.Atoi(s[j+3 : i])
	if err != nil {
		return 0, time.Time{}, false
	}
	return node, time.Unix(0, ns), true
}

// post records a post, then hands it to the visitor's Resumer, which sends
// it (again on every reconnect) until it is acknowledged.
func (v *visitor) post(id, text string) {
	v.mu.Lock()
	v.posts[id] = text
	v.mu.Unlock()
	v.r.Post(0, text, id)
}

func (v *visitor) text(id string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t, ok := v.posts[id]
	return t, ok
}

// connect starts the clients: admins first (so that they see every
// conversation from its first message), each on a different node from
// node 2 on, then visitors spread over the nodes.
func (c *chaos) connect(ctx context.Context, wg *sync.WaitGroup) error {
	start := func(r *wsclient.Resumer) {
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(ctx) }()
	}
	for i := 0; i < c.o.admins; i++ {
		tok, err := c.token(fmt.Sprintf("%s-staff-%d", c.prefix, i), fmt.Sprintf("Staff %d", i), true)
		if err != nil {
			return err
		}
		a := &admin{idx: i, r: wsclient.NewResumer(c.urlsFor(i, i+1), tok)}
		a.r.Observe(c.observeAdmin)
		c.admins = append(c.admins, a)
		start(a.r)
	}
	for _, a := range c.admins {
		if err := chatproc.WaitFor(ctx, 30*time.Second, fmt.Sprintf("admin %d to connect", a.idx), a.r.Connected); err != nil {
			return err
		}
	}
	for i := 0; i < c.o.visitors; i++ {
		tok, err := c.token(fmt.Sprintf("%s-visitor-%d", c.prefix, i), fmt.Sprintf("Visitor %d", i), false)
		if err != nil {
			return err
		}
		v := &visitor{idx: i, r: wsclient.NewResumer(c.urlsFor(i, i), tok), posts: map[string]string{}}
		v.r.Observe(func(e wsclient.Event) { c.observeVisitor(v, e) })
		c.visitors = append(c.visitors, v)
		start(v.r)
	}
	for _, v := range c.visitors {
		err := chatproc.WaitFor(ctx, 60*time.Second, fmt.Sprintf("visitor %d to connect", v.idx), func() bool {
			v.conv = v.r.Snapshot().ConversationID
			return v.conv != 0
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *chaos) observeVisitor(v *visitor, e wsclient.Event) {
	if e.Kind != wsclient.Acknowledged {
		return
	}
	v.acked.Add(1)
	v.total.Add(1)
	text, ok := v.text(e.ClientMsgID)
	if !ok {
		return
	}
	_, sent, ok := parseBody(text)
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.HasPrefix(e.ClientMsgID, "k") {
		c.markerAck[e.ClientMsgID] = e.At
	}
	if ok {
		c.acks = append(c.acks, sample{sent: sent, d: e.At.Sub(sent)})
	}
}

func (c *chaos) observeAdmin(e wsclient.Event) {
	if e.Kind != wsclient.Delivered || !e.Live {
		return
	}
	node, sent, ok := parseBody(e.Text)
	if !ok {
		return
	}
	s := sample{sent: sent, d: e.At.Sub(sent), crossNode: node >= 0 && node != c.node(e.URL)}
	c.mu.Lock()
	c.toAdmin = append(c.toAdmin, s)
	c.mu.Unlock()
}

// traffic has every visitor post at the rate until stop is closed or ctx
// ends.
func (c *chaos) traffic(ctx context.Context, stop <-chan struct{}, wg *sync.WaitGroup) {
	period := time.Duration(float64(time.Second) / c.o.rate)
	for _, v := range c.visitors {
		offset := time.Duration(c.rnd.Int63n(int64(period))) // spread the visitors' ticks
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(offset):
			}
			t := time.NewTicker(period)
			defer t.Stop()
			for n := 0; ; n++ {
				v.post(fmt.Sprintf("v%d-%d", v.idx, n), body(fmt.Sprintf("v%d m%d", v.idx, n), c.node(v.r.URL())))
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
}

// steps is how many times the run takes a node down: --kills, or with
// --upgrade-from one upgrade per node.
func (c *chaos) steps() int {
	if c.o.upgradeFrom != "" || c.o.partition != "" {
		return c.o.nodes
	}
	return c.o.kills
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// run runs the scenario and checks the outcome.
func (c *chaos) run(ctx context.Context) (*report, error) {
	clientCtx, stopClients := context.WithCancel(ctx)
	var clients sync.WaitGroup
	defer func() { stopClients(); clients.Wait() }()
	if err := c.connect(clientCtx, &clients); err != nil {
		return nil, err
	}
	c.progress("%d visitors and %d admins connected; traffic %.0f msg/s in total", c.o.visitors, c.o.admins, c.o.rate*float64(c.o.visitors))

	stop := make(chan struct{})
	var senders sync.WaitGroup
	stopTraffic := sync.OnceFunc(func() { close(stop); senders.Wait() })
	defer stopTraffic()
	started := time.Now()
	c.traffic(clientCtx, stop, &senders)
	if err := sleep(ctx, c.o.warmup); err != nil {
		return nil, err
	}
	firstKill := time.Now()

	var kills []killRecord
	for k := 0; k < c.steps(); k++ {
		if k > 0 {
			if err := sleep(ctx, c.o.interval); err != nil {
				return nil, err
			}
		}
		var rec killRecord
		var err error
		switch {
		case c.o.upgradeFrom != "":
			rec, err = c.upgrade(ctx, k, c.o.chatd)
		case c.o.partition != "":
			rec, err = c.partition(ctx, k)
		default:
			rec, err = c.kill(ctx, k)
		}
		if err != nil {
			return nil, err
		}
		kills = append(kills, rec)
	}
	if c.steps() > 0 {
		if err := sleep(ctx, c.o.interval); err != nil {
			return nil, err
		}
	}
	stopTraffic()
	sendSeconds := time.Since(started).Seconds()
	c.progress("traffic stopped; waiting for every post to be acknowledged and delivered")
	drainStart := time.Now()
	drainErr := c.drain(ctx)
	rep := c.check(kills, firstKill)
	rep.SendSeconds = sendSeconds
	rep.DrainSeconds = time.Since(drainStart).Seconds()
	if drainErr != nil {
		rep.DrainError = drainErr.Error()
	}
	return rep, nil
}

// killRecord is what one kill did.
type killRecord struct {
	N    int    `json:"n"`
	Node string `json:"node"`
	// Action is "kill" (SIGKILL, then a restart of the same binary),
	// "upgrade" (SIGTERM, then a restart with the new binary) or
	// "cut-peers", "cut-db", "cut-etcd" (--partition).
	Action             string  `json:"action"`
	TargetConversation int64   `json:"target_conversation"`
	TargetHosted       bool    `json:"target_hosted"` // the target's grain was found on a node
	Grains             []int64 `json:"grains"`        // our conversations whose grains the node hosted
	// AlsoElsewhere are those of Grains that another node also hosted
	// at the kill, as its operator view said (two activations during a
	// membership change).
	AlsoElsewhere []int64 `json:"also_elsewhere,omitempty"`
	Sockets       int     `json:"sockets"` // visitors connected to the node
	// ServeAgain is, per visitor, the time from the kill until a post
	// made after it was acknowledged; -1 if it was not within
	// --recover-timeout.
	ServeAgain   []time.Duration `json:"-"`
	grainOnNode  []bool
	socketOnNode []bool
	// Conversations is ServeAgain in JSON: per visitor, its conversation,
	// where it was and the time to serve again.
	Conversations []killedConversation `json:"conversations"`
	// AffectedMaxMS is the longest time to serve again of the
	// conversations whose grain the node hosted, AllMaxMS of all; -1:
	// beyond --recover-timeout.
	AffectedMaxMS  float64 `json:"affected_max_ms"`
	AllMaxMS       float64 `json:"all_max_ms"`
	NotServed      []int64 `json:"not_served,omitempty"`
	RestartSeconds float64 `json:"restart_seconds"`
	// DownSeconds is how long taking the node down took: SIGKILL until
	// the process ended, or a graceful stop's SIGTERM until it exited.
	DownSeconds float64 `json:"down_seconds"`
	// Cut is what the clients saw during a --partition cut.
	Cut *cutRecord `json:"cut,omitempty"`
	// Binary is the chatd executable the node runs after the step.
	Binary   string `json:"binary"`
	killedAt time.Time
	steadyAt time.Time // the node is back and every conversation served again
}

// killedConversation is one conversation's view of a kill.
type killedConversation struct {
	ID           int64   `json:"id"`
	GrainOnNode  bool    `json:"grain_on_node"`
	SocketOnNode bool    `json:"socket_on_node"`
	ServeAgainMS float64 `json:"serve_again_ms"` // -1: not within --recover-timeout
}

// pickTarget chooses the conversation whose host is killed.
func (c *chaos) pickTarget() *visitor {
	if c.o.target == "random" {
		for _, v := range c.visitors {
			v.acked.Store(0)
		}
		return c.visitors[c.rnd.Intn(len(c.visitors))]
	}
	var best []*visitor
	var most int64 = -1
	for _, v := range c.visitors {
		n := v.acked.Swap(0)
		switch {
		case n > most:
			most, best = n, []*visitor{v}
		case n == most:
			best = append(best, v)
		}
	}
	return best[c.rnd.Intn(len(best))]
}

// kill SIGKILLs the host of a busy conversation, measures the time every
// conversation takes to acknowledge a post made after the kill, and
// restarts the node.
func (c *chaos) kill(ctx context.Context, k int) (killRecord, error) {
	rec := killRecord{N: k + 1, Action: "kill"}
	target := c.pickTarget()
	rec.TargetConversation = target.conv
	var victim *chatproc.Node
	_ = chatproc.WaitFor(ctx, 10*time.Second, "the target's host", func() bool {
		if hs := c.cl.Hosts(ctx, target.conv); len(hs) > 0 {
			victim = hs[0]
			return true
		}
		return false
	})
	if victim == nil {
		// Hosted nowhere: kill the node hosting the most conversations.
		most := -1
		for _, n := range c.cl.Nodes {
			if h := len(n.Hosted(ctx)); h > most {
				victim, most = n, h
			}
		}
	} else {
		rec.TargetHosted = true
	}
	return c.disrupt(ctx, rec, victim, victim.Kill, victim.Restart)
}

// upgrade is one step of a rolling upgrade: it stops node k gracefully
// (SIGTERM: the node hands its grains over and closes its sockets, which
// resume on the other nodes), measures the time every conversation takes to
// acknowledge a post made after the stop, and starts the node again with
// binary, on the same addresses.
func (c *chaos) upgrade(ctx context.Context, k int, binary string) (killRecord, error) {
	victim := c.cl.Nodes[k]
	rec := killRecord{N: k + 1, Action: "upgrade"}
	stop := func() error { return victim.Stop(c.o.stopTimeout) }
	start := func(ctx context.Context) error {
		victim.SetBinary(binary)
		return victim.Restart(ctx)
	}
	return c.disrupt(ctx, rec, victim, stop, start)
}

// disrupt takes victim down with down, measures the time every conversation
// takes to acknowledge a post made after it, and brings the node back with
// up.
func (c *chaos) disrupt(ctx context.Context, rec killRecord, victim *chatproc.Node, down func() error, up func(context.Context) error) (killRecord, error) {
	k := rec.N - 1
	rec.Node = victim.Name()
	hosted := map[int64]bool{}
	for _, conv := range victim.Hosted(ctx) {
		hosted[conv] = true
	}
	rec.grainOnNode = make([]bool, len(c.visitors))
	rec.socketOnNode = make([]bool, len(c.visitors))
	for i, v := range c.visitors {
		if hosted[v.conv] {
			rec.grainOnNode[i] = true
			rec.Grains = append(rec.Grains, v.conv)
			if len(c.cl.Hosts(ctx, v.conv)) > 1 {
				rec.AlsoElsewhere = append(rec.AlsoElsewhere, v.conv)
			}
		}
		if v.r.URL() == victim.URL() {
			rec.socketOnNode[i] = true
			rec.Sockets++
		}
	}

	rec.killedAt = time.Now()
	if err := down(); err != nil {
		return rec, err
	}
	rec.DownSeconds = time.Since(rec.killedAt).Seconds()
	if rec.Action != "kill" {
		// A graceful stop serves while it hands over (the others drop
		// the node before it stops its grains), a cut lasts --cut: the
		// time to serve again runs from their end.
		rec.killedAt = time.Now()
	}
	ids := make([]string, len(c.visitors))
	for i, v := range c.visitors {
		ids[i] = fmt.Sprintf("k%d-v%d", k+1, i)
		v.post(ids[i], body(fmt.Sprintf("k%d v%d", k+1, i), c.node(v.r.URL())))
	}
	c.progress("%s %d/%d: %s (grains of %d conversations, %d of them also on another node; %d visitor sockets; target conversation %d)",
		rec.Action, k+1, c.steps(), rec.Node, len(rec.Grains), len(rec.AlsoElsewhere), rec.Sockets, rec.TargetConversation)
	allAcked := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, id := range ids {
			if _, ok := c.markerAck[id]; !ok {
				return false
			}
		}
		return true
	}
	waitErr := chatproc.WaitFor(ctx, c.o.recoverTimeout, "every conversation to be served again", allAcked)
	if ctx.Err() != nil {
		return rec, ctx.Err()
	}
	c.mu.Lock()
	rec.ServeAgain = make([]time.Duration, len(ids))
	for i, id := range ids {
		at, ok := c.markerAck[id]
		if !ok {
			rec.ServeAgain[i] = -1
			rec.NotServed = append(rec.NotServed, c.visitors[i].conv)
			rec.Conversations = append(rec.Conversations, killedConversation{ID: c.visitors[i].conv,
				GrainOnNode: rec.grainOnNode[i], SocketOnNode: rec.socketOnNode[i], ServeAgainMS: -1})
			continue
		}
		d := at.Sub(rec.killedAt)
		rec.ServeAgain[i] = d
		rec.Conversations = append(rec.Conversations, killedConversation{ID: c.visitors[i].conv,
			GrainOnNode: rec.grainOnNode[i], SocketOnNode: rec.socketOnNode[i], ServeAgainMS: ms(d)})
		rec.AllMaxMS = max(rec.AllMaxMS, ms(d))
		if rec.grainOnNode[i] {
			rec.AffectedMaxMS = max(rec.AffectedMaxMS, ms(d))
		}
	}
	c.mu.Unlock()
	for i, d := range rec.ServeAgain {
		if d < 0 {
			rec.AllMaxMS = -1 // beyond the bound
			if rec.grainOnNode[i] {
				rec.AffectedMaxMS = -1
			}
		}
	}
	if waitErr != nil {
		c.progress("%s %d: %d conversations not served again within %v: %v", rec.Action, k+1, len(rec.NotServed), c.o.recoverTimeout, rec.NotServed)
	}

	restartAt := time.Now()
	if err := up(ctx); err != nil {
		return rec, err
	}
	rec.RestartSeconds = time.Since(restartAt).Seconds()
	rec.Binary = victim.Binary()
	rec.steadyAt = time.Now()
	c.progress("%s %d: conversations whose grain was there served again within %s (all: %s); %s restarted in %.2f s",
		rec.Action, k+1, fmtMS(rec.AffectedMaxMS), fmtMS(rec.AllMaxMS), rec.Node, rec.RestartSeconds)
	return rec, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// drain waits until every post is acknowledged, then until every
// acknowledged message reached its visitor and every admin.
func (c *chaos) drain(ctx context.Context) error {
	deadline := time.Now().Add(c.o.drain)
	err := chatproc.WaitFor(ctx, time.Until(deadline), "every post to be acknowledged", func() bool {
		for _, v := range c.visitors {
			if v.r.Snapshot().Pending > 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	last := map[int64]int64{} // conversation → highest acknowledged seq
	for _, v := range c.visitors {
		for _, a := range v.r.Snapshot().Acked {
			last[a.ConversationID] = max(last[a.ConversationID], a.Seq)
		}
	}
	reached := func(r *wsclient.Resumer, convs map[int64]int64) bool {
		s := r.Snapshot()
		for conv, seq := range convs {
			seqs := s.Seqs[conv]
			if len(seqs) == 0 || seqs[len(seqs)-1] < seq {
				return false
			}
		}
		return true
	}
	for _, v := range c.visitors {
		own := map[int64]int64{v.conv: last[v.conv]}
		if err := chatproc.WaitFor(ctx, time.Until(deadline), fmt.Sprintf("visitor %d's deliveries", v.idx), func() bool { return reached(v.r, own) }); err != nil {
			return err
		}
	}
	for _, a := range c.admins {
		if err := chatproc.WaitFor(ctx, time.Until(deadline), fmt.Sprintf("admin %d's deliveries", a.idx), func() bool { return reached(a.r, last) }); err != nil {
			return err
		}
	}
	return nil
}

// sortedDurations returns d sorted.
func sortedDurations(d []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}
