package main

// End-to-end tests of the support desk over the WebSocket (issue 15):
// status, assignment, events in the thread, per-agent read marks, inbox
// views and the stale-reply guard, on a real chatd with PostgreSQL.

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// waitEvent waits for an event frame of conversation conv matching kind and
// value (the status, or the assignee's external id; "" for unassigned).
func waitEvent(t testing.TB, c *wsclient.Client, from int, conv int64, kind, value string) (wsclient.Frame, int) {
	t.Helper()
	return waitFrame(t, c, from, fmt.Sprintf("%s event %q of conversation %d", kind, value, conv), func(f wsclient.Frame) bool {
		return f.Type() == "event" && f.Int("conversation_id") == conv && eventIs(obj(f, "event"), kind, value)
	})
}

func eventIs(e map[string]any, kind, value string) bool {
	if e["kind"] != kind {
		return false
	}
	if kind == "status" {
		return e["status"] == value
	}
	a, _ := e["assignee"].(map[string]any)
	if value == "" {
		return a == nil
	}
	return a != nil && a["external_id"] == value
}

// desk sends a status or assign request and returns the changed answer,
// failing on an error frame.
func desk(t testing.TB, c *wsclient.Client, req map[string]any) wsclient.Frame {
	t.Helper()
	from := len(c.Frames())
	send(t, c, req)
	f, _ := waitFrame(t, c, from, "changed or error", func(f wsclient.Frame) bool {
		return f.Type() == "changed" || f.Type() == "error"
	})
	if f.Type() != "changed" {
		t.Fatalf("%v: got %s", req, f.Raw)
	}
	return f
}

// deskError sends a request and returns the code of the error frame it gets.
func deskError(t testing.TB, c *wsclient.Client, req map[string]any) string {
	t.Helper()
	from := len(c.Frames())
	send(t, c, req)
	f, _ := waitFrame(t, c, from, "an error", func(f wsclient.Frame) bool {
		return f.Type() == "error" || f.Type() == "changed" || f.Type() == "read"
	})
	if f.Type() != "error" {
		t.Fatalf("%v: got %s, want an error", req, f.Raw)
	}
	return f.String("code")
}

