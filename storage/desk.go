// This file holds the support desk's model: a conversation's status and
// assignee, the recorded changes of both (events), each staff user's read
// marks, and the inbox views that filter, search and count conversations.

package storage

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// Conversation statuses. A new conversation is StatusOpen; a visitor's
// message moves a pending or resolved conversation back to StatusOpen (in
// the transaction that stores it); staff set any status.
const (
	StatusOpen     = "open"     // waiting on staff
	StatusPending  = "pending"  // waiting on the visitor
	StatusResolved = "resolved" // done
)

// ValidStatus reports whether s is one of the three statuses.
func ValidStatus(s string) bool {
	return s == StatusOpen || s == StatusPending || s == StatusResolved
}

// Event kinds.
const (
	EventStatus   = "status"   // Event.Status is the new status
	EventAssignee = "assignee" // Event.Assignee is the new assignee (nil: unassigned)
	// EventNote is an internal note (Event.Body): staff only, never shown
	// to the visitor.
	EventNote = "note"
)

// Limits of the desk.
const (
	MaxEventsPage  = 1000 // Events returns at most this many events
	MaxUnread      = 1000 // InboxEntry.Unread counts at most this many messages
	MaxSearchRunes = 200  // a longer InboxQuery.Search is refused with EINVALID
	// MaxNoteRunes bounds a note's text (the server's message bound is
	// usually lower and applies first).
	MaxNoteRunes = 20000
)

// UserRef names a user as the desk shows it.
type UserRef struct {
	ID         int64  `db:"id"`
	ExternalID string `db:"external_id"`
	Name       string `db:"name"`
}

// Event is one recorded change of a conversation's status or assignee.
type Event struct {
	ID             int64
	ConversationID int64
	// AfterSeq is the conversation's last_seq when the change was made: in
	// the thread the event comes after that message (before the first
	// message when 0).
	AfterSeq int64
	Kind     string // EventStatus or EventAssignee
	// Status is the new status (Kind EventStatus).
	Status string
	// Assignee is the new assignee (Kind EventAssignee); nil: unassigned.
	Assignee *UserRef
	// Body is the text of a note (Kind EventNote).
	Body string
	// Actor is who made the change: a staff user, or the visitor whose
	// message reopened the conversation.
	Actor     UserRef
	CreatedAt time.Time
}

// DeskState is a conversation's status and assignee, and its last seq.
type DeskState struct {
	ConversationID int64
	Status         string
	Assignee       *UserRef // nil: unassigned
	LastSeq        int64
}

// Change is a change a staff user asks of a conversation. Nil fields stay as
// they are.
type Change struct {
	// Status, when not nil, is the new status.
	Status *string
	// Assignee, when not nil, is the new assignee's user id; a pointer to 0
	// unassigns.
	Assignee *int64
	// Note, when not nil, is an internal note to record (a note event, after
	// the status and assignee events): non-empty, at most MaxNoteRunes
	// characters, no NUL. Only a staff actor may record one.
	Note *string
	// ActorID is the staff user making the change.
	ActorID int64
}

// ChangeResult is the outcome of a Change: the conversation's state after
// it, and the events it recorded (none when nothing changed: setting the
// current status or assignee again records nothing).
type ChangeResult struct {
	State  DeskState
	Events []Event
}

// Assignee filters of an InboxQuery.
const (
	AssigneeAny  = "any"  // every conversation
	AssigneeNone = "none" // unassigned conversations
	AssigneeMe   = "me"   // assigned to the viewer
	AssigneeUser = "user" // assigned to InboxQuery.AssigneeID
)

