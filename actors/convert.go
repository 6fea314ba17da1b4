package actors

import (
	"time"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

func toProto(m storage.Message) *chatpb.ChatMessage {
	return &chatpb.ChatMessage{
		Id:                 m.ID,
		ConversationId:     m.ConversationID,
		Seq:                m.Seq,
		SenderId:           m.SenderID,
		SenderName:         m.SenderName,
		SenderIsAdmin:      m.SenderIsAdmin,
		Body:               m.Body,
		ClientMsgId:        m.ClientMsgID,
		CreatedAtUnixMicro: m.CreatedAt.UnixMicro(),
	}
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func protoToWire(m *chatpb.ChatMessage) wire.Message {
	return wire.Message{
		ID:             m.GetId(),
		ConversationID: m.GetConversationId(),
		Seq:            m.GetSeq(),
		SenderID:       m.GetSenderId(),
		SenderName:     m.GetSenderName(),
		SenderIsAdmin:  m.GetSenderIsAdmin(),
		Body:           m.GetBody(),
		ClientMsgID:    wire.PublicClientMsgID(m.GetClientMsgId()),
		CreatedAt:      fromMicros(m.GetCreatedAtUnixMicro()),
	}
}

func storageToWire(m storage.Message) wire.Message {
	return wire.Message{
		ID:             m.ID,
		ConversationID: m.ConversationID,
		Seq:            m.Seq,
		SenderID:       m.SenderID,
		SenderName:     m.SenderName,
		SenderIsAdmin:  m.SenderIsAdmin,
		Body:           m.Body,
		ClientMsgID:    wire.PublicClientMsgID(m.ClientMsgID),
		CreatedAt:      m.CreatedAt,
	}
}

// newDelivery encodes m once for every dialect.
func newDelivery(m *chatpb.ChatMessage) *chatpb.Delivery {
	w := protoToWire(m)
	return &chatpb.Delivery{Message: m, SeedFrame: wire.SeedMessageFrame(w), V1Frame: wire.MessageFrame(w)}
}

func inboxEntryToProto(e storage.InboxEntry) *chatpb.InboxEntry {
	out := &chatpb.InboxEntry{
		ConversationId: e.ConversationID,
		UserId:         e.UserID,
		UserExternalId: e.UserExternalID,
		UserName:       e.UserName,
		LastSeq:        e.LastSeq,
		Status:         e.Status,
		Assignee:       deskUserToProto(e.Assignee),
		Team:           e.Team,
	}
	if e.LastMessageAt != nil {
		out.LastMessageAtUnixMicro = e.LastMessageAt.UnixMicro()
	}
	if e.LastMessage != nil {
		out.LastMessage = toProto(*e.LastMessage)
	}
	return out
}

func inboxEntryToWire(e *chatpb.InboxEntry) wire.InboxEntry {
	out := wire.InboxEntry{
		ConversationID: e.GetConversationId(),
		UserID:         e.GetUserId(),
		UserExternalID: e.GetUserExternalId(),
		UserName:       e.GetUserName(),
		LastSeq:        e.GetLastSeq(),
		LastMessageAt:  fromMicros(e.GetLastMessageAtUnixMicro()),
		Status:         e.GetStatus(),
		Assignee:       deskUserToWire(e.GetAssignee()),
		Team:           e.GetTeam(),
	}
	if e.GetLastMessage() != nil {
		m := protoToWire(e.GetLastMessage())
		out.LastMessage = &m
	}
	return out
}

// codeFromStorage translates a storage error code into a wire error code.
func codeFromStorage(err error) string {
	switch storage.ErrorCode(err) {
	case storage.ENOTFOUND:
		return wire.CodeConversationNotFound
	case storage.EINVALID:
		return wire.CodeInvalidText
	case storage.EUNAVAILABLE:
		return wire.CodeUnavailable
	default:
		return wire.CodeInternal
	}
}

// messageForCode is the client-visible text for an error code; internal detail
// stays in the logs.
func messageForCode(code string) string {
	switch code {
	case wire.CodeConversationNotFound:
		return "no such conversation"
	case wire.CodeInvalidText:
		return "the message text is not acceptable"
	case wire.CodeUnavailable:
		return "the chat is temporarily unavailable; retry with the same client_msg_id"
	default:
		return "internal error"
	}
}
