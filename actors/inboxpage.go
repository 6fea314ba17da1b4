// This file holds a staff session's inbox pages after the first (which
// comes from the inbox grain's snapshot): read from the store by cursor.

package actors

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// inboxPage answers an inbox request from the store: one page of the view
// it names (status, assignee, search; by default every conversation), after
// its cursor, with the agent's read state and the view counts. Live
// inbox_update and event frames cover what moves meanwhile.
func (s *session) inboxPage(req wire.Request) {
	q, werr := s.inboxQuery(req)
	if werr != nil {
		s.fail(werr)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.node.cfg.StoreTimeout)
	defer cancel()
	page, err := s.readInboxView(ctx, q, req)
	if err != nil {
		code := codeFromStorage(err)
		if storage.ErrorCode(err) == storage.EINVALID {
			code = wire.CodeInvalidRequest // a cursor out of the store's range
		}
		s.fail(&wire.Error{Code: code, Message: messageForCode(code)})
		return
	}
	if s.cfg.V1 {
		s.write(wire.InboxFrame(page))
	}
}

// inboxQuery turns an inbox request into the store's view query for this
// agent, with the page size of the request.
func (s *session) inboxQuery(req wire.Request) (storage.InboxQuery, *wire.Error) {
	q := storage.InboxQuery{ViewerID: s.cfg.User.ID, Status: req.Status, Search: req.Search, Limit: s.pageSize(), Teams: s.cfg.Teams}
	switch req.Assignee {
	case "", wire.AssigneeAny:
		q.Assignee = storage.AssigneeAny
	case wire.AssigneeNone:
		q.Assignee = storage.AssigneeNone
	case wire.AssigneeMe:
		q.Assignee = storage.AssigneeMe
	default:
		ctx, cancel := context.WithTimeout(context.Background(), s.node.cfg.StoreTimeout)
		defer cancel()
		u, err := s.node.store.StaffUser(ctx, req.Assignee)
		if err != nil {
			if storage.ErrorCode(err) == storage.ENOTFOUND {
				return q, &wire.Error{Code: wire.CodeInvalidRequest, Message: "assignee is not a staff user"}
			}
			code := codeFromStorage(err)
			return q, &wire.Error{Code: code, Message: messageForCode(code)}
		}
		q.Assignee, q.AssigneeID = storage.AssigneeUser, u.ID
	}
	if req.Cursor != "" {
		after, ok := DecodeInboxCursor(req.Cursor)
		if !ok {
			return q, &wire.Error{Code: wire.CodeInvalidRequest, Message: "cursor is not one the server gave"}
		}
		q.After = after
	}
	return q, nil
}

// readInboxView reads one page of a view (one row more than the page, to
// learn whether more follow, when the store's cap allows; else a second
// read of one row) and its counts.
func (s *session) readInboxView(ctx context.Context, q storage.InboxQuery, req wire.Request) (wire.InboxPage, error) {
	size := q.Limit
	var rows []storage.InboxEntry
	var hasMore bool
	var err error
	if size < storage.MaxInboxPage {
		q.Limit = size + 1
		rows, err = s.node.store.InboxView(ctx, q)
		if err == nil && len(rows) > size {
			rows, hasMore = rows[:size], true
		}
	} else {
		rows, err = s.node.store.InboxView(ctx, q)
		if err == nil && len(rows) == size {
			next := q
			next.After, next.Limit = rows[len(rows)-1].Cursor(), 1
			var more []storage.InboxEntry
			more, err = s.node.store.InboxView(ctx, next)
			hasMore = len(more) > 0
		}
	}
	if err != nil {
		return wire.InboxPage{}, err
	}
	counts, err := s.node.store.ViewCounts(ctx, s.cfg.User.ID, s.cfg.Teams)
	if err != nil {
		return wire.InboxPage{}, err
	}
	page := wire.InboxPage{Cursor: req.Cursor, HasMore: hasMore, StoreID: s.node.store.StoreID(),
		View: viewOf(req), Counts: countsToWire(counts)}
	page.Entries = make([]wire.InboxEntry, len(rows))
	for i, e := range rows {
		w := inboxEntryToWire(inboxEntryToProto(e))
		// An entry's last_seq promises that the messages delivered after
		// the page have greater seqs. The store may be ahead of what this
		// session delivered (messages on their way to it): the entry then
		// says what the session delivered, and those messages follow.
		if cur, known := s.cursor[e.ConversationID]; !known {
			s.cursor[e.ConversationID] = e.LastSeq // deliveries start after it
		} else if cur < e.LastSeq {
			w.LastSeq = cur
		}
		w.HasReadState, w.ReadSeq, w.Unread = true, e.ReadSeq, e.Unread
		page.Entries[i] = w
		if e.ReadSeq > s.readSeq[e.ConversationID] {
			s.noteRead(e.ConversationID, e.ReadSeq)
		}
	}
	s.withPresence(ctx, page.Entries)
	if page.HasMore {
		page.NextCursor = EncodeInboxCursor(rows[len(rows)-1].Cursor())
	}
	return page, nil
}

// viewOf is the view an inbox request asks for, as the inbox frame echoes it.
func viewOf(req wire.Request) *wire.View {
	v := &wire.View{Status: req.Status, Assignee: req.Assignee, Search: req.Search}
	if v.Status == "" {
		v.Status = "all"
	}
	if v.Assignee == "" {
		v.Assignee = wire.AssigneeAny
	}
	return v
}

func countsToWire(rows []storage.ViewCounts) map[string]wire.ViewCounts {
	out := make(map[string]wire.ViewCounts, len(rows))
	for _, r := range rows {
		out[r.Status] = wire.ViewCounts{All: r.All, Mine: r.Mine, Unassigned: r.Unassigned}
	}
	return out
}

// pageSize is the staff client's inbox page size.
func (s *session) pageSize() int {
	if s.inboxPageSize == 0 {
		return DefaultInboxPage
	}
	return s.inboxPageSize
}

// inboxPageSize is the page size an inbox request's limit asks for.
func inboxPageSize(limit int) int {
	if limit <= 0 {
		return DefaultInboxPage
	}
	return min(limit, storage.MaxInboxPage)
}

// An inbox cursor on the wire (and in the REST API) is "<last_message_at in
// Unix microseconds>.<conversation id>": opaque to clients, exact for the
// store.
func EncodeInboxCursor(c storage.InboxCursor) string {
	return strconv.FormatInt(c.LastMessageAt.UnixMicro(), 10) + "." + strconv.FormatInt(c.ConversationID, 10)
}

// DecodeInboxCursor reads a cursor EncodeInboxCursor gave; false for any
// other text.
func DecodeInboxCursor(s string) (storage.InboxCursor, bool) {
	at, id, ok := strings.Cut(s, ".")
	if !ok {
		return storage.InboxCursor{}, false
	}
	micros, err1 := strconv.ParseInt(at, 10, 64)
	conv, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil || micros <= 0 || conv <= 0 {
		return storage.InboxCursor{}, false
	}
	return storage.InboxCursor{LastMessageAt: time.UnixMicro(micros).UTC(), ConversationID: conv}, true
}
