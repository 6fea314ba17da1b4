// This file holds the API's handlers: conversations (list, get, change),
// their messages (list, post) and read marks.

package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/grainchat/grainchat/actors"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// Page sizes of the list endpoints.
const (
	defaultListLimit = 50
	maxListLimit     = 100
	maxMessagesLimit = storage.MaxPageSize
)

// conversationJSON is a Conversation of docs/API.md.
type conversationJSON struct {
	ID            int64            `json:"id"`
	User          wire.VisitorJSON `json:"user"`
	Status        string           `json:"status"`
	Assignee      *wire.DeskUser   `json:"assignee"`
	LastSeq       int64            `json:"last_seq"`
	LastMessageAt *string          `json:"last_message_at"`
	LastMessage   *messageJSON     `json:"last_message"`
	// Team is the visitor's team (omitted when none; PROTOCOL.md, "Teams").
	Team    string `json:"team,omitempty"`
	Unread  int64  `json:"unread"`
	ReadSeq int64  `json:"read_seq"`
	// Visitor is the visitor's presence.
	Visitor wire.VisitorPresence `json:"visitor"`
}

// messageJSON is a message as the v1 history shows it.
type messageJSON = wire.MessageJSON

func toMessageJSON(m storage.Message) messageJSON {
	return messageJSON{
		ID: m.ID, ConversationID: m.ConversationID, Seq: m.Seq, Message: m.Body, SenderID: m.SenderID,
		SenderName: m.SenderName, SenderIsAdmin: m.SenderIsAdmin,
		CreatedAt: m.CreatedAt.UTC().Format(wire.TimeFormat), ClientMsgID: wire.PublicClientMsgID(m.ClientMsgID),
	}
}

func userJSON(u *storage.UserRef) *wire.DeskUser {
	if u == nil {
		return nil
	}
	return &wire.DeskUser{ID: u.ID, ExternalID: u.ExternalID, Name: u.Name}
}

func entryJSON(e storage.InboxEntry) conversationJSON {
	out := conversationJSON{
		ID:       e.ConversationID,
		User:     visitorOf(e).JSON(),
		Status:   e.Status,
		Assignee: userJSON(e.Assignee),
		LastSeq:  e.LastSeq,
		Team:     e.Team,
		Unread:   e.Unread,
		ReadSeq:  e.ReadSeq,
	}
	if e.LastMessageAt != nil {
		t := e.LastMessageAt.UTC().Format(wire.TimeFormat)
		out.LastMessageAt = &t
	}
	if e.LastMessage != nil {
		m := toMessageJSON(*e.LastMessage)
		out.LastMessage = &m
	}
	return out
}

// listConversations: GET /api/v1/conversations?status=&assignee=&teams=&q=&limit=&cursor=
func (a *API) listConversations(req *request) (int, any, error) {
	v := req.r.URL.Query()
	q := storage.InboxQuery{ViewerID: req.user.ID, Search: v.Get("q")}
	if len(v["teams"]) > 1 {
		return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "teams must be given once, its names separated by commas")
	}
	if v.Has("teams") {
		// As a staff token's teams claim: those teams' conversations
		// and those without a team ("teams=" keeps only those).
		q.Teams = []string{}
		if t := v.Get("teams"); t != "" {
			q.Teams = strings.Split(t, ",")
		}
		if err := storage.CheckTeams(q.Teams); err != nil {
			return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, fmt.Sprintf(
				"teams must be at most %d team names separated by commas, each 1 to %d of a-z, 0-9 and (not first) '-', '_', '.'",
				storage.MaxTeams, storage.MaxTeamBytes))
		}
	}
	switch st := v.Get("status"); st {
	case "", "all":
	case storage.StatusOpen, storage.StatusPending, storage.StatusResolved:
		q.Status = st
	default:
		return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "status must be open, pending, resolved or all")
	}
	if err := a.assigneeFilter(req, v.Get("assignee"), &q); err != nil {
		return 0, nil, err
	}
	limit, err := queryInt(req.r, "limit")
	if err != nil {
		return 0, nil, err
	}
	switch {
	case v.Get("limit") == "":
		limit = defaultListLimit
	case limit < 1 || limit > maxListLimit:
		return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "limit must be 1 to 100")
	}
	if c := v.Get("cursor"); c != "" {
		after, ok := actors.DecodeInboxCursor(c)
		if !ok {
			return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "cursor is not one the server gave")
		}
		q.After = after
	}
	if len([]rune(q.Search)) > storage.MaxSearchRunes {
		return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "q is too long")
	}
	q.Limit = int(limit) + 1
	rows, err := a.cfg.Store.InboxView(req.ctx, q)
	if err != nil {
		return 0, nil, fromStorage(err)
	}
	var next *string
	if len(rows) > int(limit) {
		rows = rows[:limit]
		c := actors.EncodeInboxCursor(rows[len(rows)-1].Cursor())
		next = &c
	}
	out := make([]conversationJSON, len(rows))
	for i, e := range rows {
		out[i] = entryJSON(e)
	}
	if err := a.withPresence(req, out); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"conversations": out, "next_cursor": next}, nil
}

