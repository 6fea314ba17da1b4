// Package wire is grainchat's WebSocket protocol: it decodes client frames and
// encodes server frames, for both dialects.
//
// The seed dialect is the original Django Channels chat's JSON: a client sends
// {"message"} or {"message","conversation_id"} and receives
// {message, sender_id, sender_name, sender_is_admin, conversation_id} and
// nothing else. The grainchat.v1 dialect, chosen with the WebSocket subprotocol
// "grainchat.v1", adds typed frames (ack, error, history, inbox, …). See
// docs/PROTOCOL.md.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Subprotocol is the WebSocket subprotocol that opts a client into the
// grainchat.v1 dialect.
const Subprotocol = "grainchat.v1"

// Inbound frame types. A frame without "type" is a message (seed dialect).
const (
	TypeMessage = "message"
	TypeHistory = "history"
	TypeInbox   = "inbox"
	TypeOpen    = "open"
	TypeLeave   = "leave"
	TypeAuth    = "auth"
	// The support desk (staff only): see desk.go.
	TypeStatus = "status"
	TypeAssign = "assign"
	TypeRead   = "read"
	// Canned replies and the staff list (staff only): see canned.go.
	TypeCanned       = "canned"
	TypeCannedSave   = "canned_save"
	TypeCannedDelete = "canned_delete"
	TypeStaff        = "staff"
)

// Error codes of the error frame. They are stable; docs/PROTOCOL.md lists them.
const (
	CodeInvalidJSON          = "invalid_json"
	CodeInvalidRequest       = "invalid_request"
	CodeUnknownType          = "unknown_type"
	CodeEmptyMessage         = "empty_message"
	CodeMessageTooLong       = "message_too_long"
	CodeInvalidText          = "invalid_text"
	CodeConversationRequired = "conversation_required"
	CodeConversationNotFound = "conversation_not_found"
	CodeForbidden            = "forbidden"
	CodeUnavailable          = "unavailable"
	CodeTooManyPending       = "too_many_pending"
	CodeTooManyOpen          = "too_many_open"
	CodeRateLimited          = "rate_limited"
	CodeInternal             = "internal"
	CodeInvalidToken         = "invalid_token"
	CodeTokenExpired         = "token_expired"
	CodeStaleReply           = "stale_reply"
	CodeCannedNotFound       = "canned_not_found"
	CodeNameTaken            = "name_taken"
)

// DefaultMaxMessageChars is the longest message, in characters, unless the
// server is configured otherwise (welcome's max_message_chars says).
const DefaultMaxMessageChars = 4000

// MaxClientMsgIDBytes bounds client_msg_id.
const MaxClientMsgIDBytes = 100

// maxCursorBytes bounds an inbox request's cursor (the server's cursors are
// far shorter).
const maxCursorBytes = 100

