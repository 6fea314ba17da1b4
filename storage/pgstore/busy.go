package pgstore

import (
	"sync"
	"time"
)

// busyMeter measures how busy the Store's message path is: the time during
// which at least one AppendMessages call is in flight. The search indexer
// reads it to yield to the message path (see indexLoop). Two lock
// operations per AppendMessages call (one per batch of messages).
type busyMeter struct {
	mu       sync.Mutex
	inflight int
	since    time.Time     // when inflight last went from 0 to 1
	total    time.Duration // busy time before since
}

// enter counts an AppendMessages call in; exit counts it out.
func (b *busyMeter) enter(now time.Time) {
	b.mu.Lock()
	if b.inflight == 0 {
		b.since = now
	}
	b.inflight++
	b.mu.Unlock()
}

func (b *busyMeter) exit(now time.Time) {
	b.mu.Lock()
	b.inflight--
	if b.inflight == 0 {
		b.total += now.Sub(b.since)
	}
	b.mu.Unlock()
}

// busy is the total time with a call in flight, up to now.
func (b *busyMeter) busy(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inflight > 0 {
		return b.total + now.Sub(b.since)
	}
	return b.total
}