// assigneeFilter reads an assignee filter: me, none, any or an external id.
func (a *API) assigneeFilter(req *request, v string, q *storage.InboxQuery) error {
	switch v {
	case "", storage.AssigneeAny:
		q.Assignee = storage.AssigneeAny
	case storage.AssigneeNone:
		q.Assignee = storage.AssigneeNone
	case storage.AssigneeMe:
		q.Assignee = storage.AssigneeMe
	default:
		u, err := a.cfg.Store.StaffUser(req.ctx, v)
		if err != nil {
			if storage.ErrorCode(err) == storage.ENOTFOUND {
				return errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "assignee is not a staff user")
			}
			return fromStorage(err)
		}
		q.Assignee, q.AssigneeID = storage.AssigneeUser, u.ID
	}
	return nil
}

// getConversation: GET /api/v1/conversations/{id}
func (a *API) getConversation(req *request) (int, any, error) {
	id, err := pathID(req.r)
	if err != nil {
		return 0, nil, err
	}
	c, err := a.conversation(req, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, c, nil
}

// conversation reads one conversation as the caller sees it.
func (a *API) conversation(req *request, id int64) (conversationJSON, error) {
	e, err := a.cfg.Store.ConversationEntry(req.ctx, req.user.ID, id)
	if err != nil {
		return conversationJSON{}, fromStorage(err)
	}
	out := []conversationJSON{entryJSON(e)}
	if err := a.withPresence(req, out); err != nil {
		return conversationJSON{}, err
	}
	return out[0], nil
}

// withPresence fills the conversations' visitor presence.
func (a *API) withPresence(req *request, convs []conversationJSON) error {
	ids := make([]int64, len(convs))
	for i, c := range convs {
		ids[i] = c.ID
	}
	presence, err := a.cfg.Desk.VisitorPresence(req.ctx, ids)
	if err != nil {
		return fromDesk(err)
	}
	for i := range convs {
		p := presence[convs[i].ID]
		convs[i].Visitor = wire.VisitorPresence{Online: p.Online, LastSeen: p.LastSeen}
	}
	return nil
}

// patchConversation: PATCH /api/v1/conversations/{id} with any of
// {"status": "…", "assignee": "<external id>" or null}.
func (a *API) patchConversation(req *request) (int, any, error) {
	id, err := pathID(req.r)
	if err != nil {
		return 0, nil, err
	}
	var body map[string]json.RawMessage
	if err := readBody(req.r, &body); err != nil {
		return 0, nil, err
	}
	c := storage.Change{ActorID: req.user.ID}
	for k := range body {
		if k != "status" && k != "assignee" {
			return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "unknown field "+strconv.Quote(k))
		}
	}
	if raw, ok := body["status"]; ok {
		var st string
		if json.Unmarshal(raw, &st) != nil || !storage.ValidStatus(st) {
			return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "status must be open, pending or resolved")
		}
		c.Status = &st
	}
	if raw, ok := body["assignee"]; ok {
		var uid int64
		if string(raw) != "null" {
			var ext string
			if json.Unmarshal(raw, &ext) != nil || ext == "" {
				return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "assignee must be a staff user's external id, or null")
			}
			u, err := a.cfg.Store.StaffUser(req.ctx, ext)
			if err != nil {
				if storage.ErrorCode(err) == storage.ENOTFOUND {
					return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "assignee is not a staff user")
				}
				return 0, nil, fromStorage(err)
			}
			uid = u.ID
		}
		c.Assignee = &uid
	}
	if c.Status == nil && c.Assignee == nil {
		return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "nothing to change: send status and/or assignee")
	}
	if _, err := a.cfg.Desk.Change(req.ctx, id, c); err != nil {
		return 0, nil, fromDesk(err)
	}
	out, err := a.conversation(req, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

// postNote: POST /api/v1/conversations/{id}/notes with {"body": "…"}: an
// internal note, which only staff ever see. Answers 201 with the note event.
func (a *API) postNote(req *request) (int, any, error) {
	id, err := pathID(req.r)
	if err != nil {
		return 0, nil, err
	}
	var body struct {
		Body *string `json:"body"`
	}
	if err := readBody(req.r, &body); err != nil {
		return 0, nil, err
	}
	if body.Body == nil {
		return 0, nil, errorf(http.StatusBadRequest, wire.CodeEmptyMessage, "body is required")
	}
	text, werr := a.decoder.Text(*body.Body)
	if werr != nil {
		return 0, nil, errorf(http.StatusBadRequest, werr.Code, werr.Message)
	}
	out, err := a.cfg.Desk.Change(req.ctx, id, storage.Change{ActorID: req.user.ID, Note: &text})
	if err != nil {
		return 0, nil, fromDesk(err)
	}
	for _, e := range out.Events {
		if e.Kind == storage.EventNote {
			return http.StatusCreated, actors.StorageEventToWire(e).ToJSON(), nil
		}
	}
	return 0, nil, errorf(http.StatusInternalServerError, wire.CodeInternal, "internal error")
}

// listMessages: GET /api/v1/conversations/{id}/messages?after_seq=&before_seq=&limit=
func (a *API) listMessages(req *request) (int, any, error) {
	id, err := pathID(req.r)
	if err != nil {
		return 0, nil, err
	}
	after, err := queryInt(req.r, "after_seq")
	if err != nil {
		return 0, nil, err
	}
	before, err := queryInt(req.r, "before_seq")
	if err != nil {
		return 0, nil, err
	}
	limit, err := queryInt(req.r, "limit")
	if err != nil {
		return 0, nil, err
	}
	if limit == 0 {
		limit = storage.DefaultPageSize
	}
	limit = min(limit, maxMessagesLimit)
	if _, err := a.cfg.Store.Conversation(req.ctx, id); err != nil {
		return 0, nil, fromStorage(err)
	}
	msgs, err := a.cfg.Store.Messages(req.ctx, id, storage.Page{AfterSeq: after, BeforeSeq: before, Limit: int(limit) + 1})
	if err != nil {
		return 0, nil, fromStorage(err)
	}
	hasMore := len(msgs) > int(limit)
	if hasMore {
		if before != 0 && after == 0 {
			msgs = msgs[1:]
		} else {
			msgs = msgs[:limit]
		}
	}
	out := make([]messageJSON, len(msgs))
	for i, m := range msgs {
		out[i] = toMessageJSON(m)
	}
	var from, to int64
	if len(msgs) > 0 {
		from, to = msgs[0].Seq, msgs[len(msgs)-1].Seq
		if from == 1 {
			from = 0
		}
	}
	events, err := a.cfg.Store.Events(req.ctx, id, from, to)
	if err != nil {
		return 0, nil, fromStorage(err)
	}
	evs := make([]wire.EventJSON, len(events))
	for i, e := range events {
		evs[i] = actors.StorageEventToWire(e).ToJSON()
	}
	return http.StatusOK, map[string]any{"messages": out, "has_more": hasMore, "events": evs}, nil
}

// postMessage: POST /api/v1/conversations/{id}/messages with {"message",
// "client_msg_id", "based_on_seq", "force"}: stored and delivered through the
// conversation's grain exactly like a staff reply over the socket.
func (a *API) postMessage(req *request) (int, any, error) {
	id, err := pathID(req.r)
	if err != nil {
		return 0, nil, err
	}
	var body map[string]json.RawMessage
	if err := readBody(req.r, &body); err != nil {
		return 0, nil, err
	}
	for k := range body {
		switch k {
		case "message", "client_msg_id", "based_on_seq", "force":
		default:
			return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "unknown field "+strconv.Quote(k))
		}
	}
	// The WebSocket's decoder checks the fields exactly as for a frame.
	frame, _ := json.Marshal(body)
	in, err := a.decoder.Decode(frame)
	if err != nil {
		we := err.(*wire.Error)
		return 0, nil, errorf(http.StatusBadRequest, we.Code, we.Message)
	}
	based := in.BasedOnSeq
	if in.Force {
		based = 0
	}
	msg, dup, err := a.cfg.Desk.Post(req.ctx, id, actors.PostInput{
		Sender: req.user, Body: in.Message, ClientMsgID: in.ClientMsgID, BasedOnSeq: based,
	})
	if err != nil {
		return 0, nil, fromDesk(err)
	}
	return http.StatusCreated, map[string]any{"message": toMessageJSON(msg), "duplicate": dup}, nil
}

