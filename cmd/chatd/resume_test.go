package main

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// Resuming after a reconnect (PROTOCOL.md "Resuming after a reconnect"): the
// visitor keeps the last seq it saw (L = 3), reconnects, reads welcome.last_seq
// (S = 6), fetches history after L and then receives live messages from S+1:
// nothing is missed and nothing is doubled.
func TestV1ReconnectResumeWithoutGapOrDuplicate(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	admin := dial(t, s, "staff-1", "Ann", true, true)
	v := dial(t, s, "user-1", "Alice", false, true)
	conv := convOf(t, v)
	if w := welcomeOf(t, v); w.Int("last_seq") != 0 {
		t.Fatalf("first welcome %s, want last_seq 0", w.Raw)
	}

	var seen []int64 // every seq the visitor displayed: live, then history, then live
	for i := 1; i <= 3; i++ {
		post(t, v, 0, fmt.Sprintf("m%d", i), fmt.Sprintf("v%d", i))
	}
	waitMsg(t, v, conv, "m3")
	first := messagesIn(v, 0, conv)
	if !reflect.DeepEqual(seqsOf(first), seqRange(1, 3)) {
		t.Fatalf("first connection received seqs %v, want 1..3:%s", seqsOf(first), dump(v))
	}
	seen = append(seen, seqsOf(first)...)
	last := seen[len(seen)-1]
	v.Close()
	if _, err := v.WaitClosed(ctxT(t, waitTimeout)); err != nil {
		t.Fatal(err)
	}

	// Meanwhile the admin answers three times.
	for i := 4; i <= 6; i++ {
		if ack := post(t, admin, conv, fmt.Sprintf("m%d", i), fmt.Sprintf("a%d", i)); ack.Int("seq") != int64(i) {
			t.Fatalf("ack %s, want seq %d", ack.Raw, i)
		}
	}

	v2 := dial(t, s, "user-1", "Alice", false, true)
	w := welcomeOf(t, v2)
	if w.Int("conversation_id") != conv || w.Int("last_seq") != 6 {
		t.Fatalf("welcome after reconnect %s, want conversation_id %d last_seq 6", w.Raw, conv)
	}
	// History after L, repeated while has_more.
	var fetched []wsclient.Frame
	for after := last; ; {
		h := history(t, v2, map[string]any{"after_seq": after, "limit": 2})
		if h.Type() != "history" {
			t.Fatalf("history: %s", h.Raw)
		}
		page := historyMessages(t, h)
		fetched = append(fetched, page...)
		if h.Fields["has_more"] != true {
			break
		}
		if len(page) == 0 || len(fetched) > 10 {
			t.Fatalf("history page %s says has_more but gives nothing new", h.Raw)
		}
		after = page[len(page)-1].Int("seq")
	}
	if !reflect.DeepEqual(seqsOf(fetched), seqRange(4, 6)) || !reflect.DeepEqual(textsOf(fetched), []string{"m4", "m5", "m6"}) {
		t.Fatalf("history after %d gave seqs %v %q, want 4..6", last, seqsOf(fetched), textsOf(fetched))
	}
	seen = append(seen, seqsOf(fetched)...)

	// Live messages continue at S+1, each exactly once, in order.
	post(t, admin, conv, "m7", "a7")
	post(t, v2, 0, "m8", "v8")
	post(t, admin, conv, "m9 marker", "a9")
	waitMsg(t, v2, conv, "m9 marker")
	live := messagesIn(v2, 0, conv)
	if !reflect.DeepEqual(seqsOf(live), seqRange(7, 9)) {
		t.Fatalf("live messages after the reconnect have seqs %v, want 7..9 (nothing older, nothing twice):%s", seqsOf(live), dump(v2))
	}
	seen = append(seen, seqsOf(live)...)
	if !reflect.DeepEqual(seen, seqRange(1, 9)) {
		t.Errorf("the visitor saw seqs %v, want 1..9 without gap or duplicate", seen)
	}

	// The admin, which stayed connected, saw all nine once.
	waitMsg(t, admin, conv, "m9 marker")
	if got := seqsOf(messagesIn(admin, 0, conv)); !reflect.DeepEqual(got, seqRange(1, 9)) {
		t.Errorf("admin saw seqs %v, want 1..9", got)
	}

	// An admin reconnecting resumes the same way from its inbox entry.
	admin.Close()
	post(t, v2, 0, "m10", "v10")
	admin2 := dial(t, s, "staff-1", "Ann", true, true)
	inbox, _ := waitType(t, admin2, 0, "inbox")
	var entry map[string]any
	for _, e := range inbox.Fields["conversations"].([]any) {
		if m := e.(map[string]any); m["conversation_id"] == float64(conv) {
			entry = m
		}
	}
	if entry == nil || entry["last_seq"] != float64(10) {
		t.Fatalf("inbox after reconnect %s, want conversation %d with last_seq 10", inbox.Raw, conv)
	}
	h := history(t, admin2, map[string]any{"conversation_id": conv, "after_seq": 9})
	if got := seqsOf(historyMessages(t, h)); !reflect.DeepEqual(got, []int64{10}) {
		t.Errorf("admin history after 9: seqs %v, want [10]", got)
	}
	post(t, v2, 0, "m11", "v11")
	waitMsg(t, admin2, conv, "m11")
	if got := seqsOf(messagesIn(admin2, 0, conv)); !reflect.DeepEqual(got, []int64{11}) {
		t.Errorf("reconnected admin received live seqs %v, want [11]", got)
	}
}
