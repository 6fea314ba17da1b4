package batch

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// Loader groups concurrent conversation-state reads (grains activating)
// into few Store.ConversationStates calls, as the Appender groups appends:
// one reader takes every read waiting and answers them with one query;
// reads that arrive meanwhile wait for the next. A lone read is one query at
// once, as before; after a cold start, when hundreds of grains activate in
// the same moment, they cost a handful of queries instead of hundreds queued
// for the pool's connections.
type Loader struct {
	logger  *slog.Logger
	store   storage.Store
	timeout time.Duration
	reqs    chan loadRequest
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

type loadRequest struct {
	id    int64
	reply chan loadResult // buffered: the reader never blocks on it
}

type loadResult struct {
	state storage.ConversationState
	err   error
}

// NewLoader starts a Loader over store; each query is bounded by timeout
// (zero: 5 s). Close stops it.
func NewLoader(logger *slog.Logger, store storage.Store, timeout time.Duration) *Loader {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	l := &Loader{logger: logger, store: store, timeout: timeout, reqs: make(chan loadRequest), quit: make(chan struct{}), done: make(chan struct{})}
	go l.loop()
	return l
}

// Load returns conversation id's state (storage.Store.ConversationStates),
// read together with the other loads waiting. ENOTFOUND for an unknown
// conversation; ErrClosed after Close.
func (l *Loader) Load(ctx context.Context, id int64) (storage.ConversationState, error) {
	reply := make(chan loadResult, 1)
	select {
	case l.reqs <- loadRequest{id: id, reply: reply}:
	case <-l.quit:
		return storage.ConversationState{}, ErrClosed
	case <-ctx.Done():
		return storage.ConversationState{}, storage.Errorf(storage.EUNAVAILABLE, "loading conversation %d: %v", id, ctx.Err())
	}
	select {
	case r := <-reply:
		return r.state, r.err
	case <-ctx.Done():
		return storage.ConversationState{}, storage.Errorf(storage.EUNAVAILABLE, "loading conversation %d: %v", id, ctx.Err())
	}
}

// Close stops the reader once its query in flight is answered; loads
// waiting then, and later, fail with ErrClosed.
func (l *Loader) Close() {
	l.once.Do(func() { close(l.quit) })
	<-l.done
}

func (l *Loader) loop() {
	defer close(l.done)
	var batch []loadRequest
	for {
		batch = batch[:0]
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		case <-l.quit:
			return
		}
	fill:
		for len(batch) < storage.MaxStateBatch {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		l.read(batch)
	}
}

// read answers batch with one query.
func (l *Loader) read(batch []loadRequest) {
	ids := make([]int64, 0, len(batch))
	seen := make(map[int64]bool, len(batch))
	for _, r := range batch {
		if !seen[r.id] {
			seen[r.id] = true
			ids = append(ids, r.id)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	states, err := l.readStates(ctx, ids)
	cancel()
	byID := make(map[int64]*storage.ConversationState, len(states))
	for i := range states {
		byID[states[i].Conversation.ID] = &states[i]
	}
	for _, r := range batch {
		switch st := byID[r.id]; {
		case err != nil:
			r.reply <- loadResult{err: err}
		case st == nil:
			r.reply <- loadResult{err: storage.Errorf(storage.ENOTFOUND, "conversation %d not found", r.id)}
		default:
			r.reply <- loadResult{state: copyState(*st)}
		}
	}
}

// readStates calls the store, turning a panic into EINTERNAL for the batch:
// a bug in one read must not take the node down with it.
func (l *Loader) readStates(ctx context.Context, ids []int64) (states []storage.ConversationState, err error) {
	defer func() {
		if r := recover(); r != nil {
			l.logger.Error("conversation loads panicked", "conversations", len(ids), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			states, err = nil, storage.Errorf(storage.EINTERNAL, "loading the conversation failed")
		}
	}()
	return l.store.ConversationStates(ctx, ids)
}

// copyState gives each caller its own pointers (the same conversation may
// have been asked twice).
func copyState(st storage.ConversationState) storage.ConversationState {
	if r := st.Conversation.Receipts; r != nil {
		rc := *r
		st.Conversation.Receipts = &rc
	}
	if a := st.Assignee; a != nil {
		ac := *a
		st.Assignee = &ac
	}
	if a := st.Conversation.AssigneeID; a != nil {
		ac := *a
		st.Conversation.AssigneeID = &ac
	}
	if t := st.Conversation.LastMessageAt; t != nil {
		tc := *t
		st.Conversation.LastMessageAt = &tc
	}
	return st
}
