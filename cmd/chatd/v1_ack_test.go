package main

import (
	"testing"
)

// A grainchat.v1 post is acknowledged with its seq, reaches staff with an
// inbox_update, is acknowledged again as a duplicate when resent with the
// same client_msg_id (and not stored twice), and history holds it once.
func TestV1AckDuplicateAndHistory(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	admin := dial(t, s, "staff-1", "Ann", true, true)
	v := dial(t, s, "user-1", "Alice", false, true)
	if err := v.Send(map[string]any{"message": "hi", "client_msg_id": "c1"}); err != nil {
		t.Fatal(err)
	}
	ack, _ := waitType(t, v, 0, "ack")
	m := waitMessage(t, v, "hi")
	if ack.Int("seq") != 1 || m.Int("seq") != 1 || ack.String("client_msg_id") != "c1" {
		t.Fatalf("ack %s msg %s", ack.Raw, m.Raw)
	}
	waitMessage(t, admin, "hi")
	waitType(t, admin, 0, "inbox_update")
	if err := v.Send(map[string]any{"message": "hi", "client_msg_id": "c1"}); err != nil {
		t.Fatal(err)
	}
	_, i := waitType(t, v, 0, "ack")
	ack2, _ := waitType(t, v, i+1, "ack")
	if ack2.Int("seq") != 1 || ack2.Fields["duplicate"] != true {
		t.Fatalf("second ack %s", ack2.Raw)
	}
	if err := v.Send(map[string]any{"type": "history"}); err != nil {
		t.Fatal(err)
	}
	h, _ := waitType(t, v, 0, "history")
	msgs := historyMessages(t, h)
	if len(msgs) != 1 || msgs[0].Int("seq") != 1 || msgs[0].String("message") != "hi" || h.Fields["has_more"] != false {
		t.Fatalf("history %s, want the one message", h.Raw)
	}
	if n := len(messagesIn(admin, 0, m.Int("conversation_id"))); n != 1 {
		t.Fatalf("staff received the message %d times, want once:%s", n, dump(admin))
	}
}
