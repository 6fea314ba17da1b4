package pgstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

// This file owns the desk's writes and point reads (storage.Desk):
// ChangeConversation, DeskState, Events, MarkRead, ViewCounts and StaffUser.
// The inbox views are in view.go.

// lockDeskQuery locks a conversation ($1) for a change and reads its state
// with the users the change names: the actor ($2), the current assignee and
// the requested one ($3, NULL when the change leaves the assignee alone or
// unassigns). The row lock orders the change with appends
// (grainchat_append_messages locks the same row), so last_seq is the seq the
// change's events come after.
const lockDeskQuery = `
	SELECT c.status, c.last_seq,
		cur.id, cur.external_id, cur.name,
		act.id, act.external_id, act.name, act.is_admin,
		req.id, req.external_id, req.name, req.is_admin
	FROM conversations c
	LEFT JOIN users cur ON cur.id = c.assignee_id
	LEFT JOIN users act ON act.id = $2
	LEFT JOIN users req ON req.id = $3
	WHERE c.id = $1
	FOR UPDATE OF c`

// changeQuery writes a change: the conversation's new status ($2) and
// assignee ($3), and the events ($6: a status event; $7: an assignee event;
// $8, when not NULL: a note) after seq $4 by actor $5, all at one time read
// after the lock.
const changeQuery = `
	WITH t AS MATERIALIZED (SELECT clock_timestamp() AS now),
	upd AS (UPDATE conversations SET status = $2::text, assignee_id = $3::bigint WHERE id = $1::bigint),
	ins AS (
		INSERT INTO conversation_events (conversation_id, after_seq, kind, status, assignee_id, actor_id, created_at, body)
		SELECT $1::bigint, $4::bigint, 'status', $2::text, NULL::bigint, $5::bigint, t.now, NULL::text FROM t WHERE $6::boolean
		UNION ALL
		SELECT $1::bigint, $4::bigint, 'assignee', NULL::text, $3::bigint, $5::bigint, t.now, NULL::text FROM t WHERE $7::boolean
		UNION ALL
		SELECT $1::bigint, $4::bigint, 'note', NULL::text, NULL::bigint, $5::bigint, t.now, $8::text FROM t WHERE $8::text IS NOT NULL
		RETURNING id, kind, created_at
	)
	SELECT id, kind, created_at FROM ins ORDER BY id`

// lockedDesk is what lockDeskQuery read.
type lockedDesk struct {
	status   string
	lastSeq  int64
	current  nullableRef
	actor    nullableRef
	actorOK  sql.NullBool // the actor's is_admin
	wanted   nullableRef
	wantedOK sql.NullBool // the requested assignee's is_admin
}

// nullableRef scans a storage.UserRef from a LEFT JOIN.
type nullableRef struct {
	ID         sql.NullInt64
	ExternalID sql.NullString
	Name       sql.NullString
}

// ref returns the user, nil when the join found none.
func (n nullableRef) ref() *storage.UserRef {
	if !n.ID.Valid {
		return nil
	}
	return &storage.UserRef{ID: n.ID.Int64, ExternalID: n.ExternalID.String, Name: n.Name.String}
}

