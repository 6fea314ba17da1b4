package main

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// Every acknowledged message survives a graceful restart on the same
// database with its id, seq, body, sender and time; numbering continues.
func TestRestartKeepsHistory(t *testing.T) {
	db := newDatabase(t)
	s1 := startServer(t, "--database-url", db)
	v := dial(t, s1, "user-1", "Alice", false, true)
	admin := dial(t, s1, "staff-1", "Ann", true, true)
	conv, alice, ann := convOf(t, v), userID(t, v), userID(t, admin)

	type stored struct {
		want wantMessage
		ack  wsclient.Frame
	}
	var acked []stored
	for i := 1; i <= 6; i++ {
		text, id := fmt.Sprintf("before restart %d", i), fmt.Sprintf("r%d", i)
		w := wantMessage{conv: conv, seq: int64(i), text: text, senderID: alice, senderName: "Alice", clientMsgID: id}
		by, target := v, int64(0)
		if i%2 == 0 {
			by, target = admin, conv
			w.senderID, w.senderName, w.senderIsAdmin = ann, "Ann", true
		}
		acked = append(acked, stored{w, post(t, by, target, text, id)})
	}
	s1.Stop()
	for name, c := range map[string]*wsclient.Client{"visitor": v, "admin": admin} {
		if _, err := c.WaitClosed(ctxT(t, waitTimeout)); err != nil {
			t.Fatalf("%s still connected after Stop: %v", name, err)
		}
	}

	s2 := startServer(t, "--database-url", db)
	v2 := dial(t, s2, "user-1", "Alice", false, true)
	if w := welcomeOf(t, v2); w.Int("conversation_id") != conv || w.Int("last_seq") != 6 || userID(t, v2) != alice {
		t.Fatalf("welcome after restart %s, want conversation %d, user %d, last_seq 6", w.Raw, conv, alice)
	}
	h := history(t, v2, map[string]any{})
	msgs := historyMessages(t, h)
	if len(msgs) != len(acked) || h.Fields["has_more"] != false {
		t.Fatalf("history after restart %s, want the %d acknowledged messages", h.Raw, len(acked))
	}
	for i, m := range msgs {
		a := acked[i]
		id := checkV1Message(t, m, "", a.want)
		if id != a.ack.Int("id") || m.String("created_at") != a.ack.String("created_at") {
			t.Errorf("seq %d after restart: id %d created_at %s; its ack said id %d created_at %s",
				i+1, id, m.String("created_at"), a.ack.Int("id"), a.ack.String("created_at"))
		}
	}

	// The admin's inbox is rebuilt from the store.
	admin2 := dial(t, s2, "staff-1", "Ann", true, true)
	inbox, _ := waitType(t, admin2, 0, "inbox")
	convs, _ := inbox.Fields["conversations"].([]any)
	if len(convs) != 1 {
		t.Fatalf("inbox after restart %s, want one conversation", inbox.Raw)
	}
	e := convs[0].(map[string]any)
	lm, _ := e["last_message"].(map[string]any)
	if e["conversation_id"] != float64(conv) || e["last_seq"] != float64(6) || lm["message"] != "before restart 6" {
		t.Errorf("inbox entry after restart %v, want conversation %d last_seq 6 last_message %q", e, conv, "before restart 6")
	}

	// Numbering continues; a resend of a pre-restart message is still a duplicate.
	ack := post(t, v2, 0, "after restart", "r7")
	if ack.Int("seq") != 7 || ack.Int("id") <= acked[5].ack.Int("id") || ack.Fields["duplicate"] != false {
		t.Errorf("first ack after restart %s, want seq 7, a new id", ack.Raw)
	}
	dup := post(t, v2, 0, "before restart 1", "r1")
	if dup.Int("seq") != 1 || dup.Int("id") != acked[0].ack.Int("id") || dup.Fields["duplicate"] != true {
		t.Errorf("resend of r1 after restart: ack %s, want seq 1 id %d duplicate true", dup.Raw, acked[0].ack.Int("id"))
	}
	post(t, admin2, conv, "marker", "m")
	for name, c := range map[string]*wsclient.Client{"visitor": v2, "admin": admin2} {
		waitMsg(t, c, conv, "marker")
		if got := seqsOf(messagesIn(c, 0, conv)); !reflect.DeepEqual(got, []int64{7, 8}) {
			t.Errorf("%s received seqs %v after restart, want [7 8]", name, got)
		}
	}
}

// A graceful stop closes every open socket, of both dialects, with 1001.
func TestGracefulShutdownCloses1001(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	clients := map[string]*wsclient.Client{
		"v1 visitor":   dial(t, s, "user-1", "Alice", false, true),
		"v1 tab 2":     dial(t, s, "user-1", "Alice", false, true),
		"seed visitor": dial(t, s, "user-2", "Bruno", false, false),
		"v1 admin":     dial(t, s, "staff-1", "Ann", true, true),
		"seed admin":   dial(t, s, "staff-2", "Bob", true, false),
	}
	s.Stop()
	for name, c := range clients {
		cl, err := c.WaitClosed(ctxT(t, waitTimeout))
		if err != nil {
			t.Errorf("%s: still open after Stop", name)
			continue
		}
		if cl.Code != 1001 {
			t.Errorf("%s: closed with %d %q (%v), want 1001", name, cl.Code, cl.Reason, cl.Err)
		}
	}
	if _, err := wsclient.Dial(ctxT(t, waitTimeout), s.URL(), wsclient.Options{Token: mint(t, "user-3", "Carla", false)}); err == nil {
		t.Errorf("a stopped server accepted a connection")
	}
}
