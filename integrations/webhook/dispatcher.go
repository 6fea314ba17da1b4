package webhook

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultRetention      = 72 * time.Hour
	DefaultRetryMin       = time.Second
	DefaultRetryMax       = time.Hour
	DefaultConcurrency    = 16
	DefaultExpandInterval = 200 * time.Millisecond
	DefaultPollInterval   = 100 * time.Millisecond
	DefaultLockInterval   = time.Second
	DefaultMaxLag         = 30 * time.Second

	// maxLoaded bounds the deliveries a sender holds in memory; more wait in
	// the database until it has sent some.
	maxLoaded = 10000
	// deleteBatch is how many settled deliveries make a sender delete them
	// (and read new ones) before its next PollInterval tick.
	deleteBatch = 500
	// backlogInterval is how often a sender reports its endpoint's backlog.
	backlogInterval = 5 * time.Second
	// maxResponse is how much of an answer's body is read (then dropped).
	maxResponse = 64 << 10
)

// Config configures a Dispatcher. Every zero value means the documented
// default.
type Config struct {
	// URLs are the endpoints; every event goes to each. Required.
	URLs []string
	// Secret keys the signatures (Sign). Required.
	Secret []byte
	// Timeout bounds one attempt (connect, send, answer). Zero means
	// DefaultTimeout (10 s).
	Timeout time.Duration
	// Retention is how long an event is retried before it is given up
	// (counted from when it happened). Zero means DefaultRetention (72 h).
	Retention time.Duration
	// RetryMin and RetryMax bound the backoff between attempts of one event
	// (Backoff): the first retry after about RetryMin, doubling up to
	// RetryMax. Zero means DefaultRetryMin (1 s) and DefaultRetryMax (1 h).
	RetryMin, RetryMax time.Duration
	// Concurrency is how many conversations an endpoint's sender has a
	// request in flight for at once (one per conversation). Zero means
	// DefaultConcurrency (16).
	Concurrency int
	// ExpandInterval is how often the expander turns recorded events into
	// deliveries; PollInterval how often a sender reads new deliveries;
	// LockInterval how often a node that does not send an endpoint tries
	// to take it over. Zero means DefaultExpandInterval (200 ms),
	// DefaultPollInterval (100 ms), DefaultLockInterval (1 s).
	ExpandInterval, PollInterval, LockInterval time.Duration
	// MaxLag bounds how long the expander and the senders yield to a
	// saturated message path (see expandLoop and sender.serve). Zero means
	// DefaultMaxLag (30 s); negative means never yield.
	MaxLag time.Duration
	// Client sends the requests; nil means a client of the Dispatcher's own
	// that follows no redirect (a 3xx is a failed attempt).
	Client *http.Client
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Timeout, DefaultTimeout)
	def(&c.Retention, DefaultRetention)
	def(&c.RetryMin, DefaultRetryMin)
	def(&c.RetryMax, DefaultRetryMax)
	def(&c.ExpandInterval, DefaultExpandInterval)
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.LockInterval, DefaultLockInterval)
	if c.MaxLag == 0 {
		c.MaxLag = DefaultMaxLag
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Client == nil {
		c.Client = &http.Client{
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				MaxIdleConnsPerHost: c.Concurrency,
				IdleConnTimeout:     90 * time.Second,
				TLSHandshakeTimeout: 10 * time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c
}

// Metrics receives the dispatcher's events; endpoint is the endpoint's
// Label. Methods are called from several goroutines.
type Metrics interface {
	WebhookSent(endpoint string)          // an endpoint took an event (2xx)
	WebhookAttemptFailed(endpoint string) // an attempt failed (non-2xx, timeout, connection)
	WebhookExpired(endpoint string)       // an event was given up after Retention
	// WebhookBacklog reports the deliveries waiting for an endpoint and the
	// age of the oldest, from the node sending it (others report 0).
	WebhookBacklog(endpoint string, pending int64, oldestAge time.Duration)
}

// Label is how logs and metrics name an endpoint: its URL without user
// information, query or fragment (which may hold credentials).
func Label(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "invalid-url"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// CheckURL reports what is wrong with an endpoint URL: it must be absolute
// http or https with a host.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q: %w", Label(raw), err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: must be an http:// or https:// URL with a host", Label(raw))
	}
	return nil
}

// Dispatcher sends the outbox's events. Every node configured with
// webhooks runs one: all of them expand (one at a time, the store
// serializes them), and for each endpoint the one node holding its sender
// lock sends (the others try to take it every LockInterval, so a survivor
// takes over within about that long after the sender's node dies).
type Dispatcher struct {
	logger  *slog.Logger
	cfg     Config
	store   storage.Webhooks
	metrics Metrics

	endpoints []storage.WebhookEndpoint
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	yielded   atomic.Int64 // expander passes skipped to yield to the message path
}

// New returns a Dispatcher; Start starts it. A nil metrics records nothing.
func New(logger *slog.Logger, cfg Config, store storage.Webhooks, metrics Metrics) (*Dispatcher, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("webhook: no endpoint URL")
	}
	if len(cfg.Secret) == 0 {
		return nil, ErrEmptySecret
	}
	for _, u := range cfg.URLs {
		if err := CheckURL(u); err != nil {
			return nil, fmt.Errorf("webhook: endpoint %w", err)
		}
	}
	if metrics == nil {
		metrics = nopMetrics{}
	}
	return &Dispatcher{logger: logger, cfg: cfg.withDefaults(), store: store, metrics: metrics}, nil
}