// Error is a refusal of one client frame. It becomes an error frame for
// grainchat.v1 clients; the connection stays usable.
type Error struct {
	Code           string
	Message        string
	ClientMsgID    string
	ConversationID int64
	// LastSeq is the conversation's newest seq (stale_reply only).
	LastSeq int64
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Request is one decoded client frame.
type Request struct {
	Type string
	// Message is the text of a message frame, with surrounding white space
	// removed (as the original server did).
	Message string
	// ConversationID is 0 when the frame named none.
	ConversationID int64
	ClientMsgID    string
	BeforeSeq      int64
	AfterSeq       int64
	Limit          int
	// Cursor is an inbox request's page position (a next_cursor the server
	// gave); "" asks for the first page.
	Cursor string
	// Token is an auth request's fresh JWT.
	Token string
	// Desk fields (see desk.go): a message's stale-reply guard, a status
	// or assign request, a read mark, an inbox view.
	BasedOnSeq int64
	Force      bool
	Status     string
	// Assignee is an assign request's new assignee (an external id), or
	// an inbox view's assignee filter; "" with Unassign set unassigns.
	Assignee string
	Unassign bool
	Seq      int64
	Search   string
	// Canned reply fields (see canned.go): the reply a canned_save
	// replaces (0: a new one) or a canned_delete deletes, and the name (in
	// lower case) and text a canned_save stores.
	ID   int64
	Name string
	Body string
	// Away is a staff away request's state (see live.go).
	Away bool
	// URL and Title are a page frame's (see visitor.go), as kept.
	URL   string
	Title string
}

type rawRequest struct {
	Type           string          `json:"type"`
	Message        json.RawMessage `json:"message"`
	ConversationID json.RawMessage `json:"conversation_id"`
	ClientMsgID    json.RawMessage `json:"client_msg_id"`
	BeforeSeq      json.RawMessage `json:"before_seq"`
	AfterSeq       json.RawMessage `json:"after_seq"`
	Limit          json.RawMessage `json:"limit"`
	Cursor         json.RawMessage `json:"cursor"`
	Token          json.RawMessage `json:"token"`
	BasedOnSeq     json.RawMessage `json:"based_on_seq"`
	Force          json.RawMessage `json:"force"`
	Status         json.RawMessage `json:"status"`
	Assignee       json.RawMessage `json:"assignee"`
	Seq            json.RawMessage `json:"seq"`
	Search         json.RawMessage `json:"q"`
	ID             json.RawMessage `json:"id"`
	Name           json.RawMessage `json:"name"`
	Body           json.RawMessage `json:"body"`
	Away           json.RawMessage `json:"away"`
	URL            json.RawMessage `json:"url"`
	Title          json.RawMessage `json:"title"`
}

// Decoder decodes client frames under configured limits.
type Decoder struct {
	// MaxMessageChars bounds a message's length in characters (runes).
	MaxMessageChars int
}

// Decode parses one client frame. The error is always an *Error.
func (d Decoder) Decode(frame []byte) (Request, error) {
	if trimmed := bytes.TrimLeft(frame, " \t\r\n"); len(trimmed) > 0 && trimmed[0] != '{' {
		if json.Valid(frame) {
			return Request{}, errorf(CodeInvalidRequest, "a frame must be a JSON object")
		}
		return Request{}, errorf(CodeInvalidJSON, "the frame is not valid JSON")
	}
	raw, ok := scanRequest(frame)
	if !ok {
		raw = rawRequest{}
		if err := json.Unmarshal(frame, &raw); err != nil {
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) {
				if typeErr.Field == "" {
					return Request{}, errorf(CodeInvalidRequest, "a frame must be a JSON object")
				}
				return Request{}, errorf(CodeInvalidRequest, "field %q has the wrong type", typeErr.Field)
			}
			return Request{}, errorf(CodeInvalidJSON, "the frame is not valid JSON")
		}
	}
	req := Request{Type: raw.Type}
	if req.Type == "" {
		req.Type = TypeMessage
	}
	var err *Error
	if req.ClientMsgID, err = optString(raw.ClientMsgID, "client_msg_id"); err != nil {
		return Request{}, err
	}
	if len(req.ClientMsgID) > MaxClientMsgIDBytes {
		return Request{}, errorf(CodeInvalidRequest, "client_msg_id is longer than %d bytes", MaxClientMsgIDBytes)
	}
	if strings.HasPrefix(req.ClientMsgID, "~") {
		return Request{}, errorf(CodeInvalidRequest, "client_msg_id may not start with ~ (reserved for the server)")
	}
	fail := func(e *Error) (Request, error) {
		e.ClientMsgID = req.ClientMsgID
		e.ConversationID = req.ConversationID
		return Request{}, e
	}
	if req.ConversationID, err = optID(raw.ConversationID, "conversation_id"); err != nil {
		return fail(err)
	}
	switch req.Type {
	case TypeMessage:
		if req.Message, err = d.text(raw.Message); err != nil {
			return fail(err)
		}
		if req.BasedOnSeq, err = optID(raw.BasedOnSeq, "based_on_seq"); err != nil {
			return fail(err)
		}
		if req.Force, err = optBool(raw.Force, "force"); err != nil {
			return fail(err)
		}
	case TypeHistory:
		if req.BeforeSeq, err = optID(raw.BeforeSeq, "before_seq"); err != nil {
			return fail(err)
		}
		if req.AfterSeq, err = optID(raw.AfterSeq, "after_seq"); err != nil {
			return fail(err)
		}
		limit, err := optID(raw.Limit, "limit")
		if err != nil {
			return fail(err)
		}
		if limit > 1000 {
			limit = 1000
		}
		req.Limit = int(limit)
	case TypeInbox:
		if req.Cursor, err = optString(raw.Cursor, "cursor"); err != nil {
			return fail(err)
		}
		if len(req.Cursor) > maxCursorBytes {
			return fail(errorf(CodeInvalidRequest, "cursor is longer than %d bytes", maxCursorBytes))
		}
		limit, err := optID(raw.Limit, "limit")
		if err != nil {
			return fail(err)
		}
		req.Limit = int(min(limit, 1000))
		if err := decodeView(&req, raw); err != nil {
			return fail(err)
		}
	case TypeNote:
		if req.ConversationID == 0 {
			return fail(errorf(CodeConversationRequired, "a note needs a conversation_id"))
		}
		if req.Message, err = d.text(raw.Message); err != nil {
			return fail(err)
		}
	case TypeStatus, TypeAssign, TypeRead:
		if err := decodeDesk(&req, raw); err != nil {
			return fail(err)
		}
	case TypeCanned, TypeCannedSave, TypeCannedDelete, TypeStaff:
		if err := d.decodeCanned(&req, raw); err != nil {
			return fail(err)
		}
	case TypeAuth:
		if req.Token, err = optString(raw.Token, "token"); err != nil {
			return fail(err)
		}
		if req.Token == "" {
			return fail(errorf(CodeInvalidToken, "auth needs a token"))
		}
	case TypeTyping:
		// Visitors may omit the conversation (their own); staff must name
		// one (the session checks).
	case TypeAway:
		if req.Away, err = optBool(raw.Away, "away"); err != nil {
			return fail(err)
		}
		if raw.Away == nil {
			return fail(errorf(CodeInvalidRequest, "away needs \"away\": true or false"))
		}
	case TypeTranscriptEmail:
		// The visitor's own conversation; staff are refused by the session.
	case TypePage:
		if err := decodePage(&req, raw); err != nil {
			return fail(err)
		}
	case TypeOpen, TypeLeave:
		if req.ConversationID == 0 {
			return fail(errorf(CodeConversationRequired, "%s needs a conversation_id", req.Type))
		}
	default:
		return fail(errorf(CodeUnknownType, "unknown frame type %.40q", req.Type))
	}
	return req, nil
}

