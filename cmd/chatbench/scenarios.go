package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// newReport starts a report with the run's configuration.
func (b *bench) newReport() *report {
	o := b.o
	r := &report{Scenario: o.scenario, Date: time.Now().UTC().Format(time.RFC3339), FileLimit: b.fileLimit,
		Config: reportConfig{URL: o.url, Admins: o.admins, Concurrency: o.concurrency, ConnectRate: o.connectRate,
			ServerPID: o.serverPID, MetricsURL: o.metricsURL, DurationS: o.duration.Seconds(), AllowRefused: o.allowRefused,
			ForceGC: o.forceGC}}
	switch o.scenario {
	case scenarioChat, scenarioAdmins:
		r.Config.Users, r.Config.Rate, r.Config.ReplyEvery = o.users, o.rate, o.replyEvery
		r.Config.Dialect, r.Config.Messages = o.dialect, o.messages
		if o.rate == 0 {
			w := o.window
			r.Config.Window = &w
		}
		if o.messages > 0 {
			r.Config.DurationS = 0
		}
	case scenarioIdle:
		r.Config.Conns = o.conns
	case scenarioConnect:
		r.Config.Conns, r.Config.Rounds, r.Config.DurationS = o.conns, o.rounds, 0
	case scenarioChurn:
		r.Config.Users, r.Config.MsgsPerConn, r.Config.ReplyEvery = o.users, o.msgsPerConn, o.replyEvery
	}
	if o.serverPID > 0 {
		if n, err := procFileLimit("/proc", o.serverPID); err == nil {
			r.Config.ServerFileMax = n
			if want := int64(max(o.conns, o.users) + o.admins); o.scenario != scenarioChat && want > n {
				b.warn("the server may open %d files: fewer than the %d connections asked for", n, want)
			}
		} else {
			b.warn("server file limit: %v", err)
		}
	}
	return r
}

// finish fills the report's server timeline and connection-level counts.
func (b *bench) finish(r *report, smp *sampler) {
	samples := smp.stop()
	r.Server.Before = samples[0]
	r.Server.After = samples[len(samples)-1]
	r.Server.Peak = peak(samples)
	r.Server.Timeline = samples
	r.ClosedEarly = b.closedEarlyN.Load()
	r.BadFrames = b.badFrames.Load()
	b.mu.Lock()
	if len(b.closedBy) > 0 {
		r.ClosedByCode = b.closedBy
	}
	for w := range b.warnings {
		r.Warnings = append(r.Warnings, w)
	}
	b.mu.Unlock()
	sort.Strings(r.Warnings)
	if r.BadFrames > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d frames were not JSON", r.BadFrames))
	}
}

