// This file holds the email notifier's state: which staff replies each
// visitor was emailed, and which new conversations staff were told of
// (integrations/mail decides and sends). A mail is claimed before it is sent
// and settled after, so that no mail is ever sent twice, across restarts and
// nodes. Only storage/pgstore implements it: email needs PostgreSQL.

package storage

import (
	"context"
	"time"
)

// MaxMailMessages bounds the replies one visitor mail quotes; the rest are
// counted (VisitorMail.More) and covered by the same mail.
const MaxMailMessages = 20

// VisitorMail is a visitor to email: staff replied in their conversation and
// they have neither read the replies nor been emailed them.
type VisitorMail struct {
	ConversationID int64
	Visitor        UserRef
	Email          string
	// Messages are the staff replies the mail quotes, oldest first (at most
	// MaxMailMessages); More counts the later ones it covers too.
	Messages []Message
	More     int
	// UpTo is the seq the mail covers up to: once it is settled, replies up
	// to UpTo are never emailed again.
	UpTo int64
	// Failures counts the earlier attempts of this mail that failed.
	Failures int
}

// StaffMail is a new conversation to tell staff of: its first message is the
// visitor's.
type StaffMail struct {
	ConversationID int64
	Visitor        UserRef
	Email          string // the visitor's, "" when unknown
	First          Message
	Failures       int
}

// TranscriptMail is a transcript a visitor asked for by email.
type TranscriptMail struct {
	ConversationID int64
	Visitor        UserRef
	Email          string
	RequestedAt    time.Time
	Failures       int
}

// TranscriptMailInterval is how often a visitor may have their transcript
// emailed (RequestTranscriptMail).
const TranscriptMailInterval = 10 * time.Minute

// TranscriptRequest is what RequestTranscriptMail did.
type TranscriptRequest struct {
	// Queued: a mail will be sent (this request, or an earlier one still
	// waiting: one mail answers both).
	Queued bool
	// NextAllowedAt is when a new request may be made, when not Queued
	// (one was sent less than TranscriptMailInterval ago).
	NextAllowedAt time.Time
}

// MailKind says which of a conversation's mails a claim is for.
type MailKind int

const (
	MailVisitor    MailKind = iota + 1 // staff replies, to the visitor
	MailStaff                          // a new conversation, to staff
	MailTranscript                     // the transcript, to the visitor who asked
)

// MailOutcome is how a claimed mail ended.
type MailOutcome int

const (
	MailSent    MailOutcome = iota + 1 // the SMTP server took it
	MailRetry                          // a failed attempt: try again at RetryAt
	MailGiveUp                         // failed for good (or too late): never again
	MailSkipped                        // not sent and never will be (staff mail: staff were online)
)

// MailClaim is one mail being sent: its conversation and kind, and for a
// visitor mail the seq it covers up to.
type MailClaim struct {
	Kind           MailKind
	ConversationID int64
	UpTo           int64
}

// Mail is the email notifier's state. All methods are safe for concurrent
// use; only the holder of the mailer lock sends, so claims do not race.
// Errors are *Error (EUNAVAILABLE when the database cannot be reached).
type Mail interface {
	// LockMailer tries to take the cluster's one mailer lock: ok is false
	// when another process holds it.
	LockMailer(ctx context.Context) (lock Lock, ok bool, err error)

	// SettleInterruptedMail settles the claims left by a sender that stopped
	// before it knew how its mails ended, as sent (so they are never sent
	// twice), and returns how many there were. The lock's new holder calls it
	// first.
	SettleInterruptedMail(ctx context.Context) (int, error)

	// DueVisitorMail returns up to limit conversations whose visitor has an
	// email and a staff reply, stored at or before repliedBefore and after
	// since, that they have neither read nor been emailed, and that is not
	// waiting for a retry. Oldest activity first.
	DueVisitorMail(ctx context.Context, repliedBefore, since time.Time, limit int) ([]VisitorMail, error)

	// DueStaffMail returns up to limit conversations whose first message,
	// the visitor's, was stored after since, and whose staff mail was not
	// decided yet (nor is waiting for a retry). Oldest first.
	DueStaffMail(ctx context.Context, since time.Time, limit int) ([]StaffMail, error)

	// StaffEmails returns the addresses of the staff users the store knows
	// an email for (API-key bots have none).
	StaffEmails(ctx context.Context) ([]string, error)

	// RequestTranscriptMail records that conversation conv's visitor asks
	// for the transcript by email.
	RequestTranscriptMail(ctx context.Context, conv int64) (TranscriptRequest, error)

	// DueTranscriptMail returns up to limit transcript requests waiting
	// (not claimed, nor waiting for a retry) whose visitor has an email,
	// oldest first.
	DueTranscriptMail(ctx context.Context, limit int) ([]TranscriptMail, error)

	// ClaimMail records that a mail is about to be sent.
	ClaimMail(ctx context.Context, c MailClaim) error

	// SettleMail records how a mail ended (MailSkipped needs no claim).
	// A visitor mail that was sent or given up moves the conversation's
	// mailed mark to c.UpTo; a retry counts a failure and waits until
	// retryAt.
	SettleMail(ctx context.Context, c MailClaim, outcome MailOutcome, retryAt time.Time) error
}

// Lock is a lock held by one process of the cluster at a time (a webhook
// endpoint's sender, the mailer). Lost is closed when the lock is gone (its
// database session ended: the process can no longer be sure another one has
// not taken it); Release gives it up. Release is idempotent.
type Lock interface {
	Lost() <-chan struct{}
	Release()
}
