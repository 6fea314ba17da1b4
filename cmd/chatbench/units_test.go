package main

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis; utime 150, stime 50,
	// cutime 1000, cstime 300 ticks.
	stat := "4242 (post gres) x) S 1 4242 4242 0 -1 4194304 100 0 0 0 150 50 1000 300 20 0 1 0 5045 222543872 7641 18446744073709551615"
	for _, tc := range []struct {
		children bool
		want     float64
	}{{false, 2}, {true, 15}} {
		got, err := parseStatCPU(stat, tc.children)
		if err != nil || got != tc.want {
			t.Errorf("parseStatCPU(children=%v) = %v, %v; want %v", tc.children, got, err, tc.want)
		}
	}
	if _, err := parseStatCPU("4242 (x) S 1 2", false); err == nil {
		t.Error("a short line parsed")
	}
}

func TestParseStatusField(t *testing.T) {
	status := "Name:\tchatd\nVmPeak:\t  900 kB\nVmRSS:\t   12345 kB\nThreads:\t9\n"
	if got, err := parseStatusField(strings.NewReader(status), "VmRSS:"); err != nil || got != 12345 {
		t.Errorf("VmRSS = %d, %v", got, err)
	}
	if _, err := parseStatusField(strings.NewReader("Name:\tx\n"), "VmRSS:"); err == nil {
		t.Error("a missing VmRSS line parsed")
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
grainchat_handshakes_refused_total{status="503"} 7
grainchat_frames_refused_total{code="a b"} 3 1700000000000
process_resident_memory_bytes 2.5e+07
broken_line
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"go_goroutines": 42, `grainchat_handshakes_refused_total{status="503"}`: 7,
		`grainchat_frames_refused_total{code="a b"}`: 3, "process_resident_memory_bytes": 25e6}
	if len(m) != len(want) {
		t.Errorf("parsed %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

func TestMetricsURLFor(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:8080/ws/chat/":    "http://127.0.0.1:8080/metrics",
		"wss://chat.example.com/ws/chat/": "https://chat.example.com/metrics",
	} {
		u, _ := url.Parse(in)
		if got := metricsURLFor(u); got != want {
			t.Errorf("metricsURLFor(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	got := summarize(d)
	want := latency{N: 100, P50: 50, P90: 90, P99: 99, Max: 100}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if (summarize(nil) != latency{}) {
		t.Error("summarize(nil) is not zero")
	}
}

func TestScenarioDefaults(t *testing.T) {
	getenv := func(string) string { return strings.Repeat("s", 32) }
	o, err := parseOptions([]string{"--scenario", "admins", "--users", "7"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if o.admins != 50 || o.users != 7 || o.rate != 200 || o.metricsURL != "http://127.0.0.1:8080/metrics" {
		t.Errorf("admins scenario: %+v", o)
	}
	o, err = parseOptions([]string{"--scenario", "idle", "--metrics-url", "-"}, getenv)
	if err != nil || o.admins != 0 || o.conns != 1000 || o.metricsURL != "" {
		t.Errorf("idle scenario: %+v, %v", o, err)
	}
	for _, args := range [][]string{{"--scenario", "nope"}, {"--url", "http://x/"}, {"--users", "0"}, {"extra"}} {
		if _, err := parseOptions(args, getenv); err == nil {
			t.Errorf("parseOptions(%q) accepted", args)
		}
	}
	if _, err := parseOptions(nil, func(string) string { return "short" }); err == nil {
		t.Error("a short secret was accepted")
	}
}

// TestDeliveryChecks feeds connections frames by hand: the checker must see
// a duplicate, a gap and a message that goes backwards, and count an
// acknowledged message that did not arrive.
func TestDeliveryChecks(t *testing.T) {
	b, err := newBench(options{secret: strings.Repeat("s", 32), admins: 1})
	if err != nil {
		t.Fatal(err)
	}
	newClient := func(id identity) *client {
		return &client{b: b, id: id, welcomed: make(chan struct{}), closed: make(chan struct{}),
			notify: make(chan struct{}, 1), last: map[int64]int64{}, pending: map[string]time.Time{}}
	}
	admin := newClient(identity{sub: "a", admin: true})
	user := newClient(identity{sub: "u"})
	b.admins, b.users = []*client{admin}, []*client{user}
	msg := func(seq int) []byte {
		return []byte(`{"type":"message","conversation_id":7,"seq":` + strconv.Itoa(seq) + `,"message":"msg x t=1"}`)
	}
	user.handle([]byte(`{"type":"welcome","conversation_id":7,"last_seq":2}`))
	admin.handle([]byte(`{"type":"welcome"}`))
	admin.handle([]byte(`{"type":"inbox","conversations":[{"conversation_id":7,"last_seq":2}]}`))
	select {
	case <-user.welcomed:
	default:
		t.Fatal("the visitor's welcome was not noticed")
	}
	if user.conv != 7 {
		t.Fatalf("conversation %d", user.conv)
	}
	user.pending["p1"] = time.Now()
	user.handle([]byte(`{"type":"ack","client_msg_id":"p1","conversation_id":7,"seq":3}`))
	user.handle([]byte(`{"type":"ack","client_msg_id":"p2","conversation_id":7,"seq":4}`)) // not ours: ignored
	for _, seq := range []int{3, 3, 5} {                                                   // a duplicate, then a gap
		user.handle(msg(seq))
	}
	admin.handle(msg(4)) // the admin misses 3
	admin.handle(msg(3)) // …and gets it late: backwards
	if got := [3]int64{b.dups.Load(), b.outOfOrder.Load(), b.acked.Load()}; got != [3]int64{1, 3, 1} {
		t.Errorf("duplicates, out of order, acked = %v, want [1 3 1]: the visitor's gap, the admin's gap and its late message", got)
	}
	if n := b.missing(); n != 0 {
		t.Errorf("missing = %d, want 0 (seq 3 reached both)", n)
	}
	b.acknowledged(msgKey{7, 6}, false, false)
	if n := b.missing(); n != 2 {
		t.Errorf("missing = %d, want 2 (seq 6 reached neither)", n)
	}
	b.acknowledged(msgKey{7, 6}, false, false)
	if n := b.doubleAcked.Load(); n != 1 {
		t.Errorf("double acked = %d, want 1", n)
	}
	if user.ownMissing() != 0 || user.pendingCount() != 0 {
		t.Errorf("own missing %d, pending %d", user.ownMissing(), user.pendingCount())
	}
}