// InboxQuery selects one view of the inbox, for one staff user (the
// viewer): conversations that have at least one message, most recent
// activity first (see InboxCursor), filtered by status, assignee and text.
type InboxQuery struct {
	// ViewerID is the staff user asking: "me" and each entry's Unread and
	// ReadSeq are theirs.
	ViewerID int64
	// Status filters by status; "" means all.
	Status string
	// Assignee is one of AssigneeAny (also ""), AssigneeNone, AssigneeMe,
	// AssigneeUser (with AssigneeID).
	Assignee   string
	AssigneeID int64
	// Search, when not empty, keeps conversations with a message or an
	// internal note (EventNote) whose text matches every word of it, or
	// whose visitor's name contains it,
	// case-insensitively (PostgreSQL: full text search of the 'simple'
	// configuration, which does not depend on a language, and ILIKE;
	// memstore: each word of Search equal to a word of the message, words
	// being runs of letters and digits, compared in lower case). Leading
	// and trailing white space is ignored. At most MaxSearchRunes runes of
	// valid UTF-8 without NUL bytes. memstore finds a message as soon as
	// AppendMessages returned; PostgreSQL once the store's search indexer
	// has run after the message's batch committed, normally within its
	// interval (pgstore.Options.SearchIndexInterval, 500 ms by default),
	// longer when it falls behind or the database is unreachable. Names and
	// notes are matched at once in both.
	Search string
	// Teams, when not nil, keeps the conversations whose visitor's team
	// (User.Team) is one of them or "" (no team: every staff member's),
	// and those assigned to the viewer: a staff member whose token names
	// teams sees those. Each a valid team name (UserInput.Team), at most
	// MaxTeams. nil keeps every team.
	Teams []string
	After InboxCursor
	// Limit: 0 means DefaultInboxPage; more than MaxInboxPage is capped.
	Limit int
}

// Normalize checks q's status, assignee filter and search, and returns q
// with Assignee "" replaced by AssigneeAny, AssigneeMe by AssigneeUser with
// the viewer's id, and Search trimmed of white space. EINVALID for an
// unknown status or assignee filter, AssigneeUser with an id <= 0, or a
// search that is too long, not valid UTF-8 or holds a NUL byte. The cursor
// and the limit are the store's to check (as InboxPage's).
func (q InboxQuery) Normalize() (InboxQuery, error) {
	if q.Status != "" && !ValidStatus(q.Status) {
		return q, Errorf(EINVALID, "unknown status %q", q.Status)
	}
	switch q.Assignee {
	case "", AssigneeAny:
		q.Assignee, q.AssigneeID = AssigneeAny, 0
	case AssigneeNone:
		q.AssigneeID = 0
	case AssigneeMe:
		q.Assignee, q.AssigneeID = AssigneeUser, q.ViewerID
	case AssigneeUser:
	default:
		return q, Errorf(EINVALID, "unknown assignee filter %q", q.Assignee)
	}
	if q.Assignee == AssigneeUser && q.AssigneeID <= 0 {
		return q, Errorf(EINVALID, "assignee filter without a user")
	}
	switch {
	case !utf8.ValidString(q.Search):
		return q, Errorf(EINVALID, "search is not valid UTF-8")
	case strings.IndexByte(q.Search, 0) >= 0:
		return q, Errorf(EINVALID, "search contains a NUL byte")
	}
	q.Search = strings.TrimSpace(q.Search)
	if utf8.RuneCountInString(q.Search) > MaxSearchRunes {
		return q, Errorf(EINVALID, "search is longer than %d characters", MaxSearchRunes)
	}
	if err := CheckTeams(q.Teams); err != nil {
		return q, err
	}
	return q, nil
}

// ViewCounts counts the conversations (with at least one message) of each
// status, in all, assigned to the viewer, and unassigned.
type ViewCounts struct {
	Status     string `db:"status"`
	All        int64  `db:"all_count"`
	Mine       int64  `db:"mine"`
	Unassigned int64  `db:"unassigned"`
}