func TestDeskStatusAssignmentAndEvents(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	ann := dial(t, s, "ann", "Ann", true, true)
	bob := dial(t, s, "bob", "Bob", true, true)
	carl := dial(t, s, "carl", "Carl", false, true)
	dora := dial(t, s, "dora", "Dora", false, false) // seed dialect
	conv := convOf(t, carl)
	if st := welcomeOf(t, carl).String("status"); st != "open" {
		t.Fatalf("a new conversation's status is %q, want open", st)
	}
	post(t, carl, conv, "hello", "c1")

	// Ann claims it: her answer, and an event for every staff socket.
	ch := desk(t, ann, map[string]any{"type": "assign", "conversation_id": conv, "assignee": "ann"})
	if ch.String("status") != "open" || obj(ch, "assignee")["external_id"] != "ann" {
		t.Fatalf("changed after claim: %s", ch.Raw)
	}
	if evs, _ := ch.Fields["events"].([]any); len(evs) != 1 || !eventIs(evs[0].(map[string]any), "assignee", "ann") {
		t.Fatalf("claim events: %s", ch.Raw)
	}
	ev, _ := waitEvent(t, bob, 0, conv, "assignee", "ann")
	if a := obj(ev, "event")["actor"].(map[string]any); a["external_id"] != "ann" || a["name"] != "Ann" {
		t.Fatalf("event actor: %s", ev.Raw)
	}
	if e := obj(ev, "event"); e["after_seq"] != 1.0 || !wireTime.MatchString(e["created_at"].(string)) {
		t.Fatalf("event placement/time: %s", ev.Raw)
	}

	// Resolving reaches the visitor; setting it again records nothing.
	desk(t, ann, map[string]any{"type": "status", "conversation_id": conv, "status": "resolved"})
	waitEvent(t, carl, 0, conv, "status", "resolved")
	waitEvent(t, bob, 0, conv, "status", "resolved")
	again := desk(t, bob, map[string]any{"type": "status", "conversation_id": conv, "status": "resolved"})
	if evs, _ := again.Fields["events"].([]any); len(evs) != 0 {
		t.Fatalf("setting the same status recorded %s", again.Raw)
	}

	// The visitor writes again: reopened, the event before the message.
	fromBob := len(bob.Frames())
	fromCarl := len(carl.Frames())
	post(t, carl, conv, "still broken", "c2")
	_, evAt := waitEvent(t, bob, fromBob, conv, "status", "open")
	_, updAt := waitFrame(t, bob, fromBob, "inbox_update of seq 2", func(f wsclient.Frame) bool {
		return f.Type() == "inbox_update" && obj(f, "conversation")["last_seq"] == 2.0
	})
	if evAt > updAt {
		t.Errorf("the reopen event came after the message's inbox_update")
	}
	if u, _ := waitFrame(t, bob, fromBob, "update", func(f wsclient.Frame) bool { return f.Type() == "inbox_update" }); obj(u, "conversation")["status"] != "open" {
		t.Errorf("inbox_update after the reopen: %s", u.Raw)
	}
	reopen, evAt := waitEvent(t, carl, fromCarl, conv, "status", "open")
	if a := obj(reopen, "event")["actor"].(map[string]any); a["external_id"] != "carl" {
		t.Errorf("reopen actor: %s", reopen.Raw)
	}
	_, msgAt := waitMsg(t, carl, conv, "still broken")
	if evAt > msgAt {
		t.Errorf("the visitor saw the reopen event after its message")
	}

	// The thread shows the events in order; the visitor sees status events only.
	h := history(t, ann, map[string]any{"type": "history", "conversation_id": conv})
	var kinds []string
	for _, e := range h.Fields["events"].([]any) {
		m := e.(map[string]any)
		kinds = append(kinds, fmt.Sprintf("%v:%v:%v", m["kind"], m["status"], m["after_seq"]))
	}
	if want := []string{"assignee:<nil>:1", "status:resolved:1", "status:open:1"}; !slices.Equal(kinds, want) {
		t.Errorf("history events %v, want %v", kinds, want)
	}
	for _, f := range carl.Frames() {
		if f.Type() == "event" && obj(f, "event")["kind"] != "status" {
			t.Errorf("the visitor got %s", f.Raw)
		}
	}

	// Refusals.
	if code := deskError(t, carl, map[string]any{"type": "status", "conversation_id": conv, "status": "resolved"}); code != "forbidden" {
		t.Errorf("visitor status: %s", code)
	}
	if code := deskError(t, ann, map[string]any{"type": "assign", "conversation_id": conv, "assignee": "carl"}); code != "invalid_request" {
		t.Errorf("assign to a visitor: %s", code)
	}
	if code := deskError(t, ann, map[string]any{"type": "status", "conversation_id": 999999, "status": "pending"}); code != "conversation_not_found" {
		t.Errorf("unknown conversation: %s", code)
	}
	// Unassign.
	desk(t, bob, map[string]any{"type": "assign", "conversation_id": conv, "assignee": nil})
	waitEvent(t, ann, 0, conv, "assignee", "")

	// The seed visitor's conversation changes too; its frames stay the
	// document's: messages only.
	send(t, dora, map[string]any{"message": "seed hello"})
	waitMessage(t, dora, "seed hello")
	doraMsg, _ := waitFrame(t, ann, 0, "dora's message", func(f wsclient.Frame) bool {
		lm, _ := obj(f, "conversation")["last_message"].(map[string]any)
		return f.Type() == "inbox_update" && lm["message"] == "seed hello"
	})
	doraConv := obj(doraMsg, "conversation")["conversation_id"].(float64)
	desk(t, ann, map[string]any{"type": "status", "conversation_id": doraConv, "status": "resolved"})
	send(t, dora, map[string]any{"message": "seed again"})
	waitMessage(t, dora, "seed again")
	waitEvent(t, ann, 0, int64(doraConv), "status", "open")
	for _, f := range dora.Frames() {
		checkSeedFrame(t, f)
	}
}

