package main

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// Two admins answer one conversation; the visitor has two v1 tabs. Every
// client sees every message of the conversation exactly once, in seq order,
// with the same id, and each sender gets exactly one ack per message.
func TestV1TwoAdminsAndTwoTabsSeeEveryReply(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	tab1 := dial(t, s, "user-1", "Alice", false, true)
	tab2 := dial(t, s, "user-1", "Alice", false, true)
	ann := dial(t, s, "staff-1", "Ann", true, true)
	bob := dial(t, s, "staff-2", "Bob", true, true)

	conv := convOf(t, tab1)
	if c2 := convOf(t, tab2); c2 != conv {
		t.Fatalf("two tabs of one visitor got conversations %d and %d", conv, c2)
	}
	alice, annID, bobID := userID(t, tab1), userID(t, ann), userID(t, bob)
	if userID(t, tab2) != alice {
		t.Fatalf("two tabs of one visitor got different user ids")
	}

	// One message at a time, each acknowledged before the next: seqs 1..4.
	type sent struct {
		by   *wsclient.Client
		conv int64
		want wantMessage
		id   int64
	}
	msgs := []*sent{
		{by: tab1, want: wantMessage{text: "help please", senderID: alice, senderName: "Alice", clientMsgID: "v-1"}},
		{by: ann, conv: conv, want: wantMessage{text: "hello from Ann", senderID: annID, senderName: "Ann", senderIsAdmin: true, clientMsgID: "a-1"}},
		{by: bob, conv: conv, want: wantMessage{text: "hello from Bob", senderID: bobID, senderName: "Bob", senderIsAdmin: true, clientMsgID: "b-1"}},
		{by: tab2, want: wantMessage{text: "thanks both", senderID: alice, senderName: "Alice", clientMsgID: "v-2"}}, // the marker
	}
	for i, m := range msgs {
		ack := post(t, m.by, m.conv, m.want.text, m.want.clientMsgID)
		m.want.conv, m.want.seq = conv, int64(i+1)
		if ack.Int("seq") != m.want.seq || ack.Int("conversation_id") != conv || ack.Int("id") <= 0 || ack.Fields["duplicate"] != false {
			t.Fatalf("ack %s, want seq %d in conversation %d, duplicate false", ack.Raw, m.want.seq, conv)
		}
		if !wireTime.MatchString(ack.String("created_at")) {
			t.Errorf("ack created_at %q is not RFC 3339 UTC with microseconds", ack.String("created_at"))
		}
		m.id = ack.Int("id")
	}

	clients := map[string]*wsclient.Client{"tab1": tab1, "tab2": tab2, "ann": ann, "bob": bob}
	for name, c := range clients {
		waitMsg(t, c, conv, "thanks both")
		got := messagesIn(c, 0, conv)
		if len(got) != len(msgs) {
			t.Errorf("%s received %d messages, want %d:%s", name, len(got), len(msgs), dump(c))
			continue
		}
		for i, f := range got {
			if id := checkV1Message(t, f, "message", msgs[i].want); id != msgs[i].id {
				t.Errorf("%s: message seq %d has id %d, its ack said %d", name, i+1, id, msgs[i].id)
			}
		}
	}
	// Each sender has exactly one ack per message it sent, and nobody else's.
	wantAcks := map[string][]string{"tab1": {"v-1"}, "tab2": {"v-2"}, "ann": {"a-1"}, "bob": {"b-1"}}
	for name, c := range clients {
		var got []string
		for _, a := range framesOfType(c, 0, "ack") {
			got = append(got, a.String("client_msg_id"))
		}
		if !reflect.DeepEqual(got, wantAcks[name]) {
			t.Errorf("%s got acks %v, want %v", name, got, wantAcks[name])
		}
	}
	// Every admin got one inbox_update per message, in seq order.
	for name, c := range map[string]*wsclient.Client{"ann": ann, "bob": bob} {
		if got := inboxUpdateSeqs(t, c, conv); !reflect.DeepEqual(got, seqRange(1, 4)) {
			t.Errorf("%s got inbox_update last_seqs %v, want %v:%s", name, got, seqRange(1, 4), dump(c))
		}
	}
	// No error frame anywhere.
	for name, c := range clients {
		if errs := framesOfType(c, 0, "error"); len(errs) > 0 {
			t.Errorf("%s got error frames, the first: %s", name, errs[0].Raw)
		}
	}
}

// A visitor with two tabs closes one: the other keeps receiving every
// message, in both dialects.
func TestTabCloseLeavesOtherTabReceiving(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	admin := dial(t, s, "staff-1", "Ann", true, true)
	for _, v1 := range []bool{true, false} {
		t.Run(fmt.Sprintf("v1=%v", v1), func(t *testing.T) {
			sub := fmt.Sprintf("tabs-%v", v1)
			tab1 := dial(t, s, sub, "Tess", false, v1)
			tab2 := dial(t, s, sub, "Tess", false, v1)

			// Learn the conversation: the visitor writes first, the admin sees it.
			firstText := "first from " + sub
			send(t, tab1, map[string]any{"message": firstText})
			conv := waitMessage(t, admin, firstText).Int("conversation_id")
			waitMsg(t, tab2, conv, firstText)

			tab1.Close()
			if cl, err := tab1.WaitClosed(ctxT(t, waitTimeout)); err != nil {
				t.Fatalf("tab1 did not close: %v", err)
			} else if cl.Code != 0 && cl.Code != 1000 && cl.Code != 1005 {
				t.Fatalf("tab1 closed with %d %q", cl.Code, cl.Reason)
			}
			// Three replies, each stored before the next, then the other tab writes.
			texts := []string{"after close 1", "after close 2", "after close 3"}
			for i, text := range texts {
				post(t, admin, conv, text, fmt.Sprintf("%s-%d", sub, i))
			}
			send(t, tab2, map[string]any{"message": "still here"})
			waitMsg(t, tab2, conv, "still here")
			want := append([]string{firstText}, texts...)
			want = append(want, "still here")
			got := messagesIn(tab2, 0, conv)
			if !reflect.DeepEqual(textsOf(got), want) {
				t.Errorf("tab2 received %q, want %q:%s", textsOf(got), want, dump(tab2))
			}
			if v1 && !reflect.DeepEqual(seqsOf(got), seqRange(1, 5)) {
				t.Errorf("tab2 received seqs %v, want 1..5", seqsOf(got))
			}
			if !v1 {
				for _, f := range tab2.Frames() {
					checkSeedFrame(t, f)
				}
			}
			waitMsg(t, admin, conv, "still here")
			if got := messagesIn(admin, 0, conv); !reflect.DeepEqual(textsOf(got), want) {
				t.Errorf("admin received %q, want %q", textsOf(got), want)
			}
		})
	}
}
