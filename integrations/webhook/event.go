package webhook

import (
	"encoding/json"
	"fmt"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// Envelope is every event's body: {"id", "type", "created_at", "data"}.
type Envelope struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt string          `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// ConversationJSON is a conversation in an event: the REST API's
// Conversation without the fields that depend on who asks (unread, read_seq,
// last_message, visitor), with created_at.
type ConversationJSON struct {
	ID            int64          `json:"id"`
	User          wire.DeskUser  `json:"user"`
	Status        string         `json:"status"`
	Assignee      *wire.DeskUser `json:"assignee"`
	LastSeq       int64          `json:"last_seq"`
	LastMessageAt *string        `json:"last_message_at"`
	CreatedAt     string         `json:"created_at"`
}

// MessageJSON is the v1 message object (docs/PROTOCOL.md), as the REST API
// shows it.
type MessageJSON = wire.MessageJSON

// ReadJSON is a moved read mark.
type ReadJSON struct {
	User  wire.DeskUser `json:"user"`
	Staff bool          `json:"staff"`
	Seq   int64         `json:"seq"`
}

// Data is every event's data; each type sets some of it (docs/WEBHOOKS.md).
type Data struct {
	Conversation ConversationJSON `json:"conversation"`
	Message      *MessageJSON     `json:"message,omitempty"`
	Event        *wire.EventJSON  `json:"event,omitempty"`
	Read         *ReadJSON        `json:"read,omitempty"`
}

// Encode is the body of an event: a storage.WebhookEncoder.
func Encode(it storage.WebhookItem) ([]byte, error) {
	d := Data{Conversation: conversationJSON(it.Conversation)}
	switch it.Type {
	case storage.WebhookConversationCreated:
	case storage.WebhookMessageCreated:
		if it.Message == nil {
			return nil, fmt.Errorf("webhook: %s %s without its message", it.Type, it.ID)
		}
		m := messageJSON(*it.Message)
		d.Message = &m
	case storage.WebhookConversationUpdated, storage.WebhookNoteCreated:
		if it.Event == nil {
			return nil, fmt.Errorf("webhook: %s %s without its event", it.Type, it.ID)
		}
		e := eventJSON(*it.Event)
		d.Event = &e
	case storage.WebhookConversationRead:
		if it.Read == nil {
			return nil, fmt.Errorf("webhook: %s %s without its read mark", it.Type, it.ID)
		}
		d.Read = &ReadJSON{User: deskUser(it.Read.Reader), Staff: it.Read.Staff, Seq: it.Read.Seq}
	default:
		return nil, fmt.Errorf("webhook: unknown event type %q", it.Type)
	}
	data, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("webhook: encode %s: %w", it.ID, err)
	}
	return json.Marshal(Envelope{ID: it.ID, Type: it.Type, CreatedAt: it.CreatedAt.UTC().Format(wire.TimeFormat), Data: data})
}

func deskUser(u storage.UserRef) wire.DeskUser {
	return wire.DeskUser{ID: u.ID, ExternalID: u.ExternalID, Name: u.Name}
}

func conversationJSON(c storage.WebhookConversation) ConversationJSON {
	out := ConversationJSON{ID: c.ID, User: deskUser(c.User), Status: c.Status, LastSeq: c.LastSeq,
		CreatedAt: c.CreatedAt.UTC().Format(wire.TimeFormat)}
	if c.Assignee != nil {
		a := deskUser(*c.Assignee)
		out.Assignee = &a
	}
	if c.LastMessageAt != nil {
		t := c.LastMessageAt.UTC().Format(wire.TimeFormat)
		out.LastMessageAt = &t
	}
	return out
}

func messageJSON(m storage.Message) MessageJSON {
	return MessageJSON{ID: m.ID, ConversationID: m.ConversationID, Seq: m.Seq, Message: m.Body, SenderID: m.SenderID,
		SenderName: m.SenderName, SenderIsAdmin: m.SenderIsAdmin, CreatedAt: m.CreatedAt.UTC().Format(wire.TimeFormat), ClientMsgID: wire.PublicClientMsgID(m.ClientMsgID)}
}

func eventJSON(e storage.Event) wire.EventJSON {
	we := wire.Event{ID: e.ID, ConversationID: e.ConversationID, AfterSeq: e.AfterSeq, Kind: e.Kind, Status: e.Status,
		Actor: deskUser(e.Actor), CreatedAt: e.CreatedAt, Body: e.Body}
	if e.Assignee != nil {
		a := deskUser(*e.Assignee)
		we.Assignee = &a
	}
	return we.ToJSON()
}
