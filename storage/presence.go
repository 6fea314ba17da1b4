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
	// SaveVisitorPages records the page each visitor's browser last
	// reported (see VisitorPage), replacing the one stored unless that one
	// is newer (a later At): the latest report wins, whichever node
	// writes it. A batch may name one user twice (the latest At counts);
	// unknown users are skipped. EINVALID, and nothing stored, for more
	// than MaxVisitorPageBatch pages or a page out of VisitorPage's
	// bounds. Reads see the page in InboxEntry.Page (InboxView,
	// ConversationEntry). Never on the message path: AppendMessages
	// neither reads nor writes it.
	SaveVisitorPages(ctx context.Context, pages []VisitorPage) error
}

// LastSeen is when a conversation's visitor was last connected.
type LastSeen struct {
	ConversationID int64
	At             time.Time
}

// MaxLastSeenBatch bounds one SaveLastSeen or LastSeen call.
const MaxLastSeenBatch = 1000

// VisitorPage is what a visitor's browser last reported to staff: the page
// of the host site the visitor is on (its URL and title) and the browser
// (the User-Agent of the socket that reported it).
type VisitorPage struct {
	UserID int64
	// URL is an absolute URL, 1 to MaxPageURLBytes bytes (the transport
	// checks that it is http or https).
	URL string
	// Title is at most MaxPageTitleBytes bytes, "" for none.
	Title string
	// UserAgent is at most MaxUserAgentBytes bytes, "" for none.
	UserAgent string
	// At is when it was reported (kept to the microsecond).
	At time.Time
}

// The bounds of a VisitorPage and of one SaveVisitorPages call. URL, Title
// and UserAgent must also be valid UTF-8 without NUL.
const (
	MaxPageURLBytes     = 2048
	MaxPageTitleBytes   = 300
	MaxUserAgentBytes   = 512
	MaxVisitorPageBatch = 1000
)
