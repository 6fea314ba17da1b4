package main

import (
	"reflect"
	"testing"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// A message resent with the same client_msg_id by the same sender is stored
// once: the resend is acknowledged with the same id and seq and
// "duplicate": true, and is not delivered again. The same client_msg_id from
// another sender is another message.
func TestV1IdempotentResend(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	v := dial(t, s, "user-1", "Alice", false, true)
	admin := dial(t, s, "staff-1", "Ann", true, true)
	conv := convOf(t, v)

	first := post(t, v, 0, "only once", "k1")
	_, firstIdx := waitAck(t, v, 0, "k1")
	again := post(t, v, 0, "only once", "k1")
	_, againIdx := waitAck(t, v, firstIdx+1, "k1")
	if againIdx <= firstIdx {
		t.Fatalf("the resend was not acknowledged a second time:%s", dump(v))
	}
	if first.Fields["duplicate"] != false || again.Fields["duplicate"] != true {
		t.Errorf("duplicate flags: first %s, resend %s; want false then true", first.Raw, again.Raw)
	}
	for _, k := range []string{"id", "seq", "conversation_id", "created_at"} {
		if !reflect.DeepEqual(first.Fields[k], again.Fields[k]) {
			t.Errorf("%s differs: first ack %s, resend ack %s", k, first.Raw, again.Raw)
		}
	}
	if first.Int("seq") != 1 {
		t.Errorf("first ack %s, want seq 1", first.Raw)
	}

	// The same key from the admin is a new message; its own resend is a duplicate.
	adminFirst := post(t, admin, conv, "admin with k1", "k1")
	if adminFirst.Int("seq") != 2 || adminFirst.Fields["duplicate"] != false || adminFirst.Int("id") == first.Int("id") {
		t.Errorf("admin's k1: ack %s, want a new message with seq 2, duplicate false", adminFirst.Raw)
	}
	_, ai := waitAck(t, admin, 0, "k1")
	send(t, admin, map[string]any{"message": "admin with k1", "client_msg_id": "k1", "conversation_id": conv})
	adminAgain, _ := waitAck(t, admin, ai+1, "k1")
	if adminAgain.Int("seq") != 2 || adminAgain.Int("id") != adminFirst.Int("id") || adminAgain.Fields["duplicate"] != true {
		t.Errorf("admin's resend of k1: ack %s, want id %d seq 2 duplicate true", adminAgain.Raw, adminFirst.Int("id"))
	}

	// Marker: everything before it has been delivered.
	marker := post(t, v, 0, "marker", "m1")
	if marker.Int("seq") != 3 {
		t.Errorf("marker ack %s, want seq 3", marker.Raw)
	}
	want := []string{"only once", "admin with k1", "marker"}
	for name, c := range map[string]*wsclient.Client{"visitor": v, "admin": admin} {
		waitMsg(t, c, conv, "marker")
		got := messagesIn(c, 0, conv)
		if !reflect.DeepEqual(textsOf(got), want) || !reflect.DeepEqual(seqsOf(got), seqRange(1, 3)) {
			t.Errorf("%s received %q seqs %v, want %q seqs 1..3:%s", name, textsOf(got), seqsOf(got), want, dump(c))
		}
	}
	// A resend is not news for the inbox either: one inbox_update per message.
	if got := inboxUpdateSeqs(t, admin, conv); !reflect.DeepEqual(got, seqRange(1, 3)) {
		t.Errorf("admin got inbox_update last_seqs %v, want 1..3", got)
	}
	// Exactly the acks sent for: k1 twice and m1 for the visitor, k1 twice for the admin.
	if n := len(framesOfType(v, 0, "ack")); n != 3 {
		t.Errorf("visitor got %d acks, want 3:%s", n, dump(v))
	}
	if n := len(framesOfType(admin, 0, "ack")); n != 2 {
		t.Errorf("admin got %d acks, want 2:%s", n, dump(admin))
	}
	// The store holds three messages.
	h := history(t, v, map[string]any{})
	if got := historyMessages(t, h); !reflect.DeepEqual(textsOf(got), want) {
		t.Errorf("history %s, want %q", h.Raw, want)
	}
}
