package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/pgstore"
	"github.com/grainchat/grainchat/storage/pgtest"
)

// openWebhookStore opens a store on dsn that records webhook events (or
// not), closed when the test ends.
func openWebhookStore(t *testing.T, dsn string, webhooks bool) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), pgtest.Logger(t), dsn, pgstore.Options{MaxOpenConns: 8, Webhooks: webhooks})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testEncode encodes what the tests check: id, type, conversation, seq.
func testEncode(it storage.WebhookItem) ([]byte, error) {
	out := map[string]any{"id": it.ID, "type": it.Type, "conversation": it.Conversation.ID, "user": it.Conversation.User.ExternalID}
	switch {
	case it.Message != nil:
		out["seq"] = it.Message.Seq
	case it.Event != nil:
		out["after_seq"] = it.Event.AfterSeq
		out["kind"] = it.Event.Kind
	case it.Read != nil:
		out["seq"] = it.Read.Seq
		out["reader"] = it.Read.Reader.ExternalID
		out["staff"] = it.Read.Staff
	}
	return json.Marshal(out)
}

// expandAll expands until nothing is left.
func expandAll(t *testing.T, s storage.Webhooks, endpoints []int64) int {
	t.Helper()
	total := 0
	for {
		n, err := s.ExpandWebhooks(context.Background(), endpoints, testEncode)
		if err != nil {
			t.Fatalf("ExpandWebhooks: %v", err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

// pending reads all of an endpoint's deliveries through PendingWebhooks'
// paging.
func pending(t *testing.T, s storage.Webhooks, endpoint int64) []storage.WebhookDelivery {
	t.Helper()
	var out []storage.WebhookDelivery
	var after int64
	for {
		ds, err := s.PendingWebhooks(context.Background(), endpoint, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			return out
		}
		for _, d := range ds {
			if d.ID <= after {
				t.Fatalf("delivery %d after %d: not in id order", d.ID, after)
			}
			after = d.ID
		}
		out = append(out, ds...)
	}
}

// byConversation is each conversation's event ids, in delivery order.
func byConversation(ds []storage.WebhookDelivery) map[int64][]string {
	out := map[int64][]string{}
	for _, d := range ds {
		out[d.ConversationID] = append(out[d.ConversationID], d.EventID)
	}
	return out
}

// Every kind of event is recorded, expanded for every endpoint with its
// body, in each conversation's order: created, then messages by seq, each
// desk event after the message it follows (a reopen before the message
// that reopened), then the read mark.
func TestWebhookOutbox(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	s := openWebhookStore(t, dsn, true)

	eps, err := s.WebhookEndpoints(ctx, []string{"http://a.example/hook", "http://b.example/hook"})
	if err != nil || len(eps) != 2 || eps[0].ID == eps[1].ID {
		t.Fatalf("WebhookEndpoints = %v, %v", eps, err)
	}
	again, err := s.WebhookEndpoints(ctx, []string{"http://b.example/hook"})
	if err != nil || len(again) != 1 || again[0] != eps[1] {
		t.Fatalf("WebhookEndpoints again = %v, %v; want %v", again, err, eps[1])
	}
	ids := []int64{eps[0].ID, eps[1].ID}

	ann, _ := s.UpsertUser(ctx, storage.UserInput{ExternalID: "ann", Name: "Ann", IsAdmin: true})
	alice, _ := s.UpsertUser(ctx, storage.UserInput{ExternalID: "alice", Name: "Alice"})
	bob, _ := s.UpsertUser(ctx, storage.UserInput{ExternalID: "bob", Name: "Bob"})
	ca, err := s.EnsureConversation(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := s.EnsureConversation(ctx, bob.ID)
	if again, _ := s.EnsureConversation(ctx, alice.ID); again.ID != ca.ID {
		t.Fatal("EnsureConversation made a second conversation")
	}
	msg := func(c storage.Conversation, u storage.User, body string) storage.NewMessage {
		return storage.NewMessage{ConversationID: c.ID, SenderID: u.ID, SenderName: u.Name, SenderIsAdmin: u.IsAdmin, Body: body}
	}
	appendAll := func(ms ...storage.NewMessage) []storage.AppendResult {
		t.Helper()
		res, err := s.AppendMessages(ctx, ms)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	r1 := appendAll(msg(ca, alice, "a1"), msg(cb, bob, "b1"), msg(ca, ann, "a2"), msg(cb, bob, "b2"))
	resolved := storage.StatusResolved
	ch, err := s.ChangeConversation(ctx, ca.ID, storage.Change{Status: &resolved, Assignee: &ann.ID, ActorID: ann.ID})
	if err != nil || len(ch.Events) != 2 {
		t.Fatalf("ChangeConversation = %+v, %v", ch, err)
	}
	note := "watch this one"
	nt, err := s.ChangeConversation(ctx, ca.ID, storage.Change{Note: &note, ActorID: ann.ID})
	if err != nil || len(nt.Events) != 1 {
		t.Fatalf("note = %+v, %v", nt, err)
	}
	r2 := appendAll(msg(ca, alice, "a3 reopens"), msg(ca, alice, "a4"))
	if r2[0].Reopened == nil {
		t.Fatal("a3 did not reopen")
	}
	if _, err := s.MarkRead(ctx, ann.ID, ca.ID, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkRead(ctx, ann.ID, ca.ID, 2); err != nil { // backwards: nothing moves, nothing recorded
		t.Fatal(err)
	}
	if _, err := s.MarkRead(ctx, bob.ID, cb.ID, 2); err != nil {
		t.Fatal(err)
	}

	if n := expandAll(t, s, ids); n != 14 {
		t.Errorf("expanded %d events, want 14", n)
	}
	mid := func(r storage.AppendResult) string { return fmt.Sprintf("msg_%d", r.Message.ID) }
	eid := func(e storage.Event) string { return fmt.Sprintf("evt_%d", e.ID) }
	want := map[int64][]string{
		ca.ID: {fmt.Sprintf("cnv_%d", ca.ID), mid(r1[0]), mid(r1[2]), eid(ch.Events[0]), eid(ch.Events[1]), eid(nt.Events[0]),
			eid(*r2[0].Reopened), mid(r2[0]), mid(r2[1]), "read"},
		cb.ID: {fmt.Sprintf("cnv_%d", cb.ID), mid(r1[1]), mid(r1[3]), "read"},
	}
	for _, ep := range ids {
		ds := pending(t, s, ep)
		got := byConversation(ds)
		for conv, w := range want {
			g := got[conv]
			if len(g) == len(w) && strings.HasPrefix(g[len(g)-1], "read_") {
				g = append(slices.Clone(g[:len(g)-1]), "read")
			}
			if !slices.Equal(g, w) {
				t.Errorf("endpoint %d, conversation %d: events %v, want %v", ep, conv, got[conv], w)
			}
		}
		types := map[string]string{}
		for _, d := range ds {
			var body map[string]any
			if err := json.Unmarshal(d.Body, &body); err != nil {
				t.Fatalf("body %s: %v", d.Body, err)
			}
			if body["id"] != d.EventID || body["type"] != d.Type || int64(body["conversation"].(float64)) != d.ConversationID {
				t.Errorf("delivery %+v has body %s", d, d.Body)
			}
			if d.Attempts != 0 || !d.NextAttemptAt.IsZero() || d.CreatedAt.IsZero() {
				t.Errorf("fresh delivery %+v", d)
			}
			types[d.EventID] = d.Type
			if d.Type == storage.WebhookConversationRead && (body["reader"] == "ann") != (body["staff"] == true) {
				t.Errorf("read event %s: staff flag wrong", d.Body)
			}
		}
		for id, typ := range map[string]string{mid(r1[0]): storage.WebhookMessageCreated, eid(ch.Events[0]): storage.WebhookConversationUpdated,
			eid(nt.Events[0]): storage.WebhookNoteCreated, eid(*r2[0].Reopened): storage.WebhookConversationUpdated,
			fmt.Sprintf("cnv_%d", cb.ID): storage.WebhookConversationCreated} {
			if types[id] != typ {
				t.Errorf("event %s has type %q, want %q", id, types[id], typ)
			}
		}
	}

	// Retry, backlog, delete.
	ds := pending(t, s, ids[0])
	next := time.Now().Add(time.Minute).Truncate(time.Microsecond)
	if err := s.RetryWebhook(ctx, ds[0].ID, 3, next); err != nil {
		t.Fatal(err)
	}
	if got := pending(t, s, ids[0])[0]; got.Attempts != 3 || !got.NextAttemptAt.Equal(next) {
		t.Errorf("after RetryWebhook: %+v, want 3 attempts, next %v", got, next)
	}
	n, oldest, err := s.WebhookBacklog(ctx, ids[0])
	if err != nil || n != int64(len(ds)) || !oldest.Equal(ds[0].CreatedAt) {
		t.Errorf("WebhookBacklog = %d, %v, %v; want %d, %v", n, oldest, err, len(ds), ds[0].CreatedAt)
	}
	if err := s.DeleteWebhooks(ctx, []int64{ds[0].ID, ds[1].ID, -5}); err != nil {
		t.Fatal(err)
	}
	if left := pending(t, s, ids[0]); len(left) != len(ds)-2 || left[0].ID != ds[2].ID {
		t.Errorf("after DeleteWebhooks: %d left, want %d", len(left), len(ds)-2)
	}
	if left := pending(t, s, ids[1]); len(left) != len(ds) {
		t.Errorf("the other endpoint has %d left, want %d", len(left), len(ds))
	}
}

// A store opened without Options.Webhooks records nothing.
func TestWebhookOutbox_offRecordsNothing(t *testing.T) {
	ctx := context.Background()
	s := openWebhookStore(t, pgtest.NewDatabase(t), false)
	ann, _ := s.UpsertUser(ctx, storage.UserInput{ExternalID: "ann", Name: "Ann", IsAdmin: true})
	alice, _ := s.UpsertUser(ctx, storage.UserInput{ExternalID: "alice", Name: "Alice"})
	c, _ := s.EnsureConversation(ctx, alice.ID)
	if _, err := s.AppendMessages(ctx, []storage.NewMessage{{ConversationID: c.ID, SenderID: alice.ID, SenderName: "Alice", Body: "hi"}}); err != nil {
		t.Fatal(err)
	}
	st := storage.StatusPending
	if _, err := s.ChangeConversation(ctx, c.ID, storage.Change{Status: &st, ActorID: ann.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkRead(ctx, ann.ID, c.ID, 1); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM webhook_queue`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("webhook_queue holds %d rows (%v), want none", n, err)
	}
}

// Two stores (two nodes) appending at once to shared conversations, with
// both expanding at once: every message becomes exactly one delivery, and
// each conversation's deliveries are in seq order.
func TestWebhookOutbox_concurrentNodes(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	stores := []*pgstore.Store{openWebhookStore(t, dsn, true), openWebhookStore(t, dsn, true)}
	eps, err := stores[0].WebhookEndpoints(ctx, []string{"http://a.example/hook"})
	if err != nil {
		t.Fatal(err)
	}
	const convs, writers, batches, perBatch = 20, 4, 40, 5
	var users []storage.User
	var conversations []storage.Conversation
	for i := range convs {
		u, _ := stores[0].UpsertUser(ctx, storage.UserInput{ExternalID: fmt.Sprint("v", i), Name: "V"})
		c, err := stores[0].EnsureConversation(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		users, conversations = append(users, u), append(conversations, c)
	}
	stop := make(chan struct{})
	var expanders sync.WaitGroup
	for _, s := range stores {
		expanders.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.ExpandWebhooks(ctx, []int64{eps[0].ID}, testEncode); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var wg sync.WaitGroup
	for w := range writers {
		s := stores[w%2]
		wg.Go(func() {
			for b := range batches {
				var ms []storage.NewMessage
				for k := range perBatch {
					i := (w*7 + b*3 + k*5) % convs
					ms = append(ms, storage.NewMessage{ConversationID: conversations[i].ID, SenderID: users[i].ID, SenderName: "V", Body: "m"})
				}
				if _, err := s.AppendMessages(ctx, ms); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	expanders.Wait()
	expandAll(t, stores[1], []int64{eps[0].ID})

	ds := pending(t, stores[0], eps[0].ID)
	seen := map[string]bool{}
	last := map[int64]int64{}
	messages := 0
	for _, d := range ds {
		if seen[d.EventID] {
			t.Fatalf("event %s delivered twice", d.EventID)
		}
		seen[d.EventID] = true
		var body struct {
			Seq int64 `json:"seq"`
		}
		_ = json.Unmarshal(d.Body, &body)
		if d.Type != storage.WebhookMessageCreated {
			continue
		}
		messages++
		if body.Seq != last[d.ConversationID]+1 {
			t.Fatalf("conversation %d: seq %d after %d", d.ConversationID, body.Seq, last[d.ConversationID])
		}
		last[d.ConversationID] = body.Seq
	}
	if messages != writers*batches*perBatch {
		t.Fatalf("%d message.created deliveries, want %d", messages, writers*batches*perBatch)
	}
}

// The sender lock is held by one store at a time, and freed when its holder
// releases it or its session dies.
func TestWebhookLock(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	a, b := openWebhookStore(t, dsn, true), openWebhookStore(t, dsn, true)
	eps, _ := a.WebhookEndpoints(ctx, []string{"http://a.example/hook", "http://b.example/hook"})
	la, ok, err := a.LockWebhookEndpoint(ctx, eps[0].ID)
	if err != nil || !ok {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	if _, ok, err := b.LockWebhookEndpoint(ctx, eps[0].ID); err != nil || ok {
		t.Fatalf("second lock of a held endpoint: ok %v, %v", ok, err)
	}
	lb, ok, err := b.LockWebhookEndpoint(ctx, eps[1].ID)
	if err != nil || !ok {
		t.Fatalf("lock of the other endpoint: %v %v", ok, err)
	}
	la.Release()
	la.Release() // idempotent
	la2, ok, err := b.LockWebhookEndpoint(ctx, eps[0].ID)
	if err != nil || !ok {
		t.Fatalf("lock after release: %v %v", ok, err)
	}
	// Kill b's lock sessions: Lost closes, and a takes the endpoints. Only
	// this database's: every advisory lock of the server once included the
	// migration locks of tests running beside this one (another package's,
	// another run's), whose migrations then failed with "bad connection".
	if _, err := a.DB().ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
		t.Fatal(err)
	}
	for _, l := range []storage.Lock{la2, lb} {
		select {
		case <-l.Lost():
		case <-time.After(10 * time.Second):
			t.Fatal("Lost not closed 10 s after the session died")
		}
		l.Release()
	}
	l, ok, err := a.LockWebhookEndpoint(ctx, eps[0].ID)
	if err != nil || !ok {
		t.Fatalf("lock after the holder's session died: %v %v", ok, err)
	}
	l.Release()
}

// Migration 00014 rolls back to 00008's append function and forward again.
func TestWebhookMigration_downAndUp(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	if err := pgstore.MigrateTo(ctx, dsn, 14, false); err != nil {
		t.Fatal(err)
	}
	if err := pgstore.MigrateTo(ctx, dsn, 13, true); err != nil {
		t.Fatalf("down to 13: %v", err)
	}
	if err := pgstore.MigrateTo(ctx, dsn, 14, false); err != nil {
		t.Fatalf("up to 14 again: %v", err)
	}
}
