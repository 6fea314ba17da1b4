package main

import (
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/pgstore"
	"github.com/grainchat/grainchat/storage/pgtest"
	"github.com/grainchat/grainchat/transport"
	"github.com/grainchat/grainchat/transport/wsclient"
)

// flowTimeout bounds the waits of the flow-control tests, whose senders are
// slowed to the configured rates on purpose.
const flowTimeout = 90 * time.Second

// texts returns prefix1 … prefixN.
func texts(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i+1)
	}
	return out
}

// waitTexts waits until c has received n message frames of conversation conv
// and checks that they are exactly want, in order.
func waitTexts(t *testing.T, name string, c *wsclient.Client, conv int64, want []string) {
	t.Helper()
	n := 0 // WaitFor matches each frame once, holding the client's lock
	_, _, err := c.WaitFor(ctxT(t, flowTimeout), 0, func(f wsclient.Frame) bool {
		if isMessage(f) && f.Int("conversation_id") == conv {
			n++
		}
		return n >= len(want)
	})
	got := textsOf(messagesIn(c, 0, conv))
	if err != nil {
		t.Fatalf("%s: %d of %d messages of conversation %d arrived: %v", name, len(got), len(want), conv, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s received %d messages %q…, want %d in order", name, len(got), got[:min(len(got), 5)], len(want))
	}
}

// storedTexts reads conversation conv's texts through a grainchat.v1 staff
// socket's history, in seq order, and checks the seqs are 1…n.
func storedTexts(t *testing.T, staff *wsclient.Client, conv int64) []string {
	t.Helper()
	var out []string
	for after := int64(0); ; {
		h := history(t, staff, map[string]any{"conversation_id": conv, "after_seq": after, "limit": 100})
		msgs := historyMessages(t, h)
		for _, m := range msgs {
			if m.Int("seq") != after+1 {
				t.Fatalf("conversation %d: seq %d after %d", conv, m.Int("seq"), after)
			}
			after = m.Int("seq")
			out = append(out, m.String("message"))
		}
		if h.Fields["has_more"] != true {
			return out
		}
	}
}

// noErrorFrames fails if c received an error frame.
func noErrorFrames(t *testing.T, name string, c *wsclient.Client) {
	t.Helper()
	if errs := framesOfType(c, 0, "error"); len(errs) > 0 {
		t.Fatalf("%s got %d error frames, first %s", name, len(errs), errs[0].Raw)
	}
}

// A seed-dialect visitor that sends 200 messages back to back under the
// default limits (10/s, burst 20: about 18 s of sending) is slowed, not
// refused: all 200 are stored once, in order, and delivered in order to it
// and to every staff socket, of either dialect. The same holds for a
// grainchat.v1 visitor, which gets 200 acks and no error frame.
func TestFlowVisitorBurstUnderDefaultLimits(t *testing.T) {
	// startServer lifts the visitor rate for other tests: restore chatd's defaults.
	s := startServer(t, "--database-url", newDatabase(t), "--message-rate", fmt.Sprint(transport.DefaultMessageRate),
		"--message-burst", fmt.Sprint(transport.DefaultMessageBurst))
	staffV1 := dial(t, s, "staff-1", "Ann", true, true)
	staffSeed := dial(t, s, "staff-2", "Sid", true, false)
	want := texts("m", 200)

	t.Run("seed", func(t *testing.T) {
		v := dial(t, s, "visitor-seed", "Sam", false, false)
		for _, text := range want {
			send(t, v, map[string]any{"message": text})
		}
		first := waitMessage(t, v, "m1")
		conv := first.Int("conversation_id")
		waitTexts(t, "seed visitor", v, conv, want)
		waitTexts(t, "v1 staff", staffV1, conv, want)
		waitTexts(t, "seed staff", staffSeed, conv, want)
		if got := storedTexts(t, staffV1, conv); !reflect.DeepEqual(got, want) {
			t.Fatalf("stored %d messages, want the 200 in order", len(got))
		}
		for _, f := range v.Frames() {
			checkSeedFrame(t, f)
		}
	})

	t.Run("v1", func(t *testing.T) {
		v := dial(t, s, "visitor-v1", "Vic", false, true)
		conv := convOf(t, v)
		for i, text := range want {
			send(t, v, map[string]any{"message": text, "client_msg_id": fmt.Sprint("c", i+1)})
		}
		waitTexts(t, "v1 visitor", v, conv, want)
		acks := 0
		_, _, err := v.WaitFor(ctxT(t, flowTimeout), 0, func(f wsclient.Frame) bool {
			if f.Type() == "ack" {
				acks++
			}
			return acks >= len(want)
		})
		if err != nil {
			t.Fatalf("%d acks of %d: %v", len(framesOfType(v, 0, "ack")), len(want), err)
		}
		for i, a := range framesOfType(v, 0, "ack") {
			if a.Int("seq") != int64(i+1) || a.String("client_msg_id") != fmt.Sprint("c", i+1) {
				t.Fatalf("ack %d: %s", i, a.Raw)
			}
		}
		noErrorFrames(t, "v1 visitor", v)
		waitTexts(t, "v1 staff", staffV1, conv, want)
		if got := storedTexts(t, staffV1, conv); !reflect.DeepEqual(got, want) {
			t.Fatalf("stored %d messages, want the 200 in order", len(got))
		}
	})
	noErrorFrames(t, "v1 staff", staffV1)
}

// A seed-dialect staff member replying to 60 conversations in one burst
// (`{"message","conversation_id"}` frames, no waiting) gets every reply
// stored and delivered to its visitor; with a staff rate lowered to 5/s
// (burst 10) the burst is slowed to the rate, not trimmed.
func TestFlowStaffBurstTo60Conversations(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		minTime time.Duration // the rate's lower bound on the burst's duration
	}{
		{name: "default limits"},
		{name: "staff rate 5 per second", args: []string{"--staff-message-rate", "5", "--staff-message-burst", "10"}, minTime: 9 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, append([]string{"--database-url", newDatabase(t),
				"--message-rate", fmt.Sprint(transport.DefaultMessageRate)}, tc.args...)...)
			watcher := dial(t, s, "staff-watch", "Wes", true, true)
			visitors := make([]*wsclient.Client, 60)
			convs := make([]int64, 60)
			for i := range visitors {
				visitors[i] = dial(t, s, fmt.Sprint("visitor-", i), fmt.Sprint("V", i), false, true)
				convs[i] = convOf(t, visitors[i])
			}
			staff := dial(t, s, "staff-burst", "Bea", true, false)
			start := time.Now()
			for i, conv := range convs {
				send(t, staff, map[string]any{"message": fmt.Sprint("reply ", i), "conversation_id": conv})
			}
			for i, v := range visitors {
				waitTexts(t, fmt.Sprint("visitor ", i), v, convs[i], []string{fmt.Sprint("reply ", i)})
			}
			elapsed := time.Since(start)
			for i, conv := range convs {
				waitTexts(t, "seed staff", staff, conv, []string{fmt.Sprint("reply ", i)})
				waitTexts(t, "v1 staff", watcher, conv, []string{fmt.Sprint("reply ", i)})
			}
			if elapsed < tc.minTime {
				t.Fatalf("60 replies delivered in %v: the staff rate was not applied (want ≥ %v)", elapsed, tc.minTime)
			}
			noErrorFrames(t, "v1 staff", watcher)
		})
	}
}

