package pgstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/grainchat/grainchat/storage"
)

// This file owns the webhooks' outbox (storage.Webhooks; migration 00014
// says how it keeps each conversation's order and why expansions are
// serialized). The queue rows are written by the message path's function
// (Options.Webhooks), by ChangeConversation, EnsureConversation and
// MarkRead.

var _ storage.Webhooks = (*Store)(nil)

// webhookLockClass is the first key of the webhooks' advisory locks
// (pg_advisory_lock(int, int)): (class, 0) serializes expansions, (class,
// endpoint id) is an endpoint's sender lock. "gcwh".
const webhookLockClass = 0x67637768

// webhookExpandBatch is how many queue rows one expansion takes: each is one
// append call (at most 500 messages), one desk change, one new conversation
// or one read mark.
const webhookExpandBatch = 32

// WebhookEndpoints implements storage.Webhooks.
func (s *Store) WebhookEndpoints(ctx context.Context, urls []string) ([]storage.WebhookEndpoint, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	out := make([]storage.WebhookEndpoint, 0, len(urls))
	for _, u := range urls {
		e := storage.WebhookEndpoint{URL: u}
		// DO UPDATE (to the same value) so that RETURNING gives the id of an
		// endpoint that exists.
		err := s.db.QueryRowContext(ctx, `
			INSERT INTO webhook_endpoints (url) VALUES ($1)
			ON CONFLICT (url) DO UPDATE SET url = EXCLUDED.url
			RETURNING id`, u).Scan(&e.ID)
		if err != nil {
			return nil, dbError(ctx, "pgstore: webhook endpoints", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// queueRow is one webhook_queue row.
type queueRow struct {
	id              int64
	kind            string
	firstID, lastID int64
	conversationIDs pq.Int64Array
	eventFirst      sql.NullInt64
	eventLast       sql.NullInt64
	userID          sql.NullInt64
	seq             sql.NullInt64
	createdAt       time.Time
}

// webhookItem is an item with its place in its conversation: pos is the
// seq it comes at or after, sub 0 for a message, 1 for what follows it.
type webhookItem struct {
	storage.WebhookItem
	conversationID int64
	pos, sub, id   int64
}

// AppendBusy implements storage.Webhooks: the busy time the search indexer
// yields by (indexLoop).
func (s *Store) AppendBusy(now time.Time) time.Duration { return s.appending.busy(now) }

// ExpandWebhooks implements storage.Webhooks in one transaction: take the
// expansion lock (or return 0), take the oldest queue rows, read what they
// name, insert the deliveries in order, delete the rows.
func (s *Store) ExpandWebhooks(ctx context.Context, endpointIDs []int64, encode storage.WebhookEncoder) (int, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, dbError(ctx, "pgstore: expand webhooks: begin", err)
	}
	defer func() { _ = tx.Rollback() }()
	var locked bool
	if err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1, 0)`, webhookLockClass).Scan(&locked); err != nil {
		return 0, dbError(ctx, "pgstore: expand webhooks: lock", err)
	}
	if !locked {
		return 0, nil // another process is expanding
	}
	rows, err := claimQueue(ctx, tx)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	items, err := readQueueItems(ctx, tx, rows)
	if err != nil {
		return 0, err
	}
	if err := insertDeliveries(ctx, tx, endpointIDs, items, encode); err != nil {
		return 0, err
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.id
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_queue WHERE id = ANY($1)`, pq.Int64Array(ids)); err != nil {
		return 0, dbError(ctx, "pgstore: expand webhooks: delete queue rows", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, dbError(ctx, "pgstore: expand webhooks: commit", err)
	}
	return len(items), nil
}

// claimQueue locks the oldest queue rows, in id order.
func claimQueue(ctx context.Context, tx *sqlx.Tx) ([]queueRow, error) {
	rs, err := tx.QueryContext(ctx, `
		SELECT id, kind, first_id, last_id, conversation_ids, event_first, event_last, user_id, seq, created_at
		FROM webhook_queue ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, webhookExpandBatch)
	if err != nil {
		return nil, dbError(ctx, "pgstore: expand webhooks: claim", err)
	}
	defer rs.Close()
	var rows []queueRow
	for rs.Next() {
		var r queueRow
		if err := rs.Scan(&r.id, &r.kind, &r.firstID, &r.lastID, &r.conversationIDs, &r.eventFirst, &r.eventLast,
			&r.userID, &r.seq, &r.createdAt); err != nil {
			return nil, dbError(ctx, "pgstore: expand webhooks: claim: scan", err)
		}
		rows = append(rows, r)
	}
	if err := rs.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: expand webhooks: claim", err)
	}
	return rows, nil
}

// readQueueItems reads what the rows name, in order: the rows in id order,
// each row's items per conversation by (pos, sub, id). Each item carries
// its conversation as it is now.
func readQueueItems(ctx context.Context, tx *sqlx.Tx, rows []queueRow) ([]webhookItem, error) {
	var all []webhookItem
	convSet := map[int64]bool{}
	for _, r := range rows {
		var items []webhookItem
		var err error
		switch r.kind {
		case "messages":
			if items, err = queueMessages(ctx, tx, r); err == nil && r.eventFirst.Valid {
				var evs []webhookItem
				evs, err = queueEvents(ctx, tx, r.eventFirst.Int64, r.eventLast.Int64, r.conversationIDs)
				items = append(items, evs...)
			}
		case "events":
			items, err = queueEvents(ctx, tx, r.firstID, r.lastID, r.conversationIDs)
		case "conversation":
			items = []webhookItem{{
				WebhookItem:    storage.WebhookItem{ID: fmt.Sprintf("cnv_%d", r.firstID), Type: storage.WebhookConversationCreated, CreatedAt: r.createdAt},
				conversationID: r.firstID,
			}}
		case "read":
			items = []webhookItem{{
				WebhookItem: storage.WebhookItem{ID: fmt.Sprintf("read_%d", r.id), Type: storage.WebhookConversationRead, CreatedAt: r.createdAt,
					Read: &storage.WebhookRead{Reader: storage.UserRef{ID: r.userID.Int64}, Seq: r.seq.Int64}},
				conversationID: r.firstID, pos: r.seq.Int64, sub: 2,
			}}
		default:
			return nil, storage.Errorf(storage.EINTERNAL, "pgstore: expand webhooks: unknown queue row kind %q", r.kind)
		}
		if err != nil {
			return nil, err
		}
		slices.SortStableFunc(items, func(a, b webhookItem) int {
			return cmp.Or(cmp.Compare(a.conversationID, b.conversationID), cmp.Compare(a.pos, b.pos),
				cmp.Compare(a.sub, b.sub), cmp.Compare(a.id, b.id))
		})
		for _, it := range items {
			convSet[it.conversationID] = true
		}
		all = append(all, items...)
	}
	if len(all) == 0 {
		return nil, nil
	}
	convs, err := webhookConversations(ctx, tx, convSet)
	if err != nil {
		return nil, err
	}
	reads := false
	for i := range all {
		c, ok := convs[all[i].conversationID]
		if !ok {
			return nil, storage.Errorf(storage.EINTERNAL, "pgstore: expand webhooks: conversation %d not found", all[i].conversationID)
		}
		all[i].Conversation = c
		reads = reads || all[i].Read != nil
	}
	if reads {
		if err := webhookReaders(ctx, tx, all); err != nil {
			return nil, err
		}
	}
	return all, nil
}

// queueMessages reads a messages row's messages: those of its id range that
// belong to its conversations (the range may span a concurrent call's).
func queueMessages(ctx context.Context, tx *sqlx.Tx, r queueRow) ([]webhookItem, error) {
	var msgs []storage.Message
	err := tx.SelectContext(ctx, &msgs, `SELECT `+messageColumns+` FROM messages m
		WHERE m.id BETWEEN $1 AND $2 AND m.conversation_id = ANY($3)`, r.firstID, r.lastID, r.conversationIDs)
	if err != nil {
		return nil, dbError(ctx, "pgstore: expand webhooks: messages", err)
	}
	items := make([]webhookItem, len(msgs))
	for i := range msgs {
		m := msgs[i]
		items[i] = webhookItem{
			WebhookItem:    storage.WebhookItem{ID: fmt.Sprintf("msg_%d", m.ID), Type: storage.WebhookMessageCreated, CreatedAt: m.CreatedAt, Message: &m},
			conversationID: m.ConversationID, pos: m.Seq, id: m.ID,
		}
	}
	return items, nil
}

// queueEvents reads the events of an id range that belong to conversations.
func queueEvents(ctx context.Context, tx *sqlx.Tx, first, last int64, conversations pq.Int64Array) ([]webhookItem, error) {
	rs, err := tx.QueryContext(ctx, `
		SELECT e.id, e.conversation_id, e.after_seq, e.kind, COALESCE(e.status, ''), COALESCE(e.body, ''), e.created_at,
			ac.id, ac.external_id, ac.name, asg.id, asg.external_id, asg.name
		FROM conversation_events e
		JOIN users ac ON ac.id = e.actor_id
		LEFT JOIN users asg ON asg.id = e.assignee_id
		WHERE e.id BETWEEN $1 AND $2 AND e.conversation_id = ANY($3)`, first, last, conversations)
	if err != nil {
		return nil, dbError(ctx, "pgstore: expand webhooks: events", err)
	}
	defer rs.Close()
	var items []webhookItem
	for rs.Next() {
		e := &storage.Event{}
		var a nullableRef
		if err := rs.Scan(&e.ID, &e.ConversationID, &e.AfterSeq, &e.Kind, &e.Status, &e.Body, &e.CreatedAt,
			&e.Actor.ID, &e.Actor.ExternalID, &e.Actor.Name, &a.ID, &a.ExternalID, &a.Name); err != nil {
			return nil, dbError(ctx, "pgstore: expand webhooks: events: scan", err)
		}
		e.Assignee = a.ref()
		typ := storage.WebhookConversationUpdated
		if e.Kind == storage.EventNote {
			typ = storage.WebhookNoteCreated
		}
		items = append(items, webhookItem{
			WebhookItem:    storage.WebhookItem{ID: fmt.Sprintf("evt_%d", e.ID), Type: typ, CreatedAt: e.CreatedAt, Event: e},
			conversationID: e.ConversationID, pos: e.AfterSeq, sub: 1, id: e.ID,
		})
	}
	if err := rs.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: expand webhooks: events", err)
	}
	return items, nil
}

// webhookConversations reads the conversations, with their users and
// assignees, as they are now.
func webhookConversations(ctx context.Context, tx *sqlx.Tx, set map[int64]bool) (map[int64]storage.WebhookConversation, error) {
	ids := make([]int64, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	rs, err := tx.QueryContext(ctx, `
		SELECT c.id, c.status, c.last_seq, c.last_message_at, c.created_at,
			u.id, u.external_id, u.name, a.id, a.external_id, a.name
		FROM conversations c
		JOIN users u ON u.id = c.user_id
		LEFT JOIN users a ON a.id = c.assignee_id
		WHERE c.id = ANY($1)`, pq.Int64Array(ids))
	if err != nil {
		return nil, dbError(ctx, "pgstore: expand webhooks: conversations", err)
	}
	defer rs.Close()
	out := make(map[int64]storage.WebhookConversation, len(ids))
	for rs.Next() {
		var c storage.WebhookConversation
		var last sql.NullTime
		var a nullableRef
		if err := rs.Scan(&c.ID, &c.Status, &c.LastSeq, &last, &c.CreatedAt,
			&c.User.ID, &c.User.ExternalID, &c.User.Name, &a.ID, &a.ExternalID, &a.Name); err != nil {
			return nil, dbError(ctx, "pgstore: expand webhooks: conversations: scan", err)
		}
		if last.Valid {
			t := last.Time
			c.LastMessageAt = &t
		}
		c.Assignee = a.ref()
		out[c.ID] = c
	}
	if err := rs.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: expand webhooks: conversations", err)
	}
	return out, nil
}

// webhookReaders fills the readers of the read items: their names, and
// whether they are staff.
func webhookReaders(ctx context.Context, tx *sqlx.Tx, items []webhookItem) error {
	var ids []int64
	for _, it := range items {
		if it.Read != nil {
			ids = append(ids, it.Read.Reader.ID)
		}
	}
	var users []storage.User
	if err := tx.SelectContext(ctx, &users, `SELECT `+userColumns+` FROM users WHERE id = ANY($1)`, pq.Int64Array(ids)); err != nil {
		return dbError(ctx, "pgstore: expand webhooks: readers", err)
	}
	byID := make(map[int64]storage.User, len(users))
	for _, u := range users {
		byID[u.ID] = u
	}
	for _, it := range items {
		if it.Read == nil {
			continue
		}
		u := byID[it.Read.Reader.ID]
		it.Read.Reader = storage.UserRef{ID: u.ID, ExternalID: u.ExternalID, Name: u.Name}
		it.Read.Staff = u.IsAdmin
	}
	return nil
}

// insertDeliveries inserts one delivery per item and endpoint, in order:
// items in the order given, each item's endpoints in the order given.
func insertDeliveries(ctx context.Context, tx *sqlx.Tx, endpointIDs []int64, items []webhookItem, encode storage.WebhookEncoder) error {
	if len(endpointIDs) == 0 {
		return nil
	}
	n := len(items) * len(endpointIDs)
	var (
		endpoint = make(pq.Int64Array, 0, n)
		conv     = make(pq.Int64Array, 0, n)
		eventID  = make(pq.StringArray, 0, n)
		typ      = make(pq.StringArray, 0, n)
		body     = make(pq.StringArray, 0, n)
		created  = make(pq.StringArray, 0, n)
	)
	for _, it := range items {
		b, err := encode(it.WebhookItem)
		if err != nil {
			return &storage.Error{Code: storage.EINTERNAL, Message: "pgstore: expand webhooks: encode " + it.ID, Err: err}
		}
		for _, e := range endpointIDs {
			endpoint = append(endpoint, e)
			conv = append(conv, it.conversationID)
			eventID = append(eventID, it.ID)
			typ = append(typ, it.Type)
			body = append(body, string(b))
			created = append(created, it.CreatedAt.UTC().Format(time.RFC3339Nano))
		}
	}
	// Rows take their ids from the sequence in ORDER BY's order.
	_, err := tx.ExecContext(ctx, `
		INSERT INTO webhook_deliveries (endpoint_id, conversation_id, event_id, event_type, body, created_at)
		SELECT x.e, x.c, x.i, x.t, x.b, x.ca
		FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
			WITH ORDINALITY AS x(e, c, i, t, b, ca, n)
		ORDER BY x.n`, endpoint, conv, eventID, typ, body, created)
	if err != nil {
		return dbError(ctx, "pgstore: expand webhooks: insert deliveries", err)
	}
	return nil
}

// LockWebhookEndpoint implements storage.Webhooks with a session advisory
// lock (sessionLock).
func (s *Store) LockWebhookEndpoint(ctx context.Context, endpointID int64) (storage.Lock, bool, error) {
	return s.sessionLock(ctx, "webhook endpoint", webhookLockClass, endpointID)
}

// pendingWebhooksQuery reads an endpoint's deliveries after an id.
const pendingWebhooksQuery = `
	SELECT id, endpoint_id, conversation_id, event_id, event_type, body, created_at, attempts, next_attempt_at
	FROM webhook_deliveries
	WHERE endpoint_id = $1 AND id > $2
	ORDER BY id
	LIMIT $3`

// PendingWebhooks implements storage.Webhooks.
func (s *Store) PendingWebhooks(ctx context.Context, endpointID, afterID int64, limit int) ([]storage.WebhookDelivery, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rs, err := s.db.QueryContext(ctx, pendingWebhooksQuery, endpointID, afterID, limit)
	if err != nil {
		return nil, dbError(ctx, "pgstore: pending webhooks", err)
	}
	defer rs.Close()
	var out []storage.WebhookDelivery
	for rs.Next() {
		var d storage.WebhookDelivery
		var body string
		var next sql.NullTime
		if err := rs.Scan(&d.ID, &d.EndpointID, &d.ConversationID, &d.EventID, &d.Type, &body, &d.CreatedAt, &d.Attempts, &next); err != nil {
			return nil, dbError(ctx, "pgstore: pending webhooks: scan", err)
		}
		d.Body = []byte(body)
		if next.Valid {
			d.NextAttemptAt = next.Time
		}
		out = append(out, d)
	}
	if err := rs.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: pending webhooks", err)
	}
	return out, nil
}

// DeleteWebhooks implements storage.Webhooks.
func (s *Store) DeleteWebhooks(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE id = ANY($1)`, pq.Int64Array(ids)); err != nil {
		return dbError(ctx, "pgstore: delete webhooks", err)
	}
	return nil
}

// RetryWebhook implements storage.Webhooks.
func (s *Store) RetryWebhook(ctx context.Context, id int64, attempts int, next time.Time) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.db.ExecContext(ctx, `UPDATE webhook_deliveries SET attempts = $2, next_attempt_at = $3 WHERE id = $1`, id, attempts, next)
	if err != nil {
		return dbError(ctx, "pgstore: retry webhook", err)
	}
	return nil
}

// WebhookBacklog implements storage.Webhooks.
func (s *Store) WebhookBacklog(ctx context.Context, endpointID int64) (int64, time.Time, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var n int64
	var oldest sql.NullTime
	err := s.db.QueryRowContext(ctx, `SELECT count(*), min(created_at) FROM webhook_deliveries WHERE endpoint_id = $1`, endpointID).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, dbError(ctx, "pgstore: webhook backlog", err)
	}
	return n, oldest.Time, nil
}
