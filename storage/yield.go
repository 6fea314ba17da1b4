package storage

import "time"

// Yield decides, pass by pass, whether a background job that shares the
// database with the message path (search indexing, webhook expansion) skips
// its pass: while the store's appends were in flight more than half of the
// time since the last pass (the database is the message path's bottleneck,
// and the job's work would be taken from messages), unless the job last
// emptied its queue more than MaxLag ago. The job then lags behind the
// messages by up to MaxLag at peaks, and catches up when they pass; a load
// that saturates the store for longer pays for the job as it goes.
//
// A Yield is used by one goroutine.
type Yield struct {
	// MaxLag bounds the lag; 0 or less means never yield.
	MaxLag time.Duration

	lastTick time.Time
	lastBusy time.Duration
	drained  time.Time // the start of the last pass that emptied the queue
}

// NewYield starts a Yield at now, with the store's busy time then (its
// total time with an append in flight, a counter that only grows).
func NewYield(maxLag time.Duration, now time.Time, busy time.Duration) *Yield {
	return &Yield{MaxLag: maxLag, lastTick: now, lastBusy: busy, drained: now}
}

// Skip reports whether the pass starting at now yields, busy being the
// store's busy time at now.
func (y *Yield) Skip(now time.Time, busy time.Duration) bool {
	saturated := busy-y.lastBusy > now.Sub(y.lastTick)/2
	y.lastTick, y.lastBusy = now, busy
	return saturated && y.MaxLag > 0 && now.Sub(y.drained) < y.MaxLag
}

// Drained records that the pass that started at now emptied the queue.
func (y *Yield) Drained(now time.Time) { y.drained = now }
