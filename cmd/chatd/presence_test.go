package main

// Presence and staff availability across a real 3-node cluster
// (docs/PROTOCOL.md, "Live signals").

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// isPresence matches a presence frame of conv.
func isPresence(conv int64, online bool) func(wsclient.Frame) bool {
	return func(f wsclient.Frame) bool {
		return f.Type() == "presence" && f.Int("conversation_id") == conv && f.Fields["online"] == online
	}
}

// isAvailability matches an availability frame.
func isAvailability(staffOnline bool) func(wsclient.Frame) bool {
	return func(f wsclient.Frame) bool {
		return f.Type() == "availability" && f.Fields["staff_online"] == staffOnline
	}
}

// Visitor and staff on different nodes: a visitor is online on connect,
// offline after the grace on close (not at all on a quick reload), offline
// within the documented bound after their node is killed, online again on
// reconnecting elsewhere; availability follows staff connect, away and
// disconnect.
func TestClusterPresence(t *testing.T) {
	c := startEtcdCluster(t, newDatabase(t), 3)
	const grace = 3 * time.Second // the default --presence-grace

	// No staff yet: the visitor reads the away message.
	carl := dialURL(t, c.nodes[0].URL(), "carl", "Carl", false)
	conv := convOf(t, carl)
	if f, _ := waitType(t, carl, 0, "availability"); f.Fields["staff_online"] != false || f.String("message") == "" {
		t.Errorf("availability with no staff: %s", f.Raw)
	}
	ann := dialURL(t, c.nodes[1].URL(), "ann", "Ann", true)
	waitFrame(t, carl, 0, "staff online", isAvailability(true))

	// Ann's inbox shows Carl online (a message puts him in it) once his
	// node told hers (within a presence tick).
	post(t, carl, conv, "hello", "c1")
	var annAt int
	var entry map[string]any
	waitFor(t, 10*time.Second, "Carl online in Ann's inbox", func() bool {
		annAt = len(ann.Frames())
		send(t, ann, map[string]any{"type": "inbox"})
		in, _ := waitType(t, ann, annAt, "inbox")
		for _, e := range in.Fields["conversations"].([]any) {
			if m := e.(map[string]any); m["conversation_id"] == float64(conv) {
				entry = m
			}
		}
		v, _ := entry["visitor"].(map[string]any)
		return v != nil && v["online"] == true
	})

	// Away and back.
	carlAt := len(carl.Frames())
	send(t, ann, map[string]any{"type": "away", "away": true})
	if f, _ := waitType(t, ann, annAt, "away"); f.Fields["away"] != true {
		t.Errorf("away answer: %s", f.Raw)
	}
	waitFrame(t, carl, carlAt, "staff away", isAvailability(false))
	carlAt = len(carl.Frames())
	send(t, ann, map[string]any{"type": "away", "away": false})
	waitFrame(t, carl, carlAt, "staff back", isAvailability(true))

	// Carl closes: offline after the grace, with last_seen_at.
	annAt = len(ann.Frames())
	closed := time.Now()
	carl.Close()
	f, _ := waitFrame(t, ann, annAt, "Carl offline", isPresence(conv, false))
	if waited := f.At.Sub(closed); waited < grace-500*time.Millisecond {
		t.Errorf("offline after %v, before the grace (%v)", waited, grace)
	}
	// The time he left, not the end of the grace, on Ann's node as on his.
	if at, err := time.Parse(time.RFC3339Nano, f.String("last_seen_at")); err != nil || at.Before(closed.Add(-time.Second)) || at.After(closed.Add(time.Second)) {
		t.Errorf("last_seen_at of %s (closed at %v)", f.Raw, closed)
	}
	// An inbox page asked at once says so too (the store gets the time
	// a few seconds later).
	annAt = len(ann.Frames())
	send(t, ann, map[string]any{"type": "inbox"})
	in, _ := waitType(t, ann, annAt, "inbox")
	for _, e := range in.Fields["conversations"].([]any) {
		if m := e.(map[string]any); m["conversation_id"] == float64(conv) {
			if v, _ := m["visitor"].(map[string]any); v == nil || v["online"] != false || v["last_seen_at"] != f.String("last_seen_at") {
				t.Errorf("Carl's inbox entry right after he left: %v, want offline, last seen %s", m["visitor"], f.String("last_seen_at"))
			}
		}
	}

	// A reload within the grace shows nothing to staff.
	annAt = len(ann.Frames())
	carl = dialURL(t, c.nodes[0].URL(), "carl", "Carl", false)
	waitFrame(t, ann, annAt, "Carl online", isPresence(conv, true))
	annAt = len(ann.Frames())
	carl.Close()
	carl = dialURL(t, c.nodes[0].URL(), "carl", "Carl", false)
	reloaded := time.Now()
	waitFor(t, 10*time.Second, "the grace to pass", func() bool { return time.Since(reloaded) > grace+time.Second })
	post(t, carl, conv, "after the reload", "c2")
	_, end := waitFrame(t, ann, annAt, "the marker", func(f wsclient.Frame) bool { return isMessage(f) && f.String("message") == "after the reload" })
	for _, f := range ann.Frames()[annAt:end] {
		if f.Type() == "presence" {
			t.Errorf("a reload showed %s", f.Raw)
		}
	}

	// Carl's node dies: offline within the documented bound (15 s); back
	// online when he reconnects on another node.
	carl.Close()
	dialURL(t, c.nodes[2].URL(), "carl", "Carl", false)
	waitFor(t, 10*time.Second, "the grace to pass", func() bool { return time.Since(reloaded) > 2*grace })
	annAt = len(ann.Frames())
	killed := time.Now()
	c.nodes[2].Kill()
	f, _, err := ann.WaitFor(ctxT(t, 20*time.Second), annAt, isPresence(conv, false))
	if err != nil {
		t.Fatalf("Carl still online 20 s after his node was killed:%s", dump(ann))
	}
	if took := f.At.Sub(killed); took > 15*time.Second {
		t.Errorf("offline %v after the kill, want within 15 s", took)
	} else {
		t.Logf("offline %v after the kill of his node", took)
	}
	annAt = len(ann.Frames())
	carl = dialURL(t, c.nodes[0].URL(), "carl", "Carl", false)
	waitFrame(t, ann, annAt, "Carl online again", isPresence(conv, true))

	// Ann leaves: the visitor reads the away message.
	carlAt = len(carl.Frames())
	ann.Close()
	waitFrame(t, carl, carlAt, "staff gone", isAvailability(false))
}