func TestDeskReadMarks(t *testing.T) {
	db := newDatabase(t)
	s := startServer(t, "--database-url", db)
	ann1 := dial(t, s, "ann", "Ann", true, true)
	ann2 := dial(t, s, "ann", "Ann", true, true)
	bob := dial(t, s, "bob", "Bob", true, true)
	carl := dial(t, s, "carl", "Carl", false, true)
	conv := convOf(t, carl)
	for i := 1; i <= 3; i++ {
		post(t, carl, conv, fmt.Sprint("m", i), fmt.Sprint("c", i))
	}
	entry := func(c *wsclient.Client) map[string]any {
		t.Helper()
		in, _ := askInbox(t, c)
		for _, e := range in.Fields["conversations"].([]any) {
			if m := e.(map[string]any); m["conversation_id"] == float64(conv) {
				return m
			}
		}
		t.Fatalf("conversation %d not in the inbox: %s", conv, in.Raw)
		return nil
	}
	if e := entry(ann1); e["unread"] != 3.0 || e["read_seq"] != 0.0 {
		t.Fatalf("before reading: %v", e)
	}
	from2 := len(ann2.Frames())
	send(t, ann1, map[string]any{"type": "read", "conversation_id": conv, "seq": 2})
	if f, _ := waitType(t, ann1, 0, "read"); f.Int("read_seq") != 2 {
		t.Fatalf("read answer %s", f.Raw)
	}
	if f, _ := waitType(t, ann2, from2, "read"); f.Int("read_seq") != 2 || f.Int("conversation_id") != conv {
		t.Fatalf("ann's other socket: %s", f.Raw)
	}
	if e := entry(bob); e["unread"] != 3.0 || e["read_seq"] != 0.0 {
		t.Errorf("bob's mark moved with ann's: %v", e)
	}
	for _, f := range bob.Frames() {
		if f.Type() == "read" {
			t.Errorf("bob got ann's read frame %s", f.Raw)
		}
	}
	// Never backwards.
	from1 := len(ann1.Frames())
	send(t, ann1, map[string]any{"type": "read", "conversation_id": conv, "seq": 1})
	if f, _ := waitType(t, ann1, from1, "read"); f.Int("read_seq") != 2 {
		t.Errorf("a smaller seq moved the mark: %s", f.Raw)
	}
	// Ann's own reply does not count as unread for her; the visitor's does.
	post(t, ann1, conv, "on it", "a1")
	post(t, carl, conv, "thanks", "c4")
	if e := entry(ann2); e["unread"] != 2.0 || e["read_seq"] != 2.0 {
		t.Errorf("ann after her reply: %v, want unread 2 (seqs 3 and 5)", e)
	}
	if e := entry(bob); e["unread"] != 5.0 {
		t.Errorf("bob: %v, want unread 5 (ann's reply counts for him)", e)
	}
	// Capped at the last seq; kept across a restart.
	send(t, ann1, map[string]any{"type": "read", "conversation_id": conv, "seq": 1000})
	if f, _ := waitType(t, ann1, from1+1, "read"); f.Int("read_seq") != 5 {
		t.Errorf("read past the end: %s", f.Raw)
	}
	s.Stop()
	s = startServer(t, "--database-url", db)
	again := dial(t, s, "ann", "Ann", true, true)
	if e := entry(again); e["unread"] != 0.0 || e["read_seq"] != 5.0 {
		t.Errorf("after a restart: %v", e)
	}
	// A visitor has a mark of their own conversation only (read receipts).
	carl = dial(t, s, "carl", "Carl", false, true)
	waitFrame(t, carl, 0, "ann's receipt", isReceipt(conv, 5, "staff"))
	from := len(carl.Frames())
	send(t, carl, map[string]any{"type": "read", "conversation_id": conv + 1000, "seq": 1})
	if f, _ := waitType(t, carl, from, "error"); f.String("code") != "forbidden" {
		t.Errorf("a visitor's read mark of another conversation: %s", f.Raw)
	}
}

func TestStaleReplyGuard(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	ann := dial(t, s, "ann", "Ann", true, true)
	bob := dial(t, s, "bob", "Bob", true, true)
	carl := dial(t, s, "carl", "Carl", false, true)
	conv := convOf(t, carl)
	post(t, carl, conv, "question", "c1") // seq 1

	// Two agents answer seq 1 at once: exactly one is stored.
	var wg sync.WaitGroup
	answers := make([]wsclient.Frame, 2)
	for i, c := range []*wsclient.Client{ann, bob} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("race-", i)
			from := len(c.Frames())
			if err := c.Send(map[string]any{"message": "answer " + id, "conversation_id": conv, "client_msg_id": id, "based_on_seq": 1}); err != nil {
				t.Error(err)
				return
			}
			f, _, err := c.WaitFor(ctxT(t, waitTimeout), from, func(f wsclient.Frame) bool {
				return (f.Type() == "ack" || f.Type() == "error") && f.String("client_msg_id") == id
			})
			if err != nil {
				t.Error(err)
			}
			answers[i] = f
		}()
	}
	wg.Wait()
	var acks, stale int
	var loser *wsclient.Client
	for i, f := range answers {
		switch {
		case f.Type() == "ack":
			acks++
		case f.Type() == "error" && f.String("code") == "stale_reply" && f.Int("last_seq") == 2:
			stale++
			loser = []*wsclient.Client{ann, bob}[i]
		default:
			t.Errorf("answer %s", f.Raw)
		}
	}
	if acks != 1 || stale != 1 {
		t.Fatalf("two agents racing: %d acks, %d stale_reply; want 1 and 1", acks, stale)
	}
	// The loser sends anyway.
	send(t, loser, map[string]any{"message": "mine too", "conversation_id": conv, "client_msg_id": "force", "based_on_seq": 1, "force": true})
	waitAck(t, loser, 0, "force") // seq 3
	// Own messages never make a reply stale.
	send(t, loser, map[string]any{"message": "and more", "conversation_id": conv, "client_msg_id": "own", "based_on_seq": 2})
	if f, _ := waitFrame(t, loser, 0, "own", func(f wsclient.Frame) bool { return f.String("client_msg_id") == "own" }); f.Type() != "ack" {
		// based on 2: seq 3 is the loser's own; but seq 2 is the
		// winner's, after 2 nothing else: not stale.
		t.Errorf("a reply after only one's own messages: %s", f.Raw)
	}
	// A visitor message after based_on_seq makes it stale.
	post(t, carl, conv, "hello?", "c2") // seq 5
	from := len(ann.Frames())
	send(t, ann, map[string]any{"message": "late", "conversation_id": conv, "client_msg_id": "late", "based_on_seq": 4})
	if f, _ := waitFrame(t, ann, from, "late", func(f wsclient.Frame) bool { return f.String("client_msg_id") == "late" }); f.String("code") != "stale_reply" {
		t.Errorf("reply after a visitor message: %s", f.Raw)
	}
	// Visitors' based_on_seq is ignored; staff without one are never refused.
	post(t, carl, conv, "v", "c3")
	post(t, bob, conv, "no guard", "b-none")
	// A seed-dialect staff client cannot be told of a stale_reply: even
	// with a based_on_seq, its reply is stored.
	eve := dial(t, s, "eve", "Eve", true, false)
	send(t, eve, map[string]any{"message": "seed staff", "conversation_id": conv, "based_on_seq": 1})
	waitMsg(t, carl, conv, "seed staff")
	// Exactly the acknowledged messages are stored, in order.
	h := history(t, ann, map[string]any{"type": "history", "conversation_id": conv})
	var texts []string
	for _, m := range historyMessages(t, h) {
		texts = append(texts, m.String("message"))
	}
	if len(texts) != 8 || texts[0] != "question" || texts[2] != "mine too" || texts[3] != "and more" || texts[4] != "hello?" || texts[6] != "no guard" || texts[7] != "seed staff" {
		t.Errorf("stored %q", texts)
	}
}