// Desk is the support desk's part of a Store.
type Desk interface {
	// ChangeConversation applies c to a conversation in one transaction,
	// records one event per field that changed, and returns the state after
	// it. ENOTFOUND for an unknown conversation or actor; EINVALID for an
	// unknown status, or an assignee that is not a staff user known to the
	// store.
	ChangeConversation(ctx context.Context, conversationID int64, c Change) (ChangeResult, error)

	// DeskState returns a conversation's status and assignee; ENOTFOUND if
	// there is none.
	DeskState(ctx context.Context, conversationID int64) (DeskState, error)

	// Events returns a conversation's events with fromSeq <= AfterSeq <=
	// toSeq in the order they were recorded (at most MaxEventsPage, the
	// oldest). A history page of the messages with seqs s1..sn shows the
	// events with AfterSeq in [s1, sn], and those with AfterSeq 0 when s1 is
	// 1. None when fromSeq > toSeq. ENOTFOUND for an unknown conversation;
	// EINVALID for a negative bound.
	Events(ctx context.Context, conversationID, fromSeq, toSeq int64) ([]Event, error)

	// MarkRead moves userID's read mark of a conversation forward to seq
	// (capped at the conversation's last seq) and returns the mark after it:
	// a mark never moves backwards, so a smaller seq leaves it as it is.
	// ENOTFOUND for an unknown conversation or user; EINVALID for a
	// negative seq.
	MarkRead(ctx context.Context, userID, conversationID, seq int64) (int64, error)

	// ReadReceipts returns how far a conversation has been read: by staff
	// (the furthest mark of any staff user) and by its visitor (the
	// visitor's own mark). Zero for an unknown conversation.
	ReadReceipts(ctx context.Context, conversationID int64) (ReadReceipts, error)

	// InboxView returns one page of a view of the inbox (see InboxQuery),
	// each entry with its status, assignee and the viewer's ReadSeq and
	// Unread. Paging by cursor has InboxPage's guarantees within one view
	// while messages arrive; a conversation whose status or assignee changes
	// during a walk may enter or leave the view (live updates say so).
	// EINVALID for an invalid cursor, status, assignee filter, search or a
	// negative limit.
	InboxView(ctx context.Context, q InboxQuery) ([]InboxEntry, error)

	// ConversationEntry returns one conversation as InboxView shows it to
	// viewerID (status, assignee, the viewer's ReadSeq and Unread), whether
	// or not it has a message: LastMessage and LastMessageAt are nil when it
	// has none. ENOTFOUND if there is no such conversation.
	ConversationEntry(ctx context.Context, viewerID, conversationID int64) (InboxEntry, error)

	// ViewCounts returns one row per status (open, pending, resolved, in
	// that order, zero rows included) for the viewer, of the conversations
	// InboxQuery.Teams keeps for teams (nil: all).
	ViewCounts(ctx context.Context, viewerID int64, teams []string) ([]ViewCounts, error)

	// StaffUser returns the staff user with the given external id;
	// ENOTFOUND if there is none or it is not staff.
	StaffUser(ctx context.Context, externalID string) (User, error)

	// StaffUsers returns the staff users (is_admin), sorted by name (byte
	// order, not the database's collation) then id, at most limit: 0
	// means MaxStaffUsers, more is capped. EINVALID for a negative limit.
	StaffUsers(ctx context.Context, limit int) ([]UserRef, error)

	// CannedReplies returns the team's canned replies (see canned.go),
	// sorted by name (byte order), at most MaxCannedReplies; an empty
	// slice, not nil, when there are none.
	CannedReplies(ctx context.Context) ([]CannedReply, error)

	// SaveCannedReply creates a canned reply (in.ID 0) or replaces the
	// name and text of one (in.ID > 0), stamped with the actor and the
	// time, and returns it as stored (see CannedReplyInput.Normalize).
	// EINVALID for a name or text that Normalize refuses, an actor the
	// store does not know, or a creation beyond MaxCannedReplies;
	// ECONFLICT when another canned reply has the name (names are
	// compared in lower case); ENOTFOUND for an unknown in.ID. Concurrent
	// creations never exceed MaxCannedReplies nor share a name.
	SaveCannedReply(ctx context.Context, in CannedReplyInput) (CannedReply, error)

	// DeleteCannedReply deletes a canned reply; ENOTFOUND if there is none
	// with that id.
	DeleteCannedReply(ctx context.Context, id int64) error
}

// ReadReceipts is how far a conversation has been read by each side (see
// Desk.ReadReceipts).
type ReadReceipts struct {
	Staff   int64
	Visitor int64
}

// CheckNote refuses a note no store accepts (see Change.Note).
func CheckNote(note string) error {
	if note == "" || strings.IndexByte(note, 0) >= 0 || !utf8.ValidString(note) || utf8.RuneCountInString(note) > MaxNoteRunes {
		return Errorf(EINVALID, "a note must be 1 to %d characters of valid text without NUL", MaxNoteRunes)
	}
	return nil
}