// The REST conversation shows the visitor's presence: online while
// connected, then offline with last_seen_at, in the list too.
func TestPresenceREST(t *testing.T) {
	db := newDatabase(t)
	s := startServer(t, "--database-url", db, "--presence-grace", "300ms")
	api := newAPIClient(t, s)
	ann := mint(t, "ann", "Ann", true)
	carl := dial(t, s, "carl", "Carl", false, true)
	conv := convOf(t, carl)
	post(t, carl, conv, "hello", "c1")
	path := fmt.Sprintf("/conversations/%d", conv)
	visitor := func() map[string]any {
		a := api.call("GET", path, ann, nil)
		if a.status != 200 {
			t.Fatalf("GET %s: %d %s", path, a.status, a.raw)
		}
		v, _ := a.body["visitor"].(map[string]any)
		return v
	}
	if v := visitor(); v["online"] != true || v["last_seen_at"] != nil {
		t.Errorf("while connected: %v", v)
	}
	closed := time.Now()
	carl.Close()
	var v map[string]any
	waitFor(t, 10*time.Second, "offline in the API", func() bool { v = visitor(); return v["online"] == false })
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(v["last_seen_at"]))
	if err != nil || at.Before(closed.Add(-time.Second)) || at.After(time.Now()) {
		t.Errorf("offline: %v", v)
	}
	// Stored (in a batch), so the list shows it after a restart.
	conn, err := sql.Open("postgres", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitFor(t, 10*time.Second, "the last-seen time stored", func() bool {
		var n int
		return conn.QueryRow(`SELECT count(*) FROM visitor_presence WHERE conversation_id = $1`, conv).Scan(&n) == nil && n == 1
	})
	s.Stop()
	s = startServer(t, "--database-url", db)
	api = newAPIClient(t, s)
	c := findConversation(api.call("GET", "/conversations", ann, nil), conv)
	if v, _ := c["visitor"].(map[string]any); v == nil || v["online"] != false || v["last_seen_at"] == nil {
		t.Errorf("after a restart: %v", c)
	}
}