// With the rate limits lifted, 500 messages back to back from a seed and a
// grainchat.v1 visitor are held back only by the 64 posts a socket may have
// unsettled: all are stored and delivered in order.
func TestFlowLimitsLifted500(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t), "--message-rate", "-1", "--staff-message-rate", "-1")
	staff := dial(t, s, "staff-1", "Ann", true, true)
	want := texts("n", 500)
	seed := dial(t, s, "visitor-seed", "Sam", false, false)
	v1 := dial(t, s, "visitor-v1", "Vic", false, true)
	for i, text := range want {
		send(t, seed, map[string]any{"message": text})
		send(t, v1, map[string]any{"message": text, "client_msg_id": fmt.Sprint("k", i)})
	}
	seedConv := waitMessage(t, seed, "n1").Int("conversation_id")
	for name, c := range map[string]struct {
		client *wsclient.Client
		conv   int64
	}{"seed visitor": {seed, seedConv}, "v1 visitor": {v1, convOf(t, v1)}} {
		waitTexts(t, name, c.client, c.conv, want)
		waitTexts(t, name+" (staff)", staff, c.conv, want)
		if got := storedTexts(t, staff, c.conv); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: stored %d messages, want the 500 in order", name, len(got))
		}
	}
	noErrorFrames(t, "v1 visitor", v1)
}

