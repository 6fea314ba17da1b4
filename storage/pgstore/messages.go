package pgstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

// messageColumns selects a storage.Message from messages aliased m.
const messageColumns = `m.id, m.conversation_id, m.seq, m.sender_id, m.sender_name, m.sender_is_admin,
	m.body, COALESCE(m.client_msg_id, '') AS client_msg_id, m.created_at`

// pending is a valid message of an AppendMessages batch, with its position
// in the input.
type pending struct {
	index int
	msg   storage.NewMessage
}

// clientKey identifies an idempotent message.
type clientKey struct {
	conversationID int64
	senderID       int64
	clientMsgID    string
}

// AppendMessages implements storage.Store.
//
// It runs one transaction with a fixed number of round trips, whatever the
// size of the batch:
//
//  1. lock the batch's conversations, in id order (so that concurrent
//     writers never deadlock), and read their last_seq;
//  2. in the same statement, check that the senders exist;
//  3. read the messages already stored under the batch's client message ids
//     (skipped when no message has one);
//  4. insert the new messages and advance the conversations, in one
//     statement.
//
// Seqs are assigned in Go between steps 3 and 4. The row locks, held until
// commit, make that safe when other processes append to the same
// conversations: they wait at step 1 and then read the new last_seq. All
// messages of one call get the same created_at, taken after the locks, so
// created_at never decreases along a conversation's seqs. Gap-free seqs
// under concurrency are guarded by storetest's AppendMessages/Concurrent and
// by TestTwoStores_sameConversation and TestUnavailable_cutDuringAppends.
//
// If the connection breaks during COMMIT the outcome is unknown: the error
// is EUNAVAILABLE although the messages may be stored. Retrying with the
// same client message ids is safe.
func (s *Store) AppendMessages(ctx context.Context, msgs []storage.NewMessage) ([]storage.AppendResult, error) {
	results := make([]storage.AppendResult, len(msgs))
	batch := make([]pending, 0, len(msgs))
	for i, in := range msgs {
		m, err := rules.NewMessage(in)
		if err != nil {
			results[i].Err = err
			continue
		}
		batch = append(batch, pending{index: i, msg: m})
	}
	if len(batch) == 0 {
		return results, nil
	}

	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, dbError(ctx, "pgstore: append messages: begin", err)
	}
	defer tx.Rollback()
	if err := appendMessages(ctx, tx, batch, results); err != nil {
		return nil, dbError(ctx, "pgstore: append messages", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, dbError(ctx, "pgstore: append messages: commit", err)
	}
	return results, nil
}

