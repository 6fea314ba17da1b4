package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/wsclient"
)

// Sockets leave no goroutine behind. Two hundred and forty sockets open, chat
// and close — normally, by dropping the TCP connection without a close frame,
// and after refused or failed handshakes — and then the process's goroutines
// (go_goroutines on /metrics: chatd and the test's clients share the process)
// come back to the baseline: no socket's read loop or write job, no session's
// lookup or timer outlives its connection.
func TestConnectionsLeaveNoGoroutines(t *testing.T) {
	const (
		visitors = 150 // each posts one message and closes
		dropped  = 30  // visitors whose TCP connection is dropped without a close frame
		admins   = 20  // receive every message, then close
		refused  = 20  // handshakes refused with 401
		failed   = 20  // plain GETs with a valid token: the session is spawned, the upgrade fails (400)
		margin   = 10  // goroutines the baseline may differ by (HTTP keep-alives, runtime)
	)
	s := startServer(t) // memory store: only sockets and actors are measured
	metricsURL := "http://" + s.Addr + "/metrics"

	round := func(prefix string, visitors, dropped, admins, refused, failed int) {
		t.Helper()
		var staff []*wsclient.Client
		for i := range admins {
			staff = append(staff, dialNoCleanup(t, s, fmt.Sprintf("%s-staff-%d", prefix, i), true))
		}
		var wg sync.WaitGroup
		errs := make(chan error, visitors+dropped+refused+failed)
		sem := make(chan struct{}, 10) // 10 clients at a time
		for i := range visitors {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				errs <- visitorChat(s, fmt.Sprintf("%s-visitor-%d", prefix, i))
			}()
		}
		for i := range dropped {
			errs <- droppedVisitor(t, s, fmt.Sprintf("%s-dropped-%d", prefix, i))
		}
		wg.Wait()
		for range refused {
			c, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Token: "not-a-token"})
			if err == nil || c.Resp == nil || c.Resp.StatusCode != 401 {
				errs <- fmt.Errorf("bad token: %v, want 401", err)
				if err == nil {
					c.Close()
				}
			}
		}
		for i := range failed {
			req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr+"/ws/chat/", nil)
			req.Header.Set("Authorization", "Bearer "+mint(t, fmt.Sprintf("%s-plain-%d", prefix, i), "Plain", false))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- fmt.Errorf("plain GET: %v", err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				errs <- fmt.Errorf("plain GET answered %d, want 400", resp.StatusCode)
			}
		}
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		// Every admin saw every visitor's message.
		for i, c := range staff {
			for v := range visitors {
				text := fmt.Sprintf("hello from %s-visitor-%d", prefix, v)
				if _, _, err := c.WaitFor(ctxT(t, waitTimeout), 0, func(f wsclient.Frame) bool { return f.String("message") == text }); err != nil {
					t.Fatalf("admin %d did not get %q: %v", i, text, err)
				}
			}
			c.Close()
		}
		waitMetric(t, metricsURL, "grainchat_connections", 0)
	}

	// A first, small round starts what lives as long as the server (the
	// inbox, pools, the HTTP client's keep-alive connection).
	round("warm", 5, 2, 2, 2, 2)
	baseline := settledGoroutines(t, metricsURL)
	t.Logf("baseline: %v goroutines", baseline)

	round("main", visitors, dropped, admins, refused, failed)
	if got := metricValue(t, scrape(t, metricsURL), `grainchat_handshakes_refused_total{status="401"}`); got != 2+refused {
		t.Errorf("401 refusals = %v, want %d", got, 2+refused)
	}

	var got float64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		g, err := metricNow(metricsURL, "go_goroutines")
		if err == nil && g <= baseline+margin {
			t.Logf("after %d sockets: %v goroutines (baseline %v)", visitors+dropped+admins+refused+failed, g, baseline)
			return
		}
		got = g
		if time.Now().After(deadline) {
			break
		}
	}
	var dumpBuf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&dumpBuf, 1)
	t.Fatalf("%v goroutines 30s after every socket closed, baseline %v (margin %d):\n%s", got, baseline, margin, dumpBuf.String())
}

// dialNoCleanup dials a v1 client and waits for its welcome (and inbox); the
// caller closes it.
func dialNoCleanup(t *testing.T, s *testServer, sub string, admin bool) *wsclient.Client {
	t.Helper()
	c, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Token: mint(t, sub, sub, admin), V1: true})
	if err != nil {
		t.Fatalf("dial %s: %v", sub, err)
	}
	want := "welcome"
	if admin {
		want = "inbox"
	}
	if _, _, err := c.WaitFor(ctxT(t, waitTimeout), 0, func(f wsclient.Frame) bool { return f.Type() == want }); err != nil {
		c.Close()
		t.Fatalf("%s: no %s: %v", sub, want, err)
	}
	return c
}

// visitorChat connects as sub, posts one message, waits for its ack and for
// the message, and closes normally.
func visitorChat(s *testServer, sub string) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := wsclient.Dial(ctx, s.URL(), wsclient.Options{Token: mintNoT(sub), V1: true})
	if err != nil {
		return fmt.Errorf("dial %s: %w", sub, err)
	}
	defer c.Close()
	text := "hello from " + sub
	if err := c.Send(map[string]any{"message": text, "client_msg_id": "c1"}); err != nil {
		return err
	}
	if _, _, err := c.WaitFor(ctx, 0, func(f wsclient.Frame) bool {
		return f.Type() == "message" && f.String("message") == text
	}); err != nil {
		return fmt.Errorf("%s: own message not delivered: %w", sub, err)
	}
	acks := 0
	for _, f := range c.Frames() {
		if f.Type() == "ack" && f.String("client_msg_id") == "c1" {
			acks++
		}
	}
	if acks != 1 {
		return fmt.Errorf("%s: %d acks, want 1", sub, acks)
	}
	return nil
}

// mintNoT is mint for goroutines other than the test's.
func mintNoT(sub string) string {
	iss, err := auth.NewIssuer(auth.Config{Secret: []byte(testSecret)})
	if err != nil {
		panic(err)
	}
	tok, err := iss.Mint(auth.Identity{Subject: sub, Name: sub}, time.Hour)
	if err != nil {
		panic(err)
	}
	return tok
}

// droppedVisitor completes a handshake, reads nothing and drops the TCP
// connection without a close frame.
func droppedVisitor(t *testing.T, s *testServer, sub string) error {
	c := rawDial(t, s.Addr, http.Header{"Authorization": {"Bearer " + mintNoT(sub)}, "Sec-WebSocket-Protocol": {"grainchat.v1"}})
	defer c.conn.Close()
	if c.Resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("%s: handshake answered %s", sub, c.Resp.Status)
	}
	return nil
}

// settledGoroutines returns go_goroutines once two readings half a second
// apart differ by at most 2 (at most 15s; then the last reading). Other tests
// of this process may leave goroutines that end on their own timers (the
// actor runtime's log throttles, closing sockets): they only make the count
// drop while this test runs.
func settledGoroutines(t *testing.T, metricsURL string) float64 {
	t.Helper()
	prev := -100.0
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		g, err := metricNow(metricsURL, "go_goroutines")
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(g-prev) <= 2 || time.Now().After(deadline) {
			return g
		}
		prev = g
	}
}
