package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSeedBodyRoundTrip(t *testing.T) {
	at := time.Unix(0, 1733390000123456789)
	for _, tc := range []struct {
		kind, sender string
		conv, n      int64
		want         streamKey
	}{
		{"seed", "u7", 0, 3, streamKey{idx: 7}},
		{"reply", "a1", 1733390000000042, 12, streamKey{admin: true, idx: 1, conv: 1733390000000042}},
	} {
		s := seedBody(tc.kind, "run1", tc.sender, tc.conv, tc.n, at)
		k, n, got, ok := parseSeedBody(s, "run1")
		if !ok || k != tc.want || n != tc.n || !got.Equal(at) {
			t.Errorf("%q: %+v %d %v %v", s, k, n, got, ok)
		}
		if _, _, _, ok := parseSeedBody(s, "run2"); ok {
			t.Errorf("%q parsed as another run's", s)
		}
	}
	for _, s := range []string{"", "hello", "seed run1 u7 0 t=1", "seed run1 a7 1 t=1", "reply run1 u1 c5 1 t=1",
		"reply run1 a1 5 1 t=1", "seed run1 u7 1", "seed run1 u-1 1 t=1", "msg run1 u7 1 t=1"} {
		if _, _, _, ok := parseSeedBody(s, "run1"); ok {
			t.Errorf("%q parsed", s)
		}
	}
}

func TestSeedOptions(t *testing.T) {
	getenv := func(string) string { return strings.Repeat("s", 32) }
	o, err := parseOptions([]string{"--dialect", "seed", "--users", "200", "--messages", "100"}, getenv)
	if err != nil || o.window != 0 || o.dialect != dialectSeed || o.messages != 100 {
		t.Errorf("seed: %+v, %v", o, err)
	}
	if _, err := parseOptions([]string{"--dialect", "seed", "--window", "0", "--messages", "1"}, getenv); err != nil {
		t.Errorf("seed --window 0: %v", err)
	}
	for _, args := range [][]string{
		{"--dialect", "seed", "--window", "4", "--messages", "1"}, // seed has no acks to window on
		{"--dialect", "seed"}, // unbounded: no --messages, no --rate
		{"--dialect", "seed", "--scenario", "churn", "--messages", "1"},
		{"--dialect", "nope"},
		{"--window", "0"}, // v1 without a window needs --messages
		{"--allow-refused", "2"},
		{"--messages", "-1"},
	} {
		if _, err := parseOptions(args, getenv); err == nil {
			t.Errorf("parseOptions(%q) accepted", args)
		}
	}
}

// TestSeedDeliveryChecks feeds seed connections frames by hand: the checker
// must count a duplicate, a message out of order, a frame of another
// conversation, and what did not arrive.
func TestSeedDeliveryChecks(t *testing.T) {
	b, err := newBench(options{secret: strings.Repeat("s", 32), admins: 1, dialect: dialectSeed})
	if err != nil {
		t.Fatal(err)
	}
	newClient := func(id identity) *client {
		return &client{b: b, id: id, welcomed: make(chan struct{}), closed: make(chan struct{}),
			notify: make(chan struct{}, 1), last: map[int64]int64{}, pending: map[string]time.Time{}, seed: newSeedState()}
	}
	admin := newClient(identity{sub: "a", admin: true, idx: 0})
	u0 := newClient(identity{sub: "u0", idx: 0})
	u1 := newClient(identity{sub: "u1", idx: 1})
	b.admins, b.users = []*client{admin}, []*client{u0, u1}
	frame := func(sender string, conv, n int64, admin bool) []byte {
		kind, c := "seed", int64(0)
		if admin {
			kind, c = "reply", conv
		}
		return []byte(`{"message":` + strconv.Quote(seedBody(kind, b.runID, sender, c, n, time.Now())) +
			`,"sender_id":1,"sender_name":"x","sender_is_admin":` + strconv.FormatBool(admin) +
			`,"conversation_id":` + strconv.FormatInt(conv, 10) + `}`)
	}
	u0.seed.sent, u1.seed.sent = 2, 1
	admin.seed.replies[70] = 1
	for _, f := range [][]byte{frame("u0", 70, 1, false), frame("u0", 70, 2, false), frame("u0", 70, 2, false)} {
		u0.handle(f) // its own two, the second twice
	}
	u1.handle(frame("u1", 71, 1, false))
	admin.handle(frame("u0", 70, 2, false)) // before 1: out of order
	admin.handle(frame("u0", 70, 1, false))
	// u1's message never reaches the admin; the admin's reply reaches
	// itself and the visitor of 70; a frame of conversation 71 reaches u0.
	admin.handle(frame("a0", 70, 1, true))
	u0.handle(frame("a0", 70, 1, true))
	u0.handle(frame("a0", 71, 9, true))
	if u0.seed.conv != 70 || u1.seed.conv != 71 {
		t.Fatalf("conversations %d %d", u0.seed.conv, u1.seed.conv)
	}
	if got := [3]int64{b.dups.Load(), b.outOfOrder.Load(), b.misrouted.Load()}; got != [3]int64{1, 3, 1} {
		t.Errorf("duplicates, out of order, misrouted = %v, want [1 3 1] (u0's second twice; the admin's 2 before 1 and 1 after 2, u0's reply 9 first; reply 9 at the visitor of 70)", got)
	}
	if got := b.seedTally(); got != (seedTally{missing: 1, unanswered: 0}) {
		t.Errorf("tally %+v, want 1 missing (u1's message at the admin), nothing unanswered", got)
	}
	u1.seed.sent = 2 // a message that came back to no one
	if got := b.seedTally(); got != (seedTally{missing: 3, unanswered: 1}) {
		t.Errorf("tally %+v, want 3 missing, 1 unanswered", got)
	}
}