// Start registers the endpoints with the store, then runs the expander and
// one sender per endpoint in the background until Shutdown.
func (d *Dispatcher) Start(ctx context.Context) error {
	eps, err := d.store.WebhookEndpoints(ctx, d.cfg.URLs)
	if err != nil {
		return fmt.Errorf("webhook: register endpoints: %w", err)
	}
	d.endpoints = eps
	run, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	ids := make([]int64, len(eps))
	for i, e := range eps {
		ids[i] = e.ID
		s := &sender{d: d, endpoint: e, label: Label(e.URL), logger: d.logger.With("endpoint", Label(e.URL), "endpoint_id", e.ID)}
		d.wg.Go(func() { s.run(run) })
	}
	d.wg.Go(func() { d.expandLoop(run, ids) })
	d.logger.Info("webhooks started", "endpoints", len(eps), "retention", d.cfg.Retention, "timeout", d.cfg.Timeout,
		"concurrency", d.cfg.Concurrency)
	return nil
}

// Yielded is how many expander passes and sender polls were skipped so far
// (the sender starting no attempt until its next poll) to yield to a
// saturated message path (see expandLoop).
func (d *Dispatcher) Yielded() int64 { return d.yielded.Load() }

// Shutdown stops the expander and the senders (requests in flight are cut
// short: their events are sent again by whoever sends next) and waits for
// them, at most until ctx ends.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	if d.cancel == nil {
		return nil
	}
	d.cancel()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("webhook: shutdown: %w", ctx.Err())
	}
}

// expandLoop expands everything recorded every ExpandInterval.
//
// It yields to the message path, as the search indexer does: a pass is
// skipped while this node's appends were in flight more than half of the
// last interval (the database is the message path's bottleneck, and
// expanding — reading each message, encoding its event, writing a delivery
// per endpoint — would take its time from messages), unless the expander
// last emptied the queue more than MaxLag ago. Webhooks then lag behind
// messages by up to MaxLag at peaks, and catch up when they pass.
func (d *Dispatcher) expandLoop(ctx context.Context, endpointIDs []int64) {
	t := time.NewTicker(d.cfg.ExpandInterval)
	defer t.Stop()
	failing := false
	start := time.Now()
	yield := storage.NewYield(d.cfg.MaxLag, start, d.store.AppendBusy(start))
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if yield.Skip(now, d.store.AppendBusy(now)) {
			d.yielded.Add(1)
			continue
		}
		var err error
		for ctx.Err() == nil {
			var n int
			if n, err = d.store.ExpandWebhooks(ctx, endpointIDs, Encode); err != nil || n == 0 {
				break
			}
		}
		if err == nil && ctx.Err() == nil {
			yield.Drained(now)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				d.logger.Warn("webhooks: expanding events failed; retrying every interval", "err", err)
			}
			failing = true
		case err == nil && failing:
			d.logger.Info("webhooks: expanding events works again")
			failing = false
		}
	}
}

// nopMetrics records nothing.
type nopMetrics struct{}

func (nopMetrics) WebhookSent(string)                          {}
func (nopMetrics) WebhookAttemptFailed(string)                 {}
func (nopMetrics) WebhookExpired(string)                       {}
func (nopMetrics) WebhookBacklog(string, int64, time.Duration) {}

