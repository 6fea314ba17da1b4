// Package batch groups concurrent message appends into few store round trips.
//
// Many conversation grains append at once, each waiting for its own message to
// be committed. An Appender collects whatever appends are waiting, writes them
// with one Store.AppendMessages call (one transaction), and answers each caller
// with its own result. There is no waiting window: when traffic is light, a
// batch holds the one message that is waiting and is written at once; when
// traffic is heavy, batches grow while the previous one is being written.
package batch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// Options configure an Appender. Zero values mean the documented defaults.
type Options struct {
	// MaxBatch bounds how many messages one transaction writes. Zero means 500.
	MaxBatch int
	// Queue bounds how many appends may wait. Beyond it Append fails at once
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

type request struct {
	msg  storage.NewMessage
	done chan result
}

type result struct {
	res storage.AppendResult
	err error
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

// ErrClosed is returned by Append after Close.
var ErrClosed = storage.Errorf(storage.EUNAVAILABLE, "the message writer is shutting down")

// Append stores msg and returns its result once it is committed (or failed).
// Like Store.AppendMessages, a per-message problem is in the result's Err and a
// failure of the whole write is the returned error. Append is safe for
// concurrent use; ctx bounds the wait.
func (a *Appender) Append(ctx context.Context, msg storage.NewMessage) (storage.AppendResult, error) {
	req := request{msg: msg, done: make(chan result, 1)}
	a.closeMu.RLock()
	select {
	case <-a.quit:
		a.closeMu.RUnlock()
		return storage.AppendResult{}, ErrClosed
	default:
	}
	select {
	case a.queue <- req:
		a.closeMu.RUnlock()
	default:
		a.closeMu.RUnlock()
		return storage.AppendResult{}, storage.Errorf(storage.EUNAVAILABLE, "too many messages are waiting to be stored")
	}
	select {
	case r := <-req.done:
		return r.res, r.err
	case <-ctx.Done():
		return storage.AppendResult{}, storage.Unavailable("wait for the message to be stored", ctx.Err())
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
	fill:
		for len(batch) < a.opts.MaxBatch {
			select {
			case req := <-a.queue:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		a.write(batch)
	}
}

func (a *Appender) write(batch []request) {
	msgs := make([]storage.NewMessage, len(batch))
	for i, r := range batch {
		msgs[i] = r.msg
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.opts.WriteTimeout)
	start := time.Now()
	results, err := a.store.AppendMessages(ctx, msgs)
	cancel()
	if err == nil && len(results) != len(batch) {
		err = storage.Errorf(storage.EINTERNAL, "store returned %d results for %d messages", len(results), len(batch))
	}
	if a.opts.Observe != nil {
		a.opts.Observe(len(batch), time.Since(start), err)
	}
	if err != nil {
		var se *storage.Error
		if !errors.As(err, &se) {
			err = &storage.Error{Code: storage.EINTERNAL, Message: "append messages", Err: err}
		}
		a.logger.Warn("append batch failed", "batch_size", len(batch), "err", err)
		for _, r := range batch {
			r.done <- result{err: err}
		}
		return
	}
	for i, r := range batch {
		r.done <- result{res: results[i]}
	}
}