// connectAdmins connects the admins; any failure is an error.
func (b *bench) connectAdmins(ctx context.Context) error {
	admins, st := b.connectMany(ctx, b.o.admins, b.o.concurrency, 0, b.adminIdentity)
	b.admins = compact(admins)
	if st.Failed > 0 {
		closeAll(b.admins)
		return fmt.Errorf("connect admins: %d of %d failed %v; first: %s", st.Failed, st.Attempted, st.FailedBy, st.FirstErr)
	}
	return nil
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// messageReport collects the message counters; lost is counted by the
// caller.
func (b *bench) messageReport(sendDur time.Duration, lost int64) *messageReport {
	for _, cs := range [][]*client{b.users, b.admins} {
		for _, c := range cs {
			b.keep(c)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	m := &messageReport{SendSeconds: sendDur.Seconds(),
		Sent: b.sent.Load(), Replies: b.replies.Load(), Acked: b.acked.Load(), Refused: b.refusedN.Load(),
		Unanswered: b.unanswered(), Delivered: b.delivered.Load(),
		Lost: lost, Duplicates: b.dups.Load(), OutOfOrder: b.outOfOrder.Load(), DoubleAcked: b.doubleAcked.Load(),
		Misrouted: b.misrouted.Load(), TypingSent: b.typingSent.Load(), TypingReceived: b.typingReceived.Load(),
		Ack: summarize(b.lat.ack), UserToAdmin: summarize(b.lat.userToAdmin), AdminToUser: summarize(b.lat.adminToUser)}
	if b.steadyAt.Load() != 0 { // --warmup, in a scenario that marks its send phase (chat, admins)
		m.AfterWarmup = &latencySet{WarmupSeconds: b.o.warmup.Seconds(),
			Ack: summarize(b.lat.ackSteady), UserToAdmin: summarize(b.lat.userToAdminSteady), AdminToUser: summarize(b.lat.adminToUserSteady)}
	}
	if len(b.lat.ackFirst) > 0 || len(b.lat.userToAdminFirst) > 0 {
		m.FirstMessage = &firstLatencies{Ack: summarize(b.lat.ackFirst), UserToAdmin: summarize(b.lat.userToAdminFirst)}
	}
	if len(b.refusedBy) > 0 {
		m.RefusedByCode = map[string]int{}
		for k, v := range b.refusedBy {
			m.RefusedByCode[k] = v
		}
	}
	m.StoredPerSecond = float64(m.Acked) / sendDur.Seconds()
	m.DeliveredPerSecond = float64(m.Delivered) / sendDur.Seconds()
	return m
}

// runChat is the chat and admins scenarios: admins connect, then visitors;
// visitors post for --duration at --rate or flat out, each keeping --window
// posts unacknowledged; an admin replies to every --reply-every'th message.
// Then it waits for the acks and deliveries and checks that every
// acknowledged message reached its visitor and every admin once, in order.
func (b *bench) runChat(ctx context.Context) (*report, error) {
	r := b.newReport()
	smp := b.startSampler(ctx)
	if err := b.connectAdmins(ctx); err != nil {
		smp.stop()
		return nil, err
	}
	users, st := b.connectMany(ctx, b.o.users, b.o.concurrency, b.o.connectRate, b.userIdentity)
	b.users = compact(users)
	r.Connect = append(r.Connect, st)
	if len(b.users) == 0 {
		closeAll(b.admins)
		smp.stop()
		return nil, fmt.Errorf("no visitor connected: %v; first: %s", st.FailedBy, st.FirstErr)
	}

	if err := b.openConversations(ctx); err != nil {
		closeAll(append(append([]*client(nil), b.users...), b.admins...))
		smp.stop()
		return nil, err
	}

	c0 := b.cpuNow(ctx)
	start := time.Now()
	b.startWarmup(start)
	b.sendMessages(ctx)
	sendDur := time.Since(start)
	if b.o.messages == 0 {
		// Timed runs stop replying with the visitors; with --messages
		// the replies to the last messages are part of the run.
		b.stopReplies.Store(true)
	}
	if b.o.dialect == dialectSeed {
		b.drainSeed(ctx)
	} else {
		b.drain(ctx)
	}
	completeDur := time.Since(start)
	b.stopReplies.Store(true)
	c1 := b.cpuNow(ctx)
	if b.o.dialect == dialectSeed {
		t := b.seedTally()
		r.Messages = b.messageReport(sendDur, t.missing)
		r.Messages.Unanswered = t.unanswered
		r.Messages.Acked = r.Messages.Sent + r.Messages.Replies - t.unanswered
		r.Messages.StoredPerSecond = float64(r.Messages.Acked) / sendDur.Seconds()
	} else {
		r.Messages = b.messageReport(sendDur, b.missing())
	}
	if b.o.messages > 0 {
		// The run's length is the time everything took to arrive.
		m := r.Messages
		m.CompleteSeconds = completeDur.Seconds()
		m.StoredPerSecond = float64(m.Acked) / m.CompleteSeconds
		m.DeliveredPerSecond = float64(m.Delivered) / m.CompleteSeconds
	}
	if c0.stored != nil && c1.stored != nil {
		d := *c1.stored - *c0.stored
		r.Messages.ServerStored = &d
	}
	r.CPU = cpuBetween(c0, c1, r.Messages.Acked, 0)

	b.finished.Store(true)
	closeAll(append(append([]*client(nil), b.users...), b.admins...))
	b.waitConnections(ctx, derefOr(smp.first().Connections, 0))
	smp.take(ctx)
	b.finish(r, smp)
	return r, nil
}

// openConversations has each admin open --open-per-admin of the
// conversations it replies in (conversation_id mod --admins) and waits
// until chatd answered every open with opened.
func (b *bench) openConversations(ctx context.Context) error {
	if b.o.openPerAdm == 0 || b.o.dialect != dialectV1 || len(b.admins) == 0 {
		return nil
	}
	want := make([]int, len(b.admins))
	for _, u := range b.users {
		a := b.admins[int(u.conv%int64(len(b.admins)))]
		if want[a.id.idx] < b.o.openPerAdm {
			want[a.id.idx]++
			a.conn.WriteAsync(gws.OpcodeText, fmt.Appendf(nil, `{"type":"open","conversation_id":%d}`, u.conv), nil)
		}
	}
	for _, a := range b.admins {
		if !a.waitUntil(ctx, 30*time.Second, func() bool { return a.opened.Load() >= int64(want[a.id.idx]) }) {
			return fmt.Errorf("admin %d: %d of %d conversations opened after 30 s", a.id.idx, a.opened.Load(), want[a.id.idx])
		}
	}
	return nil
}

// sendMessages has the visitors post: for --duration, or --messages each.
// At --rate the posts are spread over the visitors in turn; flat out each
// visitor keeps --window posts awaiting their ack (v1), or with no window
// (--window 0, and always in seed) writes all its --messages at once, each
// write waiting only for the socket (the server may slow it down).
func (b *bench) sendMessages(ctx context.Context) {
	sendCtx := ctx
	if b.o.messages == 0 {
		var cancel context.CancelFunc
		sendCtx, cancel = context.WithTimeout(ctx, b.o.duration)
		defer cancel()
	}
	if b.o.typingEvery > 0 && b.o.dialect == dialectV1 {
		typingCtx, stop := context.WithCancel(sendCtx)
		done := make(chan struct{})
		go func() { defer close(done); b.sendTyping(typingCtx) }()
		defer func() { stop(); <-done }()
	}
	if b.o.rate > 0 {
		total := b.o.messages * len(b.users) // 0: no bound but the duration
		pace(sendCtx, b.o.rate, total, func(n int) {
			if u := b.users[n%len(b.users)]; !u.ended() {
				if u.seed != nil {
					_ = u.sendSeed(false)
				} else {
					u.send(0, "msg")
				}
			}
		})
		return
	}
	var wg sync.WaitGroup
	for _, c := range b.users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; b.o.messages == 0 || i < b.o.messages; i++ {
				if c.window != nil {
					select {
					case c.window <- struct{}{}:
					case <-sendCtx.Done():
						return
					case <-c.closed:
						return
					}
				}
				if sendCtx.Err() != nil || c.ended() {
					return
				}
				if c.seed != nil {
					if c.sendSeed(true) != nil {
						return
					}
				} else {
					c.send(0, "msg")
				}
			}
		}()
	}
	wg.Wait()
}

// sendTyping has every visitor send a typing frame each --typing-every, the
// visitors' phases spread evenly over the interval, until ctx ends.
func (b *bench) sendTyping(ctx context.Context) {
	frame := []byte(`{"type":"typing"}`)
	pace(ctx, float64(len(b.users))/b.o.typingEvery.Seconds(), 0, func(n int) {
		if u := b.users[n%len(b.users)]; !u.ended() {
			u.conn.WriteAsync(gws.OpcodeText, frame, nil)
			b.typingSent.Add(1)
		}
	})
}

// pace calls send(0), send(1), … at perSecond, until ctx ends or, when
// total > 0, total calls were made. Each millisecond tick makes the calls
// the rate calls for by then, so that timer granularity does not lower it.
func pace(ctx context.Context, perSecond float64, total int, send func(n int)) {
	start := time.Now()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := int(perSecond * now.Sub(start).Seconds())
			if total > 0 {
				due = min(due, total)
			}
			for ; n < due; n++ {
				send(n)
			}
			if total > 0 && n >= total {
				return
			}
		}
	}
}

