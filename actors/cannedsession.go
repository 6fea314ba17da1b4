// This file holds a session's part of the canned replies and the staff
// list: canned, canned_save, canned_delete and staff requests, answered
// from the store (no grain: the replies are the team's, not a
// conversation's, and nothing is delivered live). grainchat.v1 staff only.

package actors

import (
	"context"
	"errors"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// cannedRequest answers a canned, canned_save, canned_delete or staff
// request. Like history and markRead, it asks the store on the session's
// goroutine, bounded by StoreTimeout: the answers then come in the order of
// the requests (a canned after a canned_save lists the saved reply), and
// these are single small statements that staff send one at a time. A
// seed-dialect client could not see the answer: its frames are dropped
// and change nothing.
func (s *session) cannedRequest(req wire.Request) {
	if !s.cfg.V1 {
		return
	}
	if !s.cfg.User.IsAdmin {
		s.fail(&wire.Error{Code: wire.CodeForbidden, Message: "only staff have canned replies"})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.node.cfg.StoreTimeout)
	defer cancel()
	var frame []byte
	var err error
	switch req.Type {
	case wire.TypeStaff:
		frame, err = s.staffList(ctx)
	case wire.TypeCanned:
		frame, err = s.cannedList(ctx, nil)
	case wire.TypeCannedSave:
		frame, err = s.cannedSave(ctx, req)
	case wire.TypeCannedDelete:
		if err = s.node.store.DeleteCannedReply(ctx, req.ID); err == nil {
			frame, err = s.cannedList(ctx, nil)
		}
	}
	if err != nil {
		s.fail(s.cannedError(req, err))
		return
	}
	s.write(frame)
}

// cannedSave stores a canned_save's reply and answers the list with it.
func (s *session) cannedSave(ctx context.Context, req wire.Request) ([]byte, error) {
	r, err := s.node.store.SaveCannedReply(ctx, storage.CannedReplyInput{
		ID: req.ID, Name: req.Name, Body: req.Body, ActorID: s.cfg.User.ID,
	})
	if err != nil {
		return nil, err
	}
	saved := CannedReplyToWire(r)
	return s.cannedList(ctx, &saved)
}

// cannedList is the canned frame of the stored list (and saved).
func (s *session) cannedList(ctx context.Context, saved *wire.CannedReply) ([]byte, error) {
	list, err := s.node.store.CannedReplies(ctx)
	if err != nil {
		return nil, &cannedListError{err: err}
	}
	out := make([]wire.CannedReply, len(list))
	for i, r := range list {
		out[i] = CannedReplyToWire(r)
	}
	return wire.CannedFrame(out, saved), nil
}

// cannedListError is a failed read of the list; after a save or a delete,
// the change was made: the client must not take the error for its refusal.
type cannedListError struct{ err error }

func (e *cannedListError) Error() string { return "read the canned replies: " + e.err.Error() }
func (e *cannedListError) Unwrap() error { return e.err }

// staffList is the staff frame.
func (s *session) staffList(ctx context.Context) ([]byte, error) {
	staff, err := s.node.store.StaffUsers(ctx, storage.MaxStaffUsers)
	if err != nil {
		return nil, err
	}
	out := make([]wire.DeskUser, len(staff))
	for i, u := range staff {
		out[i] = wire.DeskUser{ID: u.ID, ExternalID: u.ExternalID, Name: u.Name}
	}
	return wire.StaffFrame(out), nil
}

// cannedError translates a store error of a canned request into its error
// frame; what the client cannot act on is logged.
func (s *session) cannedError(req wire.Request, err error) *wire.Error {
	code, msg := CannedErrorCode(err), CannedErrorMessage(err)
	switch code {
	case wire.CodeInvalidRequest, wire.CodeCannedNotFound, wire.CodeNameTaken:
		return &wire.Error{Code: code, Message: msg}
	}
	s.log().Warn("canned request failed", "type", req.Type, "err", err)
	var le *cannedListError
	if errors.As(err, &le) && req.Type != wire.TypeCanned {
		msg = "the change was made, but the list could not be read; ask for it again"
	}
	return &wire.Error{Code: code, Message: msg}
}

// CannedErrorCode is the wire error code of a store error of the canned
// replies or the staff list: canned_not_found (ENOTFOUND), name_taken
// (ECONFLICT), invalid_request (EINVALID), unavailable, internal. The REST
// API uses it too.
func CannedErrorCode(err error) string {
	switch storage.ErrorCode(err) {
	case storage.ENOTFOUND:
		return wire.CodeCannedNotFound
	case storage.ECONFLICT:
		return wire.CodeNameTaken
	case storage.EINVALID:
		return wire.CodeInvalidRequest
	case storage.EUNAVAILABLE:
		return wire.CodeUnavailable
	}
	return wire.CodeInternal
}

// CannedErrorMessage is the client-visible text of CannedErrorCode(err):
// the store's message for EINVALID (it names the rule broken and quotes
// nothing), a fixed text otherwise (detail stays in the logs).
func CannedErrorMessage(err error) string {
	switch CannedErrorCode(err) {
	case wire.CodeCannedNotFound:
		return "no such canned reply"
	case wire.CodeNameTaken:
		return "another canned reply has that name"
	case wire.CodeInvalidRequest:
		var se *storage.Error
		if errors.As(err, &se) {
			return se.Message
		}
	case wire.CodeUnavailable:
		return "the store is temporarily unavailable; retry"
	}
	return messageForCode(wire.CodeInternal)
}

// CannedReplyToWire converts a stored canned reply for frames and the REST
// API.
func CannedReplyToWire(r storage.CannedReply) wire.CannedReply {
	return wire.CannedReply{ID: r.ID, Name: r.Name, Body: r.Body, UpdatedAt: r.UpdatedAt,
		UpdatedBy: wire.DeskUser{ID: r.UpdatedBy.ID, ExternalID: r.UpdatedBy.ExternalID, Name: r.UpdatedBy.Name}}
}
