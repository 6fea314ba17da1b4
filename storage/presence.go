package storage

import (
	"context"
	"time"
)

// Presence stores when visitors were last connected. Whether a visitor is
// online is not stored (the nodes know it); when they left is, so that it
// survives restarts.
type Presence interface {
	// SaveLastSeen records when each conversation's visitor was last seen,
	// never moving a time backwards. Unknown conversations are skipped.
	SaveLastSeen(ctx context.Context, seen []LastSeen) error
	// LastSeen returns the last-seen times of the conversations that have
	// one among ids.
	LastSeen(ctx context.Context, ids []int64) (map[int64]time.Time, error)
}

// LastSeen is when a conversation's visitor was last connected.
type LastSeen struct {
	ConversationID int64
	At             time.Time
}

// MaxLastSeenBatch bounds one SaveLastSeen or LastSeen call.
const MaxLastSeenBatch = 1000