// ChangeConversation implements storage.Desk in one transaction: lock and
// read (lockDeskQuery), then, when something changes, write (changeQuery).
func (s *Store) ChangeConversation(ctx context.Context, conversationID int64, c storage.Change) (storage.ChangeResult, error) {
	if err := checkChange(c); err != nil {
		return storage.ChangeResult{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return storage.ChangeResult{}, dbError(ctx, "pgstore: change conversation: begin", err)
	}
	defer func() { _ = tx.Rollback() }()

	var requested sql.NullInt64
	if c.Assignee != nil && *c.Assignee != 0 {
		requested = sql.NullInt64{Int64: *c.Assignee, Valid: true}
	}
	cur, err := lockDesk(ctx, tx, conversationID, c.ActorID, requested)
	if err != nil {
		return storage.ChangeResult{}, err
	}
	res, plan, err := planChange(conversationID, c, cur)
	if err != nil || (!plan.status && !plan.assignee && plan.note == nil) {
		return res, err // nothing to write: the rollback ends the transaction
	}
	if res.Events, err = writeChange(ctx, tx, res.State, plan, cur.actor.ref()); err != nil {
		return storage.ChangeResult{}, err
	}
	if s.opts.Webhooks && len(res.Events) > 0 {
		// The change's events, for the webhooks (00014), under the
		// conversation's lock like the events themselves.
		_, err := tx.ExecContext(ctx, `INSERT INTO webhook_queue (kind, first_id, last_id, conversation_ids)
			VALUES ('events', $1, $2, ARRAY[$3::bigint])`, res.Events[0].ID, res.Events[len(res.Events)-1].ID, conversationID)
		if err != nil {
			return storage.ChangeResult{}, dbError(ctx, "pgstore: change conversation: queue webhooks", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return storage.ChangeResult{}, dbError(ctx, "pgstore: change conversation: commit", err)
	}
	return res, nil
}

// checkChange refuses what no conversation accepts: an unknown status, a
// negative assignee id.
func checkChange(c storage.Change) error {
	if c.Status != nil && !storage.ValidStatus(*c.Status) {
		return storage.Errorf(storage.EINVALID, "unknown status %q", *c.Status)
	}
	if c.Assignee != nil && *c.Assignee < 0 {
		return storage.Errorf(storage.EINVALID, "assignee %d is not a staff user", *c.Assignee)
	}
	if c.Note != nil {
		return storage.CheckNote(*c.Note)
	}
	return nil
}

// lockDesk runs lockDeskQuery in tx.
func lockDesk(ctx context.Context, tx *sqlx.Tx, conversationID, actorID int64, requested sql.NullInt64) (lockedDesk, error) {
	var d lockedDesk
	err := tx.QueryRowContext(ctx, lockDeskQuery, conversationID, actorID, requested).Scan(
		&d.status, &d.lastSeq,
		&d.current.ID, &d.current.ExternalID, &d.current.Name,
		&d.actor.ID, &d.actor.ExternalID, &d.actor.Name, &d.actorOK,
		&d.wanted.ID, &d.wanted.ExternalID, &d.wanted.Name, &d.wantedOK)
	if errors.Is(err, sql.ErrNoRows) {
		return d, storage.Errorf(storage.ENOTFOUND, "conversation %d not found", conversationID)
	}
	if err != nil {
		return d, dbError(ctx, "pgstore: change conversation: lock", err)
	}
	return d, nil
}

// changePlan says which fields a change writes, and the note it records.
type changePlan struct {
	status, assignee bool
	note             *string
}

// planChange checks c against the locked state and returns the state after
// it and what to write: ENOTFOUND for an unknown actor, EINVALID for an
// assignee that is not a staff user.
func planChange(conversationID int64, c storage.Change, cur lockedDesk) (storage.ChangeResult, changePlan, error) {
	var plan changePlan
	if !cur.actor.ID.Valid {
		return storage.ChangeResult{}, plan, storage.Errorf(storage.ENOTFOUND, "user %d not found", c.ActorID)
	}
	if c.Note != nil {
		if !cur.actorOK.Bool {
			return storage.ChangeResult{}, plan, storage.Errorf(storage.EINVALID, "only staff can write notes")
		}
		plan.note = c.Note
	}
	state := storage.DeskState{
		ConversationID: conversationID,
		Status:         cur.status,
		Assignee:       cur.current.ref(),
		LastSeq:        cur.lastSeq,
	}
	if c.Status != nil && *c.Status != state.Status {
		state.Status, plan.status = *c.Status, true
	}
	if c.Assignee != nil {
		var next *storage.UserRef
		if *c.Assignee != 0 {
			if !cur.wanted.ID.Valid || !cur.wantedOK.Bool {
				return storage.ChangeResult{}, plan, storage.Errorf(storage.EINVALID, "assignee %d is not a staff user", *c.Assignee)
			}
			next = cur.wanted.ref()
		}
		if assigneeID(next) != assigneeID(state.Assignee) {
			state.Assignee, plan.assignee = next, true
		}
	}
	return storage.ChangeResult{State: state}, plan, nil
}

// assigneeID is ref's id, 0 for nil.
func assigneeID(ref *storage.UserRef) int64 {
	if ref == nil {
		return 0
	}
	return ref.ID
}

// writeChange runs changeQuery in tx and returns the events it recorded.
func writeChange(ctx context.Context, tx *sqlx.Tx, state storage.DeskState, plan changePlan, actor *storage.UserRef) ([]storage.Event, error) {
	assignee := sql.NullInt64{Int64: assigneeID(state.Assignee), Valid: state.Assignee != nil}
	note := sql.NullString{Valid: plan.note != nil}
	if plan.note != nil {
		note.String = *plan.note
	}
	rows, err := tx.QueryContext(ctx, changeQuery, state.ConversationID, state.Status, assignee,
		state.LastSeq, actor.ID, plan.status, plan.assignee, note)
	if err != nil {
		return nil, dbError(ctx, "pgstore: change conversation", err)
	}
	defer rows.Close()
	var events []storage.Event
	for rows.Next() {
		e := storage.Event{ConversationID: state.ConversationID, AfterSeq: state.LastSeq, Actor: *actor}
		if err := rows.Scan(&e.ID, &e.Kind, &e.CreatedAt); err != nil {
			return nil, dbError(ctx, "pgstore: change conversation: scan", err)
		}
		switch e.Kind {
		case storage.EventStatus:
			e.Status = state.Status
		case storage.EventAssignee:
			if state.Assignee != nil {
				a := *state.Assignee
				e.Assignee = &a
			}
		case storage.EventNote:
			e.Body = note.String
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: change conversation", err)
	}
	return events, nil
}

// deskStateQuery reads a conversation's desk state with its assignee.
const deskStateQuery = `
	SELECT c.status, c.last_seq, a.id, a.external_id, a.name
	FROM conversations c LEFT JOIN users a ON a.id = c.assignee_id
	WHERE c.id = $1`

// DeskState implements storage.Desk with one prepared read.
func (s *Store) DeskState(ctx context.Context, conversationID int64) (storage.DeskState, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	st, err := s.prepared(ctx, deskStateQuery)
	if err != nil {
		return storage.DeskState{}, dbError(ctx, "pgstore: desk state: prepare", err)
	}
	d := storage.DeskState{ConversationID: conversationID}
	var a nullableRef
	err = st.QueryRowContext(ctx, conversationID).Scan(&d.Status, &d.LastSeq, &a.ID, &a.ExternalID, &a.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.DeskState{}, storage.Errorf(storage.ENOTFOUND, "conversation %d not found", conversationID)
	}
	if err != nil {
		return storage.DeskState{}, dbError(ctx, "pgstore: desk state", s.checkPrepared(deskStateQuery, err))
	}
	d.Assignee = a.ref()
	return d, nil
}

// eventsQuery reads a conversation's events ($1) with after_seq in [$2, $3]
// in recorded order, at most $4, through conversation_events_thread_idx: within a
// conversation, id order is after_seq order (both are assigned under the
// conversation's row lock).
const eventsQuery = `
	SELECT e.id, e.after_seq, e.kind, COALESCE(e.status, ''), COALESCE(e.body, ''), e.created_at,
		ac.id, ac.external_id, ac.name, asg.id, asg.external_id, asg.name
	FROM conversation_events e
	JOIN users ac ON ac.id = e.actor_id
	LEFT JOIN users asg ON asg.id = e.assignee_id
	WHERE e.conversation_id = $1 AND e.after_seq BETWEEN $2 AND $3
	ORDER BY e.after_seq, e.id
	LIMIT $4`

// Events implements storage.Desk.
func (s *Store) Events(ctx context.Context, conversationID, fromSeq, toSeq int64) ([]storage.Event, error) {
	if fromSeq < 0 || toSeq < 0 {
		return nil, storage.Errorf(storage.EINVALID, "event bounds must not be negative")
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	events := []storage.Event{}
	if fromSeq <= toSeq {
		var err error
		if events, err = s.readEvents(ctx, conversationID, fromSeq, toSeq); err != nil {
			return nil, err
		}
	}
	if len(events) == 0 {
		// Tell an empty range from a missing conversation.
		if _, err := s.DeskState(ctx, conversationID); err != nil {
			return nil, err
		}
	}
	return events, nil
}

// readEvents runs eventsQuery.
func (s *Store) readEvents(ctx context.Context, conversationID, fromSeq, toSeq int64) ([]storage.Event, error) {
	st, err := s.prepared(ctx, eventsQuery)
	if err != nil {
		return nil, dbError(ctx, "pgstore: events: prepare", err)
	}
	rows, err := st.QueryContext(ctx, conversationID, fromSeq, toSeq, storage.MaxEventsPage)
	if err != nil {
		return nil, dbError(ctx, "pgstore: events", s.checkPrepared(eventsQuery, err))
	}
	defer rows.Close()
	events := []storage.Event{}
	for rows.Next() {
		e := storage.Event{ConversationID: conversationID}
		var a nullableRef
		err := rows.Scan(&e.ID, &e.AfterSeq, &e.Kind, &e.Status, &e.Body, &e.CreatedAt,
			&e.Actor.ID, &e.Actor.ExternalID, &e.Actor.Name, &a.ID, &a.ExternalID, &a.Name)
		if err != nil {
			return nil, dbError(ctx, "pgstore: events: scan", err)
		}
		e.Assignee = a.ref()
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: events", err)
	}
	return events, nil
}

// markReadQuery moves user $1's mark of conversation $2 to $3, capped at the
// conversation's last_seq, never backwards, and returns the mark: NULL when
// the conversation does not exist. A staff user's mark, or the visitor's own,
// moves the conversation's read receipts too (00010). With $4, a mark that
// moved is queued for the webhooks.
const markReadQuery = `
	WITH c AS (SELECT id, user_id, last_seq FROM conversations WHERE id = $2),
	m AS (
		INSERT INTO read_marks (user_id, conversation_id, seq)
		SELECT $1, c.id, LEAST($3::bigint, c.last_seq) FROM c
		ON CONFLICT (user_id, conversation_id) DO UPDATE SET seq = GREATEST(read_marks.seq, EXCLUDED.seq)
		RETURNING seq
	),
	q AS (
		-- A mark that moved, for the webhooks when $4 (00014). The old mark
		-- is read in the statement's snapshot, before the upsert.
		INSERT INTO webhook_queue (kind, first_id, last_id, user_id, seq)
		SELECT 'read', c.id, c.id, $1, m.seq FROM c, m
		WHERE $4::boolean AND m.seq > COALESCE((SELECT o.seq FROM read_marks o WHERE o.user_id = $1 AND o.conversation_id = $2), 0)
	),
	r AS (
		INSERT INTO read_receipts (conversation_id, staff_seq, visitor_seq)
		SELECT c.id, CASE WHEN u.is_admin THEN m.seq ELSE 0 END, CASE WHEN c.user_id = u.id THEN m.seq ELSE 0 END
		FROM c, m, users u
		WHERE u.id = $1 AND (u.is_admin OR c.user_id = u.id)
		ON CONFLICT (conversation_id) DO UPDATE SET
			staff_seq = GREATEST(read_receipts.staff_seq, EXCLUDED.staff_seq),
			visitor_seq = GREATEST(read_receipts.visitor_seq, EXCLUDED.visitor_seq)
	)
	SELECT (SELECT seq FROM m)`

// MarkRead implements storage.Desk with one prepared statement.
func (s *Store) MarkRead(ctx context.Context, userID, conversationID, seq int64) (int64, error) {
	if seq < 0 {
		return 0, storage.Errorf(storage.EINVALID, "read mark must not be negative")
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var mark sql.NullInt64
	err := s.getPrepared(ctx, &mark, markReadQuery, userID, conversationID, seq, s.opts.Webhooks)
	switch {
	case pq.As(err, "23503") != nil: // foreign_key_violation: the only other key is the user
		return 0, storage.Errorf(storage.ENOTFOUND, "user %d not found", userID)
	case err != nil:
		return 0, dbError(ctx, "pgstore: mark read", err)
	case !mark.Valid:
		return 0, storage.Errorf(storage.ENOTFOUND, "conversation %d not found", conversationID)
	}
	return mark.Int64, nil
}

// readReceiptsQuery reads conversation $1's read receipts (none: no row).
const readReceiptsQuery = `SELECT staff_seq, visitor_seq FROM read_receipts WHERE conversation_id = $1`

// ReadReceipts implements storage.Desk with one prepared statement.
func (s *Store) ReadReceipts(ctx context.Context, conversationID int64) (storage.ReadReceipts, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var row struct {
		Staff   int64 `db:"staff_seq"`
		Visitor int64 `db:"visitor_seq"`
	}
	err := s.getPrepared(ctx, &row, readReceiptsQuery, conversationID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return storage.ReadReceipts{}, nil
	case err != nil:
		return storage.ReadReceipts{}, dbError(ctx, "pgstore: read receipts", err)
	}
	return storage.ReadReceipts{Staff: row.Staff, Visitor: row.Visitor}, nil
}

// viewCountsQuery counts the conversations with messages by status: all,
// the viewer's ($1), unassigned; of the teams $2 (with "": see teamsArg) and
// the viewer's, or all when $2 is NULL. One scan of conversations, like an
// inbox page (00004, 00006).
const viewCountsQuery = `
	SELECT status, count(*), count(*) FILTER (WHERE assignee_id = $1), count(*) FILTER (WHERE assignee_id IS NULL)
	FROM conversations
	WHERE last_seq > 0
		AND ($2::text[] IS NULL OR assignee_id = $1
			OR (SELECT tu.team FROM users tu WHERE tu.id = conversations.user_id) = ANY($2::text[]))
	GROUP BY status`

// ViewCounts implements storage.Desk.
func (s *Store) ViewCounts(ctx context.Context, viewerID int64, teams []string) ([]storage.ViewCounts, error) {
	if err := storage.CheckTeams(teams); err != nil {
		return nil, err
	}
	var teamsFilter any // NULL: every team
	if teams != nil {
		teamsFilter = teamsArg(teams)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	st, err := s.prepared(ctx, viewCountsQuery)
	if err != nil {
		return nil, dbError(ctx, "pgstore: view counts: prepare", err)
	}
	rows, err := st.QueryContext(ctx, viewerID, teamsFilter)
	if err != nil {
		return nil, dbError(ctx, "pgstore: view counts", s.checkPrepared(viewCountsQuery, err))
	}
	defer rows.Close()
	counts := emptyViewCounts()
	for rows.Next() {
		var v storage.ViewCounts
		if err := rows.Scan(&v.Status, &v.All, &v.Mine, &v.Unassigned); err != nil {
			return nil, dbError(ctx, "pgstore: view counts: scan", err)
		}
		for i := range counts {
			if counts[i].Status == v.Status {
				counts[i] = v
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: view counts", err)
	}
	return counts, nil
}

// emptyViewCounts is one zero row per status, in storage.Desk's order.
func emptyViewCounts() []storage.ViewCounts {
	return []storage.ViewCounts{
		{Status: storage.StatusOpen}, {Status: storage.StatusPending}, {Status: storage.StatusResolved},
	}
}

// StaffUser implements storage.Desk. An external id that no user can have
// (see rules.ExternalID) is ENOTFOUND too.
func (s *Store) StaffUser(ctx context.Context, externalID string) (storage.User, error) {
	if rules.ExternalID(externalID) != nil {
		return storage.User{}, storage.Errorf(storage.ENOTFOUND, "no staff user with that external id")
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var u storage.User
	err := s.getPrepared(ctx, &u, `SELECT `+userColumns+` FROM users WHERE external_id = $1 AND is_admin`, externalID)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.User{}, storage.Errorf(storage.ENOTFOUND, "no staff user with that external id")
	}
	if err != nil {
		return storage.User{}, dbError(ctx, "pgstore: staff user", err)
	}
	return u, nil
}