// sender sends one endpoint's deliveries while its node holds the
// endpoint's lock.
type sender struct {
	d        *Dispatcher
	endpoint storage.WebhookEndpoint
	label    string
	logger   *slog.Logger
}

// run takes the endpoint's lock whenever it is free and sends while it
// holds it, until ctx ends.
func (s *sender) run(ctx context.Context) {
	cfg := s.d.cfg
	for {
		lock, ok, err := s.d.store.LockWebhookEndpoint(ctx, s.endpoint.ID)
		if err != nil && ctx.Err() == nil {
			s.logger.Debug("webhooks: cannot take the endpoint's lock", "err", err)
		}
		if ok {
			s.logger.Info("webhooks: sending this endpoint's events from this node")
			s.serve(ctx, lock)
			lock.Release()
			s.d.metrics.WebhookBacklog(s.label, 0, 0)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(cfg.LockInterval):
		}
	}
}

// conversationQueue is one conversation's loaded deliveries, in order.
type conversationQueue struct {
	deliveries []storage.WebhookDelivery
	inFlight   bool
}

// result is the outcome of one attempt.
type result struct {
	delivery storage.WebhookDelivery
	err      error // nil: 2xx
}

// serve sends while the lock holds: it loads the endpoint's deliveries in id
// order, keeps them per conversation, and sends each conversation's head
// (at most Concurrency at once, oldest heads first); the next one of a
// conversation goes only once the previous one was taken or given up, at
// once. The database is read and the settled deliveries deleted every
// PollInterval, or after deleteBatch of them: not once per event, which
// bounded a sender to a few hundred events a second.
func (s *sender) serve(ctx context.Context, lock storage.Lock) {
	cfg := s.d.cfg
	ctx, cancel := context.WithCancel(ctx)
	var workers sync.WaitGroup
	defer func() {
		cancel()
		workers.Wait()
	}()
	results := make(chan result, cfg.Concurrency)
	convs := map[int64]*conversationQueue{}
	var after int64 // the highest delivery id loaded
	loaded, inFlight := 0, 0
	var deletes []int64
	poll := time.NewTicker(cfg.PollInterval)
	defer poll.Stop()
	backlog := time.NewTicker(backlogInterval)
	defer backlog.Stop()
	loadFailing := false
	s.reportBacklog(ctx)
	start := func(q *conversationQueue) {
		q.inFlight = true
		inFlight++
		dl := q.deliveries[0]
		workers.Go(func() { results <- result{delivery: dl, err: s.attempt(ctx, dl)} })
	}
	flush := true // read the database (and delete what was settled) now
	scan := true  // look for due heads among every conversation
	// While the message path saturates the store, the sender starts no
	// attempt (as the expander expands nothing): its HTTP work and the
	// receiver's would be taken from messages. It falls behind by up to
	// MaxLag, and catches up when the peak passes.
	now := time.Now()
	yield := storage.NewYield(cfg.MaxLag, now, s.d.store.AppendBusy(now))
	paused := false
	for {
		// Deliveries taken or given up leave the database.
		if flush && len(deletes) > 0 {
			if err := s.d.store.DeleteWebhooks(ctx, deletes); err != nil {
				s.logger.Warn("webhooks: deleting sent events failed; retrying", "err", err, "events", len(deletes))
			} else {
				deletes = deletes[:0]
			}
		}
		if flush && loaded < maxLoaded {
			ds, err := s.d.store.PendingWebhooks(ctx, s.endpoint.ID, after, maxLoaded-loaded)
			switch {
			case err != nil && ctx.Err() == nil:
				if !loadFailing {
					s.logger.Warn("webhooks: reading events to send failed; retrying", "err", err)
				}
				loadFailing = true
			case err == nil:
				if loadFailing {
					s.logger.Info("webhooks: reading events to send works again")
				}
				loadFailing = false
				for _, dl := range ds {
					q := convs[dl.ConversationID]
					if q == nil {
						q = &conversationQueue{}
						convs[dl.ConversationID] = q
					}
					q.deliveries = append(q.deliveries, dl)
					after = dl.ID
				}
				loaded += len(ds)
			}
		}
		if flush {
			flush, scan = false, true
		}
		// Start the due heads, oldest first.
		if scan && !paused && inFlight < cfg.Concurrency {
			scan = false
			now := time.Now()
			var due []*conversationQueue
			for _, q := range convs {
				if !q.inFlight && len(q.deliveries) > 0 && !q.deliveries[0].NextAttemptAt.After(now) {
					due = append(due, q)
				}
			}
			slices.SortFunc(due, func(a, b *conversationQueue) int {
				return cmp.Compare(a.deliveries[0].ID, b.deliveries[0].ID)
			})
			for _, q := range due {
				if inFlight >= cfg.Concurrency {
					break
				}
				start(q)
			}
		}

		select {
		case <-ctx.Done():
			return
		case <-lock.Lost():
			s.logger.Warn("webhooks: lost the endpoint's lock (database session ended); stopping; a node takes it over")
			return
		case <-backlog.C:
			s.reportBacklog(ctx)
		case <-poll.C:
			flush = true
			now := time.Now()
			if loaded == 0 {
				yield.Drained(now)
			}
			if paused = yield.Skip(now, s.d.store.AppendBusy(now)); paused {
				s.d.yielded.Add(1)
			}
		case r := <-results:
			inFlight--
			q := convs[r.delivery.ConversationID]
			q.inFlight = false
			if ctx.Err() != nil {
				return // cut short: sent again by whoever sends next
			}
			if s.settle(ctx, q, r) {
				deletes = append(deletes, r.delivery.ID)
				q.deliveries = q.deliveries[1:]
				loaded--
				if len(q.deliveries) == 0 {
					delete(convs, r.delivery.ConversationID)
				}
				flush = len(deletes) >= deleteBatch
			}
			// The conversation's next event goes at once; other heads,
			// at the top of the loop.
			if !paused && len(q.deliveries) > 0 && !q.deliveries[0].NextAttemptAt.After(time.Now()) && inFlight < cfg.Concurrency {
				start(q)
			} else {
				scan = true // a slot for another conversation's head
			}
		}
	}
}

