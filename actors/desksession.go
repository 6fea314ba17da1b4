// This file holds a session's part of the support desk: staff status and
// assign requests (answered with a changed frame), read marks (kept the same
// on every socket of a staff user), the event frames that show changes in
// the thread, and the events a history page shows.

package actors

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// deskDone carries the grain's answer to a status or assign request back to
// the session (see deskRequest).
type deskDone struct {
	conv int64
	out  ChangeOutcome
	err  error
}

// deskRequest runs a staff status or assign request. The grain is asked off
// the session's goroutine (Node.Change looks it up and retries), and its
// answer comes back as deskDone.
func (s *session) deskRequest(ctx actor.Context, req wire.Request) {
	conv := req.ConversationID
	if !s.cfg.User.IsAdmin {
		s.fail(&wire.Error{Code: wire.CodeForbidden, Message: "only staff can change a conversation", ConversationID: conv})
		return
	}
	c := storage.Change{ActorID: s.cfg.User.ID}
	switch req.Type {
	case wire.TypeStatus:
		st := req.Status
		c.Status = &st
	case wire.TypeAssign:
		var id int64
		if !req.Unassign {
			sctx, cancel := context.WithTimeout(context.Background(), s.node.cfg.StoreTimeout)
			u, err := s.node.store.StaffUser(sctx, req.Assignee)
			cancel()
			if err != nil {
				code, msg := wire.CodeInvalidRequest, "assignee is not a staff user"
				if storage.ErrorCode(err) != storage.ENOTFOUND {
					code = codeFromStorage(err)
					msg = messageForCode(code)
				}
				s.fail(&wire.Error{Code: code, Message: msg, ConversationID: conv})
				return
			}
			id = u.ID
		}
		c.Assignee = &id
	case wire.TypeNote:
		note := req.Message
		c.Note = &note
	}
	self, root, node := ctx.Self(), s.node.system.Root, s.node
	go func() {
		rctx, cancel := context.WithTimeout(context.Background(), node.cfg.PostTimeout)
		defer cancel()
		out, err := node.Change(rctx, conv, c)
		root.Send(self, &deskDone{conv: conv, out: out, err: err})
	}()
}

// deskDone answers a status or assign request: the changed frame, and the
// events at once (the same events reach the session again through the inbox:
// event drops them).
func (s *session) deskDone(d *deskDone) {
	if d.err != nil {
		var de *ErrDesk
		if errors.As(d.err, &de) {
			s.fail(&wire.Error{Code: de.Code, Message: de.Message, ConversationID: d.conv})
		} else {
			s.fail(&wire.Error{Code: wire.CodeInternal, Message: messageForCode(wire.CodeInternal), ConversationID: d.conv})
		}
		return
	}
	if !s.cfg.V1 {
		return
	}
	events := make([]wire.Event, len(d.out.Events))
	for i, e := range d.out.Events {
		events[i] = StorageEventToWire(e)
	}
	var assignee *wire.DeskUser
	if a := d.out.Assignee; a != nil {
		assignee = &wire.DeskUser{ID: a.ID, ExternalID: a.ExternalID, Name: a.Name}
	}
	s.write(wire.ChangedFrame(d.conv, d.out.Status, assignee, events))
	for _, e := range events {
		if s.events.add(e.ID) {
			s.write(wire.EventFrame(e))
		}
	}
}

// seenEvents remembers the ids of the newest events a session wrote, to
// write each once: the same event reaches a staff session through the inbox,
// an opened conversation and its own change's answer, in any order. Event ids
// are unique per store.
type seenEvents struct {
	ids   map[int64]struct{}
	order []int64
}

// maxSeenEvents bounds seenEvents: far more than the events that can be in
// flight to one session at once.
const maxSeenEvents = 512

// add records id and reports whether it is new.
func (e *seenEvents) add(id int64) bool {
	if _, ok := e.ids[id]; ok {
		return false
	}
	if e.ids == nil {
		e.ids = make(map[int64]struct{})
	}
	if len(e.order) >= maxSeenEvents {
		delete(e.ids, e.order[0])
		e.order = e.order[1:]
	}
	e.ids[id] = struct{}{}
	e.order = append(e.order, id)
	return true
}