// text reads a message's (or a note's) text: a string, trimmed, non-empty,
// valid UTF-8 without NUL, at most MaxMessageChars characters.
func (d Decoder) text(raw json.RawMessage) (string, *Error) {
	if raw == nil || string(raw) == "null" {
		return "", errorf(CodeEmptyMessage, "the message is empty")
	}
	text, err := optString(raw, "message")
	if err != nil {
		return "", err
	}
	return d.Text(text)
}

// Text checks a message's (or a note's) text, as read from a frame or a
// REST body: trimmed, non-empty, valid UTF-8 without NUL, at most
// MaxMessageChars characters. It returns the trimmed text.
func (d Decoder) Text(text string) (string, *Error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return "", errorf(CodeEmptyMessage, "the message is empty")
	}
	if strings.IndexByte(text, 0) >= 0 || !utf8.ValidString(text) {
		return "", errorf(CodeInvalidText, "the message contains a NUL character or invalid UTF-8")
	}
	if d.MaxMessageChars > 0 && utf8.RuneCountInString(text) > d.MaxMessageChars {
		return "", errorf(CodeMessageTooLong, "the message is longer than %d characters", d.MaxMessageChars)
	}
	return text, nil
}

func optString(raw json.RawMessage, field string) (string, *Error) {
	if raw == nil || string(raw) == "null" {
		return "", nil
	}
	if content, next, ok := scanString(raw, 0); ok && next == len(raw) {
		return string(content), nil // nothing to unescape
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errorf(CodeInvalidRequest, "field %q must be a string", field)
	}
	return s, nil
}

// optID parses a non-negative integer given as a JSON number or a string of
// digits (the original server accepted both); absent or null is 0.
func optID(raw json.RawMessage, field string) (int64, *Error) {
	if raw == nil || string(raw) == "null" {
		return 0, nil
	}
	text := string(raw)
	if len(text) > 1 && text[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, errorf(CodeInvalidRequest, "field %q must be a positive integer", field)
		}
		text = s
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 {
		return 0, errorf(CodeInvalidRequest, "field %q must be a positive integer", field)
	}
	return n, nil
}

