// This file holds the support desk's frames (grainchat.v1 only; seed-dialect
// clients never see them): status and assign requests and the changed
// answer, read marks, the event frame that shows a change in the thread, and
// the desk fields of inbox entries and pages.

package wire

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// TypeNote is a staff request to write an internal note (answered with
// changed; the note is an event of kind "note" that only staff see).
const TypeNote = "note"

// Conversation statuses as frames carry them.
const (
	StatusOpen     = "open"
	StatusPending  = "pending"
	StatusResolved = "resolved"
)

// Inbox view assignee filters (besides an external id).
const (
	AssigneeAny  = "any"
	AssigneeNone = "none"
	AssigneeMe   = "me"
)

// MaxSearchRunes bounds an inbox view's search text.
const MaxSearchRunes = 200

// maxExternalIDBytes bounds an assignee's external id (the store's bound).
const maxExternalIDBytes = 200

func validStatus(s string) bool {
	return s == StatusOpen || s == StatusPending || s == StatusResolved
}

func optBool(raw json.RawMessage, field string) (bool, *Error) {
	switch string(raw) {
	case "", "null", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, errorf(CodeInvalidRequest, "field %q must be true or false", field)
}

// decodeDesk reads a status, assign or read request (all name a
// conversation).
func decodeDesk(req *Request, raw rawRequest) *Error {
	if req.ConversationID == 0 {
		return errorf(CodeConversationRequired, "%s needs a conversation_id", req.Type)
	}
	var err *Error
	switch req.Type {
	case TypeStatus:
		if req.Status, err = optString(raw.Status, "status"); err != nil {
			return err
		}
		if !validStatus(req.Status) {
			return errorf(CodeInvalidRequest, "status must be open, pending or resolved")
		}
	case TypeAssign:
		if raw.Assignee == nil {
			return errorf(CodeInvalidRequest, "assign needs an assignee (an external id, or null to unassign)")
		}
		if string(raw.Assignee) == "null" {
			req.Unassign = true
			return nil
		}
		if req.Assignee, err = optString(raw.Assignee, "assignee"); err != nil {
			return err
		}
		if req.Assignee == "" || len(req.Assignee) > maxExternalIDBytes {
			return errorf(CodeInvalidRequest, "assignee must be a staff user's external id, or null")
		}
	case TypeRead:
		if req.Seq, err = optID(raw.Seq, "seq"); err != nil {
			return err
		}
	}
	return nil
}

// decodeView reads an inbox request's view: status, assignee, q.
func decodeView(req *Request, raw rawRequest) *Error {
	var err *Error
	if req.Status, err = optString(raw.Status, "status"); err != nil {
		return err
	}
	if req.Status == "all" {
		req.Status = ""
	}
	if req.Status != "" && !validStatus(req.Status) {
		return errorf(CodeInvalidRequest, "status must be open, pending, resolved or all")
	}
	if req.Assignee, err = optString(raw.Assignee, "assignee"); err != nil {
		return err
	}
	if len(req.Assignee) > maxExternalIDBytes {
		return errorf(CodeInvalidRequest, "assignee is longer than %d bytes", maxExternalIDBytes)
	}
	if req.Search, err = optString(raw.Search, "q"); err != nil {
		return err
	}
	if utf8.RuneCountInString(req.Search) > MaxSearchRunes {
		return errorf(CodeInvalidRequest, "q is longer than %d characters", MaxSearchRunes)
	}
	return nil
}

// DeskUser names a user on the desk: an assignee, who made a change.
type DeskUser struct {
	ID         int64  `json:"id"`
	ExternalID string `json:"external_id"`
	Name       string `json:"name"`
}

// Event is one recorded change of a conversation's status or assignee.
type Event struct {
	ID             int64
	ConversationID int64
	AfterSeq       int64
	Kind           string // "status", "assignee" or "note"
	Status         string
	Assignee       *DeskUser
	Actor          DeskUser
	CreatedAt      time.Time
	// Body is a note's text (staff only).
	Body string
}

// EventJSON is an event as frames (and the REST API) show it.
type EventJSON struct {
	ID       int64     `json:"id"`
	Kind     string    `json:"kind"`
	Status   string    `json:"status,omitempty"`
	Assignee *DeskUser `json:"assignee"`
	Actor    DeskUser  `json:"actor"`
	// AfterSeq places the event in the thread: after the message with
	// this seq (before the first message when 0).
	AfterSeq  int64  `json:"after_seq"`
	CreatedAt string `json:"created_at"`
	// Body is a note's text.
	Body string `json:"body,omitempty"`
}

// ToJSON returns e as frames show it.
func (e Event) ToJSON() EventJSON {
	return EventJSON{ID: e.ID, Kind: e.Kind, Status: e.Status, Assignee: e.Assignee, Actor: e.Actor,
		AfterSeq: e.AfterSeq, CreatedAt: formatTime(e.CreatedAt), Body: e.Body}
}

// EventFrame shows a change in a conversation's thread.
func EventFrame(e Event) []byte {
	return mustMarshal(struct {
		Type           string    `json:"type"`
		ConversationID int64     `json:"conversation_id"`
		Event          EventJSON `json:"event"`
	}{"event", e.ConversationID, e.ToJSON()})
}

// ChangedFrame answers a status or assign request: the conversation's state
// after it, and the events it recorded (none when nothing changed).
func ChangedFrame(conversationID int64, status string, assignee *DeskUser, events []Event) []byte {
	out := make([]EventJSON, len(events))
	for i, e := range events {
		out[i] = e.ToJSON()
	}
	return mustMarshal(struct {
		Type           string      `json:"type"`
		ConversationID int64       `json:"conversation_id"`
		Status         string      `json:"status"`
		Assignee       *DeskUser   `json:"assignee"`
		Events         []EventJSON `json:"events"`
	}{"changed", conversationID, status, assignee, out})
}

// ReadFrame tells every socket of a staff user where their read mark of a
// conversation is now.
func ReadFrame(conversationID, readSeq int64) []byte {
	return mustMarshal(struct {
		Type           string `json:"type"`
		ConversationID int64  `json:"conversation_id"`
		ReadSeq        int64  `json:"read_seq"`
	}{TypeRead, conversationID, readSeq})
}

// ViewCounts counts one status's conversations in all, assigned to the
// viewer, and unassigned.
type ViewCounts struct {
	All        int64 `json:"all"`
	Mine       int64 `json:"mine"`
	Unassigned int64 `json:"unassigned"`
}

// View is the inbox view an inbox page shows.
type View struct {
	Status   string `json:"status"`   // "all", "open", "pending" or "resolved"
	Assignee string `json:"assignee"` // "any", "none", "me" or an external id
	Search   string `json:"q"`
}
