// Package mail emails people who are not connected: a visitor who left before
// reading staff's replies (batched per conversation, after a delay), and staff
// when a new conversation starts while no agent is online.
//
// One node of the cluster sends at a time (it holds the store's mailer lock);
// the others wait to take over. Every PollInterval the sender asks the store
// what is due, asks the cluster's presence who is online, and sends. Each
// mail is claimed in the store before it is sent and settled after, so no
// mail is sent twice, across restarts and nodes: a sender that dies between
// the two leaves a claim its successor settles as sent (that mail may be
// lost; it is logged and counted). docs/EMAIL.md says more.
package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// Defaults for the zero values of Config.
const (
	DefaultDelay        = 10 * time.Minute
	DefaultPollInterval = 5 * time.Second
	DefaultLockInterval = 2 * time.Second
	DefaultSendTimeout  = 30 * time.Second
	// DefaultHorizon bounds how late a reply is still emailed: one first
	// due (its delay over) longer ago than this is not (a mailer that was
	// off for days does not email week-old replies).
	DefaultHorizon = 24 * time.Hour
	// DefaultStaffHorizon is the same for staff's new-conversation mails.
	DefaultStaffHorizon = 15 * time.Minute
	// DefaultMaxAttempts bounds the attempts of one mail.
	DefaultMaxAttempts = 8

	// batchSize bounds the mails one pass takes of each kind.
	batchSize = 100
	// retryMin and retryMax bound the wait after a failed attempt.
	retryMin, retryMax = 30 * time.Second, time.Hour
)

// Config configures a Mailer. Every zero duration means the documented
// default.
type Config struct {
	// From is the sender's address (RFC 5322, e.g. "Support <help@x.org>").
	// Required.
	From string
	// PublicURL is grainchat's public base URL: the visitor's link is
	// <PublicURL>/chat/, staff's <PublicURL>/admin/#c<id>. Required.
	PublicURL string
	// Delay is how long a staff reply stays unread before the visitor is
	// emailed. Zero means DefaultDelay (10 min).
	Delay time.Duration
	// StaffTo are the addresses told of a new conversation when no agent is
	// online; empty means every staff user the store knows an email for.
	StaffTo []string
	// NoStaffMail turns staff's new-conversation mails off.
	NoStaffMail bool
	// PollInterval, LockInterval, SendTimeout, Horizon, StaffHorizon: see the
	// defaults. MaxAttempts zero means DefaultMaxAttempts.
	PollInterval, LockInterval, SendTimeout time.Duration
	Horizon, StaffHorizon                   time.Duration
	MaxAttempts                             int
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Delay, DefaultDelay)
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.LockInterval, DefaultLockInterval)
	def(&c.SendTimeout, DefaultSendTimeout)
	def(&c.Horizon, DefaultHorizon)
	def(&c.StaffHorizon, DefaultStaffHorizon)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	return c
}

// Presence tells who is connected anywhere in the cluster.
type Presence interface {
	// VisitorsOnline returns whether each conversation's visitor is online.
	VisitorsOnline(ctx context.Context, convs []int64) (map[int64]bool, error)
	// StaffOnline returns whether any agent is available.
	StaffOnline(ctx context.Context) (bool, error)
}

// Metrics receives the mailer's events; kind is "visitor", "staff" or
// "transcript".
type Metrics interface {
	MailSent(kind string)
	MailAttemptFailed(kind string)
	MailGivenUp(kind string)
	MailInterrupted(n int)
}

// Store is what a Mailer needs of the store: the mail state, and the
// messages a transcript quotes.
type Store interface {
	storage.Mail
	Messages(ctx context.Context, conversationID int64, p storage.Page) ([]storage.Message, error)
}

// Mailer sends the mails. Run it once per node.
type Mailer struct {
	logger   *slog.Logger
	cfg      Config
	store    Store
	presence Presence
	sender   Sender
	metrics  Metrics
	host     string // the Message-ID's right side
}

