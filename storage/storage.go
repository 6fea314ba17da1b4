// Package storage defines grainchat's persistent model (users, conversations,
// messages) and the Store interface that the actors use to read and write it.
//
// Two implementations exist: storage/pgstore (PostgreSQL, the production store)
// and storage/memstore (in-process, the development default that persists
// nothing). Both pass the conformance suite in storage/storetest.
package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Error codes carried by *Error. They are stable: the edges (WebSocket error
// frames, HTTP statuses) translate them, and tests assert on them.
const (
	ENOTFOUND    = "not_found"   // the named user, conversation or canned reply does not exist
	EINVALID     = "invalid"     // the input breaks a documented rule
	ECONFLICT    = "conflict"    // a value that must be unique is taken (a canned reply's name)
	EUNAVAILABLE = "unavailable" // the store cannot be reached or failed; retry later
	EINTERNAL    = "internal"    // anything else
)

// Error is a storage error with a stable code. Message is safe to show to a
// client; wrapped detail (Err) is for logs only.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Unavailable wraps err as an EUNAVAILABLE error describing what was being done.
func Unavailable(what string, err error) *Error {
	return &Error{Code: EUNAVAILABLE, Message: what, Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for nil,
// and EINTERNAL for any other error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// Limits that every Store enforces.
const (
	MaxNameBytes       = 200 // display names are truncated to this many bytes (on a rune boundary)
	MaxExternalIDBytes = 200 // longer external ids are refused with EINVALID
	// The bounds of UserInput's Email and Context (a token's email and ctx
	// claims); what breaks them is refused with EINVALID.
	MaxEmailBytes        = 254
	MaxTeamBytes         = 64   // a team's name: see UserInput.Team
	MaxContextBytes      = 4096 // the canonical JSON
	MaxContextKeys       = 32
	MaxContextKeyRunes   = 64
	MaxContextValueRunes = 512
	MaxClientMsgIDBytes  = 100  // longer client message ids are refused with EINVALID
	MaxPageSize          = 200  // Messages returns at most this many rows
	DefaultPageSize      = 50   // Messages' page size when Page.Limit is 0
	MaxInboxSize         = 1000 // Inbox returns at most this many conversations
	DefaultInboxPage     = 50   // InboxPage's page size when its limit is 0
	MaxInboxPage         = 200  // InboxPage returns at most this many conversations
	MaxTeams             = 32   // a staff token names at most this many teams (InboxQuery.Teams)
)

// User is a person known to the host site, identified there by ExternalID
// (the token's "sub"). ID is grainchat's own numeric id, shown on the wire as
// sender_id.
type User struct {
	ID         int64     `db:"id"`
	ExternalID string    `db:"external_id"`
	Name       string    `db:"name"`
	IsAdmin    bool      `db:"is_admin"`
	CreatedAt  time.Time `db:"created_at"`
	// Email and Context are the latest token's (see UserInput); "" when it
	// had none.
	Email   string `db:"email"`
	Context string `db:"context"`
	// Team is a visitor's team (UserInput.Team), "" for none.
	Team string `db:"team"`
	// MergedInto is the user this one's conversation was merged into (an
	// anonymous visitor who signed in: see MergeUser), 0 when none. Such a
	// user can no longer connect.
	MergedInto int64 `db:"merged_into"`
}

// UserInput is what a token says about a user.
type UserInput struct {
	ExternalID string
	Name       string
	IsAdmin    bool
	// Email is the token's email claim: one plain address, at most
	// MaxEmailBytes; "" for none. Context is its ctx claim's JSON text: an
	// object of at most MaxContextKeys keys (1 to MaxContextKeyRunes
	// characters each) whose values are strings of at most
	// MaxContextValueRunes characters, numbers, booleans or null, stored in
	// canonical form (keys sorted, no spaces) of at most MaxContextBytes;
	// "" for none. Anything else is refused with EINVALID. Each connect
	// replaces both with the token's (none clears them).
	Email   string
	Context string
	// Team is a visitor token's team claim: the staff team that serves
	// their conversation (docs/PROTOCOL.md, "Teams"). 1 to MaxTeamBytes of
	// lower-case ASCII letters, digits, '-', '_' and '.', starting with a
	// letter or a digit; "" for none (every staff member's). Anything else
	// is refused with EINVALID. Each connect replaces it with the token's,
	// like Email and Context. Staff have none: their teams are their
	// token's and are not stored.
	Team string
}

// Conversation is the one conversation a visitor has with the site's staff.
type Conversation struct {
	ID     int64 `db:"id"`
	UserID int64 `db:"user_id"`
	// LastSeq is the seq of the newest message, 0 when there is none.
	LastSeq       int64      `db:"last_seq"`
	LastMessageAt *time.Time `db:"last_message_at"`
	CreatedAt     time.Time  `db:"created_at"`
	// Status is StatusOpen, StatusPending or StatusResolved.
	Status string `db:"status"`
	// AssigneeID is the assigned staff user's id, nil when unassigned.
	AssigneeID *int64 `db:"assignee_id"`
	// Receipts are the conversation's read receipts as Store.Connect and
	// Store.ConversationStates read them with it (one read for a returning
	// visitor's handshake, one for a grain's load); nil from every other
	// method (Desk.ReadReceipts reads them).
	Receipts *ReadReceipts `db:"-"`
}

// MaxStateBatch bounds the ids of one Store.ConversationStates call.
const MaxStateBatch = 500

// ConversationState is a conversation with the users its grain shows: see
// Store.ConversationStates.
type ConversationState struct {
	Conversation Conversation // Receipts set
	Visitor      User
	Assignee     *User // nil when unassigned
}

// Message is one stored chat message. Seq is 1, 2, 3, … within its
// conversation: unique and without gaps.
type Message struct {
	ID             int64     `db:"id"`
	ConversationID int64     `db:"conversation_id"`
	Seq            int64     `db:"seq"`
	SenderID       int64     `db:"sender_id"`
	SenderName     string    `db:"sender_name"`
	SenderIsAdmin  bool      `db:"sender_is_admin"`
	Body           string    `db:"body"`
	ClientMsgID    string    `db:"client_msg_id"` // "" when the client gave none
	CreatedAt      time.Time `db:"created_at"`
}

// NewMessage is a message to append. ClientMsgID, when not empty, makes the
// append idempotent per (conversation, sender, client message id).
type NewMessage struct {
	ConversationID int64
	SenderID       int64
	SenderName     string
	SenderIsAdmin  bool
	Body           string
	ClientMsgID    string
}

// AppendResult is the outcome of one NewMessage of an AppendMessages call.
type AppendResult struct {
	// Message is the stored message (the earlier one when Duplicate).
	Message Message
	// Duplicate is true when a message with the same conversation, sender and
	// client message id was already stored: nothing new was written.
	Duplicate bool
	// Err is set when this message was not stored (ENOTFOUND for an unknown
	// conversation, EINVALID for a bad field); Message is then zero.
	Err error
	// Reopened is set on the result of the visitor message that moved its
	// pending or resolved conversation back to StatusOpen: the status event
	// recorded in the same transaction (Actor: the visitor; AfterSeq: the
	// seq before that message). Never set on a Duplicate.
	Reopened *Event
}

// Page selects messages of one conversation by seq. AfterSeq and BeforeSeq
// are exclusive bounds; 0 means unbounded. With BeforeSeq set (and AfterSeq
// not), the page holds the newest Limit messages before BeforeSeq; otherwise the
// oldest Limit messages after AfterSeq. Either way rows come in ascending seq.
type Page struct {
	AfterSeq  int64
	BeforeSeq int64
	Limit     int // 0 means DefaultPageSize; more than MaxPageSize is capped
}

// InboxEntry is one conversation as the admin inbox shows it.
type InboxEntry struct {
	ConversationID int64  `db:"conversation_id"`
	UserID         int64  `db:"user_id"`
	UserExternalID string `db:"user_external_id"`
	UserName       string `db:"user_name"`
	// UserEmail and UserContext are the visitor's (User.Email, Context):
	// InboxView and ConversationEntry fill them; Inbox and InboxPage need
	// not.
	UserEmail   string `db:"user_email"`
	UserContext string `db:"user_context"`
	// Team is the visitor's team (User.Team): every inbox read fills it.
	Team          string     `db:"team"`
	LastSeq       int64      `db:"last_seq"`
	LastMessageAt *time.Time `db:"last_message_at"`
	// LastMessage is the newest message, nil when the conversation has none.
	LastMessage *Message `db:"-"`
	// Page is the page the visitor's browser last reported (UserID set),
	// nil when it never reported one: InboxView and ConversationEntry fill
	// it; Inbox and InboxPage need not.
	Page *VisitorPage `db:"-"`
	// Status and Assignee (nil: unassigned) are the conversation's desk
	// state: every inbox read fills them.
	Status   string   `db:"status"`
	Assignee *UserRef `db:"-"`
	// ReadSeq is the viewer's read mark and Unread the number of messages
	// after it not sent by the viewer (at most MaxUnread): InboxView fills
	// them; Inbox and InboxPage, which have no viewer, leave them 0.
	ReadSeq int64 `db:"read_seq"`
	Unread  int64 `db:"unread"`
}

// Cursor returns e's position in the inbox: InboxPage(ctx, e.Cursor(), n)
// continues after e. An entry without LastMessageAt (no Store returns one)
// gives a cursor with a zero time, which InboxPage refuses.
func (e InboxEntry) Cursor() InboxCursor {
	c := InboxCursor{ConversationID: e.ConversationID}
	if e.LastMessageAt != nil {
		c.LastMessageAt = *e.LastMessageAt
	}
	return c
}

// InboxCursor positions an inbox page: a page holds the conversations
// strictly after the cursor in inbox order (most recent activity first:
// last_message_at descending, then conversation id descending). The zero
// InboxCursor means "from the top".
//
// A cursor other than the zero one has a ConversationID > 0 and a non-zero
// LastMessageAt in whole microseconds (the precision at which stores keep
// times; InboxEntry.Cursor gives such cursors). Compare times with Equal,
// not ==: the location does not matter. Whoever carries a cursor outside
// the process must keep its time to the microsecond: a JavaScript Date keeps
// milliseconds only (its UnixMicro, below 2^53, is a safe JavaScript number).
type InboxCursor struct {
	LastMessageAt  time.Time
	ConversationID int64
}

// IsZero reports whether c is the zero cursor: the top of the inbox.
func (c InboxCursor) IsZero() bool {
	return c.LastMessageAt.IsZero() && c.ConversationID == 0
}

// Store is grainchat's persistence. All methods are safe for concurrent use.
// Every error is an *Error (see ErrorCode): EUNAVAILABLE when the backing
// database cannot be reached, so callers can refuse instead of losing data.
type Store interface {
	// UpsertUser creates the user with in.ExternalID or updates its name and
	// admin flag, and returns it. EINVALID for an empty or too long ExternalID,
	// one that is not valid UTF-8 or holds a NUL byte, or one reserved for
	// API keys' bots (IsBotExternalID: only CreateAPIKey makes those). The name is cleaned,
	// never refused: invalid UTF-8 becomes U+FFFD, NUL bytes are dropped, an
	// empty name becomes the ExternalID, and it is truncated to MaxNameBytes
	// on a rune boundary.
	UpsertUser(ctx context.Context, in UserInput) (User, error)

	// User returns the user with the given id, ENOTFOUND if there is none.
	User(ctx context.Context, id int64) (User, error)

	// MergeUser records that user from's conversation was merged into user
	// into's (from can no longer connect). Merging again into the same user
	// does nothing; into another one is ECONFLICT; ENOTFOUND if either user
	// does not exist.
	MergeUser(ctx context.Context, from, into int64) error

	// EnsureConversation returns the conversation of userID, creating it on
	// first use. ENOTFOUND if the user does not exist.
	EnsureConversation(ctx context.Context, userID int64) (Conversation, error)

	// Conversation returns one conversation, ENOTFOUND if there is none.
	Conversation(ctx context.Context, id int64) (Conversation, error)

	// ConversationStates is what conversations' grains load when they
	// activate, for many at once in one round trip where the store can
	// (grains activating together after a cold start; see batch.Loader):
	// each conversation (with its Receipts), its visitor and its assignee,
	// for the ids that exist, in no particular order; an unknown id is left
	// out. At most MaxStateBatch ids.
	ConversationStates(ctx context.Context, ids []int64) ([]ConversationState, error)

	// Connect is what a connecting user needs: UpsertUser(in), then, for a
	// visitor (not in.IsAdmin), EnsureConversation of that user; staff get
	// a zero Conversation. Errors as those methods'. A store answers a
	// returning user with an unchanged name and role in one round trip,
	// which also reads the conversation's Receipts (nil when it did not).
	Connect(ctx context.Context, in UserInput) (User, Conversation, error)

	// AppendMessages stores msgs in one transaction and returns one result per
	// input, in input order. Seq is assigned inside that transaction, so it
	// stays unique and gap-free even when several processes append to the same
	// conversation at once. Messages of one conversation get increasing seqs in
	// input order. A message whose (conversation, sender, client message id) is
	// already stored, earlier or in the same call, is not stored again: its
	// result is the stored message with Duplicate set. A per-message problem
	// (unknown conversation, invalid field) is reported in that result's Err and
	// does not affect the others: ENOTFOUND for an unknown conversation or
	// sender; EINVALID for an empty body, a body or client message id that is
	// not valid UTF-8 or holds a NUL byte, or a client message id longer than
	// MaxClientMsgIDBytes. SenderName is cleaned like a user's name. All
	// messages stored by one call share one CreatedAt. The returned error is
	// non-nil only when nothing was stored (EUNAVAILABLE, EINTERNAL), except
	// that a connection lost during commit gives EUNAVAILABLE although the
	// messages may be stored: retrying with the same client message ids is
	// safe.
	AppendMessages(ctx context.Context, msgs []NewMessage) ([]AppendResult, error)

	// Messages returns a page of one conversation's messages in ascending seq.
	// ENOTFOUND if the conversation does not exist; EINVALID for a negative
	// bound or limit.
	Messages(ctx context.Context, conversationID int64, p Page) ([]Message, error)

	// Inbox returns up to limit conversations that have at least one message,
	// most recent activity first (ties by descending conversation id), each with
	// its user and newest message. limit <= 0 or > MaxInboxSize means MaxInboxSize.
	// It is the first page of InboxPage, with a larger cap.
	Inbox(ctx context.Context, limit int) ([]InboxEntry, error)

	// InboxPage returns up to limit conversations (that have at least one
	// message) after `after`, in inbox order, each with its user and newest
	// message, like Inbox. limit 0 means DefaultInboxPage; more than
	// MaxInboxPage is capped. EINVALID for a negative limit or an invalid
	// cursor (see InboxCursor).
	//
	// Walking the inbox page by page (each page after the previous page's
	// last entry's Cursor) while messages arrive: a conversation moves to the
	// top of the inbox when it gets a message, so above the cursor. The walk
	// therefore returns no conversation twice, and returns every conversation
	// that got no message during the walk, in inbox order. A conversation
	// that got a message during the walk may be missing from it (it moved
	// above the cursor before the walk reached it): a client that walks the
	// inbox learns of those from the live inbox_update frames, which it must
	// follow from before its first page. This rests on a conversation's
	// last_message_at never decreasing, which both stores guarantee.
	InboxPage(ctx context.Context, after InboxCursor, limit int) ([]InboxEntry, error)

	// StoreID identifies the data set this store serves: a non-empty, opaque
	// string fixed when the store is opened, the same on every call (the one
	// exception is an operator's tool: pgstore's ResetStoreID), and the same
	// for every process that opens the same data. Ids (of users,
	// conversations, messages) and seqs mean something only within one data
	// set: a page keeps the StoreID it cached data under and drops that data
	// when the server reports another.
	//
	// storage/memstore: a fresh random id per New (a restarted development
	// server is a new, empty data set). storage/pgstore: a value stored in the
	// database (table grainchat_store, created with a random UUID by
	// migration 00005), the same across restarts and on every node.
	//
	// Restoring a PostgreSQL backup: the restored data carries the StoreID it
	// had when the backup was taken, but its id sequences are rewound to that
	// moment, so the ids handed out after the backup will be handed out again,
	// to other users, conversations and messages, and pages that cached them
	// would show one visitor's conversation under another's id. After a
	// restore, and before any chatd serves the restored database, an operator
	// must give it a new StoreID: with every chatd stopped, run pgstore's
	// Store.ResetStoreID (or in SQL: UPDATE grainchat_store SET id =
	// gen_random_uuid()::text), then start the nodes. The same applies to
	// any copy of the database that takes the original's place (a replica
	// promoted after losing recent commits, a clone made with CREATE DATABASE
	// … TEMPLATE).
	StoreID() string

	// Ping reports whether the store is reachable (nil) or not (EUNAVAILABLE).
	Ping(ctx context.Context) error

	// Close releases the store's resources.
	Close() error

	// Desk: status, assignment, events, read marks, inbox views, canned
	// replies, the staff list.
	Desk

	// Presence: when visitors were last connected.
	Presence

	// APIKeys: the REST API's keys and their bots.
	APIKeys
}

// ValidTeam reports whether name is a team's name (UserInput.Team): 1 to
// MaxTeamBytes of lower-case ASCII letters, digits, '-', '_' and '.',
// starting with a letter or a digit.
func ValidTeam(name string) bool {
	if name == "" || len(name) > MaxTeamBytes {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch ch := name[i]; {
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9':
		case i > 0 && (ch == '-' || ch == '_' || ch == '.'):
		default:
			return false
		}
	}
	return true
}

// CheckTeams checks a staff member's teams (InboxQuery.Teams): nil, or at
// most MaxTeams valid names (ValidTeam). EINVALID otherwise.
func CheckTeams(teams []string) error {
	if len(teams) > MaxTeams {
		return Errorf(EINVALID, "more than %d teams", MaxTeams)
	}
	for _, t := range teams {
		if !ValidTeam(t) {
			return Errorf(EINVALID, "teams: not a team name (1 to %d of a-z, 0-9, '-', '_', '.')", MaxTeamBytes)
		}
	}
	return nil
}
