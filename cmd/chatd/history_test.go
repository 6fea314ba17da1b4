package main

import (
	"fmt"
	"reflect"
	"testing"
)

// History pages: with after_seq the oldest `limit` after it, with only
// before_seq the newest `limit` before it, with neither the oldest; has_more
// tells whether the page was cut. Staff read any conversation; an unknown one
// is conversation_not_found, another visitor's is forbidden.
func TestV1HistoryPages(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	v := dial(t, s, "user-1", "Alice", false, true)
	other := dial(t, s, "user-2", "Bruno", false, true)
	admin := dial(t, s, "staff-1", "Ann", true, true)
	conv, alice := convOf(t, v), userID(t, v)

	ids := map[int64]int64{} // seq → id
	for i := 1; i <= 7; i++ {
		ack := post(t, v, 0, fmt.Sprintf("m%d", i), fmt.Sprintf("c%d", i))
		if ack.Int("seq") != int64(i) {
			t.Fatalf("ack %s, want seq %d", ack.Raw, i)
		}
		ids[int64(i)] = ack.Int("id")
	}

	cases := []struct {
		name    string
		client  string
		req     map[string]any
		seqs    []int64
		hasMore bool
	}{
		{"oldest 3", "visitor", map[string]any{"limit": 3}, seqRange(1, 3), true},
		{"after 3", "visitor", map[string]any{"after_seq": 3, "limit": 3}, seqRange(4, 6), true},
		{"after 6", "visitor", map[string]any{"after_seq": 6, "limit": 3}, seqRange(7, 7), false},
		{"after 7", "visitor", map[string]any{"after_seq": 7, "limit": 3}, nil, false},
		{"before 7", "visitor", map[string]any{"before_seq": 7, "limit": 3}, seqRange(4, 6), true},
		{"before 4", "visitor", map[string]any{"before_seq": 4, "limit": 3}, seqRange(1, 3), false},
		{"before 8", "visitor", map[string]any{"before_seq": 8, "limit": 2}, seqRange(6, 7), true},
		{"default limit", "visitor", map[string]any{}, seqRange(1, 7), false},
		{"own conversation named", "visitor", map[string]any{"conversation_id": conv, "after_seq": 5}, seqRange(6, 7), false},
		{"limit over 100", "visitor", map[string]any{"limit": 1000}, seqRange(1, 7), false},
		{"admin, after 5", "admin", map[string]any{"conversation_id": conv, "after_seq": 5}, seqRange(6, 7), false},
		{"admin, oldest 2", "admin", map[string]any{"conversation_id": conv, "limit": 2}, seqRange(1, 2), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := v
			if tc.client == "admin" {
				c = admin
			}
			h := history(t, c, tc.req)
			if h.Type() != "history" {
				t.Fatalf("history %v: got %s", tc.req, h.Raw)
			}
			if h.Int("conversation_id") != conv {
				t.Errorf("history %s, want conversation_id %d", h.Raw, conv)
			}
			if h.Fields["has_more"] != tc.hasMore {
				t.Errorf("history %v: has_more %v, want %v", tc.req, h.Fields["has_more"], tc.hasMore)
			}
			msgs := historyMessages(t, h)
			if got := seqsOf(msgs); !reflect.DeepEqual(got, tc.seqs) && !(len(got) == 0 && len(tc.seqs) == 0) {
				t.Fatalf("history %v: seqs %v, want %v", tc.req, got, tc.seqs)
			}
			for _, m := range msgs {
				seq := m.Int("seq")
				id := checkV1Message(t, m, "", wantMessage{conv: conv, seq: seq, text: fmt.Sprintf("m%d", seq),
					senderID: alice, senderName: "Alice", clientMsgID: fmt.Sprintf("c%d", seq)})
				if id != ids[seq] {
					t.Errorf("seq %d has id %d, its ack said %d", seq, id, ids[seq])
				}
			}
		})
	}

	t.Run("admin, unknown conversation", func(t *testing.T) {
		e := history(t, admin, map[string]any{"conversation_id": 999999})
		if e.Type() != "error" || e.String("code") != "conversation_not_found" || e.Int("conversation_id") != 999999 {
			t.Errorf("got %s, want an error conversation_not_found for conversation 999999", e.Raw)
		}
	})
	t.Run("admin, no conversation", func(t *testing.T) {
		e := history(t, admin, map[string]any{})
		if e.Type() != "error" || e.String("code") != "conversation_required" {
			t.Errorf("got %s, want an error conversation_required", e.Raw)
		}
	})
	t.Run("visitor, other conversation", func(t *testing.T) {
		e := history(t, other, map[string]any{"conversation_id": conv})
		if e.Type() != "error" || e.String("code") != "forbidden" {
			t.Errorf("got %s, want an error forbidden", e.Raw)
		}
		if got := messagesIn(other, 0, conv); len(got) != 0 {
			t.Errorf("the other visitor received %q", textsOf(got))
		}
	})
	t.Run("visitor, empty conversation", func(t *testing.T) {
		h := history(t, other, map[string]any{})
		if h.Type() != "history" || h.Fields["has_more"] != false || len(historyMessages(t, h)) != 0 {
			t.Errorf("got %s, want an empty history", h.Raw)
		}
	})
	t.Run("bad fields", func(t *testing.T) {
		for _, req := range []map[string]any{{"after_seq": -1}, {"before_seq": "x"}, {"after_seq": 1.5}, {"limit": "ten"}} {
			e := history(t, v, req)
			if e.Type() != "error" || e.String("code") != "invalid_request" {
				t.Errorf("history %v: got %s, want invalid_request", req, e.Raw)
			}
		}
	})
}
