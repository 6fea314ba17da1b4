package main

// End-to-end tests of the webhooks (docs/WEBHOOKS.md): real chatd processes
// on PostgreSQL send every event to a real HTTP receiver in this test, which
// goes down, answers 500 and answers slowly for a while, while chatd is
// SIGKILLed and restarted (one node), or the node sending the webhooks is
// killed (three nodes). Afterwards every stored message's message.created
// has arrived at least once, every signature verifies, each conversation's
// first arrivals are in seq order, and duplicates are counted.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grainchat/grainchat/integrations/webhook"
	"github.com/grainchat/grainchat/transport/wsclient"
)

// webhookFull runs the webhook tests at the size (5,000 messages
// over 200 conversations) rather than the default, smaller one.
var webhookFull = flag.Bool("webhook-full", os.Getenv("CHAT_WEBHOOK_FULL") != "", "webhook tests: 5,000 messages over 200 conversations")

const webhookTestSecret = "webhook-test-secret-0123456789"

// Receiver modes.
const (
	recvUp   = iota // answer 200 at once
	recvDown        // not listening: connections are refused
	recv500         // answer 500
	recvSlow        // answer 200 after slowDelay
)

const slowDelay = 300 * time.Millisecond

// arrival is one event the receiver accepted (answered 200).
type arrival struct {
	id, typ    string
	conv, seq  int64
	messageTxt string
	raw        []byte
}

// webhookReceiver is a real HTTP endpoint on a fixed loopback port that
// verifies every request and records what it accepted, in order.
type webhookReceiver struct {
	t    *testing.T
	addr string

	mu       sync.Mutex
	srv      *http.Server
	accepted []arrival

	mode       atomic.Int32
	badSig     atomic.Int64 // requests whose signature did not verify
	badHeaders atomic.Int64 // requests without the documented headers
	refused500 atomic.Int64 // requests answered 500
	slow       atomic.Int64 // requests answered slowly
}

func startReceiver(t *testing.T) *webhookReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &webhookReceiver{t: t, addr: ln.Addr().String()}
	r.serve(ln)
	t.Cleanup(func() { r.setMode(recvDown) })
	return r
}

func (r *webhookReceiver) URL() string {
	return "http://" + r.addr + "/hooks/grainchat?token=not-logged"
}