// appendMessages stores batch in tx and fills results (indexed like the
// input) for every message of batch. Results are only meaningful if it
// returns nil and tx commits.
func appendMessages(ctx context.Context, tx *sqlx.Tx, batch []pending, results []storage.AppendResult) error {
	convIDs := make([]int64, 0, len(batch))
	senderIDs := make([]int64, 0, len(batch))
	for _, p := range batch {
		convIDs = append(convIDs, p.msg.ConversationID)
		senderIDs = append(senderIDs, p.msg.SenderID)
	}
	slices.Sort(convIDs)
	convIDs = slices.Compact(convIDs)
	slices.Sort(senderIDs)
	senderIDs = slices.Compact(senderIDs)

	// 1 and 2. Lock the conversations and find the senders, in one statement.
	var found []struct {
		Kind    string `db:"kind"`
		ID      int64  `db:"id"`
		LastSeq int64  `db:"last_seq"`
	}
	err := tx.SelectContext(ctx, &found, `
		WITH locked AS MATERIALIZED (
			SELECT id, last_seq FROM conversations
			WHERE id = ANY($1::bigint[])
			ORDER BY id
			FOR UPDATE
		)
		SELECT 'conversation' AS kind, id, last_seq FROM locked
		UNION ALL
		SELECT 'sender', id, 0 FROM users WHERE id = ANY($2::bigint[])`,
		pq.Int64Array(convIDs), pq.Int64Array(senderIDs))
	if err != nil {
		return fmt.Errorf("lock conversations: %w", err)
	}
	lastSeq := make(map[int64]int64, len(convIDs)) // conversation id → last seq
	senders := make(map[int64]bool, len(senderIDs))
	for _, r := range found {
		if r.Kind == "conversation" {
			lastSeq[r.ID] = r.LastSeq
		} else {
			senders[r.ID] = true
		}
	}

	valid := make([]pending, 0, len(batch))
	for _, p := range batch {
		switch m := p.msg; {
		case !hasKey(lastSeq, m.ConversationID):
			results[p.index].Err = storage.Errorf(storage.ENOTFOUND, "conversation %d not found", m.ConversationID)
		case !senders[m.SenderID]:
			results[p.index].Err = storage.Errorf(storage.ENOTFOUND, "sender %d not found", m.SenderID)
		default:
			valid = append(valid, p)
		}
	}

	// 3. Find the messages stored earlier under the same client message ids.
	stored, err := storedByClientID(ctx, tx, valid)
	if err != nil {
		return err
	}

	// Assign seqs in input order, skipping duplicates (earlier or within
	// this batch).
	var rows insertRows
	newIndex := make(map[clientKey]int)             // client key → result index of its new message
	byConvSeq := make(map[[2]int64]int, len(valid)) // (conversation, seq) → result index
	var dups [][2]int                               // (result index, result index of the message it repeats)
	for _, p := range valid {
		m := p.msg
		key := clientKey{m.ConversationID, m.SenderID, m.ClientMsgID}
		if m.ClientMsgID != "" {
			if old, ok := stored[key]; ok {
				results[p.index] = storage.AppendResult{Message: old, Duplicate: true}
				continue
			}
			if first, ok := newIndex[key]; ok {
				dups = append(dups, [2]int{p.index, first})
				continue
			}
			newIndex[key] = p.index
		}
		lastSeq[m.ConversationID]++
		seq := lastSeq[m.ConversationID]
		results[p.index].Message = storage.Message{
			ConversationID: m.ConversationID,
			Seq:            seq,
			SenderID:       m.SenderID,
			SenderName:     m.SenderName,
			SenderIsAdmin:  m.SenderIsAdmin,
			Body:           m.Body,
			ClientMsgID:    m.ClientMsgID,
		}
		byConvSeq[[2]int64{m.ConversationID, seq}] = p.index
		rows.add(m, seq)
	}

	// 4. Insert the new messages and advance the conversations.
	if len(rows.seq) > 0 {
		inserted, err := rows.insert(ctx, tx)
		if err != nil {
			return err
		}
		if len(inserted) != len(rows.seq) {
			return fmt.Errorf("insert messages: %d rows returned for %d messages", len(inserted), len(rows.seq))
		}
		for _, r := range inserted {
			i, ok := byConvSeq[[2]int64{r.ConversationID, r.Seq}]
			if !ok {
				return fmt.Errorf("insert messages: unexpected row (conversation %d, seq %d)", r.ConversationID, r.Seq)
			}
			results[i].Message.ID = r.ID
			results[i].Message.CreatedAt = r.CreatedAt
		}
	}
	for _, d := range dups {
		results[d[0]] = storage.AppendResult{Message: results[d[1]].Message, Duplicate: true}
	}
	return nil
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}

