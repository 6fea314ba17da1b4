package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/chatproc"
	"github.com/grainchat/grainchat/storage/pgtest"
)

const smokeSecret = "smoke-secret-0123456789-abcdefghijklmnop"

// TestSmoke runs every scenario briefly, with small numbers, against a real
// chatd (built from this tree) on a fresh PostgreSQL database: the load
// program's own correctness check, as CI runs it. Nothing may be lost,
// duplicated or out of order, and every connection must succeed.
func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	// Building is not what the deadline below is for: on a cold build
	// cache under load it alone took over two minutes.
	bin, err := chatproc.Build(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dsn := pgtest.NewDatabase(t)
	node, err := chatproc.StartNode(ctx, chatproc.NodeConfig{Binary: bin, LogLimit: 1 << 20,
		Args: []string{"--database-url", dsn, "--jwt-secret", smokeSecret, "--log-level", "warn",
			"--message-rate", "-1", "--max-conns-per-user", "100", "--pprof"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chatd's output:\n%s", node.Log().String())
		}
		_ = node.Kill()
	})
	pid := pidOf(t, bin)
	common := []string{"--url", node.URL(), "--jwt-secret", smokeSecret, "--json",
		"--server-pid", strconv.Itoa(pid), "--postgres-cpu", "--sample-every", "500ms", "--drain", "10s"}

	bench := func(t *testing.T, args ...string) *report {
		t.Helper()
		var out bytes.Buffer
		err := run(ctx, append(append([]string(nil), common...), args...), func(string) string { return "" }, &out)
		var r report
		if jerr := json.Unmarshal(out.Bytes(), &r); jerr != nil {
			t.Fatalf("chatbench %v: %v; output %q: %v", args, err, out.String(), jerr)
		}
		if err != nil {
			t.Fatalf("chatbench %v: %v\n%s", args, err, out.String())
		}
		if len(r.Problems) > 0 || r.ClosedEarly > 0 {
			t.Fatalf("chatbench %v: problems %v, closed early %d", args, r.Problems, r.ClosedEarly)
		}
		for _, w := range r.Warnings {
			// PostgreSQL may run on another machine (CHAT_TEST_DATABASE_URL).
			if !strings.HasPrefix(w, "PostgreSQL CPU") {
				t.Errorf("warning: %s", w)
			}
		}
		if r.Server.Before.RSSKiB <= 0 || r.Server.Before.Goroutines <= 0 {
			t.Errorf("no server sample before the run: %+v", r.Server.Before)
		}
		return &r
	}
	checkMessages := func(t *testing.T, m *messageReport) {
		t.Helper()
		if m == nil {
			t.Fatal("no message report")
		}
		if m.Lost != 0 || m.Duplicates != 0 || m.OutOfOrder != 0 || m.DoubleAcked != 0 {
			t.Errorf("lost=%d duplicates=%d out_of_order=%d double_acked=%d", m.Lost, m.Duplicates, m.OutOfOrder, m.DoubleAcked)
		}
		if m.Sent == 0 || m.Acked != m.Sent+m.Replies || m.Refused != 0 || m.Unanswered != 0 {
			t.Errorf("sent %d + replies %d, acked %d, refused %d, unanswered %d: want every post acknowledged",
				m.Sent, m.Replies, m.Acked, m.Refused, m.Unanswered)
		}
		if m.ServerStored == nil || *m.ServerStored != m.Acked {
			t.Errorf("the server's stored counter moved by %v, want %d", m.ServerStored, m.Acked)
		}
		if m.Ack.N != int(m.Acked) || m.UserToAdmin.N == 0 {
			t.Errorf("latency samples: ack %d (want %d), user→admin %d", m.Ack.N, m.Acked, m.UserToAdmin.N)
		}
	}

	t.Run("chat", func(t *testing.T) {
		r := bench(t, "--scenario", "chat", "--users", "10", "--admins", "2", "--duration", "2s", "--rate", "100", "--reply-every", "3")
		checkMessages(t, r.Messages)
		if len(r.Connect) != 1 || r.Connect[0].Held != 10 {
			t.Errorf("connect: %+v, want 10 held", r.Connect)
		}
		// Each visitor message reaches its sender and both admins; each
		// reply its visitor and both admins.
		if m := r.Messages; m.Delivered != 3*m.Acked || m.Replies == 0 || m.AdminToUser.N != int(m.Replies) {
			t.Errorf("delivered %d frames of %d messages (%d replies, %d admin→user samples), want 3 each",
				m.Delivered, m.Acked, m.Replies, m.AdminToUser.N)
		}
		if r.CPU == nil || r.CPU.Server == nil || r.CPU.Server.Per1000Messages <= 0 || r.CPU.Bench == nil {
			t.Errorf("CPU: %+v", r.CPU)
		}
	})
	t.Run("warmup and slow log", func(t *testing.T) {
		// --slow-over 0s records every user→admin delivery, so the log has
		// one line per sample, in send order; --warmup 1s leaves the first
		// of the 2 s out of after_warmup.
		slowLog := filepath.Join(t.TempDir(), "slow.txt")
		r := bench(t, "--scenario", "chat", "--users", "10", "--admins", "2", "--duration", "2s", "--rate", "100",
			"--warmup", "1s", "--slow-log", slowLog, "--slow-over", "0s")
		checkMessages(t, r.Messages)
		m := r.Messages
		a := m.AfterWarmup
		if a == nil || a.WarmupSeconds != 1 {
			t.Fatalf("after_warmup: %+v, want warmup_s 1", a)
		}
		if a.UserToAdmin.N == 0 || a.UserToAdmin.N >= m.UserToAdmin.N || a.Ack.N == 0 || a.Ack.N >= m.Ack.N {
			t.Errorf("after_warmup: %d user→admin and %d ack samples of the run's %d and %d: want some, not all",
				a.UserToAdmin.N, a.Ack.N, m.UserToAdmin.N, m.Ack.N)
		}
		// Each of the 10 new conversations' first message, acked once and
		// seen by both admins.
		if f := m.FirstMessage; f == nil || f.Ack.N != 10 || f.UserToAdmin.N != 2*10 {
			t.Errorf("first_message: %+v, want 10 ack and 20 user→admin samples", f)
		}
		data, err := os.ReadFile(slowLog)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != m.UserToAdmin.N {
			t.Fatalf("slow log: %d lines, want one per user→admin sample (%d)", len(lines), m.UserToAdmin.N)
		}
		var last int64
		for _, line := range lines {
			var sent int64
			var ms float64
			if _, err := fmt.Sscanf(line, "%d %f", &sent, &ms); err != nil || sent < last || ms < 0 {
				t.Fatalf("slow log line %q (after %d): want \"<sent Unix ms> <latency ms>\" in send order", line, last)
			}
			last = sent
		}
	})
	t.Run("typing to opened conversations", func(t *testing.T) {
		// 10 visitors type every 500 ms for 3 s; each admin opens 2 of its
		// conversations, so 4 of the 10 visitors' typing reaches an admin
		// (relayed at most once per user every 2 s, and again after each
		// of their messages, here one every 200 ms: at least once each, at
		// most what those 4 sent, about 4/10 of all, and one more each for
		// the phases).
		r := bench(t, "--scenario", "chat", "--users", "10", "--admins", "2", "--duration", "3s", "--rate", "50",
			"--typing-every", "500ms", "--open-per-admin", "2")
		checkMessages(t, r.Messages)
		if m := r.Messages; m.TypingSent < 40 || m.TypingReceived < 4 || m.TypingReceived > m.TypingSent*4/10+4 {
			t.Errorf("typing: %d sent, %d received by admins; want at least 40 sent and 4 to %d received", m.TypingSent, m.TypingReceived, m.TypingSent*4/10+4)
		}
		// Opened conversations do not deliver their messages twice.
		if m := r.Messages; m.Delivered != 3*m.Acked {
			t.Errorf("delivered %d frames of %d messages, want 3 each", m.Delivered, m.Acked)
		}
	})
	t.Run("admins flat out", func(t *testing.T) {
		r := bench(t, "--scenario", "admins", "--users", "5", "--admins", "6", "--rate", "0", "--duration", "1s")
		checkMessages(t, r.Messages)
		if m := r.Messages; m.UserToAdmin.N != 6*int(m.Sent) {
			t.Errorf("user→admin samples %d, want 6 admins × %d", m.UserToAdmin.N, m.Sent)
		}
	})
	t.Run("churn", func(t *testing.T) {
		r := bench(t, "--scenario", "churn", "--users", "5", "--duration", "2s", "--connect-rate", "40",
			"--settle", "200ms", "--settle-timeout", "20s", "--force-gc")
		checkMessages(t, r.Messages)
		c := r.Churn
		if c == nil || c.Churned < 20 || c.Connect.Failed != 0 || c.Connect.Held != int(c.Churned) {
			t.Fatalf("churn: %+v", c)
		}
		if want := c.Churned * 2; r.Messages.Sent != want {
			t.Errorf("sent %d, want 2 per connection = %d", r.Messages.Sent, want)
		}
		// The soak check: with a forced collection the server is back to
		// its goroutines within a second or so.
		if !c.Settled || r.Server.After.GCs <= r.Server.Before.GCs {
			t.Errorf("not settled after %.1fs: before %+v, after %+v", c.SettleSeconds, r.Server.Before, r.Server.After)
		}
		if r.Server.Peak.Goroutines < r.Server.Before.Goroutines || r.Server.After.Connections == nil || *r.Server.After.Connections != 0 {
			t.Errorf("server before %+v, peak %+v, after %+v", r.Server.Before, r.Server.Peak, r.Server.After)
		}
	})
	t.Run("idle", func(t *testing.T) {
		r := bench(t, "--scenario", "idle", "--conns", "50", "--concurrency", "10", "--duration", "1500ms", "--settle", "500ms", "--force-gc")
		if len(r.Connect) != 1 || r.Connect[0].Held != 50 || r.Connect[0].PerSecond <= 0 {
			t.Fatalf("connect: %+v", r.Connect)
		}
		d := r.Idle
		if d == nil || d.HeldAtEnd != 50 || d.Settled.RSSKiB <= 0 || d.Settled.Connections == nil || *d.Settled.Connections != 50 {
			t.Fatalf("idle: %+v", d)
		}
		if d.GoroutinesPerConn <= 0 {
			t.Errorf("goroutines per connection %.2f", d.GoroutinesPerConn)
		}
		if r.Messages != nil {
			t.Errorf("idle sent messages: %+v", r.Messages)
		}
	})
	t.Run("connect", func(t *testing.T) {
		r := bench(t, "--scenario", "connect", "--conns", "30", "--rounds", "2", "--concurrency", "8")
		if len(r.Connect) != 2 || r.Connect[0].Held != 30 || r.Connect[1].Held != 30 {
			t.Fatalf("connect: %+v", r.Connect)
		}
		// The server's CPU over a round is read (from /proc) and within
		// what the machine could give it. It may well be 0.00 s: 30
		// connects take a few milliseconds and /proc counts in 10 ms
		// ticks, so a positive figure is not required here (the chat
		// subtest requires one for a real load).
		c := r.Connect[1].CPU
		if c == nil || c.Server == nil || c.Bench == nil || c.Conns != 30 {
			t.Fatalf("connect CPU: %+v", c)
		}
		if limit := c.WallSeconds*float64(runtime.NumCPU()) + 2.0/clockTicks; c.Server.Seconds < 0 || c.Server.Seconds > limit {
			t.Errorf("server CPU %.2f s over %.3f s of wall time on %d cores", c.Server.Seconds, c.WallSeconds, runtime.NumCPU())
		}
		if want := c.Server.Seconds / 30 * 1000; math.Abs(c.Server.Per1000Conns-want) > 1e-9 {
			t.Errorf("CPU per 1000 connections %g, want %g", c.Server.Per1000Conns, want)
		}
	})
	t.Run("seed unwindowed", func(t *testing.T) {
		// Every visitor writes its 50 messages at once, in the seed
		// dialect (no acks, no errors); the server's rate limit is lifted.
		r := bench(t, "--scenario", "chat", "--dialect", "seed", "--window", "0", "--users", "20", "--admins", "2",
			"--messages", "50", "--reply-every", "10")
		m := r.Messages
		if m == nil {
			t.Fatal("no message report")
		}
		if r.Config.Dialect != "seed" || r.Config.Window == nil || *r.Config.Window != 0 {
			t.Errorf("config: %+v", r.Config)
		}
		if m.Sent != 20*50 || m.Replies == 0 {
			t.Errorf("sent %d (want 1000), replies %d", m.Sent, m.Replies)
		}
		if m.Lost != 0 || m.Duplicates != 0 || m.OutOfOrder != 0 || m.Misrouted != 0 || m.Unanswered != 0 || m.Refused != 0 {
			t.Errorf("lost=%d duplicates=%d out_of_order=%d misrouted=%d unanswered=%d refused=%d",
				m.Lost, m.Duplicates, m.OutOfOrder, m.Misrouted, m.Unanswered, m.Refused)
		}
		// Each message reaches its sender and both admins, a reply also
		// its visitor: three frames each.
		if posts := m.Sent + m.Replies; m.Acked != posts || m.Delivered != 3*posts {
			t.Errorf("%d posts: %d back at their sender, %d frames delivered (want 3 each)", posts, m.Acked, m.Delivered)
		}
		if m.ServerStored == nil || *m.ServerStored != m.Sent+m.Replies {
			t.Errorf("the server's stored counter moved by %v, want %d", m.ServerStored, m.Sent+m.Replies)
		}
		if m.Ack.N != int(m.Acked) || m.UserToAdmin.N != 2*int(m.Sent) || m.AdminToUser.N != int(m.Replies) || m.CompleteSeconds <= 0 {
			t.Errorf("latency samples: echo %d, user→admin %d, admin→user %d; complete after %.2fs",
				m.Ack.N, m.UserToAdmin.N, m.AdminToUser.N, m.CompleteSeconds)
		}
	})
}

// pidOf finds the process running the executable bin.
func pidOf(t *testing.T, bin string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == bin {
			return pid
		}
	}
	t.Fatalf("no process runs %s", bin)
	return 0
}
