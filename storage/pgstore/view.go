package pgstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/lib/pq"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

// This file owns the inbox views: InboxView, and the one query builder that
// InboxPage and Inbox also use (inbox.go).

// InboxView implements storage.Desk: one prepared query per shape of view
// (see viewQuery).
func (s *Store) InboxView(ctx context.Context, q storage.InboxQuery) ([]storage.InboxEntry, error) {
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	if q.Limit, err = rules.InboxPageLimit(q.Limit); err != nil {
		return nil, err
	}
	if err := rules.InboxCursor(q.After); err != nil {
		return nil, err
	}
	return s.view(ctx, q, viewSpec{viewer: true})
}

// ConversationEntry implements storage.Desk: the view query of one
// conversation (see viewQuery).
func (s *Store) ConversationEntry(ctx context.Context, viewerID, conversationID int64) (storage.InboxEntry, error) {
	entries, err := s.view(ctx, storage.InboxQuery{ViewerID: viewerID, Limit: 1}, viewSpec{viewer: true, conversationID: conversationID})
	if err != nil {
		return storage.InboxEntry{}, err
	}
	if len(entries) == 0 {
		return storage.InboxEntry{}, storage.Errorf(storage.ENOTFOUND, "conversation %d not found", conversationID)
	}
	return entries[0], nil
}

// viewSpec is what a view query reads besides its InboxQuery.
type viewSpec struct {
	// viewer: read the viewer's read mark and unread count.
	viewer bool
	// conversationID, when not 0, reads that conversation only, with or
	// without messages, instead of q's filters and cursor.
	conversationID int64
	// walk: q.Search's matches are dense (see searchWalk); walk the
	// conversations instead of starting from the matches.
	walk bool
}

// searchWalkQuery answers whether a search walks the conversations (see
// viewQuery): its first searchHits matching messages are all there are
// not, and their conversations are at least 1/searchWalkShare of all
// conversations (pg_class's estimate).
var searchWalkQuery = fmt.Sprintf(`
	SELECT count(*) = %[1]d
		AND count(DISTINCT conversation_id) * %[2]d >= (SELECT reltuples FROM pg_class WHERE oid = 'conversations'::regclass)
	FROM (
		SELECT conversation_id FROM message_search
		WHERE tsv @@ plainto_tsquery('simple', $1)
		LIMIT %[1]d
	) h`, searchHits, searchWalkShare)

// searchWalk decides spec.walk for q: false unless q searches (with
// matches dense enough, see searchWalkQuery). One more round trip, for
// searches only.
func (s *Store) searchWalk(ctx context.Context, q storage.InboxQuery, spec viewSpec) (bool, error) {
	if q.Search == "" || spec.conversationID != 0 {
		return false, nil
	}
	var walk bool
	if err := s.getPrepared(ctx, &walk, searchWalkQuery, q.Search); err != nil {
		return false, dbError(ctx, "pgstore: inbox: search", err)
	}
	return walk, nil
}

// view runs the query of q (normalized, with a valid cursor and a resolved
// limit) as spec says.
func (s *Store) view(ctx context.Context, q storage.InboxQuery, spec viewSpec) ([]storage.InboxEntry, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var err error
	if spec.walk, err = s.searchWalk(ctx, q, spec); err != nil {
		return nil, err
	}
	query, args := viewQuery(q, spec)
	st, err := s.prepared(ctx, query)
	if err != nil {
		return nil, dbError(ctx, "pgstore: inbox: prepare", err)
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, dbError(ctx, "pgstore: inbox", s.checkPrepared(query, err))
	}
	defer rows.Close()

	entries := make([]storage.InboxEntry, 0, min(q.Limit, storage.MaxInboxPage))
	for rows.Next() {
		var e storage.InboxEntry
		var m nullMessage
		var a nullableRef
		var p nullPage
		err := rows.Scan(
			&e.ConversationID, &e.UserID, &e.UserExternalID, &e.UserName, &e.UserEmail, &e.UserContext, &e.Team,
			&p.URL, &p.Title, &p.UserAgent, &p.At, &e.LastSeq, &e.LastMessageAt,
			&e.Status, &a.ID, &a.ExternalID, &a.Name, &e.ReadSeq, &e.Unread,
			&m.ID, &m.ConversationID, &m.Seq, &m.SenderID, &m.SenderName, &m.SenderIsAdmin,
			&m.Body, &m.ClientMsgID, &m.CreatedAt)
		if err != nil {
			return nil, dbError(ctx, "pgstore: inbox: scan", err)
		}
		e.Assignee = a.ref()
		e.LastMessage = m.message()
		e.Page = p.page(e.UserID)
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(ctx, "pgstore: inbox", err)
	}
	return entries, nil
}