// Message is a stored chat message as frames show it.
type Message struct {
	ID             int64
	ConversationID int64
	Seq            int64
	SenderID       int64
	SenderName     string
	SenderIsAdmin  bool
	Body           string
	ClientMsgID    string
	CreatedAt      time.Time
}

// MessageJSON is the v1 message object (docs/PROTOCOL.md) outside a frame:
// how the REST API and webhooks show a stored message.
type MessageJSON struct {
	ID             int64  `json:"id"`
	ConversationID int64  `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	Message        string `json:"message"`
	SenderID       int64  `json:"sender_id"`
	SenderName     string `json:"sender_name"`
	SenderIsAdmin  bool   `json:"sender_is_admin"`
	CreatedAt      string `json:"created_at"`
	ClientMsgID    string `json:"client_msg_id"`
}

// PublicClientMsgID is a stored client_msg_id as clients see it: the keys
// the server makes up for posts that came without one (they start with
// "~", which clients may not use) show as "".
func PublicClientMsgID(id string) string {
	if strings.HasPrefix(id, "~") {
		return ""
	}
	return id
}

type v1Message struct {
	Type           string `json:"type,omitempty"`
	ID             int64  `json:"id"`
	ConversationID int64  `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	Message        string `json:"message"`
	SenderID       int64  `json:"sender_id"`
	SenderName     string `json:"sender_name"`
	SenderIsAdmin  bool   `json:"sender_is_admin"`
	CreatedAt      string `json:"created_at"`
	ClientMsgID    string `json:"client_msg_id"`
}

// TimeFormat is the format of every time on the wire (RFC 3339, UTC, µs).
const TimeFormat = "2006-01-02T15:04:05.000000Z07:00"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}

func toV1(m Message, typ string) v1Message {
	return v1Message{
		Type: typ, ID: m.ID, ConversationID: m.ConversationID, Seq: m.Seq, Message: m.Body,
		SenderID: m.SenderID, SenderName: m.SenderName, SenderIsAdmin: m.SenderIsAdmin,
		CreatedAt: formatTime(m.CreatedAt), ClientMsgID: m.ClientMsgID,
	}
}

// SeedMessageFrame encodes m exactly as the original server did.
func SeedMessageFrame(m Message) []byte {
	b := make([]byte, 0, frameSize(m.Body, m.SenderName))
	b = append(b, `{"message":`...)
	b = appendString(b, m.Body)
	b = append(b, `,"sender_id":`...)
	b = appendInt(b, m.SenderID)
	b = append(b, `,"sender_name":`...)
	b = appendString(b, m.SenderName)
	b = append(b, `,"sender_is_admin":`...)
	b = appendBool(b, m.SenderIsAdmin)
	b = append(b, `,"conversation_id":`...)
	b = appendInt(b, m.ConversationID)
	return append(b, '}')
}

// MessageFrame encodes m as a grainchat.v1 message frame: the seed fields plus
// type, id, seq, created_at and client_msg_id.
func MessageFrame(m Message) []byte {
	return appendV1Message(make([]byte, 0, frameSize(m.Body, m.SenderName, m.ClientMsgID)), m, TypeMessage)
}

// AckFrame tells a grainchat.v1 sender that its message is stored.
func AckFrame(m Message, duplicate bool) []byte {
	b := make([]byte, 0, frameSize(m.ClientMsgID))
	b = append(b, `{"type":"ack","client_msg_id":`...)
	b = appendString(b, m.ClientMsgID)
	b = append(b, `,"id":`...)
	b = appendInt(b, m.ID)
	b = append(b, `,"conversation_id":`...)
	b = appendInt(b, m.ConversationID)
	b = append(b, `,"seq":`...)
	b = appendInt(b, m.Seq)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, m.CreatedAt)
	b = append(b, `,"duplicate":`...)
	b = appendBool(b, duplicate)
	return append(b, '}')
}

// ErrorFrame encodes a refusal.
func ErrorFrame(e *Error) []byte {
	return mustMarshal(struct {
		Type           string `json:"type"`
		Code           string `json:"code"`
		Message        string `json:"message"`
		ClientMsgID    string `json:"client_msg_id,omitempty"`
		ConversationID int64  `json:"conversation_id,omitempty"`
		LastSeq        int64  `json:"last_seq,omitempty"`
	}{"error", e.Code, e.Message, e.ClientMsgID, e.ConversationID, e.LastSeq})
}