// event writes an event frame once per event: staff receive events through
// the inbox and through conversations they opened. Visitors receive only
// status events (through the node's hub); seed-dialect clients none.
func (s *session) event(d *chatpb.EventDelivery) {
	e := d.GetEvent()
	if !s.cfg.V1 || (!s.cfg.User.IsAdmin && e.GetKind() != storage.EventStatus) {
		return
	}
	if !s.cfg.User.IsAdmin && e.GetConversationId() != s.cfg.ConversationID {
		return
	}
	if s.events.add(e.GetId()) {
		s.write(d.GetV1Frame())
	}
}

// markRead moves the staff user's read mark (the store keeps the largest)
// and tells this socket at once; the user's other sockets hear of it through
// the inbox grain (readMarked).
func (s *session) markRead(req wire.Request) {
	conv, werr := s.conversationFor(req)
	if werr != nil {
		s.fail(werr)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.node.cfg.StoreTimeout)
	defer cancel()
	mark, err := s.node.store.MarkRead(ctx, s.cfg.User.ID, conv, req.Seq)
	if err != nil {
		code := codeFromStorage(err)
		if storage.ErrorCode(err) == storage.EINVALID {
			code = wire.CodeInvalidRequest
		}
		s.fail(&wire.Error{Code: code, Message: messageForCode(code), ConversationID: conv})
		return
	}
	s.noteRead(conv, mark)
	if s.cfg.V1 {
		s.write(wire.ReadFrame(conv, mark))
	}
	go s.node.notifyReceipt(&chatpb.Receipt{ConversationId: conv, Seq: mark, ByStaff: s.cfg.User.IsAdmin})
	if !s.cfg.User.IsAdmin {
		return // a visitor's mark is for staff to see, through the grain
	}
	rm := &chatpb.ReadMarked{UserId: s.cfg.User.ID, ConversationId: conv, Seq: mark}
	if s.inbox.pid != nil {
		s.node.system.Root.Send(s.inbox.pid, rm)
		return
	}
	go s.node.notifyRead(rm) // the inbox is being looked up: not on this goroutine
}

// readMarked tells the client of another socket's read: once per new mark.
func (s *session) readMarked(conv, seq int64) {
	if seq <= s.readSeq[conv] {
		return
	}
	s.noteRead(conv, seq)
	if s.cfg.V1 {
		s.write(wire.ReadFrame(conv, seq))
	}
}

func (s *session) noteRead(conv, seq int64) {
	if s.readSeq == nil {
		s.readSeq = make(map[int64]int64)
	}
	if seq > s.readSeq[conv] {
		s.readSeq[conv] = seq
	}
}

// historyEvents returns the events a history page of msgs shows (see
// storage.Desk.Events); for an empty page, the conversation's events before
// its first message when it has none.
func (s *session) historyEvents(ctx context.Context, conv int64, msgs []storage.Message) ([]wire.Event, error) {
	var from, to int64
	if len(msgs) > 0 {
		from, to = msgs[0].Seq, msgs[len(msgs)-1].Seq
		if from == 1 {
			from = 0
		}
	}
	events, err := s.node.store.Events(ctx, conv, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]wire.Event, 0, len(events))
	for _, e := range events {
		// Visitors see status changes only: never a note, nor who is
		// assigned.
		if s.cfg.User.IsAdmin || e.Kind == storage.EventStatus {
			out = append(out, StorageEventToWire(e))
		}
	}
	return out, nil
}

// visitorStatus is the visitor's conversation's status for the welcome
// frame ("" for staff).
func (s *session) visitorStatus() string {
	if s.cfg.User.IsAdmin {
		return ""
	}
	if s.cfg.Status == "" {
		return storage.StatusOpen
	}
	return s.cfg.Status
}

// firstInboxPage writes the first page of the inbox from the store, with the
// agent's read state and the view counts, once the session follows the
// inbox. It reports false when the store failed: the caller then writes
// the inbox grain's snapshot instead (no read state).
func (s *session) firstInboxPage() bool {
	q, werr := s.inboxQuery(wire.Request{Type: wire.TypeInbox})
	if werr != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(s.node.cfg.StoreTimeout, 2*time.Second))
	defer cancel()
	page, err := s.readInboxView(ctx, q, wire.Request{Type: wire.TypeInbox})
	if err != nil {
		s.log().Warn("first inbox page from the store failed; sending the snapshot", "err", err)
		return false
	}
	s.write(wire.InboxFrame(page))
	return true
}