// The choice between a search's two plans (see viewQuery).
const (
	// searchHits is how many matching messages a search reads before
	// it considers walking the conversations instead.
	searchHits = 20_000
	// searchWalkShare: a search walks the conversations when the
	// conversations of its first searchHits matches are at least
	// 1/searchWalkShare of them all.
	searchWalkShare = 100
)

// viewQuery builds the query of a view (or of one conversation, see
// viewSpec) and its arguments. It has the inbox
// query's shape (see inbox.go): an inner scan of conversations, narrow
// columns, with the view's filters, keeping the first rows of the inbox
// order in a top-N sort; then LATERAL probes by key for those rows only: the
// visitor, the assignee, the newest message and, with a viewer, their read
// mark and unread count.
//
// Teams (q.Teams): the visitor's team, probed by key in users for each
// conversation the other filters keep.
//
// Filters are written into the query rather than passed as arguments, so
// that each shape is its own prepared statement with its own plan: the
// status as a literal (one of three), the assignee filter as IS NULL or
// = $n. A selective filter (the open conversations, one agent's) then reads
// conversations_status_idx or conversations_assignee_idx instead of the
// table; a wide one (resolved, everything) keeps the scan.
//
// Search: conversations with a message whose 'simple' text search vector
// matches every word (message_search and its GIN index
// message_search_tsv_idx, filled by IndexSearch: a message is found once
// indexed, see migration 00008), with an internal note that does (the
// partial GIN index conversation_events_note_tsv_idx, 00013: found as soon
// as written), or whose visitor's name contains the text (ILIKE,
// users_name_trgm_idx when pg_trgm is installed). Two plans,
// chosen for each call by searchWalk (a query of its own, reading at most
// searchHits matches: one more round trip, for searches only):
//
//   - From the matches (a rare word, a name): the UNION of the matching
//     messages' conversations and the visitors whose name matches, each
//     probed in conversations by key with the view's filters (a LATERAL
//     subquery with a LIMIT: the planner, which cannot tell a rare word
//     from a common one in a prepared statement, hashed the matches and
//     scanned all the conversations, 40 ms at 100,000 for one match), then
//     a top-N sort. Not an OR of two IN subqueries: a SubPlan whose
//     matches outgrow work_mem is not hashed but run again for every
//     conversation (a word of every message of a million ran for minutes).
//     Cost: every matching message, read once per page, and a probe per
//     matching conversation.
//   - A walk (spec.walk: a common word, whose first searchHits matches are
//     in at least 1/searchWalkShare of the conversations): the view's
//     conversations are sorted (a full sort: no index on last_message_at,
//     00004) and probed newest first, each for its visitor's name and for
//     a match among its messages (their (conversation_id, seq) key, then
//     message_search by key), stopping at the limit: LATERAL subqueries
//     with a LIMIT, which the planner cannot turn into a hash of every
//     match as it does an EXISTS it expects to run often. About
//     limit*searchWalkShare probes at worst, instead of reading every
//     matching message (a word of every message of a million took 3.5 s:
//     BenchmarkInboxView). No index on message_search's conversation_id:
//     the indexer would pay for it on every message.
//
// Unread counts the messages after the viewer's mark not sent by the viewer,
// reading at most storage.MaxUnread of them (a LIMITed subquery over the
// messages' (conversation_id, seq) key).
func viewQuery(q storage.InboxQuery, spec viewSpec) (string, []any) {
	b := &argList{}
	var where strings.Builder
	limitArg := ""
	if spec.conversationID != 0 {
		fmt.Fprintf(&where, "id = %s", b.add(spec.conversationID))
		limitArg = "1"
	} else {
		at := sql.NullTime{Time: q.After.LastMessageAt, Valid: !q.After.IsZero()}
		timeArg, idArg := b.add(at), b.add(q.After.ConversationID)
		limitArg = b.add(q.Limit)
		fmt.Fprintf(&where, "last_seq > 0\n\t\t\tAND (%[1]s::timestamptz IS NULL OR (last_message_at, id) < (%[1]s::timestamptz, %[2]s::bigint))",
			timeArg, idArg)
	}
	if q.Status != "" { // one of three known statuses (Normalize)
		fmt.Fprintf(&where, "\n\t\t\tAND status = '%s'", q.Status)
	}
	switch q.Assignee {
	case storage.AssigneeNone:
		where.WriteString("\n\t\t\tAND assignee_id IS NULL")
	case storage.AssigneeUser:
		fmt.Fprintf(&where, "\n\t\t\tAND assignee_id = %s", b.add(q.AssigneeID))
	}
	if q.Teams != nil && spec.conversationID == 0 {
		// The viewer's, or of the teams: the visitor's team, probed by
		// key for each conversation the filters above keep ('' is no
		// team: everyone's).
		fmt.Fprintf(&where, "\n\t\t\tAND (assignee_id = %s OR (SELECT tu.team FROM users tu WHERE tu.id = conversations.user_id) = ANY(%s))",
			b.add(q.ViewerID), b.add(teamsArg(q.Teams)))
	}
	var conversations string
	switch {
	case q.Search == "":
		conversations = `(
		SELECT id, user_id, last_seq, last_message_at, status, assignee_id
		FROM conversations
		WHERE ` + where.String() + `
		ORDER BY last_message_at DESC, id DESC
		LIMIT ` + limitArg + `
	)`
	case !spec.walk:
		conversations = fmt.Sprintf(`(
		SELECT c0.* FROM (
			SELECT conversation_id AS id FROM message_search
			WHERE tsv @@ plainto_tsquery('simple', %[2]s)
			UNION
			SELECT conversation_id FROM conversation_events
			WHERE kind = 'note' AND to_tsvector('simple', body) @@ plainto_tsquery('simple', %[2]s)
			UNION
			SELECT cu.id FROM users su JOIN conversations cu ON cu.user_id = su.id
			WHERE su.name ILIKE %[3]s
		) h
		CROSS JOIN LATERAL (
			SELECT id, user_id, last_seq, last_message_at, status, assignee_id
			FROM conversations
			WHERE id = h.id AND %[1]s
			LIMIT 1
		) c0
		ORDER BY c0.last_message_at DESC, c0.id DESC
		LIMIT %[4]s
	)`, where.String(), b.add(q.Search), b.add(likeContains(q.Search)), limitArg)
	default: // a search that walks
		conversations = fmt.Sprintf(`(
		SELECT w.* FROM (
			SELECT id, user_id, last_seq, last_message_at, status, assignee_id
			FROM conversations
			WHERE %[1]s
			ORDER BY last_message_at DESC, id DESC
			OFFSET 0
		) w
		CROSS JOIN LATERAL (SELECT name FROM users WHERE id = w.user_id LIMIT 1) wu
		LEFT JOIN LATERAL (
			SELECT true AS hit FROM messages m JOIN message_search s ON s.message_id = m.id
			WHERE m.conversation_id = w.id AND s.tsv @@ plainto_tsquery('simple', %[2]s)
			LIMIT 1
		) wm ON true
		LEFT JOIN LATERAL (
			SELECT true AS hit FROM conversation_events e
			WHERE e.conversation_id = w.id AND e.kind = 'note'
				AND to_tsvector('simple', e.body) @@ plainto_tsquery('simple', %[2]s)
			LIMIT 1
		) wn ON true
		WHERE wu.name ILIKE %[3]s OR wm.hit OR wn.hit
		ORDER BY w.last_message_at DESC, w.id DESC
		LIMIT %[4]s
	)`, where.String(), b.add(q.Search), b.add(likeContains(q.Search)), limitArg)
	}

	readState, readJoins := "0::bigint, 0::bigint", ""
	if spec.viewer {
		viewer := b.add(q.ViewerID)
		readState = "COALESCE(r.seq, 0), n.unread"
		readJoins = fmt.Sprintf(`
	LEFT JOIN LATERAL (SELECT seq FROM read_marks WHERE user_id = %[1]s AND conversation_id = c.id) r ON true
	CROSS JOIN LATERAL (
		SELECT count(*) AS unread FROM (
			SELECT 1 FROM messages
			WHERE conversation_id = c.id AND seq > COALESCE(r.seq, 0) AND sender_id <> %[1]s
			ORDER BY seq LIMIT %[2]d
		) x
	) n`, viewer, storage.MaxUnread)
	}

	query := `
	SELECT c.id, c.user_id, u.external_id, u.name, u.email, u.context, u.team,
		u.page_url, u.page_title, u.user_agent, u.page_seen_at, c.last_seq, c.last_message_at,
		c.status, a.id, a.external_id, a.name, ` + readState + `,
		` + messageColumns + `
	FROM ` + conversations + ` c
	CROSS JOIN LATERAL (SELECT external_id, name, COALESCE(email, '') AS email, COALESCE(context, '') AS context, team,
			page_url, page_title, user_agent, page_seen_at
		FROM users WHERE id = c.user_id LIMIT 1) u
	LEFT JOIN LATERAL (SELECT id, external_id, name FROM users WHERE id = c.assignee_id LIMIT 1) a ON true` +
		readJoins + `
	LEFT JOIN LATERAL (
		SELECT * FROM messages WHERE conversation_id = c.id AND seq = c.last_seq LIMIT 1
	) m ON true
	ORDER BY c.last_message_at DESC, c.id DESC`
	return query, b.args
}