// A socket whose reading is paused by the rate limit for longer than the idle
// timeout is not closed as idle: at 0.3 messages/s (burst 1) each of the
// second and third messages waits 3.3 s, with --idle-timeout 2s.
func TestFlowSlowedSocketIsNotIdle(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t), "--idle-timeout", "2s", "--ping-interval", "500ms",
		"--message-rate", "0.3", "--message-burst", "1")
	for _, v1 := range []bool{false, true} {
		t.Run(fmt.Sprint("v1=", v1), func(t *testing.T) {
			v := dial(t, s, fmt.Sprint("visitor-", v1), "Ida", false, v1)
			want := texts("slow", 3)
			for _, text := range want {
				send(t, v, map[string]any{"message": text})
			}
			conv := waitMessage(t, v, "slow1").Int("conversation_id")
			waitTexts(t, "visitor", v, conv, want)
			select {
			case <-v.Done():
				cl, _ := v.WaitClosed(ctxT(t, time.Second))
				t.Fatalf("socket closed: %d %q", cl.Code, cl.Reason)
			default:
			}
		})
	}
}

// A socket is closed with 4401 when its token expires (grainchat.v1: after an
// error frame token_expired); an auth frame with a fresh token of the same
// user keeps it open past the first expiry, and one of another user is
// refused with invalid_token and changes nothing.
func TestTokenExpiry(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	dialTTL := func(t *testing.T, sub string, v1 bool, ttl time.Duration) *wsclient.Client {
		c, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Token: mintTTL(t, sub, sub, false, ttl), V1: v1})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(c.Close)
		return c
	}
	waitClosed := func(t *testing.T, c *wsclient.Client) wsclient.Closed {
		cl, err := c.WaitClosed(ctxT(t, 15*time.Second))
		if err != nil {
			t.Fatalf("socket still open: %v", err)
		}
		return cl
	}

	t.Run("v1 closes at expiry", func(t *testing.T) {
		c := dialTTL(t, "exp-v1", true, 2*time.Second)
		w, _ := waitType(t, c, 0, "welcome")
		if w.String("token_expires_at") == "" {
			t.Errorf("welcome without token_expires_at: %s", w.Raw)
		}
		start := time.Now()
		cl := waitClosed(t, c)
		if cl.Code != 4401 {
			t.Fatalf("closed with %d %q, want 4401", cl.Code, cl.Reason)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("closed %v after a 2 s token's welcome", time.Since(start))
		}
		if e := framesOfType(c, 0, "error"); len(e) != 1 || e[0].String("code") != "token_expired" {
			t.Fatalf("want one token_expired error frame before the close:%s", dump(c))
		}
	})
	t.Run("seed closes at expiry", func(t *testing.T) {
		c := dialTTL(t, "exp-seed", false, 2*time.Second)
		if cl := waitClosed(t, c); cl.Code != 4401 {
			t.Fatalf("closed with %d %q, want 4401", cl.Code, cl.Reason)
		}
		if n := len(c.Frames()); n != 0 {
			t.Fatalf("a seed client got %d frames:%s", n, dump(c))
		}
	})
	t.Run("refresh in band", func(t *testing.T) {
		c := dialTTL(t, "exp-refresh", true, 3*time.Second)
		waitType(t, c, 0, "welcome")
		from := len(c.Frames())
		send(t, c, map[string]any{"type": "auth", "token": mintTTL(t, "someone-else", "someone-else", false, time.Hour)})
		if e, _ := waitType(t, c, from, "error"); e.String("code") != "invalid_token" {
			t.Fatalf("auth with another user's token: %s, want invalid_token", e.Raw)
		}
		from = len(c.Frames())
		send(t, c, map[string]any{"type": "auth", "token": mintTTL(t, "exp-refresh", "exp-refresh", false, time.Hour)})
		a, _ := waitType(t, c, from, "auth")
		exp, err := time.Parse(time.RFC3339Nano, a.String("expires_at"))
		if err != nil || time.Until(exp) < 50*time.Minute {
			t.Fatalf("auth answer %s: want expires_at about an hour ahead (%v)", a.Raw, err)
		}
		// The socket stays open past the first token's expiry, and works.
		if cl, err := c.WaitClosed(ctxT(t, 5*time.Second)); err == nil {
			t.Fatalf("closed with %d %q despite the fresh token", cl.Code, cl.Reason)
		}
		post(t, c, 0, "still here", "still")
	})
	t.Run("another user's token does not extend", func(t *testing.T) {
		c := dialTTL(t, "exp-other", true, 2*time.Second)
		waitType(t, c, 0, "welcome")
		send(t, c, map[string]any{"type": "auth", "token": mintTTL(t, "exp-other-2", "exp-other-2", false, time.Hour)})
		if cl := waitClosed(t, c); cl.Code != 4401 {
			t.Fatalf("closed with %d, want 4401", cl.Code)
		}
	})
}

