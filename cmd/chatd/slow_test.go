package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// A staff socket that stops reading while traffic flows fills its bounded
// write queue and is closed with 4008 (counted once in
// grainchat_slow_consumers_total), long before the traffic ends: the server
// holds at most --admin-write-queue frames for it. Meanwhile the other staff
// socket and the visitor's tabs receive every message, in seq order, none
// held up by the slow one: each within 8 s of being sent, below the 10 s write
// timeout that a write blocked on the slow socket would cost them (a bound
// on "not stuck", not a latency figure: those are in docs/BENCHMARKS.md).
//
// The slow socket reads nothing until the metric says the server gave up on
// it (the kernel's buffers fill first: a few MiB on Linux), then reads what
// was sent before the close frame: a gap-free prefix of the conversation. It
// keeps the default receive buffer: one smaller than the loopback MSS
// (64 KiB) makes the kernel send it only by zero-window probes, and the close
// frame would take minutes to arrive.
func TestSlowConsumerIsClosedWhileOthersKeepUp(t *testing.T) {
	const (
		queue     = 64    // frames a staff socket may have waiting
		textChars = 16000 // a staff socket gets each message twice (message, inbox_update): 32 KiB
		// The kernel holds a few MiB for a socket that does not read
		// (Linux: tcp_wmem's maximum, 4 MiB by default, plus the client's
		// receive buffer); the slow socket must be closed well before this
		// many messages (25 MiB).
		maxMessages = 800
		afterClose  = 40 // messages sent after the close, to the others
		maxLatency  = 8 * time.Second
	)
	s := startServer(t, "--database-url", newDatabase(t), "--admin-write-queue", fmt.Sprint(queue), "--write-queue", fmt.Sprint(queue),
		"--max-message-chars", fmt.Sprint(textChars+10), "--max-frame-bytes", "65536")
	metricsURL := "http://" + s.Addr + "/metrics"
	sender := dial(t, s, "user-1", "Alice", false, true)
	conv := convOf(t, sender)
	tab := dial(t, s, "user-1", "Alice", false, true)
	admin := dial(t, s, "staff-ok", "Ann", true, true)
	slow := rawDial(t, s.Addr, http.Header{
		"Authorization":          {"Bearer " + mint(t, "staff-slow", "Sid", true)},
		"Sec-WebSocket-Protocol": {"grainchat.v1"},
	})
	if slow.Resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("slow staff handshake: %s", slow.Resp.Status)
	}
	waitMetric(t, metricsURL, "grainchat_connections", 4)

	// The watcher waits for the server to give up on the slow socket, then
	// reads it to its end.
	var sent atomic.Int64     // messages acknowledged so far
	var closedAt atomic.Int64 // messages acknowledged when the server gave up (0: not yet)
	type slowEnd struct {
		end     rawEnd
		waitErr error
	}
	slowDone := make(chan slowEnd, 1)
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go func() {
		for {
			if v, err := metricNow(metricsURL, "grainchat_slow_consumers_total"); err == nil && v >= 1 {
				closedAt.Store(max(sent.Load(), 1))
				break
			}
			select {
			case <-stopWatch:
				slowDone <- slowEnd{waitErr: fmt.Errorf("the server never gave up on the slow socket")}
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		slowDone <- slowEnd{end: slow.readToEnd(time.Now().Add(30 * time.Second))}
	}()

	sentAt := map[int64]time.Time{}
	var texts []string
	for i := 1; i <= maxMessages; i++ {
		if c := closedAt.Load(); c > 0 && sent.Load() >= c+afterClose {
			break
		}
		text := fmt.Sprintf("%04d %s", i, strings.Repeat(string(rune('a'+i%26)), textChars))
		sentAt[int64(i)] = time.Now()
		ack := post(t, sender, 0, text, fmt.Sprint("m", i))
		if ack.Int("seq") != int64(i) {
			t.Fatalf("message %d acknowledged with seq %d", i, ack.Int("seq"))
		}
		texts = append(texts, text)
		sent.Add(1)
	}
	total := sent.Load()
	c := closedAt.Load()
	if c == 0 {
		t.Fatalf("the slow socket was not closed after %d messages of %d KiB: its write queue is not bounded", total, textChars>>10)
	}
	t.Logf("the server gave up on the slow socket after %d of %d messages", c, total)
	if total < c+afterClose {
		t.Errorf("only %d messages were sent after the slow socket was closed, want %d", total-c, afterClose)
	}

	// The slow socket got a gap-free prefix of the stream, then 4008.
	var r slowEnd
	select {
	case r = <-slowDone:
	case <-time.After(45 * time.Second):
		t.Fatal("the slow socket did not end within 45s")
	}
	if r.waitErr != nil {
		t.Fatal(r.waitErr)
	}
	if r.end.closeCode != 4008 {
		t.Errorf("the slow socket ended with close code %d %q (%v), want 4008", r.end.closeCode, r.end.reason, r.end.err)
	}
	var slowSeqs []int64
	for _, raw := range r.end.texts {
		var f map[string]any
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("the slow socket got a frame that is not JSON (%v): %.80q", err, raw)
		}
		if f["type"] == "message" {
			slowSeqs = append(slowSeqs, int64(f["seq"].(float64)))
		}
	}
	if want := seqRange(1, int64(len(slowSeqs))); len(slowSeqs) > 0 && !reflect.DeepEqual(slowSeqs, want) {
		t.Errorf("the slow socket got seqs %v, want a gap-free prefix", slowSeqs)
	}
	// The server cannot have written it more than it was sent before the
	// close, and it stopped queueing for it then.
	if int64(len(slowSeqs)) > c {
		t.Errorf("the slow socket got %d messages, but only %d were sent before it was closed", len(slowSeqs), c)
	}
	t.Logf("the slow socket read %d frames (%d messages) before the close frame", len(r.end.texts), len(slowSeqs))

	// Everyone else got everything, in order, in time.
	want := seqRange(1, total)
	last := fmt.Sprintf("%04d", total)
	for name, cl := range map[string]*wsclient.Client{"staff": admin, "other tab": tab, "sender": sender} {
		waitFrame(t, cl, 0, "the last message", func(f wsclient.Frame) bool {
			return isMessage(f) && strings.HasPrefix(f.String("message"), last)
		})
		got := messagesIn(cl, 0, conv)
		if !reflect.DeepEqual(seqsOf(got), want) {
			t.Errorf("%s received seqs %v, want 1..%d", name, seqsOf(got), total)
			continue
		}
		var worst time.Duration
		for _, f := range got {
			seq := f.Int("seq")
			if f.String("message") != texts[seq-1] {
				t.Errorf("%s: message %d has the wrong text", name, seq)
			}
			worst = max(worst, f.At.Sub(sentAt[seq]))
		}
		if worst > maxLatency {
			t.Errorf("%s: a message took %v to arrive, want at most %v", name, worst, maxLatency)
		}
		t.Logf("%s: %d messages, slowest %v", name, len(got), worst)
	}

	body := scrape(t, metricsURL)
	if got := metricValue(t, body, "grainchat_slow_consumers_total"); got != 1 {
		t.Errorf("grainchat_slow_consumers_total = %v, want 1", got)
	}
	waitMetric(t, metricsURL, "grainchat_connections", 3) // the slow socket is gone
}

// waitMetric polls url until metric has the value want (15s at most).
func waitMetric(t testing.TB, url, metric string, want float64) {
	t.Helper()
	var got float64
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, err = metricNow(url, metric); err == nil && got == want {
			return
		}
	}
	t.Fatalf("%s = %v (%v), want %v within 15s", metric, got, err, want)
}

// metricNow reads one metric from url without a testing.TB (for goroutines).
func metricNow(url, metric string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, metric+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("metric %s missing", metric)
}
