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

// inboxPage answers a request for the inbox page after cursor from the store:
// pages after the first are read there, not from the inbox grain. Live
// inbox_update frames cover what moves above the cursor meanwhile.
func (s *session) inboxPage(cursor string) {
	after, ok := decodeInboxCursor(cursor)
	if !ok {
		s.fail(&wire.Error{Code: wire.CodeInvalidRequest, Message: "cursor is not one the server gave"})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.node.cfg.StoreTimeout)
	defer cancel()
	size := s.pageSize()
	rows, hasMore, err := s.readInboxPage(ctx, after, size)
	if err != nil {
		code := codeFromStorage(err)
		if storage.ErrorCode(err) == storage.EINVALID {
			code = wire.CodeInvalidRequest // a cursor out of the store's range
		}
		s.fail(&wire.Error{Code: code, Message: messageForCode(code)})
		return
	}
	page := wire.InboxPage{Cursor: cursor, HasMore: hasMore, StoreID: s.node.store.StoreID()}
	page.Entries = make([]wire.InboxEntry, len(rows))
	for i, e := range rows {
		if _, known := s.cursor[e.ConversationID]; !known {
			s.cursor[e.ConversationID] = e.LastSeq // deliveries start after it
		}
		page.Entries[i] = inboxEntryToWire(inboxEntryToProto(e))
	}
	if page.HasMore {
		page.NextCursor = encodeInboxCursor(rows[len(rows)-1].Cursor())
	}
	if s.cfg.V1 {
		s.write(wire.InboxFrame(page))
	}
}

// readInboxPage reads size conversations after `after` and whether more
// follow: one row more than the page when the store's cap allows, else a
// second read of one row.
func (s *session) readInboxPage(ctx context.Context, after storage.InboxCursor, size int) ([]storage.InboxEntry, bool, error) {
	if size < storage.MaxInboxPage {
		rows, err := s.node.store.InboxPage(ctx, after, size+1)
		if err != nil || len(rows) <= size {
			return rows, false, err
		}
		return rows[:size], true, nil
	}
	rows, err := s.node.store.InboxPage(ctx, after, size)
	if err != nil || len(rows) < size {
		return rows, false, err
	}
	next, err := s.node.store.InboxPage(ctx, rows[len(rows)-1].Cursor(), 1)
	return rows, len(next) > 0, err
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

// An inbox cursor on the wire is "<last_message_at in Unix microseconds>.<conversation id>":
// opaque to clients, exact for the store.
func encodeInboxCursor(c storage.InboxCursor) string {
	return strconv.FormatInt(c.LastMessageAt.UnixMicro(), 10) + "." + strconv.FormatInt(c.ConversationID, 10)
}

func decodeInboxCursor(s string) (storage.InboxCursor, bool) {
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