// A seed-dialect visitor whose message cannot be stored within --post-timeout
// (the database is down) is not left believing it was: its socket is closed
// with 1013. A store outage shorter than --post-timeout is ridden out by the
// grain's retries: the message is stored, in order, and no one sees an error.
func TestSeedUnavailableCloses(t *testing.T) {
	proxy, dsn := pgtest.ProxyDSN(t, newDatabase(t))
	s := startServer(t, "--database-url", dsn, "--post-timeout", "3s")
	staff := dial(t, s, "staff-1", "Ann", true, true)

	t.Run("short outage is retried", func(t *testing.T) {
		v := dial(t, s, "visitor-short", "Sue", false, false)
		send(t, v, map[string]any{"message": "one"})
		conv := waitMessage(t, v, "one").Int("conversation_id")
		proxy.SetDown(true)
		send(t, v, map[string]any{"message": "two"})
		send(t, v, map[string]any{"message": "three"})
		time.AfterFunc(time.Second, func() { proxy.SetDown(false) })
		waitTexts(t, "visitor", v, conv, []string{"one", "two", "three"})
		waitTexts(t, "staff", staff, conv, []string{"one", "two", "three"})
	})
	t.Run("cold grain rides out a short outage", func(t *testing.T) {
		// The first message of a conversation activates its grain, which
		// must load the conversation while the store is down.
		v := dial(t, s, "visitor-cold", "Cole", false, true)
		conv := convOf(t, v)
		proxy.SetDown(true)
		send(t, v, map[string]any{"message": "cold one", "client_msg_id": "cold-1"})
		send(t, v, map[string]any{"message": "cold two", "client_msg_id": "cold-2"})
		time.AfterFunc(time.Second, func() { proxy.SetDown(false) })
		waitTexts(t, "visitor", v, conv, []string{"cold one", "cold two"})
		noErrorFrames(t, "visitor", v)
	})
	t.Run("long outage closes 1013", func(t *testing.T) {
		v := dial(t, s, "visitor-long", "Lou", false, false)
		send(t, v, map[string]any{"message": "first"})
		waitMessage(t, v, "first")
		proxy.SetDown(true)
		defer proxy.SetDown(false)
		send(t, v, map[string]any{"message": "lost?"})
		cl, err := v.WaitClosed(ctxT(t, 20*time.Second))
		if err != nil {
			t.Fatalf("seed socket still open with its message unstored: %v", err)
		}
		if cl.Code != 1013 {
			t.Fatalf("closed with %d %q, want 1013", cl.Code, cl.Reason)
		}
	})
	noErrorFrames(t, "staff", staff)
}