// User is the connected user as the welcome frame shows it.
type User struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	IsAdmin bool   `json:"is_admin"`
}

// Welcome is the first frame a grainchat.v1 client receives.
type Welcome struct {
	User User
	// ConversationID and LastSeq are the visitor's own conversation; messages
	// delivered after this frame have seq > LastSeq. Zero for admins.
	ConversationID  int64
	LastSeq         int64
	MaxMessageChars int
	// StoreID identifies the server's data set (storage.Store.StoreID): a
	// client that cached ids from a different one must drop them.
	StoreID string
	// TokenExpiresAt is when the socket's token expires; the socket is
	// closed then unless an auth frame brings a fresh token.
	TokenExpiresAt time.Time
	// Status is the visitor's conversation's status ("" for staff).
	Status string
	// TranscriptEmail: the visitor may ask for their transcript by email
	// (email is configured and their token carried an address).
	TranscriptEmail bool
}

// WelcomeFrame encodes w.
func WelcomeFrame(w Welcome) []byte {
	return mustMarshal(struct {
		Type            string `json:"type"`
		Protocol        string `json:"protocol"`
		User            User   `json:"user"`
		ConversationID  int64  `json:"conversation_id,omitempty"`
		LastSeq         int64  `json:"last_seq"`
		MaxMessageChars int    `json:"max_message_chars"`
		StoreID         string `json:"store_id,omitempty"`
		TokenExpiresAt  string `json:"token_expires_at,omitempty"`
		Status          string `json:"status,omitempty"`
		TranscriptEmail bool   `json:"transcript_email,omitempty"`
	}{"welcome", Subprotocol, w.User, w.ConversationID, w.LastSeq, w.MaxMessageChars, w.StoreID, optTime(w.TokenExpiresAt), w.Status,
		w.TranscriptEmail})
}

// optTime formats t, or "" for the zero time.
func optTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}

// AuthFrame answers an accepted auth frame: the socket now expires at
// expiresAt.
func AuthFrame(expiresAt time.Time) []byte {
	return mustMarshal(struct {
		Type      string `json:"type"`
		ExpiresAt string `json:"expires_at"`
	}{TypeAuth, formatTime(expiresAt)})
}

// HistoryFrame answers a history request with messages in ascending seq and
// the events among them (see EventJSON.AfterSeq).
func HistoryFrame(conversationID int64, msgs []Message, hasMore bool, events []Event) []byte {
	out := make([]v1Message, len(msgs))
	for i, m := range msgs {
		out[i] = toV1(m, "")
	}
	evs := make([]EventJSON, len(events))
	for i, e := range events {
		evs[i] = e.ToJSON()
	}
	return mustMarshal(struct {
		Type           string      `json:"type"`
		ConversationID int64       `json:"conversation_id"`
		Messages       []v1Message `json:"messages"`
		HasMore        bool        `json:"has_more"`
		Events         []EventJSON `json:"events"`
	}{TypeHistory, conversationID, out, hasMore, evs})
}

// InboxEntry is one conversation of the admin inbox.
type InboxEntry struct {
	ConversationID int64
	UserID         int64
	UserExternalID string
	UserName       string
	LastSeq        int64
	LastMessageAt  time.Time
	LastMessage    *Message
	// Status and Assignee (nil: unassigned) are the conversation's desk
	// state; an empty Status is not shown (a server without the desk).
	Status   string
	Assignee *DeskUser
	// Team is the visitor's team; "" (none) is not shown.
	Team string
	// ReadSeq and Unread are the receiving agent's, shown when HasReadState
	// (inbox pages; inbox_update frames go to every agent alike).
	HasReadState bool
	ReadSeq      int64
	Unread       int64
	// Visitor is the visitor's presence (inbox pages; nil: not shown).
	Visitor *VisitorPresence
}