// settle handles an attempt's result for the head of q: true when the
// delivery is done (taken, or given up after Retention), false when it is
// to be retried (its next attempt time set, here and in the store).
func (s *sender) settle(ctx context.Context, q *conversationQueue, r result) bool {
	dl := r.delivery
	if r.err == nil {
		s.d.metrics.WebhookSent(s.label)
		return true
	}
	s.d.metrics.WebhookAttemptFailed(s.label)
	now := time.Now()
	attempts := dl.Attempts + 1
	if now.Sub(dl.CreatedAt) >= s.d.cfg.Retention {
		s.d.metrics.WebhookExpired(s.label)
		s.logger.Error("webhooks: giving up an event after the retention", "event_id", dl.EventID, "type", dl.Type,
			"conversation_id", dl.ConversationID, "attempts", attempts, "err", r.err)
		return true
	}
	next := now.Add(Backoff(attempts, s.d.cfg.RetryMin, s.d.cfg.RetryMax, nil))
	q.deliveries[0].Attempts, q.deliveries[0].NextAttemptAt = attempts, next
	level := slog.LevelDebug
	if attempts == 1 || attempts%10 == 0 {
		level = slog.LevelWarn
	}
	s.logger.Log(ctx, level, "webhooks: attempt failed; retrying", "event_id", dl.EventID, "conversation_id", dl.ConversationID,
		"attempts", attempts, "retry_in", next.Sub(now).Round(time.Millisecond), "err", r.err)
	if err := s.d.store.RetryWebhook(ctx, dl.ID, attempts, next); err != nil && ctx.Err() == nil {
		s.logger.Debug("webhooks: recording a failed attempt failed", "err", err)
	}
	return false
}

// attempt POSTs one delivery, signed now: nil when the endpoint answered
// 2xx within Timeout.
func (s *sender) attempt(ctx context.Context, dl storage.WebhookDelivery) error {
	ctx, cancel := context.WithTimeout(ctx, s.d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint.URL, bytes.NewReader(dl.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "grainchat-webhooks/1")
	req.Header.Set(HeaderEventID, dl.EventID)
	req.Header.Set(HeaderSignature, Sign(s.d.cfg.Secret, time.Now(), dl.Body))
	resp, err := s.d.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	return nil
}

// reportBacklog reports the endpoint's waiting deliveries.
func (s *sender) reportBacklog(ctx context.Context) {
	n, oldest, err := s.d.store.WebhookBacklog(ctx, s.endpoint.ID)
	if err != nil {
		return
	}
	var age time.Duration
	if !oldest.IsZero() {
		age = time.Since(oldest)
	}
	s.d.metrics.WebhookBacklog(s.label, n, age)
}