// nullMessage scans the newest message of a view's row: NULL when the
// conversation has none (ConversationEntry only).
type nullMessage struct {
	ID, ConversationID, Seq, SenderID sql.NullInt64
	SenderName, Body, ClientMsgID     sql.NullString
	SenderIsAdmin                     sql.NullBool
	CreatedAt                         sql.NullTime
}

// message returns the message, nil for NULL.
func (m nullMessage) message() *storage.Message {
	if !m.ID.Valid {
		return nil
	}
	return &storage.Message{
		ID: m.ID.Int64, ConversationID: m.ConversationID.Int64, Seq: m.Seq.Int64,
		SenderID: m.SenderID.Int64, SenderName: m.SenderName.String, SenderIsAdmin: m.SenderIsAdmin.Bool,
		Body: m.Body.String, ClientMsgID: m.ClientMsgID.String, CreatedAt: m.CreatedAt.Time,
	}
}

// nullPage scans a view row's visitor page (00018): NULL when the visitor
// never reported one.
type nullPage struct {
	URL, Title, UserAgent sql.NullString
	At                    sql.NullTime
}

// page returns the page of user userID, nil for NULL.
func (p nullPage) page(userID int64) *storage.VisitorPage {
	if !p.URL.Valid || !p.At.Valid {
		return nil
	}
	return &storage.VisitorPage{UserID: userID, URL: p.URL.String, Title: p.Title.String,
		UserAgent: p.UserAgent.String, At: p.At.Time.UTC()}
}

// argList numbers a query's arguments as they are added.
type argList struct{ args []any }

// add appends v and returns its placeholder ($1, $2, …).
func (b *argList) add(v any) string {
	b.args = append(b.args, v)
	return fmt.Sprintf("$%d", len(b.args))
}

// likeContains is an ILIKE pattern matching any text that contains s: its
// wildcards and the escape character (backslash) escaped.
func likeContains(s string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s) + "%"
}

// teamsArg is the array of teams a Teams filter keeps: teams and "" (no
// team).
func teamsArg(teams []string) pq.StringArray {
	return append(pq.StringArray{""}, teams...)
}