func (r *webhookReceiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// setMode switches the receiver: down closes its listener and connections,
// anything else listens again (on the same port) if it was down.
func (r *webhookReceiver) setMode(m int32) {
	r.t.Helper()
	old := r.mode.Swap(m)
	switch {
	case m == recvDown && old != recvDown:
		r.mu.Lock()
		srv := r.srv
		r.mu.Unlock()
		_ = srv.Close()
	case m != recvDown && old == recvDown:
		var ln net.Listener
		waitFor(r.t, 10*time.Second, "the receiver's port free again", func() bool {
			var err error
			ln, err = net.Listen("tcp", r.addr)
			return err == nil
		})
		r.serve(ln)
	}
}

func (r *webhookReceiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	if err := webhook.Verify([]byte(webhookTestSecret), req.Header.Get(webhook.HeaderSignature), body, time.Now(), 0); err != nil {
		r.badSig.Add(1)
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	var env struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Conversation *struct {
				ID int64 `json:"id"`
			} `json:"conversation"`
			Message *struct {
				ConversationID int64  `json:"conversation_id"`
				Seq            int64  `json:"seq"`
				Message        string `json:"message"`
			} `json:"message"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Data.Conversation == nil ||
		req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" ||
		req.Header.Get(webhook.HeaderEventID) != env.ID {
		r.badHeaders.Add(1)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	switch r.mode.Load() {
	case recv500:
		r.refused500.Add(1)
		http.Error(w, "not now", http.StatusInternalServerError)
		return
	case recvSlow:
		r.slow.Add(1)
		time.Sleep(slowDelay)
	}
	a := arrival{id: env.ID, typ: env.Type, conv: env.Data.Conversation.ID, raw: body}
	if m := env.Data.Message; m != nil {
		if m.ConversationID != a.conv {
			r.badHeaders.Add(1)
		}
		a.seq, a.messageTxt = m.Seq, m.Message
	}
	r.mu.Lock()
	r.accepted = append(r.accepted, a)
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *webhookReceiver) arrivals() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]arrival(nil), r.accepted...)
}

// webhookArgs are the flags of a node that sends webhooks to r, retrying
// at most every second so that the test drains quickly.
func webhookArgs(r *webhookReceiver) []string {
	return []string{"--webhook-url", r.URL(), "--webhook-secret", webhookTestSecret,
		"--webhook-timeout", "2s", "--webhook-retry-max", "1s"}
}

// webhookSizes are the test's conversations and messages (visitor messages
// over WebSocket, one per conversation, then staff replies over REST).
func webhookSizes() (convs, messages int) {
	if *webhookFull {
		return 200, 5000
	}
	return 100, 2000
}

// webhookLoad creates convs conversations (a visitor's first message each)
// on the nodes, then posts the remaining messages as staff over REST at a
// steady pace from workers that retry (same client_msg_id) on another node
// until the post is stored, calling phase with the fraction posted so far
// after each one.
type webhookLoad struct {
	t     *testing.T
	urls  []string // HTTP base URLs of the nodes
	staff string   // a staff token
	convs []int64
}

func newWebhookLoad(t *testing.T, nodes []*nodeProc) *webhookLoad {
	l := &webhookLoad{t: t, staff: mint(t, "wh-staff", "Ann", true)}
	for _, n := range nodes {
		l.urls = append(l.urls, "http://"+n.node.Addr())
	}
	return l
}

// createConversations connects each visitor once, over the nodes in turn,
// and sends their first message.
func (l *webhookLoad) createConversations(nodes []*nodeProc, n int) {
	t := l.t
	t.Helper()
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := wsclient.Dial(ctx, nodes[i%len(nodes)].URL(), wsclient.Options{Token: mint(t, fmt.Sprint("wh-visitor-", i), fmt.Sprint("Visitor ", i), false), V1: true})
			if err != nil {
				t.Errorf("visitor %d: %v", i, err)
				return
			}
			defer c.Close()
			conv := convOf(t, c)
			post(t, c, 0, fmt.Sprintf("first message of visitor %d", i), "first")
			mu.Lock()
			l.convs = append(l.convs, conv)
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// postReplies posts n staff replies, spread over the conversations, at
// about rate per second from 16 workers; each retries until stored.
func (l *webhookLoad) postReplies(n int, rate float64, progress func(done int)) {
	t := l.t
	jobs := make(chan int)
	var done atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 15 * time.Second}
	for w := range 16 {
		wg.Go(func() {
			for k := range jobs {
				conv := l.convs[k%len(l.convs)]
				body, _ := json.Marshal(map[string]any{"message": fmt.Sprintf("reply %d", k), "client_msg_id": fmt.Sprint("r", k)})
				deadline := time.Now().Add(90 * time.Second)
				for attempt := w; ; attempt++ {
					url := fmt.Sprintf("%s/api/v1/conversations/%d/messages", l.urls[attempt%len(l.urls)], conv)
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+l.staff)
					resp, err := client.Do(req)
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == http.StatusCreated {
							break
						}
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
					if time.Now().After(deadline) {
						t.Errorf("reply %d never stored: %v", k, err)
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				progress(int(done.Add(1)))
			}
		})
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	for k := range n {
		<-tick.C
		jobs <- k
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
}

// storedMessage is a message as the database holds it.
type storedMessage struct {
	conv, seq int64
	body      string
}

// storedMessages reads every message of the database by id ("msg_<id>").
func storedMessages(t *testing.T, dsn string) map[string]storedMessage {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, conversation_id, seq, body FROM messages`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]storedMessage{}
	for rows.Next() {
		var id int64
		var m storedMessage
		if err := rows.Scan(&id, &m.conv, &m.seq, &m.body); err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprint("msg_", id)] = m
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkWebhookArrivals waits until every stored message's message.created
// has arrived, then checks the arrivals: content, per-conversation order of
// first arrivals (conversation.created first, then messages by seq), and
// counts the duplicates, which it logs.
func checkWebhookArrivals(t *testing.T, r *webhookReceiver, dsn string, convs []int64, wantMessages int) {
	t.Helper()
	stored := storedMessages(t, dsn)
	if len(stored) != wantMessages {
		t.Fatalf("the database holds %d messages, want %d (every post was acknowledged)", len(stored), wantMessages)
	}
	missing := func() []string {
		got := map[string]bool{}
		for _, a := range r.arrivals() {
			got[a.id] = true
		}
		var out []string
		for id := range stored {
			if !got[id] {
				out = append(out, id)
			}
		}
		return out
	}
	var left []string
	err := waitForErr(3*time.Minute, func() bool { left = missing(); return len(left) == 0 })
	if err != nil {
		t.Fatalf("%d message.created never arrived (e.g. %v)", len(left), left[:min(len(left), 5)])
	}

	arrivals := r.arrivals()
	first := map[string]bool{}
	lastSeq := map[int64]int64{}
	created := map[int64]bool{}
	duplicates := map[string]int{}
	for _, a := range arrivals {
		if first[a.id] {
			duplicates[a.typ]++
			continue
		}
		first[a.id] = true
		switch a.typ {
		case "conversation.created":
			if lastSeq[a.conv] != 0 {
				t.Errorf("conversation %d: conversation.created arrived after seq %d", a.conv, lastSeq[a.conv])
			}
			created[a.conv] = true
		case "message.created":
			m, ok := stored[a.id]
			if !ok || m.conv != a.conv || m.seq != a.seq || m.body != a.messageTxt {
				t.Errorf("%s arrived as conversation %d seq %d %q; stored: %+v", a.id, a.conv, a.seq, a.messageTxt, m)
			}
			if a.seq != lastSeq[a.conv]+1 {
				t.Errorf("conversation %d: first arrival of seq %d after seq %d", a.conv, a.seq, lastSeq[a.conv])
			}
			lastSeq[a.conv] = a.seq
		}
	}
	for _, c := range convs {
		if !created[c] {
			t.Errorf("conversation %d: no conversation.created", c)
		}
	}
	if n := r.badSig.Load(); n != 0 {
		t.Errorf("%d requests had a signature that does not verify", n)
	}
	if n := r.badHeaders.Load(); n != 0 {
		t.Errorf("%d requests lacked the documented headers or body", n)
	}
	total := 0
	for _, n := range duplicates {
		total += n
	}
	t.Logf("webhook report: %d messages over %d conversations; %d arrivals, %d distinct events, %d duplicates %v; "+
		"answered 500: %d, answered slowly: %d", len(stored), len(convs), len(arrivals), len(first), total, duplicates,
		r.refused500.Load(), r.slow.Load())
	if r.refused500.Load() == 0 || r.slow.Load() == 0 {
		t.Errorf("the receiver's 500 and slow phases saw no request: the test did not test them")
	}
}

// waitForErr polls cond every 100 ms until it holds or d passes.
func waitForErr(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// runWebhookPhases posts the replies while the receiver goes through its
// phases (fractions of the replies posted): up, down, 500 (during which
// kill runs once, at 55 %), slow, up.
func runWebhookPhases(t *testing.T, l *webhookLoad, r *webhookReceiver, replies int, kill func()) {
	var killed atomic.Bool
	var mu sync.Mutex
	l.postReplies(replies, 250, func(done int) {
		f := float64(done) / float64(replies)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case f < 0.15:
		case f < 0.35:
			if r.mode.Load() != recvDown {
				t.Logf("receiver down at %d replies", done)
				r.setMode(recvDown)
			}
		case f < 0.55:
			if r.mode.Load() != recv500 {
				t.Logf("receiver answers 500 at %d replies", done)
				r.setMode(recv500)
			}
		case f < 0.8:
			if !killed.Swap(true) {
				go kill() // the posts carry on (retrying) meanwhile
			}
			if r.mode.Load() != recvSlow {
				t.Logf("receiver slow at %d replies", done)
				r.setMode(recvSlow)
			}
		default:
			if r.mode.Load() != recvUp {
				t.Logf("receiver up at %d replies", done)
				r.setMode(recvUp)
			}
		}
	})
	r.setMode(recvUp)
}

// One node, SIGKILLed and restarted while the receiver refuses events.
func TestWebhookDeliveryThroughOutagesAndKill(t *testing.T) {
	convs, messages := webhookSizes()
	db := newDatabase(t)
	r := startReceiver(t)
	n := startNode(t, "webhook-1", append([]string{"--database-url", db}, webhookArgs(r)...)...)
	l := newWebhookLoad(t, []*nodeProc{n})
	l.createConversations([]*nodeProc{n}, convs)
	var restarted atomic.Bool
	runWebhookPhases(t, l, r, messages-convs, func() {
		t.Log("SIGKILL chatd")
		n.Kill()
		if err := n.node.Restart(context.Background()); err != nil {
			t.Error(err)
		}
		restarted.Store(true)
		t.Log("chatd restarted")
	})
	if !restarted.Load() {
		waitFor(t, 60*time.Second, "chatd restarted", restarted.Load)
	}
	checkWebhookArrivals(t, r, db, l.convs, messages)
}

// Three nodes; the node sending the webhooks is SIGKILLed (and not brought
// back) while the receiver refuses events: another node takes over.
func TestWebhookDeliveryClusterSenderKilled(t *testing.T) {
	convs, messages := webhookSizes()
	db := newDatabase(t)
	r := startReceiver(t)
	c := startAutomanagedCluster(t, db, 3, webhookArgs(r)...)
	sending := func(p *nodeProc) bool {
		return strings.Contains(p.out.String(), "sending this endpoint's events from this node")
	}
	var sender *nodeProc
	waitFor(t, 30*time.Second, "a node sending the webhooks", func() bool {
		for _, p := range c.nodes {
			if sending(p) {
				sender = p
				return true
			}
		}
		return false
	})
	var others []*nodeProc
	for _, p := range c.nodes {
		if p != sender {
			others = append(others, p)
		}
	}
	l := newWebhookLoad(t, c.nodes)
	l.createConversations(c.nodes, convs)
	l.urls = nil // post to the survivors only: the sender's node dies
	for _, p := range others {
		l.urls = append(l.urls, "http://"+p.node.Addr())
	}
	var killed atomic.Bool
	runWebhookPhases(t, l, r, messages-convs, func() {
		t.Logf("SIGKILL %s, the node sending the webhooks", sender.name)
		sender.Kill()
		killed.Store(true)
	})
	waitFor(t, 60*time.Second, "the sender killed", killed.Load)
	waitFor(t, 30*time.Second, "a surviving node sending the webhooks", func() bool {
		return sending(others[0]) || sending(others[1])
	})
	checkWebhookArrivals(t, r, db, l.convs, messages)
}

// Every event type reaches the receiver with its data, in the
// conversation's order: created, the visitor's message, status and
// assignee changes, a note, staff's read mark, the reopen and the message
// that reopened.
func TestWebhookEventTypes(t *testing.T) {
	db := newDatabase(t)
	r := startReceiver(t)
	s := startServer(t, append([]string{"--database-url", db}, webhookArgs(r)...)...)
	api := newAPIClient(t, s)
	v := dial(t, s, "wh-alice", "Alice", false, true)
	dial(t, s, "wh-ann", "Ann", true, true) // the assignee must have connected once
	conv := convOf(t, v)
	staff := mint(t, "wh-ann", "Ann", true)
	post(t, v, 0, "Where is my order?", "q1")
	for _, call := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPatch, fmt.Sprintf("/conversations/%d", conv), map[string]any{"status": "resolved", "assignee": "wh-ann"}},
		{http.MethodPost, fmt.Sprintf("/conversations/%d/notes", conv), map[string]any{"body": "VIP customer"}},
		{http.MethodPost, fmt.Sprintf("/conversations/%d/read", conv), map[string]any{"seq": 1}},
	} {
		if a := api.call(call.method, call.path, staff, call.body); a.status/100 != 2 {
			t.Fatalf("%s %s: %d %v", call.method, call.path, a.status, a.body)
		}
	}
	post(t, v, 0, "Still waiting", "q2")

	want := []string{"conversation.created", "message.created", "conversation.updated", "conversation.updated", "note.created",
		"conversation.read", "conversation.updated", "message.created"}
	var got []arrival
	waitFor(t, 30*time.Second, "every event at the receiver", func() bool {
		got = nil
		for _, a := range r.arrivals() {
			if a.conv == conv {
				got = append(got, a)
			}
		}
		return len(got) >= len(want)
	})
	var types []string
	for _, a := range got {
		types = append(types, a.typ)
	}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", types, want)
	}
	var bodies []webhookBody
	for _, a := range got {
		var e webhookBody
		if err := json.Unmarshal(a.raw, &e); err != nil {
			t.Fatalf("%s: %v", a.raw, err)
		}
		if e.ID != a.id || e.Data.Conversation.ID != conv || e.Data.Conversation.User.ExternalID != "wh-alice" {
			t.Errorf("event %s: envelope or conversation wrong: %s", a.id, a.raw)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.CreatedAt); err != nil {
			t.Errorf("event %s: created_at %q is not RFC 3339", a.id, e.CreatedAt)
		}
		bodies = append(bodies, e)
	}
	check := func(i int, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("event %d (%s) has the wrong data: %s", i, got[i].typ, got[i].raw)
		}
	}
	m1, st, as, nt, rd, re, m2 := bodies[1].Data, bodies[2].Data, bodies[3].Data, bodies[4].Data, bodies[5].Data, bodies[6].Data, bodies[7].Data
	check(1, m1.Message != nil && m1.Message.Seq == 1 && m1.Message.Message == "Where is my order?" && m1.Message.Sender == "Alice")
	check(2, st.Event != nil && st.Event.Kind == "status" && st.Event.Status == "resolved" && st.Event.Actor.ExternalID == "wh-ann" && st.Event.AfterSeq == 1)
	check(3, as.Event != nil && as.Event.Kind == "assignee" && as.Event.Assignee != nil && as.Event.Assignee.ExternalID == "wh-ann")
	check(4, nt.Event != nil && nt.Event.Kind == "note" && nt.Event.Body == "VIP customer")
	check(5, rd.Read != nil && rd.Read.Staff && rd.Read.Seq == 1 && rd.Read.User.ExternalID == "wh-ann")
	check(6, re.Event != nil && re.Event.Kind == "status" && re.Event.Status == "open" && re.Event.Actor.ExternalID == "wh-alice" && re.Event.AfterSeq == 1)
	check(7, m2.Message != nil && m2.Message.Seq == 2 && m2.Conversation.Status == "open" && m2.Conversation.Assignee != nil)
}

// webhookUser is a user in an event's body.
type webhookUser struct {
	ExternalID string `json:"external_id"`
}

// webhookBody is what the tests read of an event's body.
type webhookBody struct {
	ID        string `json:"id"`
	CreatedAt string `json:"created_at"`
	Data      struct {
		Conversation struct {
			ID       int64        `json:"id"`
			User     webhookUser  `json:"user"`
			Status   string       `json:"status"`
			Assignee *webhookUser `json:"assignee"`
		} `json:"conversation"`
		Message *struct {
			Seq     int64  `json:"seq"`
			Message string `json:"message"`
			Sender  string `json:"sender_name"`
		} `json:"message"`
		Event *struct {
			Kind     string       `json:"kind"`
			Status   string       `json:"status"`
			Assignee *webhookUser `json:"assignee"`
			Body     string       `json:"body"`
			Actor    webhookUser  `json:"actor"`
			AfterSeq int64        `json:"after_seq"`
		} `json:"event"`
		Read *struct {
			User  webhookUser `json:"user"`
			Staff bool        `json:"staff"`
			Seq   int64       `json:"seq"`
		} `json:"read"`
	} `json:"data"`
}