// markRead: POST /api/v1/conversations/{id}/read with {"seq": n}.
func (a *API) markRead(req *request) (int, any, error) {
	id, err := pathID(req.r)
	if err != nil {
		return 0, nil, err
	}
	var body struct {
		Seq *int64 `json:"seq"`
	}
	if err := readBody(req.r, &body); err != nil {
		return 0, nil, err
	}
	if body.Seq == nil || *body.Seq < 0 {
		return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "seq must be a non-negative integer")
	}
	if _, err := a.cfg.Desk.MarkRead(req.ctx, req.user.ID, id, *body.Seq); err != nil {
		return 0, nil, fromStorage(err)
	}
	return http.StatusNoContent, nil, nil
}

// visitorOf is e's visitor: who they are, the details their token gave
// (email and ctx) and the page their browser last reported.
func visitorOf(e storage.InboxEntry) wire.Visitor {
	v := wire.Visitor{
		DeskUser: wire.DeskUser{ID: e.UserID, ExternalID: e.UserExternalID, Name: e.UserName},
		Email:    e.UserEmail,
		Context:  e.UserContext,
	}
	if p := e.Page; p != nil {
		v.Page = &wire.VisitorPage{URL: p.URL, Title: p.Title, Browser: p.UserAgent, UpdatedAt: p.At}
	}
	return v
}
