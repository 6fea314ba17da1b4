package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage/pgtest"
	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/wsclient"
)

const testSecret = "test-secret-0123456789-abcdefghijklmnop"

// testServer is a real chatd (run) serving on a loopback port.
type testServer struct {
	t      testing.TB
	Addr   string
	cancel context.CancelFunc
	done   chan error
	out    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

var listenLine = regexp.MustCompile(`chatd: listening on http://(\S+)`)

// startServer runs chatd with args (plus a loopback address, the test secret
// and a quiet log) and waits until it listens.
func startServer(t testing.TB, args ...string) *testServer {
	t.Helper()
	full := append([]string{"--addr", "127.0.0.1:0", "--jwt-secret", testSecret, "--log-level", "warn", "--message-rate", "-1", "--max-conns-per-user", "1000"}, args...)
	return startRun(t, listenLine, full)
}

// startRun runs chatd in-process with args and waits for the line of its
// output that listen matches, whose first group is the address.
func startRun(t testing.TB, listen *regexp.Regexp, args []string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &testServer{t: t, cancel: cancel, done: make(chan error, 1), out: &syncBuffer{}}
	getenv := func(string) string { return "" }
	go func() {
		err := run(ctx, args, getenv, pw)
		pw.CloseWithError(fmt.Errorf("chatd exited: %v", err))
		s.done <- err
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			_, _ = s.out.Write([]byte(line + "\n"))
			if m := listen.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case s.Addr = <-addr:
	case err := <-s.done:
		t.Fatalf("chatd did not start: %v\n%s", err, s.out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("chatd did not listen within 30s\n%s", s.out.String())
	}
	t.Cleanup(s.Stop)
	return s
}

// Stop stops the server gracefully and waits for run to return.
func (s *testServer) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("chatd returned %v", err)
		}
	case <-time.After(30 * time.Second):
		s.t.Errorf("chatd did not stop within 30s")
	}
}

func (s *testServer) URL() string { return "ws://" + s.Addr + "/ws/chat/" }

// mint signs a test token valid for an hour.
func mint(t testing.TB, sub, name string, admin bool) string {
	t.Helper()
	return mintTTL(t, sub, name, admin, time.Hour)
}

// mintTTL signs a test token that expires after ttl.
func mintTTL(t testing.TB, sub, name string, admin bool, ttl time.Duration) string {
	t.Helper()
	iss, err := auth.NewIssuer(auth.Config{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Mint(auth.Identity{Subject: sub, Name: name, Admin: admin}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// dial connects a client as the given user and, for grainchat.v1 clients,
// waits for the welcome (and, for admins, the inbox) frame.
func dial(t testing.TB, s *testServer, sub, name string, admin, v1 bool) *wsclient.Client {
	t.Helper()
	return dialWith(t, s, sub, mint(t, sub, name, admin), admin, v1)
}

// dialWith is dial with a token of the caller's (sub names it in errors).
func dialWith(t testing.TB, s *testServer, sub, token string, admin, v1 bool) *wsclient.Client {
	t.Helper()
	return dialURLWith(t, s.URL(), sub, token, admin, v1)
}

// dialURLWith is dialWith to a server's WebSocket URL (a cluster node's).
func dialURLWith(t testing.TB, url, sub, token string, admin, v1 bool) *wsclient.Client {
	t.Helper()
	c, err := wsclient.Dial(ctxT(t, 10*time.Second), url, wsclient.Options{Token: token, V1: v1})
	if err != nil {
		status := 0
		if c != nil && c.Resp != nil {
			status = c.Resp.StatusCode
		}
		t.Fatalf("dial as %s: %v (status %d)", sub, err, status)
	}
	t.Cleanup(c.Close)
	if v1 {
		waitType(t, c, 0, "welcome")
		if admin {
			waitType(t, c, 0, "inbox")
		}
	}
	return c
}

func waitType(t testing.TB, c *wsclient.Client, from int, typ string) (wsclient.Frame, int) {
	t.Helper()
	f, i, err := c.WaitFor(ctxT(t, 10*time.Second), from, func(f wsclient.Frame) bool { return f.Type() == typ })
	if err != nil {
		t.Fatalf("waiting for a %q frame: %v; got %s", typ, err, dump(c))
	}
	return f, i
}

// waitMessage waits for a message frame with the given text.
func waitMessage(t testing.TB, c *wsclient.Client, text string) wsclient.Frame {
	t.Helper()
	f, _, err := c.WaitFor(ctxT(t, 10*time.Second), 0, func(f wsclient.Frame) bool {
		return f.String("message") == text && (f.Type() == "" || f.Type() == "message")
	})
	if err != nil {
		t.Fatalf("waiting for message %q: %v; got %s", text, err, dump(c))
	}
	return f
}

func dump(c *wsclient.Client) string {
	var b strings.Builder
	for _, f := range c.Frames() {
		b.WriteString("\n  ")
		b.Write(f.Raw)
	}
	return b.String()
}

func httpStatus(t testing.TB, url string, header http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// newDatabase returns a fresh PostgreSQL database for one test.
func newDatabase(t testing.TB) string { return pgtest.NewDatabase(t) }
