package webhook_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/grainchat/grainchat/integrations/webhook"
	"github.com/grainchat/grainchat/storage"
)

func TestEncode(t *testing.T) {
	at := time.Date(2026, 12, 5, 10, 0, 0, 123456000, time.UTC)
	conv := storage.WebhookConversation{ID: 42, User: storage.UserRef{ID: 7, ExternalID: "u-123", Name: "Carl"},
		Status: "open", LastSeq: 12, LastMessageAt: &at, CreatedAt: at.Add(-time.Hour)}
	ann := storage.UserRef{ID: 3, ExternalID: "ann", Name: "Ann"}
	for _, tc := range []struct {
		name string
		item storage.WebhookItem
		want string
	}{
		{"message.created", storage.WebhookItem{ID: "msg_99", Type: storage.WebhookMessageCreated, CreatedAt: at, Conversation: conv,
			Message: &storage.Message{ID: 99, ConversationID: 42, Seq: 12, SenderID: 7, SenderName: "Carl", Body: "Hello <b>", ClientMsgID: "~made.up", CreatedAt: at}},
			`{"id":"msg_99","type":"message.created","created_at":"2026-12-05T10:00:00.123456Z","data":{"conversation":{"id":42,"user":{"id":7,"external_id":"u-123","name":"Carl"},"status":"open","assignee":null,"last_seq":12,"last_message_at":"2026-12-05T10:00:00.123456Z","created_at":"2026-12-05T09:00:00.123456Z"},"message":{"id":99,"conversation_id":42,"seq":12,"message":"Hello \u003cb\u003e","sender_id":7,"sender_name":"Carl","sender_is_admin":false,"created_at":"2026-12-05T10:00:00.123456Z","client_msg_id":""}}}`},
		{"conversation.updated", storage.WebhookItem{ID: "evt_5", Type: storage.WebhookConversationUpdated, CreatedAt: at, Conversation: conv,
			Event: &storage.Event{ID: 5, ConversationID: 42, AfterSeq: 12, Kind: storage.EventAssignee, Assignee: &ann, Actor: ann, CreatedAt: at}},
			`{"id":"evt_5","type":"conversation.updated","created_at":"2026-12-05T10:00:00.123456Z","data":{"conversation":{"id":42,"user":{"id":7,"external_id":"u-123","name":"Carl"},"status":"open","assignee":null,"last_seq":12,"last_message_at":"2026-12-05T10:00:00.123456Z","created_at":"2026-12-05T09:00:00.123456Z"},"event":{"id":5,"kind":"assignee","assignee":{"id":3,"external_id":"ann","name":"Ann"},"actor":{"id":3,"external_id":"ann","name":"Ann"},"after_seq":12,"created_at":"2026-12-05T10:00:00.123456Z"}}}`},
		{"conversation.read", storage.WebhookItem{ID: "read_8", Type: storage.WebhookConversationRead, CreatedAt: at, Conversation: conv,
			Read: &storage.WebhookRead{Reader: ann, Staff: true, Seq: 12}},
			`{"id":"read_8","type":"conversation.read","created_at":"2026-12-05T10:00:00.123456Z","data":{"conversation":{"id":42,"user":{"id":7,"external_id":"u-123","name":"Carl"},"status":"open","assignee":null,"last_seq":12,"last_message_at":"2026-12-05T10:00:00.123456Z","created_at":"2026-12-05T09:00:00.123456Z"},"read":{"user":{"id":3,"external_id":"ann","name":"Ann"},"staff":true,"seq":12}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := webhook.Encode(tc.item)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Fatalf("Encode =\n%s\nwant\n%s", b, tc.want)
			}
			var env webhook.Envelope
			if err := json.Unmarshal(b, &env); err != nil || env.ID != tc.item.ID || env.Type != tc.item.Type {
				t.Fatalf("envelope %+v, %v", env, err)
			}
		})
	}
	if _, err := webhook.Encode(storage.WebhookItem{ID: "msg_1", Type: storage.WebhookMessageCreated}); err == nil {
		t.Error("Encode of a message.created without its message succeeded")
	}
	if _, err := webhook.Encode(storage.WebhookItem{ID: "x", Type: "nope"}); err == nil {
		t.Error("Encode of an unknown type succeeded")
	}
}