// waitConnections waits (at most 30s) until the server's connection gauge
// is back to n; without metrics it waits a second.
func (b *bench) waitConnections(ctx context.Context, n int64) {
	if b.o.metricsURL == "" {
		sleepCtx(ctx, time.Second)
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		s := b.sampleServer(ctx, time.Now())
		if s.Connections == nil || *s.Connections <= n {
			return
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
	b.warn("the server still counted more than %d connections 30s after they were closed", n)
}

// runConnections is the idle and connect scenarios. connect: --rounds times,
// --conns visitors connect with --concurrency dialers (at most
// --connect-rate per second) and disconnect; round 1 creates their
// conversations, later rounds reconnect existing visitors. idle: one round,
// then the connections are held for --duration; after --settle the server's
// RSS (and heap and goroutines) is read again, and the growth divided by the
// connections.
func (b *bench) runConnections(ctx context.Context) (*report, error) {
	r := b.newReport()
	smp := b.startSampler(ctx)
	before := smp.first()
	if err := b.connectAdmins(ctx); err != nil {
		smp.stop()
		return nil, err
	}
	rounds := b.o.rounds
	if b.o.scenario == scenarioIdle {
		rounds = 1
	}
	var users []*client
	for round := range rounds {
		c0 := b.cpuNow(ctx)
		cs, st := b.connectMany(ctx, b.o.conns, b.o.concurrency, b.o.connectRate, b.userIdentity)
		c1 := b.cpuNow(ctx)
		st.CPU = cpuBetween(c0, c1, 0, int64(st.Held))
		users = compact(cs)
		r.Connect = append(r.Connect, st)
		if ctx.Err() != nil || round == rounds-1 {
			break
		}
		closeAll(users)
		users = nil
		b.waitConnections(ctx, int64(len(b.admins))+derefOr(before.Connections, 0))
	}

	if b.o.scenario == scenarioIdle {
		holdStart := time.Now()
		sleepCtx(ctx, b.o.settle)
		settled := smp.takeAfterGC(ctx)
		sleepCtx(ctx, b.o.duration-time.Since(holdStart))
		end := smp.take(ctx)
		d := &idleReport{HoldSeconds: time.Since(holdStart).Seconds(), Settled: settled, End: end}
		for _, c := range users {
			if !c.ended() {
				d.HeldAtEnd++
			}
		}
		if n := float64(len(users) + len(b.admins)); n > 0 {
			if settled.RSSKiB > 0 && before.RSSKiB > 0 {
				d.RSSPerConnKiB = float64(settled.RSSKiB-before.RSSKiB) / n
			}
			if settled.HeapInuseKiB > 0 && before.HeapInuseKiB > 0 {
				d.HeapPerConnKiB = float64(settled.HeapInuseKiB-before.HeapInuseKiB) / n
				d.GoroutinesPerConn = float64(settled.Goroutines-before.Goroutines) / n
				d.HeapAllocPerConnKiB = float64(settled.HeapAllocKiB-before.HeapAllocKiB) / n
				d.StackPerConnKiB = float64(settled.StackKiB-before.StackKiB) / n
			}
		}
		r.Idle = d
	}
	b.finished.Store(true)
	closeAll(append(users, b.admins...))
	b.waitConnections(ctx, derefOr(before.Connections, 0))
	smp.takeAfterGC(ctx)
	b.finish(r, smp)
	return r, nil
}

func derefOr(p *int64, def int64) int64 {
	if p == nil {
		return def
	}
	return *p
}

// runChurn is the churn (soak) scenario. The server is sampled first (the
// baseline), then admins connect and --concurrency workers (at most --users)
// loop for --duration, each over its share of the --users visitors: connect
// (at most --connect-rate per second in all), post --msgs-per-conn
// messages, wait for their acks and for the messages to come back, close.
// The admins must receive every acknowledged message exactly once, in
// order. After the admins leave too, it waits --settle, then until the
// server's goroutines are back within --settle-margin of the baseline, its
// connections back to the baseline's and (--settle-gc) it has collected
// garbage once more, at most --settle-timeout.
func (b *bench) runChurn(ctx context.Context) (*report, error) {
	r := b.newReport()
	smp := b.startSampler(ctx)
	before := smp.first()
	if err := b.connectAdmins(ctx); err != nil {
		smp.stop()
		return nil, err
	}

	c0 := b.cpuNow(ctx)
	start := time.Now()
	deadline := start.Add(b.o.duration)
	p := newPacer(b.o.connectRate)
	workers := min(b.o.users, b.o.concurrency)
	var churned, lost, unanswered atomic.Int64
	st := connectStats{FailedBy: map[string]int{}}
	var stMu sync.Mutex
	var hs []time.Duration
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		mine := (b.o.users - w + workers - 1) / workers // visitors w, w+workers, …
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				i := w + k%mine*workers
				if time.Now().After(deadline) || p.wait(ctx) != nil || time.Now().After(deadline) {
					return
				}
				c, err := b.dial(ctx, b.userIdentity(i))
				stMu.Lock()
				st.Attempted++
				if err != nil {
					st.Failed++
					st.FailedBy[failureClass(err)]++
					if st.FirstErr == "" {
						st.FirstErr = err.Error()
					}
				} else {
					st.Held++
					hs = append(hs, time.Since(c.start))
				}
				stMu.Unlock()
				if err != nil {
					sleepCtx(ctx, 100*time.Millisecond)
					continue
				}
				for range b.o.msgsPerConn {
					c.send(0, "churn")
				}
				c.waitUntil(ctx, b.o.drain, func() bool { return c.pendingCount() == 0 && c.ownMissing() == 0 })
				lost.Add(c.ownMissing())
				unanswered.Add(int64(c.pendingCount()))
				closeAll([]*client{c})
				b.keep(c)
				churned.Add(1)
			}
		}()
	}
	wg.Wait()
	sendDur := time.Since(start)
	b.stopReplies.Store(true)
	b.drain(ctx)
	c1 := b.cpuNow(ctx)
	r.Messages = b.messageReport(sendDur, lost.Load()+b.missing())
	r.Messages.Unanswered += unanswered.Load()
	if c0.stored != nil && c1.stored != nil {
		d := *c1.stored - *c0.stored
		r.Messages.ServerStored = &d
	}
	r.CPU = cpuBetween(c0, c1, r.Messages.Acked, churned.Load())
	st.Seconds = sendDur.Seconds()
	st.PerSecond = float64(st.Held) / st.Seconds
	st.Handshake = summarize(hs)
	if len(st.FailedBy) == 0 {
		st.FailedBy = nil
	}
	ch := &churnReport{Seconds: sendDur.Seconds(), Workers: workers, Churned: churned.Load(), Connect: st}
	ch.PerSecond = float64(ch.Churned) / ch.Seconds
	r.Churn = ch

	b.finished.Store(true)
	closeAll(b.admins)
	settleStart := time.Now()
	gcs := b.sampleServer(ctx, settleStart).GCs // collections before everything closed
	sleepCtx(ctx, b.o.settle)
	after := smp.takeAfterGC(ctx)
	if before.Goroutines == 0 {
		b.warn("no goroutine count from the metrics: the settle check was skipped")
	} else {
		for {
			ch.Settled = after.Goroutines > 0 && after.Goroutines <= before.Goroutines+int64(b.o.settleMargin) &&
				(after.Connections == nil || before.Connections == nil || *after.Connections <= *before.Connections) &&
				(!b.o.settleGC || after.GCs > gcs)
			if ch.Settled || time.Since(settleStart) > b.o.settleTimeout || ctx.Err() != nil {
				break
			}
			sleepCtx(ctx, time.Second)
			after = smp.takeAfterGC(ctx)
		}
	}
	ch.SettleSeconds = time.Since(settleStart).Seconds()
	ch.GoroutinesDelta = after.Goroutines - before.Goroutines
	ch.RSSDeltaKiB = after.RSSKiB - before.RSSKiB
	ch.HeapDeltaKiB = after.HeapInuseKiB - before.HeapInuseKiB
	ch.HeapGoalDelta = after.HeapGoalKiB - before.HeapGoalKiB
	b.finish(r, smp)
	r.Server.After = after
	return r, nil
}