// A visitor's leave of another conversation is forbidden, like every frame
// naming a conversation the visitor may not use.
func TestVisitorLeaveOtherConversationForbidden(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	other := dial(t, s, "visitor-other", "Olga", false, true)
	v := dial(t, s, "visitor-1", "Vic", false, true)
	send(t, v, map[string]any{"type": "leave", "conversation_id": convOf(t, other)})
	if e, _ := waitType(t, v, 0, "error"); e.String("code") != "forbidden" || e.Int("conversation_id") != convOf(t, other) {
		t.Fatalf("leave of another conversation: %s, want forbidden", e.Raw)
	}
	send(t, v, map[string]any{"type": "leave", "conversation_id": convOf(t, v)})
	if l, _ := waitType(t, v, 0, "left"); l.Int("conversation_id") != convOf(t, v) {
		t.Fatalf("leave of its own conversation: %s", l.Raw)
	}
}

// The staff inbox pages through 2,500 conversations (100 a page, by
// next_cursor) with no duplicate and no gap while visitors keep posting: a
// conversation that received no message during the walk is in exactly one
// page; one that did may have moved above the cursor, and then arrives as an
// inbox_update; every page is in inbox order.
func TestInboxPagesThrough2500Conversations(t *testing.T) {
	dsn := newDatabase(t)
	ctx := ctxT(t, 5*time.Minute)
	if err := pgstore.Migrate(ctx, slog.New(slog.DiscardHandler), dsn); err != nil {
		t.Fatal(err)
	}
	store, err := pgstore.Open(ctx, slog.New(slog.DiscardHandler), dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const total = 2500
	msgs := make([]storage.NewMessage, 0, total)
	for i := 0; i < total; i++ {
		u, err := store.UpsertUser(ctx, storage.UserInput{ExternalID: fmt.Sprint("pv-", i), Name: fmt.Sprint("P", i)})
		if err != nil {
			t.Fatal(err)
		}
		c, err := store.EnsureConversation(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, storage.NewMessage{ConversationID: c.ID, SenderID: u.ID, SenderName: u.Name, Body: "hello"})
	}
	for i := 0; i < total; i += 250 { // one conversation per batch row, many batches: distinct times
		if _, err := store.AppendMessages(ctx, msgs[i:i+250]); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()

	s := startServer(t, "--database-url", dsn)
	staff := dial(t, s, "staff-pager", "Pam", true, true)
	first, _ := waitType(t, staff, 0, "inbox")
	// Visitors post while the staff member pages.
	posters := make([]*wsclient.Client, 10)
	for i := range posters {
		posters[i] = dial(t, s, fmt.Sprint("pv-", i*250+7), "", false, true)
	}
	moved := map[int64]bool{}
	for _, p := range posters {
		moved[convOf(t, p)] = true
	}

	seen := map[int64]int{}
	pages := 0
	check := func(f wsclient.Frame) string {
		convs, _ := f.Fields["conversations"].([]any)
		prevAt, prevID := "", int64(0)
		for _, raw := range convs {
			c := raw.(map[string]any)
			id := int64(c["conversation_id"].(float64))
			at := c["last_message_at"].(string)
			if prevID != 0 && (at > prevAt || (at == prevAt && id > prevID)) {
				t.Fatalf("page %d out of inbox order: %d (%s) after %d (%s)", pages, id, at, prevID, prevAt)
			}
			prevAt, prevID = at, id
			seen[id]++
		}
		pages++
		if f.Fields["has_more"] == true {
			if f.String("next_cursor") == "" {
				t.Fatalf("page %d has more but no next_cursor: %s", pages, f.Raw[:min(len(f.Raw), 200)])
			}
			return f.String("next_cursor")
		}
		return ""
	}
	cursor := check(first)
	for i := 0; cursor != ""; i++ {
		if i < len(posters) {
			post(t, posters[i], 0, "moving up", fmt.Sprint("up-", i))
		}
		from := len(staff.Frames())
		send(t, staff, map[string]any{"type": "inbox", "cursor": cursor, "limit": 100})
		f, _ := waitFrame(t, staff, from, "inbox page", func(f wsclient.Frame) bool { return f.Type() == "inbox" || f.Type() == "error" })
		if f.Type() != "inbox" || f.String("cursor") != cursor {
			t.Fatalf("page request answered %s", f.Raw[:min(len(f.Raw), 200)])
		}
		cursor = check(f)
		if pages > total/100+5 {
			t.Fatal("paging does not end")
		}
	}
	for _, u := range framesOfType(staff, 0, "inbox_update") {
		conv := int64(obj(u, "conversation")["conversation_id"].(float64))
		if !moved[conv] {
			t.Errorf("inbox_update for %d, which received no message", conv)
		}
	}
	if len(seen) < total-len(moved) {
		t.Errorf("pages showed %d distinct conversations, want at least %d", len(seen), total-len(moved))
	}
	missing := 0
	for id, n := range seen {
		if n > 1 {
			t.Errorf("conversation %d shown in %d pages", id, n)
		}
	}
	for conv := range moved {
		if seen[conv] == 0 {
			missing++ // moved above the cursor before its page: its update is the entry
			found := false
			for _, u := range framesOfType(staff, 0, "inbox_update") {
				if int64(obj(u, "conversation")["conversation_id"].(float64)) == conv {
					found = true
				}
			}
			if !found {
				t.Errorf("conversation %d is in no page and in no inbox_update", conv)
			}
		}
	}
	if len(seen)+missing != total {
		t.Errorf("%d conversations in pages + %d only in updates, want %d", len(seen), missing, total)
	}
	if pages < total/100 {
		t.Errorf("%d pages for %d conversations at 100 a page", pages, total)
	}
}

// Handshakes beyond --max-handshakes wait for a slot instead of failing:
// 60 staff sockets opened at once through 2 slots all open (each waits for
// its inbox). With --handshake-wait too short to get a slot, the excess is
// refused with 503 and Retry-After.
func TestHandshakesQueue(t *testing.T) {
	dsn := newDatabase(t)
	for _, tc := range []struct {
		name     string
		args     []string
		wantFail bool
	}{
		{name: "queued", args: []string{"--max-handshakes", "2"}},
		{name: "wait exceeded", args: []string{"--max-handshakes", "1", "--handshake-wait", "1ms"}, wantFail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, append([]string{"--database-url", dsn}, tc.args...)...)
			const n = 60
			type result struct {
				status     int
				retryAfter string
				err        error
			}
			results := make(chan result, n)
			for i := 0; i < n; i++ {
				go func() {
					c, err := wsclient.Dial(ctxT(t, 30*time.Second), s.URL(), wsclient.Options{Token: mint(t, fmt.Sprint("hs-", i), "", true), V1: true})
					r := result{err: err}
					if c != nil && c.Resp != nil {
						r.status, r.retryAfter = c.Resp.StatusCode, c.Resp.Header.Get("Retry-After")
					}
					if err == nil {
						_, _, r.err = c.WaitFor(ctxT(t, 30*time.Second), 0, func(f wsclient.Frame) bool { return f.Type() == "inbox" })
						c.Close()
					}
					results <- r
				}()
			}
			opened, busy := 0, 0
			for i := 0; i < n; i++ {
				r := <-results
				switch {
				case r.err == nil && r.status == 101:
					opened++
				case r.status == 503 && r.retryAfter == "1":
					busy++
				default:
					t.Errorf("handshake: status %d, Retry-After %q: %v", r.status, r.retryAfter, r.err)
				}
			}
			if !tc.wantFail && opened != n {
				t.Fatalf("%d of %d handshakes opened, %d refused busy", opened, n, busy)
			}
			if tc.wantFail && (busy == 0 || opened == 0) {
				t.Fatalf("%d opened, %d refused busy: want some of each", opened, busy)
			}
		})
	}
}

