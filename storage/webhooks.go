// This file holds the webhooks' outbox: the events grainchat sends to the
// operator's endpoints, recorded in the transactions that store what they
// describe, and the deliveries a sender takes from it (integrations/webhook
// sends them). Only storage/pgstore implements it: webhooks need PostgreSQL.

package storage

import (
	"context"
	"time"
)

// Webhook event types (docs/WEBHOOKS.md has each one's data).
const (
	WebhookConversationCreated = "conversation.created" // a visitor's conversation was created
	WebhookMessageCreated      = "message.created"      // a message was stored
	WebhookConversationUpdated = "conversation.updated" // status or assignee changed (a status or assignee event)
	WebhookNoteCreated         = "note.created"         // an internal note was written
	WebhookConversationRead    = "conversation.read"    // a staff user or the visitor moved their read mark
)

// WebhookEndpoint is one configured endpoint, known to the store by its URL.
type WebhookEndpoint struct {
	ID  int64
	URL string
}

// WebhookConversation is a conversation as a webhook event shows it: the
// REST API's Conversation without the fields that depend on who reads it.
type WebhookConversation struct {
	ID            int64
	User          UserRef
	Status        string
	Assignee      *UserRef // nil: unassigned
	LastSeq       int64
	LastMessageAt *time.Time
	CreatedAt     time.Time
}

// WebhookRead is a moved read mark: Reader's mark of the conversation is
// now Seq. Staff is whether Reader is staff (else the visitor).
type WebhookRead struct {
	Reader UserRef
	Staff  bool
	Seq    int64
}

// WebhookItem is one event to send, as the expander read it from the store:
// Type says which of Message, Event and Read is set (conversation.created:
// none). Conversation is the conversation's state when the event was
// expanded (shortly after it happened; a later change may show already).
type WebhookItem struct {
	// ID is the event's id, the same for every endpoint and every attempt:
	// "msg_<message id>", "evt_<event id>", "cnv_<conversation id>",
	// "read_<n>".
	ID           string
	Type         string
	CreatedAt    time.Time
	Conversation WebhookConversation
	Message      *Message
	Event        *Event
	Read         *WebhookRead
}

// WebhookEncoder turns an item into the body sent for it. An error fails the
// whole expansion.
type WebhookEncoder func(WebhookItem) ([]byte, error)

// WebhookDelivery is one event waiting for one endpoint.
type WebhookDelivery struct {
	ID             int64 // increasing: an endpoint's deliveries are committed in id order
	EndpointID     int64
	ConversationID int64
	EventID        string
	Type           string
	Body           []byte
	CreatedAt      time.Time
	// Attempts is how many attempts failed so far; NextAttemptAt when the
	// next may start (the zero time: at once).
	Attempts      int
	NextAttemptAt time.Time
}

// Webhooks is the webhooks' outbox. All methods are safe for concurrent use,
// by several processes on one database too. Errors are *Error
// (EUNAVAILABLE when the database cannot be reached).
type Webhooks interface {
	// WebhookEndpoints returns the endpoints of urls, registering the ones
	// the store does not know yet, in the order of urls.
	WebhookEndpoints(ctx context.Context, urls []string) ([]WebhookEndpoint, error)

	// ExpandWebhooks takes the oldest events recorded since the last
	// expansion (a bounded batch) and makes one delivery of each for every
	// endpoint of endpointIDs, with the body encode returns, in one
	// transaction, and returns how many events it took (0: none waiting, or
	// another process is expanding at this moment). Each conversation's
	// events become deliveries in the conversation's order (messages by seq,
	// each desk event after the message it follows); a read event follows
	// the events recorded before it.
	ExpandWebhooks(ctx context.Context, endpointIDs []int64, encode WebhookEncoder) (int, error)

	// AppendBusy is how long, in all, this store has had an AppendMessages
	// call in flight, up to now: the expander compares it over its interval
	// to yield to a saturated message path.
	AppendBusy(now time.Time) time.Duration

	// LockWebhookEndpoint tries to take the endpoint's sender lock: ok is
	// false when another process holds it.
	LockWebhookEndpoint(ctx context.Context, endpointID int64) (lock Lock, ok bool, err error)

	// PendingWebhooks returns up to limit deliveries of the endpoint with an
	// id above afterID, in id order. Deliveries are committed in id order,
	// so a sender that remembers the highest id it read misses none.
	PendingWebhooks(ctx context.Context, endpointID, afterID int64, limit int) ([]WebhookDelivery, error)

	// DeleteWebhooks deletes deliveries (sent, or given up); ids that no
	// longer exist are ignored.
	DeleteWebhooks(ctx context.Context, ids []int64) error

	// RetryWebhook records a failed attempt of a delivery: its attempts so
	// far and when the next may start.
	RetryWebhook(ctx context.Context, id int64, attempts int, next time.Time) error

	// WebhookBacklog returns how many deliveries the endpoint has waiting and
	// when the oldest one's event happened (zero time: none).
	WebhookBacklog(ctx context.Context, endpointID int64) (pending int64, oldest time.Time, err error)
}
