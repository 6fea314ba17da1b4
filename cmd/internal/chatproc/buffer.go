package chatproc

import (
	"strings"
	"sync"
)

// Buffer collects a process's output. It is safe for concurrent use. With a
// limit, it keeps about the last limit bytes: when it grows past the limit it
// drops its oldest half.
type Buffer struct {
	mu      sync.Mutex
	sb      strings.Builder
	limit   int
	dropped int64
}

// NewBuffer returns a Buffer that keeps about the last limit bytes; zero
// means no limit.
func NewBuffer(limit int) *Buffer { return &Buffer{limit: limit} }

// Write appends p. It never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sb.Write(p)
	if b.limit > 0 && b.sb.Len() > b.limit {
		s := b.sb.String()
		cut := len(s) - b.limit/2
		if i := strings.IndexByte(s[cut:], '\n'); i >= 0 {
			cut += i + 1
		}
		b.dropped += int64(cut)
		b.sb.Reset()
		b.sb.WriteString(s[cut:])
	}
	return len(p), nil
}

// String returns what the Buffer holds.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

// Dropped is how many bytes the limit discarded.
func (b *Buffer) Dropped() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}