// An inbox cursor the server did not give is refused with invalid_request,
// and a visitor asking for an inbox page is forbidden.
func TestInboxCursorInvalid(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	staff := dial(t, s, "staff-1", "Ann", true, true)
	for _, cursor := range []any{"abc", "12.", ".5", "-1.3", "1.-3", "0.0", 7} {
		from := len(staff.Frames())
		send(t, staff, map[string]any{"type": "inbox", "cursor": cursor})
		f, _ := waitFrame(t, staff, from, "answer", func(f wsclient.Frame) bool { return f.Type() == "inbox" || f.Type() == "error" })
		if f.String("code") != "invalid_request" {
			t.Errorf("cursor %v: %s, want invalid_request", cursor, f.Raw)
		}
	}
	v := dial(t, s, "visitor-1", "Vic", false, true)
	send(t, v, map[string]any{"type": "inbox", "cursor": "1.1"})
	if e, _ := waitType(t, v, 0, "error"); e.String("code") != "forbidden" {
		t.Errorf("a visitor's inbox page: %s, want forbidden", e.Raw)
	}
}

// welcome and inbox frames carry the store's id: the same across a restart on
// one database, a new one after `chatd reset-store-id` (what an operator runs
// after restoring a backup), and a new one at every start of the in-memory
// development store, whose ids a restart never hands out again.
func TestStoreIDInWelcomeAndInbox(t *testing.T) {
	dsn := newDatabase(t)
	storeIDs := func(s *testServer) (string, int64) {
		v := dial(t, s, "visitor-1", "Vic", false, true)
		staff := dial(t, s, "staff-1", "Ann", true, true)
		w := welcomeOf(t, v)
		inbox, _ := waitType(t, staff, 0, "inbox")
		if w.String("store_id") == "" || w.String("store_id") != welcomeOf(t, staff).String("store_id") || inbox.String("store_id") != w.String("store_id") {
			t.Fatalf("store ids differ: visitor %s, staff %s, inbox %s", w.Raw, welcomeOf(t, staff).Raw, inbox.Raw)
		}
		v.Close()
		staff.Close()
		return w.String("store_id"), convOf(t, v)
	}
	s := startServer(t, "--database-url", dsn)
	first, conv := storeIDs(s)
	s.Stop()
	s = startServer(t, "--database-url", dsn)
	if again, againConv := storeIDs(s); again != first || againConv != conv {
		t.Fatalf("after a restart: store id %q conversation %d, want %q and %d", again, againConv, first, conv)
	}
	s.Stop()
	var out syncBuffer
	if err := run(ctxT(t, time.Minute), []string{"reset-store-id", "--database-url", dsn}, func(string) string { return "" }, &out); err != nil {
		t.Fatalf("reset-store-id: %v\n%s", err, out.String())
	}
	s = startServer(t, "--database-url", dsn)
	if reset, _ := storeIDs(s); reset == first || !regexp.MustCompile(regexp.QuoteMeta(reset)).MatchString(out.String()) {
		t.Fatalf("after reset-store-id: store id %q (was %q); it printed %q", reset, first, out.String())
	}
	s.Stop()

	// The memory store: a new id and new conversation ids at every start.
	mem := startServer(t)
	memFirst, memConv := storeIDs(mem)
	mem.Stop()
	mem = startServer(t)
	if memAgain, memAgainConv := storeIDs(mem); memAgain == memFirst || memAgainConv == memConv {
		t.Fatalf("memory store restarted: store id %q → %q, visitor's conversation %d → %d: want both new", memFirst, memAgain, memConv, memAgainConv)
	}
}

