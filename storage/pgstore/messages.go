package pgstore

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/lib/pq"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

// messageColumns selects a storage.Message from messages aliased m.
const messageColumns = `m.id, m.conversation_id, m.seq, m.sender_id, m.sender_name, m.sender_is_admin,
	m.body, COALESCE(m.client_msg_id, '') AS client_msg_id, m.created_at`

// AppendMessages implements storage.Store.
//
// The whole batch is one call of the SQL function grainchat_append_messages
// (migration 00002; 00007, 00008 and 00014 changed it), through a prepared statement: one round trip and one
// commit, whatever the size of the batch. The function locks the batch's
// conversations in id order (so that concurrent writers never deadlock),
// finds the messages stored earlier under the batch's client message ids,
// assigns the new seqs in input order and inserts the new messages, advancing
// each conversation's last_seq in the same statement; a visitor's message
// reopens a pending or resolved conversation in that statement too
// (storage.AppendResult.Reopened). The row locks, held
// until commit, make that safe when other processes append to the same
// conversations. Gap-free seqs under concurrency are guarded by storetest's
// AppendMessages/Concurrent and by TestTwoStores_sameConversation and
// TestUnavailable_cutDuringAppends.
//
// If the connection breaks before the answer arrives the outcome is unknown:
// the error is EUNAVAILABLE although the messages may be stored. Retrying
// with the same client message ids is safe.
func (s *Store) AppendMessages(ctx context.Context, msgs []storage.NewMessage) ([]storage.AppendResult, error) {
	results := make([]storage.AppendResult, len(msgs))
	var cols appendColumns
	var index []int // position in msgs of each element of cols
	for i, in := range msgs {
		m, err := rules.NewMessage(in)
		if err != nil {
			results[i].Err = err
			continue
		}
		cols.add(m)
		index = append(index, i)
	}
	if len(index) == 0 {
		return results, nil
	}

	s.appending.enter(time.Now())
	defer func() { s.appending.exit(time.Now()) }()
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	stmt, err := s.preparedOn(ctx, s.appendDB, appendQuery)
	if err != nil {
		return nil, dbError(ctx, "pgstore: append messages: prepare", err)
	}
	rows, err := stmt.QueryContext(ctx,
		pq.Int64Array(cols.conversationID), pq.Int64Array(cols.senderID), pq.StringArray(cols.senderName),
		pq.BoolArray(cols.senderIsAdmin), pq.StringArray(cols.body), pq.StringArray(cols.clientMsgID), s.opts.Webhooks)
	if err != nil {
		return nil, dbError(ctx, "pgstore: append messages", s.checkPrepared(appendQuery, err))
	}
	defer rows.Close()
	k := 0
	for rows.Next() {
		var r appendedRow
		if err := rows.Scan(&r.Ord, &r.Outcome, &r.ID, &r.Seq, &r.CreatedAt,
			&r.SenderID, &r.SenderName, &r.SenderIsAdmin, &r.Body, &r.ClientMsgID,
			&r.ReopenEventID, &r.ActorExternalID, &r.ActorName); err != nil {
			return nil, dbError(ctx, "pgstore: append messages: scan", err)
		}
		if k >= len(index) || r.Ord != k+1 {
			return nil, storage.Errorf(storage.EINTERNAL, "pgstore: append messages: row %d has ord %d (%d messages)", k+1, r.Ord, len(index))
		}
		i := index[k]
		switch r.Outcome {
		case outcomeNew:
			results[i] = storage.AppendResult{Message: r.newMessage(cols, k), Reopened: r.reopened(cols, k)}
		case outcomeDuplicate:
			results[i] = storage.AppendResult{Message: r.storedMessage(cols.conversationID[k]), Duplicate: true}
		case outcomeMissingConversation:
			results[i].Err = storage.Errorf(storage.ENOTFOUND, "conversation %d not found", msgs[i].ConversationID)
		case outcomeMissingSender:
			results[i].Err = storage.Errorf(storage.ENOTFOUND, "sender %d not found", msgs[i].SenderID)
		default:
			return nil, storage.Errorf(storage.EINTERNAL, "pgstore: append messages: unknown outcome (%d)", r.Outcome)
		}
		k++
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: append messages", err)
	}
	if k != len(index) {
		return nil, storage.Errorf(storage.EINTERNAL, "pgstore: append messages: %d rows returned for %d messages", k, len(index))
	}
	return results, nil
}

// appendQuery calls grainchat_append_messages (migration 00014; $7: queue
// the batch for webhooks, Options.Webhooks). A new
// message's columns are the ones sent: only a duplicate's (the message stored
// first under its key) come back, and the event of a message that reopened
// its conversation.
const appendQuery = `SELECT ord,
	CASE outcome WHEN 'new' THEN 0 WHEN 'duplicate' THEN 1
		WHEN 'missing_conversation' THEN 2 WHEN 'missing_sender' THEN 3 ELSE -1 END,
	id, seq, created_at,
	CASE WHEN outcome = 'duplicate' THEN sender_id END,
	CASE WHEN outcome = 'duplicate' THEN sender_name END,
	CASE WHEN outcome = 'duplicate' THEN sender_is_admin END,
	CASE WHEN outcome = 'duplicate' THEN body END,
	CASE WHEN outcome = 'duplicate' THEN COALESCE(client_msg_id, '') END,
	reopen_event_id, actor_external_id, actor_name
	FROM grainchat_append_messages($1, $2, $3, $4, $5, $6, $7)`

