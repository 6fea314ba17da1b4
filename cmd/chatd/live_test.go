package main

// Live signals across a real 3-node cluster: typing and the staff viewing a
// conversation (docs/PROTOCOL.md, "Live signals").

import (
	"database/sql"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// isTyping matches a typing frame of conv by the user named.
func isTyping(conv int64, name string) func(wsclient.Frame) bool {
	return func(f wsclient.Frame) bool {
		return f.Type() == "typing" && f.Int("conversation_id") == conv && obj(f, "user")["name"] == name
	}
}

// viewersOf returns the names a viewers frame lists, in its order.
func viewersOf(f wsclient.Frame) []string {
	var names []string
	staff, _ := f.Fields["staff"].([]any)
	for _, s := range staff {
		m, _ := s.(map[string]any)
		name, _ := m["name"].(string)
		names = append(names, name)
	}
	return names
}

// waitViewers waits for a viewers frame of conv at index >= from listing
// exactly want.
func waitViewers(t *testing.T, c *wsclient.Client, from int, conv int64, want string) int {
	t.Helper()
	_, i := waitFrame(t, c, from, "viewers "+want, func(f wsclient.Frame) bool {
		return f.Type() == "viewers" && f.Int("conversation_id") == conv && fmt.Sprint(viewersOf(f)) == want
	})
	return i
}

func openConv(t *testing.T, c *wsclient.Client, conv int64) {
	t.Helper()
	n := len(c.Frames())
	send(t, c, map[string]any{"type": "open", "conversation_id": conv})
	waitFrame(t, c, n, "opened", func(f wsclient.Frame) bool { return f.Type() == "opened" && f.Int("conversation_id") == conv })
}

// Visitor on node 1, Ann on node 2, Bob on node 3: typing reaches the other
// side (visitors see "Support", staff see who), at most once per user every
// typing interval, never the typist nor a seed client; staff see who else has
// the conversation open.
func TestClusterTypingAndViewers(t *testing.T) {
	c := startEtcdCluster(t, newDatabase(t), 3)
	carl := dialURL(t, c.nodes[0].URL(), "carl", "Carl", false)
	conv := convOf(t, carl)
	post(t, carl, conv, "hello", "c1")
	carlSeed, err := wsclient.Dial(ctxT(t, 10*time.Second), c.nodes[1].URL(), wsclient.Options{Token: mint(t, "carl", "Carl", false)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(carlSeed.Close)
	ann := dialURL(t, c.nodes[1].URL(), "ann", "Ann", true)
	bob := dialURL(t, c.nodes[2].URL(), "bob", "Bob", true)

	// Viewers: each opening tells everyone who has it open.
	openConv(t, ann, conv)
	waitViewers(t, ann, 0, conv, "[Ann]")
	annAt := len(ann.Frames())
	openConv(t, bob, conv)
	waitViewers(t, bob, 0, conv, "[Ann Bob]")
	waitViewers(t, ann, annAt, conv, "[Ann Bob]")

	// The visitor types (no conversation_id): both agents see Carl, within
	// a bound; repeated typing within the interval is relayed once.
	var latencies []time.Duration
	for round := range 3 {
		annAt, bobAt := len(ann.Frames()), len(bob.Frames())
		sent := time.Now()
		for range 5 {
			send(t, carl, map[string]any{"type": "typing"})
		}
		fa, _ := waitFrame(t, ann, annAt, "Carl typing", isTyping(conv, "Carl"))
		fb, _ := waitFrame(t, bob, bobAt, "Carl typing", isTyping(conv, "Carl"))
		latencies = append(latencies, fa.At.Sub(sent), fb.At.Sub(sent))
		u := obj(fa, "user")
		if u["is_admin"] != false || u["id"] != float64(userID(t, carl)) {
			t.Errorf("round %d: typing frame %s", round, fa.Raw)
		}
		// A marker message after the interval: exactly one relay per round.
		waitFor(t, 10*time.Second, "the typing interval", func() bool { return time.Since(sent) > 2100*time.Millisecond })
		marker := fmt.Sprintf("marker %d", round)
		post(t, carl, conv, marker, fmt.Sprintf("m%d", round))
		for name, cl := range map[string]*wsclient.Client{"ann": ann, "bob": bob} {
			_, end := waitFrame(t, cl, 0, marker, func(f wsclient.Frame) bool { return isMessage(f) && f.String("message") == marker })
			n := 0
			for _, f := range cl.Frames()[map[string]int{"ann": annAt, "bob": bobAt}[name]:end] {
				if isTyping(conv, "Carl")(f) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("round %d: %s got %d typing frames for 5 sent within the interval, want 1:%s", round, name, n, dump(cl))
			}
		}
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	t.Logf("visitor typing to staff on other nodes: %v", latencies)
	if median := latencies[len(latencies)/2]; median > 500*time.Millisecond {
		t.Errorf("typing took %v (median) to reach staff on other nodes, want within 500ms", median)
	}

	// Ann types: Carl sees "Support" (no agent named), Bob sees Ann.
	carlAt, bobAt := len(carl.Frames()), len(bob.Frames())
	send(t, ann, map[string]any{"type": "typing", "conversation_id": conv})
	f, _ := waitFrame(t, carl, carlAt, "Support typing", isTyping(conv, "Support"))
	if u := obj(f, "user"); u["is_admin"] != true || u["id"] != 0.0 {
		t.Errorf("visitor's typing frame names the agent: %s", f.Raw)
	}
	waitFrame(t, bob, bobAt, "Ann typing", isTyping(conv, "Ann"))

	// A visitor may not type into another conversation; staff must name one.
	carlAt = len(carl.Frames())
	send(t, carl, map[string]any{"type": "typing", "conversation_id": conv + 1000})
	if f, _ := waitType(t, carl, carlAt, "error"); f.String("code") != "forbidden" {
		t.Errorf("visitor typing elsewhere: %s", f.Raw)
	}
	annAt = len(ann.Frames())
	send(t, ann, map[string]any{"type": "typing"})
	if f, _ := waitType(t, ann, annAt, "error"); f.String("code") != "conversation_required" {
		t.Errorf("staff typing without a conversation: %s", f.Raw)
	}

	// Bob leaves, then Bob's second socket opens and closes: Ann follows.
	annAt = len(ann.Frames())
	send(t, bob, map[string]any{"type": "leave", "conversation_id": conv})
	annAt = waitViewers(t, ann, annAt, conv, "[Ann]")
	bob2 := dialURL(t, c.nodes[0].URL(), "bob", "Bob", true)
	openConv(t, bob2, conv)
	annAt = waitViewers(t, ann, annAt, conv, "[Ann Bob]")
	bob2.Close()
	waitViewers(t, ann, annAt, conv, "[Ann]")

	// Nobody ever sees their own typing, and the seed socket no live frame.
	post(t, ann, conv, "final", "a-final")
	for name, cl := range map[string]*wsclient.Client{"carl": carl, "carl (seed)": carlSeed, "ann": ann, "bob": bob} {
		_, end := waitFrame(t, cl, 0, "final", func(f wsclient.Frame) bool { return isMessage(f) && f.String("message") == "final" })
		for _, f := range cl.Frames()[:end] {
			switch {
			case name == "carl (seed)" && f.Type() != "":
				t.Errorf("seed client got %s", f.Raw)
			case name == "carl" && isTyping(conv, "Carl")(f), name == "ann" && isTyping(conv, "Ann")(f):
				t.Errorf("%s saw their own typing: %s", name, f.Raw)
			}
		}
	}
}

// dbWrites is the rows inserted, updated and deleted in the database of dsn
// so far, as PostgreSQL's statistics say (each backend reports its own
// within about 10 s of its transaction).
func dbWrites(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var n int64
	err := db.QueryRow(`SELECT tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	if err != nil {
		t.Fatalf("read the database's statistics: %v", err)
	}
	return n
}

// settledWrites waits until dbWrites has not moved for 11 s (the backends'
// statistics reach pg_stat_database within 10 s) and returns it.
func settledWrites(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	last, since := dbWrites(t, db), time.Now()
	waitFor(t, 60*time.Second, "the database's write counters to settle", func() bool {
		if n := dbWrites(t, db); n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) >= 11*time.Second
	})
	return last
}

// Typing costs PostgreSQL no write: dozens of typing frames each way, all
// relayed, leave the database's row counters where they were; a message
// moves them (the counters work).
func TestTypingWritesNothing(t *testing.T) {
	dsn := newDatabase(t)
	s := startServer(t, "--database-url", dsn, "--typing-interval", "50ms")
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	carl := dial(t, s, "carl", "Carl", false, true)
	conv := convOf(t, carl)
	post(t, carl, conv, "hello", "c1")
	ann := dial(t, s, "ann", "Ann", true, true)
	openConv(t, ann, conv)

	before := settledWrites(t, db)
	const n = 30
	carlAt, annAt := len(carl.Frames()), len(ann.Frames())
	for range n {
		send(t, carl, map[string]any{"type": "typing"})
		send(t, ann, map[string]any{"type": "typing", "conversation_id": conv})
		time.Sleep(100 * time.Millisecond) // pace the frames over the relay interval
	}
	count := func(c *wsclient.Client, from int, name string) int {
		k := 0
		for _, f := range c.Frames()[from:] {
			if isTyping(conv, name)(f) {
				k++
			}
		}
		return k
	}
	waitFor(t, 10*time.Second, "the typing frames relayed", func() bool {
		return count(ann, annAt, "Carl") >= n*2/3 && count(carl, carlAt, "Support") >= n*2/3
	})
	if after := settledWrites(t, db); after != before {
		t.Errorf("typing wrote %d rows (%d typing frames relayed to Ann, %d to Carl)", after-before,
			count(ann, annAt, "Carl"), count(carl, carlAt, "Support"))
	}
	post(t, carl, conv, "a message is a write", "c2")
	waitFor(t, 30*time.Second, "a message's write in the counters", func() bool { return dbWrites(t, db) > before })
}

// A message starts its author's typing interval over: the receivers drop the
// typist's line when the message shows, so the next typing must be relayed at
// once, not an interval (here a minute) after the last one. Each way, with
// typing within the interval before the message relayed once.
func TestTypingAfterMessage(t *testing.T) {
	s := startServer(t, "--typing-interval", "1m")
	carl := dial(t, s, "user-carl", "Carl", false, true)
	conv := convOf(t, carl)
	post(t, carl, 0, "hello", "c1")
	ann := dial(t, s, "staff-ann", "Ann", true, true)
	openConv(t, ann, conv)

	for _, side := range []struct {
		typist, receiver *wsclient.Client
		name, shown      string
		conv             int64
	}{
		{carl, ann, "carl", "Carl", 0},
		{ann, carl, "ann", "Support", conv},
	} {
		typing := map[string]any{"type": "typing"}
		if side.conv != 0 {
			typing["conversation_id"] = side.conv
		}
		from := len(side.receiver.Frames())
		send(t, side.typist, typing)
		waitFrame(t, side.receiver, from, side.shown+" typing", isTyping(conv, side.shown))
		send(t, side.typist, typing) // within the interval: dropped
		text := "a message from " + side.name
		post(t, side.typist, side.conv, text, side.name+"-m")
		_, at := waitFrame(t, side.receiver, from, text, func(f wsclient.Frame) bool { return isMessage(f) && f.String("message") == text })
		if n := countIn(side.receiver.Frames()[from:at], isTyping(conv, side.shown)); n != 1 {
			t.Errorf("%s: %d typing frames before the message, want 1:%s", side.name, n, dump(side.receiver))
		}
		send(t, side.typist, typing) // after the message: relayed at once
		waitFrame(t, side.receiver, at+1, side.shown+" typing after the message", isTyping(conv, side.shown))
	}
}

// countIn counts the frames that match.
func countIn(frames []wsclient.Frame, match func(wsclient.Frame) bool) int {
	n := 0
	for _, f := range frames {
		if match(f) {
			n++
		}
	}
	return n
}