// GET /debug/cluster (served with --pprof only, like pprof) tells what the
// node sees and hosts, and `chatd cluster status` prints it.
func TestClusterStatusEndpoint(t *testing.T) {
	plain := startServer(t)
	if got := httpStatus(t, "http://"+plain.Addr+"/debug/cluster", nil); got != 404 {
		t.Errorf("/debug/cluster without --pprof: %d, want 404", got)
	}
	plain.Stop() // two nodes in one process race on grpc's global logger
	s := startServer(t, "--database-url", newDatabase(t), "--pprof")
	staff := dial(t, s, "staff-1", "Ann", true, true)
	v := dial(t, s, "visitor-1", "Vic", false, true)
	conv := convOf(t, v)
	post(t, v, 0, "hello", "h1") // activates the conversation's grain
	var st nodeStatus
	waitFor(t, 10*time.Second, "the status to list the conversation", func() bool {
		var err error
		st, err = fetchStatus(t.Context(), "http://"+s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(st.Conversations, conv)
	})
	if !st.Member || len(st.Members) != 1 || st.Members[0] != st.Node || st.InboxOwner != st.Node || !st.InboxActive {
		t.Errorf("status %+v: want this node the one member, owning and hosting the inbox", st)
	}
	if st.Sessions != 2 {
		t.Errorf("status says %d sessions, want 2", st.Sessions)
	}
	var out strings.Builder
	if err := run(t.Context(), []string{"cluster", "status", "--url", "http://" + s.Addr}, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("conversations hosted: 1 [%d]", conv)) || !strings.Contains(out.String(), "2 sessions") {
		t.Errorf("cluster status printed:\n%s", out.String())
	}
	staff.Close()
}

// A page of the inbox at the largest size, 200, still says whether more
// follow (the store caps a read at 200 rows, so has_more needs a second read).
func TestInboxPageOfMaxSizeHasMore(t *testing.T) {
	dsn := newDatabase(t)
	ctx := ctxT(t, 2*time.Minute)
	if err := pgstore.Migrate(ctx, slog.New(slog.DiscardHandler), dsn); err != nil {
		t.Fatal(err)
	}
	store, err := pgstore.Open(ctx, slog.New(slog.DiscardHandler), dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const total = 450
	msgs := make([]storage.NewMessage, 0, total)
	for i := 0; i < total; i++ {
		u, err := store.UpsertUser(ctx, storage.UserInput{ExternalID: fmt.Sprint("mx-", i)})
		if err != nil {
			t.Fatal(err)
		}
		c, err := store.EnsureConversation(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, storage.NewMessage{ConversationID: c.ID, SenderID: u.ID, SenderName: u.Name, Body: "hi"})
	}
	if _, err := store.AppendMessages(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	store.Close()
	s := startServer(t, "--database-url", dsn)
	staff := dial(t, s, "staff-max", "Max", true, true)
	seen := map[int64]bool{}
	var sizes []int
	for cursor := ""; ; {
		from := len(staff.Frames())
		req := map[string]any{"type": "inbox", "limit": 200}
		if cursor != "" {
			req["cursor"] = cursor
		}
		send(t, staff, req)
		f, _ := waitFrame(t, staff, from, "inbox page", func(f wsclient.Frame) bool { return f.Type() == "inbox" || f.Type() == "error" })
		convs, _ := f.Fields["conversations"].([]any)
		sizes = append(sizes, len(convs))
		for _, c := range convs {
			seen[int64(c.(map[string]any)["conversation_id"].(float64))] = true
		}
		if f.Fields["has_more"] != true {
			break
		}
		cursor = f.String("next_cursor")
		if len(sizes) > 5 {
			t.Fatalf("pages %v do not end", sizes)
		}
	}
	if fmt.Sprint(sizes) != "[200 200 50]" || len(seen) != total {
		t.Fatalf("pages of %v (%d distinct conversations), want [200 200 50] and %d", sizes, len(seen), total)
	}
}