// New returns a Mailer; cfg is checked (CheckConfig).
func New(logger *slog.Logger, cfg Config, store Store, presence Presence, sender Sender, metrics Metrics) (*Mailer, error) {
	if err := CheckConfig(cfg); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.PublicURL) // checked
	return &Mailer{logger: logger, cfg: cfg.withDefaults(), store: store, presence: presence,
		sender: sender, metrics: metrics, host: u.Hostname()}, nil
}

// CheckConfig returns what is wrong with cfg's required fields (every
// problem, joined).
func CheckConfig(cfg Config) error {
	var errs []error
	if _, err := parseAddress(cfg.From); err != nil {
		errs = append(errs, fmt.Errorf("mail-from: %w", err))
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("public-url: must be an absolute http or https URL (the links in emails start with it)"))
	}
	for _, a := range cfg.StaffTo {
		if _, err := parseAddress(a); err != nil {
			errs = append(errs, fmt.Errorf("mail-staff-to: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Run sends while this node holds the mailer lock, and tries to take it
// every LockInterval while another node does, until ctx ends.
func (m *Mailer) Run(ctx context.Context) {
	for {
		lock, ok, err := m.store.LockMailer(ctx)
		if err != nil && ctx.Err() == nil {
			m.logger.Debug("mail: cannot take the mailer lock", "err", err)
		}
		if ok {
			m.logger.Info("mail: sending the cluster's mails from this node")
			m.serve(ctx, lock)
			lock.Release()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.cfg.LockInterval):
		}
	}
}

// serve sends while lock holds.
func (m *Mailer) serve(ctx context.Context, lock storage.Lock) {
	n, err := m.store.SettleInterruptedMail(ctx)
	if err != nil {
		m.logger.Warn("mail: settling interrupted mails failed; giving the lock up", "err", err)
		return
	}
	if n > 0 {
		m.logger.Warn("mail: a sender stopped while sending; its mails are settled as sent and never resent (some may not have arrived)", "count", n)
		m.metrics.MailInterrupted(n)
	}
	tick := time.NewTicker(m.cfg.PollInterval)
	defer tick.Stop()
	for {
		m.pass(ctx, lock)
		select {
		case <-ctx.Done():
			return
		case <-lock.Lost():
			m.logger.Warn("mail: the mailer lock was lost; another node may send now")
			return
		case <-tick.C:
		}
	}
}

// pass sends what is due now.
func (m *Mailer) pass(ctx context.Context, lock storage.Lock) {
	now := time.Now()
	if !m.cfg.NoStaffMail {
		if err := m.staffPass(ctx, lock, now); err != nil && ctx.Err() == nil {
			m.logger.Warn("mail: staff mails", "err", err)
		}
	}
	if err := m.visitorPass(ctx, lock, now); err != nil && ctx.Err() == nil {
		m.logger.Warn("mail: visitor mails", "err", err)
	}
	if err := m.transcriptPass(ctx, lock); err != nil && ctx.Err() == nil {
		m.logger.Warn("mail: transcript mails", "err", err)
	}
}

// transcriptPass emails the transcripts visitors asked for.
func (m *Mailer) transcriptPass(ctx context.Context, lock storage.Lock) error {
	due, err := m.store.DueTranscriptMail(ctx, batchSize)
	if err != nil {
		return err
	}
	for _, v := range due {
		if !held(ctx, lock) {
			return nil
		}
		msg, err := m.transcriptMessage(ctx, v)
		if err != nil {
			return err
		}
		claim := storage.MailClaim{Kind: storage.MailTranscript, ConversationID: v.ConversationID}
		if err := m.send(ctx, claim, msg, v.Failures); err != nil {
			return err
		}
	}
	return nil
}

// held reports whether the lock still holds and ctx is live.
func held(ctx context.Context, lock storage.Lock) bool {
	select {
	case <-lock.Lost():
		return false
	default:
		return ctx.Err() == nil
	}
}

// visitorPass emails the offline visitors whose replies are due.
func (m *Mailer) visitorPass(ctx context.Context, lock storage.Lock, now time.Time) error {
	due, err := m.store.DueVisitorMail(ctx, now.Add(-m.cfg.Delay), now.Add(-m.cfg.Delay-m.cfg.Horizon), batchSize)
	if err != nil || len(due) == 0 {
		return err
	}
	ids := make([]int64, len(due))
	for i, v := range due {
		ids[i] = v.ConversationID
	}
	online, err := m.presence.VisitorsOnline(ctx, ids)
	if err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	for _, v := range due {
		if online[v.ConversationID] || !held(ctx, lock) {
			continue // online: they will read it, or be emailed once they leave
		}
		claim := storage.MailClaim{Kind: storage.MailVisitor, ConversationID: v.ConversationID, UpTo: v.UpTo}
		msg := m.visitorMessage(v)
		if err := m.send(ctx, claim, msg, v.Failures); err != nil {
			return err
		}
	}
	return nil
}

// staffPass tells staff of the new conversations, when no agent is online.
func (m *Mailer) staffPass(ctx context.Context, lock storage.Lock, now time.Time) error {
	due, err := m.store.DueStaffMail(ctx, now.Add(-m.cfg.StaffHorizon), batchSize)
	if err != nil || len(due) == 0 {
		return err
	}
	staffOnline, err := m.presence.StaffOnline(ctx)
	if err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	to := m.cfg.StaffTo
	if !staffOnline && len(to) == 0 {
		if to, err = m.store.StaffEmails(ctx); err != nil {
			return err
		}
	}
	for _, v := range due {
		if !held(ctx, lock) {
			return nil
		}
		claim := storage.MailClaim{Kind: storage.MailStaff, ConversationID: v.ConversationID}
		if staffOnline || len(to) == 0 {
			if err := m.store.SettleMail(ctx, claim, storage.MailSkipped, time.Time{}); err != nil {
				return err
			}
			continue
		}
		if err := m.send(ctx, claim, m.staffMessage(v, to), v.Failures); err != nil {
			return err
		}
	}
	return nil
}

// send claims, sends and settles one mail; failures is how many earlier
// attempts failed. An error is the store's: the pass stops.
func (m *Mailer) send(ctx context.Context, claim storage.MailClaim, msg *Message, failures int) error {
	kind := kindName(claim.Kind)
	if err := m.store.ClaimMail(ctx, claim); err != nil {
		return err
	}
	sendCtx, cancel := context.WithTimeout(ctx, m.cfg.SendTimeout)
	err := m.sender.Send(sendCtx, msg)
	cancel()
	outcome, retryAt := storage.MailSent, time.Time{}
	switch {
	case err == nil:
		m.metrics.MailSent(kind)
		m.logger.Info("mail: sent", "kind", kind, "conversation_id", claim.ConversationID, "recipients", len(msg.To))
	case Permanent(err) || failures+1 >= m.cfg.MaxAttempts:
		outcome = storage.MailGiveUp
		m.metrics.MailGivenUp(kind)
		m.logger.Warn("mail: given up", "kind", kind, "conversation_id", claim.ConversationID, "attempts", failures+1, "err", err)
	default:
		outcome, retryAt = storage.MailRetry, time.Now().Add(backoff(failures+1))
		m.metrics.MailAttemptFailed(kind)
		m.logger.Warn("mail: attempt failed; will retry", "kind", kind, "conversation_id", claim.ConversationID,
			"attempts", failures+1, "retry_at", retryAt, "err", err)
	}
	// Settle even when ctx ended: the claim must not outlive a mail whose
	// outcome is known.
	settleCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return m.store.SettleMail(settleCtx, claim, outcome, retryAt)
}

// backoff is the wait before attempt n+1: retryMin doubling up to retryMax,
// with ±20 % jitter.
func backoff(n int) time.Duration {
	d := retryMin
	for i := 1; i < n && d < retryMax; i++ {
		d *= 2
	}
	d = min(d, retryMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func kindName(k storage.MailKind) string {
	switch k {
	case storage.MailStaff:
		return "staff"
	case storage.MailTranscript:
		return "transcript"
	default:
		return "visitor"
	}
}