// TestClusterDesk: on a 3-node cluster (etcd membership), status and
// assignment changes made on one node reach the staff sockets on every node
// live, a visitor's message on another node reopens the conversation, one
// agent's read mark reaches that agent's socket on another node, and
// everything survives a restart of the whole cluster.
func TestClusterDesk(t *testing.T) {
	dsn := newDatabase(t)
	c := startEtcdCluster(t, dsn, 3)
	carl := dialURL(t, c.nodes[0].URL(), "carl", "Carl", false)
	ann1 := dialURL(t, c.nodes[1].URL(), "ann", "Ann", true)
	ann2 := dialURL(t, c.nodes[2].URL(), "ann", "Ann", true)
	bob := dialURL(t, c.nodes[0].URL(), "bob", "Bob", true)
	conv := convOf(t, carl)
	post(t, carl, conv, "help", "c1")

	desk(t, ann1, map[string]any{"type": "assign", "conversation_id": conv, "assignee": "ann"})
	desk(t, ann1, map[string]any{"type": "status", "conversation_id": conv, "status": "resolved"})
	for name, cl := range map[string]*wsclient.Client{"ann on node 3": ann2, "bob on node 1": bob} {
		_, a := waitEvent(t, cl, 0, conv, "assignee", "ann")
		_, r := waitEvent(t, cl, 0, conv, "status", "resolved")
		if a > r {
			t.Errorf("%s: events out of order", name)
		}
	}
	waitEvent(t, carl, 0, conv, "status", "resolved")

	// The visitor writes again on node 1: every staff socket sees it reopen.
	post(t, carl, conv, "again", "c2")
	for _, cl := range []*wsclient.Client{ann1, ann2, bob} {
		waitEvent(t, cl, 0, conv, "status", "open")
	}
	// Ann reads on node 2; her socket on node 3 follows, bob's does not.
	send(t, ann1, map[string]any{"type": "read", "conversation_id": conv, "seq": 2})
	if f, _ := waitType(t, ann2, 0, "read"); f.Int("read_seq") != 2 {
		t.Errorf("ann's socket on node 3: %s", f.Raw)
	}

	// A restart of every node keeps status, assignee, events and marks.
	for _, n := range c.nodes {
		n.Stop()
	}
	for _, n := range c.nodes {
		n.Restart()
	}
	again := dialURL(t, c.nodes[2].URL(), "ann", "Ann", true)
	in, _ := waitType(t, again, 0, "inbox")
	var e map[string]any
	for _, x := range in.Fields["conversations"].([]any) {
		if m := x.(map[string]any); m["conversation_id"] == float64(conv) {
			e = m
		}
	}
	if e == nil || e["status"] != "open" || obj(wsclient.Frame{Fields: e}, "assignee")["external_id"] != "ann" || e["read_seq"] != 2.0 {
		t.Errorf("after restarting the cluster: %v", e)
	}
	h := history(t, again, map[string]any{"type": "history", "conversation_id": conv})
	if evs, _ := h.Fields["events"].([]any); len(evs) != 3 {
		t.Errorf("events after the restart: %s", h.Raw)
	}
}
