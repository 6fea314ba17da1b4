// Package batch groups concurrent store calls into few round trips: message
// appends (Appender, below) and conversation-state reads (Loader, loader.go).
//
// Many conversation grains append at once, each waiting for its own messages
// to be committed. A grain submits its messages (Submit) and is called back
// when they are committed; Append is the blocking form. An Appender collects
// whatever submissions are waiting, writes them with one Store.AppendMessages
// call (one transaction), and answers each caller with its own results. There is no waiting window: when traffic is light, a
// batch holds the one message that is waiting and is written at once; when
// traffic is heavy, batches grow while the previous one is being written.
package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// Options configure an Appender. Zero values mean the documented defaults.
type Options struct {
	// MaxBatch bounds how many messages one transaction writes: a batch stops
	// taking submissions once it holds MaxBatch messages (one submission is
	// never split, so a batch may end a little over). Zero means 500.
	MaxBatch int
	// Queue bounds how many submissions may wait. Beyond it Submit fails at once
	// with EUNAVAILABLE ("overloaded") instead of queueing without bound.
	// Zero means 20000.
	Queue int
	// Writers is how many batches may be written at the same time. Zero means 4.
	Writers int
	// WriteTimeout bounds one AppendMessages call. Zero means 5s.
	WriteTimeout time.Duration
	// Observe, when set, is called after each batch with its size, duration and
	// error (for metrics).
	Observe func(size int, d time.Duration, err error)
}

// request is one Submit: a caller's messages and where their results go.
type request struct {
	msgs []storage.NewMessage
	done func([]storage.AppendResult, error)
	// expires is when the caller stops caring: a request still queued then
	// is failed with EUNAVAILABLE instead of being written.
	expires time.Time
}

// Appender batches appends to a Store. Create it with New, stop it with Close.
type Appender struct {
	store  storage.Store
	logger *slog.Logger
	opts   Options
	queue  chan request
	// closeMu orders Append's "not closed, enqueue" against Close, so that no
	// request is queued after the writers drained the queue and left.
	closeMu sync.RWMutex
	quit    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// New starts an Appender that writes to store.
func New(logger *slog.Logger, store storage.Store, opts Options) *Appender {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 500
	}
	if opts.Queue <= 0 {
		opts.Queue = 20000
	}
	if opts.Writers <= 0 {
		opts.Writers = 4
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 5 * time.Second
	}
	a := &Appender{
		store:  store,
		logger: logger,
		opts:   opts,
		queue:  make(chan request, opts.Queue),
		quit:   make(chan struct{}),
	}
	for range opts.Writers {
		a.wg.Add(1)
		go a.loop()
	}
	return a
}

// ErrClosed is returned by Submit after Close.
var ErrClosed = storage.Errorf(storage.EUNAVAILABLE, "the message writer is shutting down")

// Submit queues msgs to be stored together, in order, and returns at once.
// done is called exactly once, from a writer goroutine, with one result per
// message (in the order of msgs) or with an error for all of them: it must
// not block (an actor sends itself a message). A request still queued at
// expires is failed with EUNAVAILABLE without being written. Submit fails at
// once, without calling done, when the queue is full or the Appender closed.
func (a *Appender) Submit(msgs []storage.NewMessage, expires time.Time, done func([]storage.AppendResult, error)) error {
	req := request{msgs: msgs, done: done, expires: expires}
	a.closeMu.RLock()
	defer a.closeMu.RUnlock()
	select {
	case <-a.quit:
		return ErrClosed
	default:
	}
	select {
	case a.queue <- req:
		return nil
	default:
		return storage.Errorf(storage.EUNAVAILABLE, "too many messages are waiting to be stored")
	}
}

// Close stops accepting appends, writes what is queued and returns when done.
func (a *Appender) Close() {
	a.once.Do(func() {
		a.closeMu.Lock()
		close(a.quit)
		a.closeMu.Unlock()
	})
	a.wg.Wait()
}

func (a *Appender) loop() {
	defer a.wg.Done()
	batch := make([]request, 0, a.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case req := <-a.queue:
			batch = append(batch, req)
		case <-a.quit:
			// Drain what is left so that no caller waits forever.
			for {
				select {
				case req := <-a.queue:
					a.write([]request{req})
				default:
					return
				}
			}
		}
		n := len(batch[0].msgs)
	fill:
		for n < a.opts.MaxBatch {
			select {
			case req := <-a.queue:
				batch = append(batch, req)
				n += len(req.msgs)
			default:
				break fill
			}
		}
		a.write(batch)
	}
}

// expired is the error of a request that waited in the queue past its expiry.
var expired = storage.Errorf(storage.EUNAVAILABLE, "the message waited too long to be stored")

func (a *Appender) write(batch []request) {
	now := time.Now()
	var msgs []storage.NewMessage
	live := batch[:0]
	for _, r := range batch {
		if !r.expires.IsZero() && now.After(r.expires) {
			r.done(nil, expired)
			continue
		}
		msgs = append(msgs, r.msgs...)
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.opts.WriteTimeout)
	start := time.Now()
	results, err := a.appendMessages(ctx, msgs)
	cancel()
	if err == nil && len(results) != len(msgs) {
		err = storage.Errorf(storage.EINTERNAL, "store returned %d results for %d messages", len(results), len(msgs))
	}
	if a.opts.Observe != nil {
		a.opts.Observe(len(msgs), time.Since(start), err)
	}
	if err != nil {
		var se *storage.Error
		if !errors.As(err, &se) {
			err = &storage.Error{Code: storage.EINTERNAL, Message: "append messages", Err: err}
		}
		a.logger.Warn("append batch failed", "batch_size", len(msgs), "err", err)
		for _, r := range live {
			r.done(nil, err)
		}
		return
	}
	for _, r := range live {
		r.done(results[:len(r.msgs):len(r.msgs)], nil)
		results = results[len(r.msgs):]
	}
}

// appendMessages calls the store, turning a panic into EINTERNAL for the
// batch: a bug in one write must not take the node down with it.
func (a *Appender) appendMessages(ctx context.Context, msgs []storage.NewMessage) (res []storage.AppendResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			a.logger.Error("append batch panicked", "batch_size", len(msgs), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			res, err = nil, storage.Errorf(storage.EINTERNAL, "storing the messages failed")
		}
	}()
	return a.store.AppendMessages(ctx, msgs)
}