type inboxEntryJSON struct {
	ConversationID int64            `json:"conversation_id"`
	User           inboxUser        `json:"user"`
	LastSeq        int64            `json:"last_seq"`
	LastMessageAt  string           `json:"last_message_at"`
	LastMessage    *v1Message       `json:"last_message"`
	Status         string           `json:"status,omitempty"`
	Assignee       *DeskUser        `json:"assignee"`
	Team           string           `json:"team,omitempty"`
	ReadSeq        *int64           `json:"read_seq,omitempty"`
	Unread         *int64           `json:"unread,omitempty"`
	Visitor        *VisitorPresence `json:"visitor,omitempty"`
}

type inboxUser struct {
	ID         int64  `json:"id"`
	ExternalID string `json:"external_id"`
	Name       string `json:"name"`
}

func toInboxJSON(e InboxEntry) inboxEntryJSON {
	out := inboxEntryJSON{
		ConversationID: e.ConversationID,
		User:           inboxUser{ID: e.UserID, ExternalID: e.UserExternalID, Name: e.UserName},
		LastSeq:        e.LastSeq,
		LastMessageAt:  formatTime(e.LastMessageAt),
		Status:         e.Status,
		Assignee:       e.Assignee,
		Team:           e.Team,
	}
	if e.HasReadState {
		out.ReadSeq, out.Unread = &e.ReadSeq, &e.Unread
	}
	out.Visitor = e.Visitor
	if e.LastMessage != nil {
		m := toV1(*e.LastMessage, "")
		out.LastMessage = &m
	}
	return out
}

// InboxPage is one page of the inbox as an inbox frame carries it.
type InboxPage struct {
	Entries []InboxEntry
	// Cursor is the cursor the client asked for; "" for the first page,
	// which replaces what the client shows (a later page adds to it).
	Cursor string
	// NextCursor asks for the page after this one; "" when HasMore is false.
	NextCursor string
	HasMore    bool
	StoreID    string
	// View is the view the page shows, and Counts the conversations of each
	// status ("open", "pending", "resolved") for the receiving agent; nil
	// for the snapshot pages that have none.
	View   *View
	Counts map[string]ViewCounts
}

// InboxFrame lists a page of conversations, most recent activity first.
func InboxFrame(p InboxPage) []byte {
	out := make([]inboxEntryJSON, len(p.Entries))
	for i, e := range p.Entries {
		out[i] = toInboxJSON(e)
	}
	return mustMarshal(struct {
		Type          string                `json:"type"`
		Conversations []inboxEntryJSON      `json:"conversations"`
		Cursor        string                `json:"cursor,omitempty"`
		HasMore       bool                  `json:"has_more"`
		NextCursor    string                `json:"next_cursor,omitempty"`
		StoreID       string                `json:"store_id,omitempty"`
		View          *View                 `json:"view,omitempty"`
		Counts        map[string]ViewCounts `json:"counts,omitempty"`
	}{TypeInbox, out, p.Cursor, p.HasMore, p.NextCursor, p.StoreID, p.View, p.Counts})
}

// InboxUpdateFrame tells admins that one conversation changed.
func InboxUpdateFrame(e InboxEntry) []byte {
	size := frameSize(e.UserExternalID, e.UserName, e.Team)
	if e.LastMessage != nil {
		// The entry's fields and the whole message frame.
		size += frameSize(e.LastMessage.Body, e.LastMessage.SenderName, e.LastMessage.ClientMsgID)
	}
	b := make([]byte, 0, size)
	b = append(b, `{"type":"inbox_update","conversation":`...)
	b = appendInboxEntry(b, e)
	return append(b, '}')
}

// OpenedFrame confirms an open: messages of the conversation delivered after
// it have seq > lastSeq.
func OpenedFrame(conversationID, lastSeq int64) []byte {
	return mustMarshal(struct {
		Type           string `json:"type"`
		ConversationID int64  `json:"conversation_id"`
		LastSeq        int64  `json:"last_seq"`
	}{"opened", conversationID, lastSeq})
}

// LeftFrame confirms a leave.
func LeftFrame(conversationID int64) []byte {
	return mustMarshal(struct {
		Type           string `json:"type"`
		ConversationID int64  `json:"conversation_id"`
	}{"left", conversationID})
}

func mustMarshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(v); err != nil {
		// Only strings, numbers and bools are encoded: this cannot fail.
		panic(fmt.Sprintf("wire: encode %T: %v", v, err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
