package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// This file owns the email notifier's state (storage.Mail; migration 00017
// says how claims keep a mail from being sent twice). Only the mailer writes
// mail_state; the message path never reads it.

var _ storage.Mail = (*Store)(nil)

// mailLockClass is the first key of the mailer's advisory lock ("gcml").
const mailLockClass = 0x67636d6c

// LockMailer implements storage.Mail with a session advisory lock
// (sessionLock).
func (s *Store) LockMailer(ctx context.Context) (storage.Lock, bool, error) {
	return s.sessionLock(ctx, "mailer", mailLockClass, 0)
}

// SettleInterruptedMail implements storage.Mail.
func (s *Store) SettleInterruptedMail(ctx context.Context) (int, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	res, err := s.db.ExecContext(ctx, `
		UPDATE mail_state SET
			visitor_mailed_seq  = GREATEST(visitor_mailed_seq, COALESCE(visitor_claimed_seq, 0)),
			visitor_claimed_seq = NULL,
			staff_state = CASE WHEN staff_state = 'claimed' THEN 'sent' ELSE staff_state END,
			transcript_requested_at = CASE WHEN transcript_claimed THEN NULL ELSE transcript_requested_at END,
			transcript_sent_at = CASE WHEN transcript_claimed THEN now() ELSE transcript_sent_at END,
			transcript_claimed = false
		WHERE visitor_claimed_seq IS NOT NULL OR staff_state = 'claimed' OR transcript_claimed`)
	if err != nil {
		return 0, dbError(ctx, "pgstore: settle interrupted mail", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// dueVisitorMailQuery finds the conversations with an unread, unmailed staff
// reply stored in ($3, $2]: candidates come from the inbox index (activity
// after since), then one index probe of messages each.
const dueVisitorMailQuery = `
	SELECT c.id, u.id, u.external_id, u.name, u.email, c.last_seq,
	       GREATEST(COALESCE(r.visitor_seq, 0), COALESCE(ms.visitor_mailed_seq, 0)) AS done,
	       COALESCE(ms.visitor_failures, 0)
	FROM conversations c
	JOIN users u ON u.id = c.user_id
	LEFT JOIN read_receipts r ON r.conversation_id = c.id
	LEFT JOIN mail_state ms ON ms.conversation_id = c.id
	WHERE c.last_seq > 0 AND c.last_message_at > $3
	  AND u.email IS NOT NULL
	  AND c.last_seq > GREATEST(COALESCE(r.visitor_seq, 0), COALESCE(ms.visitor_mailed_seq, 0))
	  AND ms.visitor_claimed_seq IS NULL
	  AND (ms.visitor_retry_at IS NULL OR ms.visitor_retry_at <= now())
	  AND EXISTS (
		SELECT 1 FROM messages m
		WHERE m.conversation_id = c.id
		  AND m.seq > GREATEST(COALESCE(r.visitor_seq, 0), COALESCE(ms.visitor_mailed_seq, 0))
		  AND m.sender_is_admin AND m.created_at <= $2 AND m.created_at > $3)
	ORDER BY c.last_message_at, c.id
	LIMIT $1`

// DueVisitorMail implements storage.Mail.
func (s *Store) DueVisitorMail(ctx context.Context, repliedBefore, since time.Time, limit int) ([]storage.VisitorMail, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, dueVisitorMailQuery, limit, repliedBefore, since)
	if err != nil {
		return nil, dbError(ctx, "pgstore: due visitor mail", err)
	}
	type due struct {
		mail       storage.VisitorMail
		last, done int64
	}
	var found []due
	for rows.Next() {
		var d due
		v := &d.mail
		if err := rows.Scan(&v.ConversationID, &v.Visitor.ID, &v.Visitor.ExternalID, &v.Visitor.Name, &v.Email,
			&d.last, &d.done, &v.Failures); err != nil {
			rows.Close()
			return nil, dbError(ctx, "pgstore: due visitor mail: scan", err)
		}
		found = append(found, d)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: due visitor mail", err)
	}
	out := make([]storage.VisitorMail, 0, len(found))
	for _, d := range found {
		v := d.mail
		if err := s.db.SelectContext(ctx, &v.Messages, `
			SELECT `+messageColumns+` FROM messages m
			WHERE m.conversation_id = $1 AND m.seq > $2 AND m.seq <= $3 AND m.sender_is_admin
			ORDER BY m.seq
			LIMIT $4`, v.ConversationID, d.done, d.last, storage.MaxMailMessages+1); err != nil {
			return nil, dbError(ctx, "pgstore: due visitor mail: messages", err)
		}
		if len(v.Messages) == 0 {
			continue // cannot happen: the query saw one
		}
		v.UpTo = v.Messages[len(v.Messages)-1].Seq
		if len(v.Messages) > storage.MaxMailMessages {
			v.Messages = v.Messages[:storage.MaxMailMessages]
			if err := s.db.QueryRowContext(ctx, `
				SELECT count(*), max(m.seq) FROM messages m
				WHERE m.conversation_id = $1 AND m.seq > $2 AND m.seq <= $3 AND m.sender_is_admin`,
				v.ConversationID, v.Messages[len(v.Messages)-1].Seq, d.last).Scan(&v.More, &v.UpTo); err != nil {
				return nil, dbError(ctx, "pgstore: due visitor mail: count", err)
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// dueStaffMailQuery finds the conversations whose first message, stored after
// since, is the visitor's and whose staff mail is undecided.
const dueStaffMailQuery = `
	SELECT c.id, u.id, u.external_id, u.name, COALESCE(u.email, ''), COALESCE(ms.staff_failures, 0),
	       ` + messageColumns + `
	FROM conversations c
	JOIN users u ON u.id = c.user_id
	JOIN messages m ON m.conversation_id = c.id AND m.seq = 1
	LEFT JOIN mail_state ms ON ms.conversation_id = c.id
	WHERE c.last_seq > 0 AND c.last_message_at > $2
	  AND m.created_at > $2 AND m.sender_id = c.user_id
	  AND ms.staff_state IS NULL
	  AND (ms.staff_retry_at IS NULL OR ms.staff_retry_at <= now())
	ORDER BY m.created_at, c.id
	LIMIT $1`

// DueStaffMail implements storage.Mail.
func (s *Store) DueStaffMail(ctx context.Context, since time.Time, limit int) ([]storage.StaffMail, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, dueStaffMailQuery, limit, since)
	if err != nil {
		return nil, dbError(ctx, "pgstore: due staff mail", err)
	}
	defer rows.Close()
	var out []storage.StaffMail
	for rows.Next() {
		var v storage.StaffMail
		m := &v.First
		if err := rows.Scan(&v.ConversationID, &v.Visitor.ID, &v.Visitor.ExternalID, &v.Visitor.Name, &v.Email, &v.Failures,
			&m.ID, &m.ConversationID, &m.Seq, &m.SenderID, &m.SenderName, &m.SenderIsAdmin, &m.Body, &m.ClientMsgID, &m.CreatedAt); err != nil {
			return nil, dbError(ctx, "pgstore: due staff mail: scan", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: due staff mail", err)
	}
	return out, nil
}

// StaffEmails implements storage.Mail.
func (s *Store) StaffEmails(ctx context.Context) ([]string, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var out []string
	if err := s.db.SelectContext(ctx, &out, `
		SELECT DISTINCT email FROM users WHERE is_admin AND email IS NOT NULL ORDER BY email`); err != nil {
		return nil, dbError(ctx, "pgstore: staff emails", err)
	}
	return out, nil
}

// RequestTranscriptMail implements storage.Mail: one statement, so that two
// requests at once make one mail.
func (s *Store) RequestTranscriptMail(ctx context.Context, conv int64) (storage.TranscriptRequest, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var queued bool
	var sentAt *time.Time
	err := s.db.QueryRowContext(ctx, `
		INSERT INTO mail_state (conversation_id, transcript_requested_at) VALUES ($1, now())
		ON CONFLICT (conversation_id) DO UPDATE SET
			transcript_requested_at = CASE
				WHEN mail_state.transcript_requested_at IS NOT NULL THEN mail_state.transcript_requested_at
				WHEN mail_state.transcript_sent_at > now() - $2 * interval '1 second' THEN NULL
				ELSE now() END,
			transcript_failures = CASE WHEN mail_state.transcript_requested_at IS NULL THEN 0 ELSE mail_state.transcript_failures END
		RETURNING transcript_requested_at IS NOT NULL, transcript_sent_at`,
		conv, storage.TranscriptMailInterval.Seconds()).Scan(&queued, &sentAt)
	if err != nil {
		return storage.TranscriptRequest{}, dbError(ctx, "pgstore: request transcript mail", err)
	}
	out := storage.TranscriptRequest{Queued: queued}
	if !queued && sentAt != nil {
		out.NextAllowedAt = sentAt.Add(storage.TranscriptMailInterval)
	}
	return out, nil
}

// DueTranscriptMail implements storage.Mail.
func (s *Store) DueTranscriptMail(ctx context.Context, limit int) ([]storage.TranscriptMail, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `
		SELECT ms.conversation_id, u.id, u.external_id, u.name, u.email, ms.transcript_requested_at, ms.transcript_failures
		FROM mail_state ms
		JOIN conversations c ON c.id = ms.conversation_id
		JOIN users u ON u.id = c.user_id
		WHERE ms.transcript_requested_at IS NOT NULL AND NOT ms.transcript_claimed
		  AND (ms.transcript_retry_at IS NULL OR ms.transcript_retry_at <= now())
		  AND u.email IS NOT NULL
		ORDER BY ms.transcript_requested_at
		LIMIT $1`, limit)
	if err != nil {
		return nil, dbError(ctx, "pgstore: due transcript mail", err)
	}
	defer rows.Close()
	var out []storage.TranscriptMail
	for rows.Next() {
		var v storage.TranscriptMail
		if err := rows.Scan(&v.ConversationID, &v.Visitor.ID, &v.Visitor.ExternalID, &v.Visitor.Name, &v.Email, &v.RequestedAt, &v.Failures); err != nil {
			return nil, dbError(ctx, "pgstore: due transcript mail: scan", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: due transcript mail", err)
	}
	return out, nil
}

// ClaimMail implements storage.Mail.
func (s *Store) ClaimMail(ctx context.Context, c storage.MailClaim) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var q string
	args := []any{c.ConversationID}
	switch c.Kind {
	case storage.MailVisitor:
		q = `INSERT INTO mail_state (conversation_id, visitor_claimed_seq) VALUES ($1, $2)
			ON CONFLICT (conversation_id) DO UPDATE SET visitor_claimed_seq = EXCLUDED.visitor_claimed_seq`
		args = append(args, c.UpTo)
	case storage.MailStaff:
		q = `INSERT INTO mail_state (conversation_id, staff_state) VALUES ($1, 'claimed')
			ON CONFLICT (conversation_id) DO UPDATE SET staff_state = 'claimed'`
	case storage.MailTranscript:
		q = `UPDATE mail_state SET transcript_claimed = true WHERE conversation_id = $1`
	default:
		return &storage.Error{Code: storage.EINVALID, Message: fmt.Sprintf("pgstore: claim mail: unknown kind %d", c.Kind)}
	}
	if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
		return dbError(ctx, "pgstore: claim mail", err)
	}
	return nil
}

// SettleMail implements storage.Mail.
func (s *Store) SettleMail(ctx context.Context, c storage.MailClaim, outcome storage.MailOutcome, retryAt time.Time) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var q string
	args := []any{c.ConversationID}
	switch {
	case c.Kind == storage.MailVisitor && outcome == storage.MailRetry:
		q = `UPDATE mail_state SET visitor_claimed_seq = NULL, visitor_failures = visitor_failures + 1, visitor_retry_at = $2
			WHERE conversation_id = $1`
		args = append(args, retryAt)
	case c.Kind == storage.MailVisitor:
		q = `INSERT INTO mail_state (conversation_id, visitor_mailed_seq) VALUES ($1, $2)
			ON CONFLICT (conversation_id) DO UPDATE SET
				visitor_mailed_seq = GREATEST(mail_state.visitor_mailed_seq, EXCLUDED.visitor_mailed_seq),
				visitor_claimed_seq = NULL, visitor_failures = 0, visitor_retry_at = NULL`
		args = append(args, c.UpTo)
	case c.Kind == storage.MailStaff && outcome == storage.MailRetry:
		q = `UPDATE mail_state SET staff_state = NULL, staff_failures = staff_failures + 1, staff_retry_at = $2
			WHERE conversation_id = $1`
		args = append(args, retryAt)
	case c.Kind == storage.MailTranscript && outcome == storage.MailRetry:
		q = `UPDATE mail_state SET transcript_claimed = false, transcript_failures = transcript_failures + 1, transcript_retry_at = $2
			WHERE conversation_id = $1`
		args = append(args, retryAt)
	case c.Kind == storage.MailTranscript:
		// Sent or given up: the request is answered. Only a sent mail
		// counts against the next request.
		q = `UPDATE mail_state SET transcript_claimed = false, transcript_requested_at = NULL, transcript_retry_at = NULL,
				transcript_failures = 0,
				transcript_sent_at = CASE WHEN $2 THEN now() ELSE transcript_sent_at END
			WHERE conversation_id = $1`
		args = append(args, outcome == storage.MailSent)
	case c.Kind == storage.MailStaff:
		state := "sent"
		if outcome == storage.MailSkipped || outcome == storage.MailGiveUp {
			state = "skipped"
		}
		q = `INSERT INTO mail_state (conversation_id, staff_state) VALUES ($1, $2)
			ON CONFLICT (conversation_id) DO UPDATE SET staff_state = EXCLUDED.staff_state, staff_retry_at = NULL`
		args = append(args, state)
	default:
		return &storage.Error{Code: storage.EINVALID, Message: fmt.Sprintf("pgstore: settle mail: unknown kind %d", c.Kind)}
	}
	if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
		return dbError(ctx, "pgstore: settle mail", err)
	}
	return nil
}