// appendColumns holds valid new messages column by column, to be sent as
// arrays.
type appendColumns struct {
	conversationID []int64
	senderID       []int64
	senderName     []string
	senderIsAdmin  []bool
	body           []string
	clientMsgID    []string // "" for none
}

func (c *appendColumns) add(m storage.NewMessage) {
	c.conversationID = append(c.conversationID, m.ConversationID)
	c.senderID = append(c.senderID, m.SenderID)
	c.senderName = append(c.senderName, m.SenderName)
	c.senderIsAdmin = append(c.senderIsAdmin, m.SenderIsAdmin)
	c.body = append(c.body, m.Body)
	c.clientMsgID = append(c.clientMsgID, m.ClientMsgID)
}

// The outcomes of grainchat_append_messages, as appendQuery numbers them.
const (
	outcomeNew = iota
	outcomeDuplicate
	outcomeMissingConversation
	outcomeMissingSender
)

// appendedRow is one row of grainchat_append_messages. id, seq and
// created_at are NULL for the missing_* outcomes; the other message columns
// are NULL unless the outcome is duplicate.
type appendedRow struct {
	Ord           int
	Outcome       int // see appendQuery
	ID            sql.NullInt64
	Seq           sql.NullInt64
	CreatedAt     sql.NullTime
	SenderID      sql.NullInt64
	SenderName    sql.NullString
	SenderIsAdmin sql.NullBool
	Body          sql.NullString
	ClientMsgID   sql.NullString
	// The status event of a new message that reopened its conversation;
	// NULL otherwise.
	ReopenEventID   sql.NullInt64
	ActorExternalID sql.NullString
	ActorName       sql.NullString
}

// reopened is the status event recorded with the k-th message sent, a new
// one, nil unless it reopened its conversation. The function records it
// with the message's time, after the seq before it, by its sender.
func (r *appendedRow) reopened(cols appendColumns, k int) *storage.Event {
	if !r.ReopenEventID.Valid {
		return nil
	}
	return &storage.Event{
		ID:             r.ReopenEventID.Int64,
		ConversationID: cols.conversationID[k],
		AfterSeq:       r.Seq.Int64 - 1,
		Kind:           storage.EventStatus,
		Status:         storage.StatusOpen,
		Actor: storage.UserRef{
			ID:         cols.senderID[k],
			ExternalID: r.ActorExternalID.String,
			Name:       r.ActorName.String,
		},
		CreatedAt: r.CreatedAt.Time,
	}
}

// newMessage is the stored message of a new row: the k-th one sent, with
// the columns the database assigned.
func (r *appendedRow) newMessage(cols appendColumns, k int) storage.Message {
	return storage.Message{
		ID:             r.ID.Int64,
		ConversationID: cols.conversationID[k],
		Seq:            r.Seq.Int64,
		SenderID:       cols.senderID[k],
		SenderName:     cols.senderName[k],
		SenderIsAdmin:  cols.senderIsAdmin[k],
		Body:           cols.body[k],
		ClientMsgID:    cols.clientMsgID[k],
		CreatedAt:      r.CreatedAt.Time,
	}
}

// storedMessage is the message a duplicate row names: the one stored first
// under the same key in conversationID.
func (r *appendedRow) storedMessage(conversationID int64) storage.Message {
	return storage.Message{
		ID:             r.ID.Int64,
		ConversationID: conversationID,
		Seq:            r.Seq.Int64,
		SenderID:       r.SenderID.Int64,
		SenderName:     r.SenderName.String,
		SenderIsAdmin:  r.SenderIsAdmin.Bool,
		Body:           r.Body.String,
		ClientMsgID:    r.ClientMsgID.String,
		CreatedAt:      r.CreatedAt.Time,
	}
}

// Messages implements storage.Store. ENOTFOUND if the conversation does not
// exist, EINVALID for negative page fields.
func (s *Store) Messages(ctx context.Context, conversationID int64, p storage.Page) ([]storage.Message, error) {
	b, err := rules.Page(p)
	if err != nil {
		return nil, err
	}
	before := b.BeforeSeq
	if before == 0 {
		before = math.MaxInt64
	}
	order := "ASC"
	if b.Newest {
		order = "DESC"
	}

	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	msgs := []storage.Message{}
	err = s.db.SelectContext(ctx, &msgs, `
		SELECT `+messageColumns+`
		FROM messages m
		WHERE m.conversation_id = $1 AND m.seq > $2 AND m.seq < $3
		ORDER BY m.seq `+order+`
		LIMIT $4`,
		conversationID, b.AfterSeq, before, b.Limit)
	if err != nil {
		return nil, dbError(ctx, "pgstore: list messages", err)
	}
	if b.Newest {
		slices.Reverse(msgs)
	}
	if len(msgs) == 0 {
		// Tell an empty page from a missing conversation.
		var one int
		err := s.db.GetContext(ctx, &one, `SELECT 1 FROM conversations WHERE id = $1`, conversationID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, storage.Errorf(storage.ENOTFOUND, "conversation %d not found", conversationID)
		}
		if err != nil {
			return nil, dbError(ctx, "pgstore: list messages", err)
		}
	}
	return msgs, nil
}