// storedByClientID returns the stored messages that have the client keys of
// batch's messages, in one query.
func storedByClientID(ctx context.Context, tx *sqlx.Tx, batch []pending) (map[clientKey]storage.Message, error) {
	var convIDs, senderIDs []int64
	var clientIDs []string
	for _, p := range batch {
		if p.msg.ClientMsgID != "" {
			convIDs = append(convIDs, p.msg.ConversationID)
			senderIDs = append(senderIDs, p.msg.SenderID)
			clientIDs = append(clientIDs, p.msg.ClientMsgID)
		}
	}
	if len(clientIDs) == 0 {
		return nil, nil
	}
	var msgs []storage.Message
	// LATERAL with LIMIT 1 (the key is unique anyway) makes one probe of
	// messages_client_msg_id_key per key: as a plain join, a batch of a few
	// hundred keys gets planned as a hash join over the whole table.
	err := tx.SelectContext(ctx, &msgs, `
		SELECT m.*
		FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS k(conversation_id, sender_id, client_msg_id)
		CROSS JOIN LATERAL (
			SELECT `+messageColumns+`
			FROM messages m
			WHERE m.conversation_id = k.conversation_id
				AND m.sender_id = k.sender_id
				AND m.client_msg_id = k.client_msg_id
			LIMIT 1
		) m`,
		pq.Int64Array(convIDs), pq.Int64Array(senderIDs), pq.StringArray(clientIDs))
	if err != nil {
		return nil, fmt.Errorf("find duplicates: %w", err)
	}
	stored := make(map[clientKey]storage.Message, len(msgs))
	for _, m := range msgs {
		stored[clientKey{m.ConversationID, m.SenderID, m.ClientMsgID}] = m
	}
	return stored, nil
}

// insertRows holds new messages column by column, to be sent as arrays.
type insertRows struct {
	conversationID []int64
	seq            []int64
	senderID       []int64
	senderName     []string
	senderIsAdmin  []bool
	body           []string
	clientMsgID    []string // "" for none
}

func (r *insertRows) add(m storage.NewMessage, seq int64) {
	r.conversationID = append(r.conversationID, m.ConversationID)
	r.seq = append(r.seq, seq)
	r.senderID = append(r.senderID, m.SenderID)
	r.senderName = append(r.senderName, m.SenderName)
	r.senderIsAdmin = append(r.senderIsAdmin, m.SenderIsAdmin)
	r.body = append(r.body, m.Body)
	r.clientMsgID = append(r.clientMsgID, m.ClientMsgID)
}

type insertedRow struct {
	ID             int64     `db:"id"`
	ConversationID int64     `db:"conversation_id"`
	Seq            int64     `db:"seq"`
	CreatedAt      time.Time `db:"created_at"`
}

// insert stores the rows with one multi-row INSERT and, in the same
// statement, sets each conversation's last_seq to its highest new seq.
// statement_timestamp() is read after the conversations were locked, and is
// the same for every row of the statement.
func (r *insertRows) insert(ctx context.Context, tx *sqlx.Tx) ([]insertedRow, error) {
	var inserted []insertedRow
	err := tx.SelectContext(ctx, &inserted, `
		WITH new AS (
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::boolean[], $6::text[], $7::text[])
				AS t(conversation_id, seq, sender_id, sender_name, sender_is_admin, body, client_msg_id)
		), ins AS (
			INSERT INTO messages (conversation_id, seq, sender_id, sender_name, sender_is_admin, body, client_msg_id, created_at)
			SELECT conversation_id, seq, sender_id, sender_name, sender_is_admin, body, NULLIF(client_msg_id, ''), statement_timestamp()
			FROM new
			RETURNING id, conversation_id, seq, created_at
		), advanced AS (
			UPDATE conversations c
			SET last_seq = n.last_seq, last_message_at = statement_timestamp()
			FROM (SELECT conversation_id, max(seq) AS last_seq FROM new GROUP BY conversation_id) n
			WHERE c.id = n.conversation_id
		)
		SELECT id, conversation_id, seq, created_at FROM ins`,
		pq.Int64Array(r.conversationID), pq.Int64Array(r.seq), pq.Int64Array(r.senderID),
		pq.StringArray(r.senderName), pq.BoolArray(r.senderIsAdmin), pq.StringArray(r.body),
		pq.StringArray(r.clientMsgID))
	if err != nil {
		return nil, fmt.Errorf("insert messages: %w", err)
	}
	return inserted, nil
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
