package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// latency summarizes durations in milliseconds (nearest-rank percentiles).
type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func summarize(d []time.Duration) latency {
	if len(d) == 0 {
		return latency{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) float64 {
		i := min(max(int(math.Ceil(p*float64(len(s))))-1, 0), len(s)-1)
		return ms(s[i])
	}
	return latency{N: len(s), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (l latency) String() string {
	if l.N == 0 {
		return "n=0"
	}
	return fmt.Sprintf("p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms  (n=%d)", l.P50, l.P90, l.P99, l.Max, l.N)
}

// report is what a run measured. Sections a scenario does not fill are
// omitted.
type report struct {
	Scenario  string         `json:"scenario"`
	Date      string         `json:"date"`
	Config    reportConfig   `json:"config"`
	FileLimit uint64         `json:"file_limit"`
	Connect   []connectStats `json:"connect"` // visitors' connection batches (connect: one per round)
	Idle      *idleReport    `json:"idle,omitempty"`
	Messages  *messageReport `json:"messages,omitempty"`
	Churn     *churnReport   `json:"churn,omitempty"`
	CPU       *cpuReport     `json:"cpu,omitempty"` // chat, admins, churn: the sending phase and its drain
	Server    serverReport   `json:"server"`

	ClosedEarly  int64       `json:"closed_early"` // connections the server closed unasked
	ClosedByCode map[int]int `json:"closed_by_code,omitempty"`
	BadFrames    int64       `json:"bad_frames,omitempty"`
	Warnings     []string    `json:"warnings,omitempty"`
	Problems     []string    `json:"problems"`
}

type reportConfig struct {
	URL           string  `json:"url"`
	Dialect       string  `json:"dialect,omitempty"`
	Messages      int     `json:"messages,omitempty"` // per visitor, when fixed
	AllowRefused  float64 `json:"allow_refused"`
	Users         int     `json:"users,omitempty"`
	Admins        int     `json:"admins"`
	Conns         int     `json:"conns,omitempty"`
	Rate          float64 `json:"rate,omitempty"`
	Window        *int    `json:"window,omitempty"` // flat out; 0: none
	DurationS     float64 `json:"duration_s,omitempty"`
	ReplyEvery    int     `json:"reply_every,omitempty"`
	ConnectRate   float64 `json:"connect_rate,omitempty"`
	Concurrency   int     `json:"concurrency"`
	Rounds        int     `json:"rounds,omitempty"`
	MsgsPerConn   int     `json:"msgs_per_conn,omitempty"`
	ServerPID     int     `json:"server_pid,omitempty"`
	MetricsURL    string  `json:"metrics_url,omitempty"`
	ServerFileMax int64   `json:"server_file_limit,omitempty"`
	ForceGC       bool    `json:"force_gc,omitempty"`
}

// serverReport is the server's state over the run, sampled every
// --sample-every.
type serverReport struct {
	Before   serverSample   `json:"before"`
	Peak     serverSample   `json:"peak"`
	After    serverSample   `json:"after"`
	Timeline []serverSample `json:"timeline,omitempty"`
}

// idleReport is the idle scenario's hold: memory per connection.
type idleReport struct {
	HoldSeconds       float64      `json:"hold_s"`
	HeldAtEnd         int          `json:"held_at_end"`
	Settled           serverSample `json:"settled"` // --settle after the last connection
	End               serverSample `json:"end"`     // at the end of the hold
	RSSPerConnKiB     float64      `json:"rss_per_conn_kib"`
	HeapPerConnKiB    float64      `json:"heap_inuse_per_conn_kib,omitempty"`
	GoroutinesPerConn float64      `json:"goroutines_per_conn,omitempty"`
	// HeapAllocPerConnKiB is the live heap per connection when --force-gc
	// made the samples right after a collection; StackPerConnKiB the
	// goroutine stacks (the socket's read loop).
	HeapAllocPerConnKiB float64 `json:"heap_alloc_per_conn_kib,omitempty"`
	StackPerConnKiB     float64 `json:"stack_per_conn_kib,omitempty"`
}

type messageReport struct {
	SendSeconds        float64        `json:"send_s"`
	CompleteSeconds    float64        `json:"complete_s,omitempty"`      // --messages: from the first post until everything was delivered (or the drain gave up)
	Sent               int64          `json:"sent"`                      // visitor posts
	Replies            int64          `json:"replies"`                   // admin posts
	TypingSent         int64          `json:"typing_sent,omitempty"`     // --typing-every: typing frames sent
	TypingReceived     int64          `json:"typing_received,omitempty"` // typing frames the admins received (--open-per-admin)
	Acked              int64          `json:"acked"`                     // v1: acks; seed: messages back at their sender (stored)
	Refused            int64          `json:"refused"`
	RefusedByCode      map[string]int `json:"refused_by_code,omitempty"`
	Unanswered         int64          `json:"unanswered"` // posts of open connections with neither ack nor error at the end (seed: never back at their sender)
	StoredPerSecond    float64        `json:"stored_per_s"`
	ServerStored       *int64         `json:"server_stored,omitempty"` // grainchat_messages_stored_total over the send phase and drain
	Delivered          int64          `json:"delivered"`
	DeliveredPerSecond float64        `json:"delivered_per_s"`
	Lost               int64          `json:"lost"` // (stored message, receiver) pairs not delivered
	Duplicates         int64          `json:"duplicates"`
	OutOfOrder         int64          `json:"out_of_order"`        // includes gaps
	Misrouted          int64          `json:"misrouted,omitempty"` // seed: frames whose conversation or sender does not match their text
	DoubleAcked        int64          `json:"double_acked"`
	Ack                latency        `json:"ack"`
	UserToAdmin        latency        `json:"user_to_admin"`
	AdminToUser        latency        `json:"admin_to_user"`
	// AfterWarmup (with --warmup) holds the same latencies of the messages
	// sent after the warm-up only: the run's first moments (connections'
	// first messages activate their grains) left out.
	AfterWarmup *latencySet `json:"after_warmup,omitempty"`
	// FirstMessage holds the latencies of each conversation's first message
	// (seq 1: the post that activates its grain), when the run's
	// conversations are new.
	FirstMessage *firstLatencies `json:"first_message,omitempty"`
}

// firstLatencies are the latencies of conversations' first messages.
type firstLatencies struct {
	Ack         latency `json:"ack"`
	UserToAdmin latency `json:"user_to_admin"`
}

// latencySet is a run's latencies of a part of its messages.
type latencySet struct {
	WarmupSeconds float64 `json:"warmup_s"`
	Ack           latency `json:"ack"`
	UserToAdmin   latency `json:"user_to_admin"`
	AdminToUser   latency `json:"admin_to_user"`
}

type churnReport struct {
	Seconds         float64      `json:"seconds"`
	Workers         int          `json:"workers"`
	Churned         int64        `json:"churned"` // connections opened, used and closed
	PerSecond       float64      `json:"churned_per_s"`
	Connect         connectStats `json:"connect"`
	Settled         bool         `json:"settled"` // goroutines back within --settle-margin of the baseline, connections back to it
	SettleSeconds   float64      `json:"settle_s"`
	GoroutinesDelta int64        `json:"goroutines_delta"`
	RSSDeltaKiB     int64        `json:"rss_delta_kib"`
	HeapDeltaKiB    int64        `json:"heap_inuse_delta_kib"`
	HeapGoalDelta   int64        `json:"heap_goal_delta_kib"`
}

// problems lists what makes the run a failure (each a line of the FAIL
// summary): lost, duplicated or out-of-order messages; posts never answered
// (v1: neither ack nor error; seed: never back at their sender); more
// refused posts than --allow-refused lets through; failed connections;
// connections the server closed.
func (r *report) problems() []string {
	var p []string
	if m := r.Messages; m != nil {
		if m.Lost > 0 || m.Duplicates > 0 || m.OutOfOrder > 0 || m.DoubleAcked > 0 || m.Misrouted > 0 {
			p = append(p, fmt.Sprintf("delivery errors: lost=%d duplicates=%d out_of_order=%d double_acked=%d misrouted=%d",
				m.Lost, m.Duplicates, m.OutOfOrder, m.DoubleAcked, m.Misrouted))
		}
		posts := m.Sent + m.Replies
		if m.Unanswered > 0 {
			what := "neither acknowledged nor refused"
			if r.Config.Dialect == dialectSeed {
				what = "never came back to their sender (not stored, or not delivered)"
			}
			p = append(p, fmt.Sprintf("%d of %d posts %s by the end of the drain", m.Unanswered, posts, what))
		}
		if m.Refused > 0 && float64(m.Refused) > r.Config.AllowRefused*float64(posts) {
			p = append(p, fmt.Sprintf("the server refused %d of %d posts (%.1f%%) %v; --allow-refused %g lets through %d%s",
				m.Refused, posts, 100*float64(m.Refused)/float64(max(posts, 1)), m.RefusedByCode,
				r.Config.AllowRefused, int64(r.Config.AllowRefused*float64(posts)), refusalHint(m.RefusedByCode)))
		}
		if posts == 0 && r.Churn == nil {
			p = append(p, "no message was sent")
		}
	}
	failed := 0
	for _, c := range r.Connect {
		failed += c.Failed
	}
	if r.Churn != nil {
		failed += r.Churn.Connect.Failed
	}
	if failed > 0 {
		p = append(p, fmt.Sprintf("%d connections failed", failed))
	}
	if r.ClosedEarly > 0 {
		p = append(p, fmt.Sprintf("the server closed %d connections (by close code: %v)", r.ClosedEarly, r.ClosedByCode))
	}
	return p
}

// refusalHint says what to change for the usual refusals.
func refusalHint(by map[string]int) string {
	// chatd no longer sends rate_limited or too_many_pending (it slows a
	// socket instead), but an older one does.
	switch {
	case by["rate_limited"] > 0:
		return " (rate_limited: chatd's --message-rate and --message-burst bound each user; lower --rate or raise --reply-every, or run chatd with --message-rate -1)"
	case by["too_many_pending"] > 0:
		return " (too_many_pending: chatd lets 64 posts of a socket await their store; use a --window of at most 64)"
	case by["message_too_long"] > 0:
		return " (message_too_long: chatd's --max-message-chars is shorter than chatbench's messages, about 60 characters)"
	}
	return ""
}

func kib(k int64) string {
	switch {
	case k == 0:
		return "?"
	case k >= 10<<10:
		return fmt.Sprintf("%.1f MiB", float64(k)/1024)
	}
	return fmt.Sprintf("%d KiB", k)
}

func (s serverSample) String() string {
	parts := []string{"RSS " + kib(s.RSSKiB)}
	if s.HeapInuseKiB > 0 {
		parts = append(parts, "heap in use "+kib(s.HeapInuseKiB))
	}
	if s.HeapGoalKiB > 0 {
		parts = append(parts, fmt.Sprintf("GC goal %s after %d GCs", kib(s.HeapGoalKiB), s.GCs))
	}
	if s.Goroutines > 0 {
		parts = append(parts, fmt.Sprintf("%d goroutines", s.Goroutines))
	}
	if s.Connections != nil {
		parts = append(parts, fmt.Sprintf("%d connections", *s.Connections))
	}
	return strings.Join(parts, ", ")
}

func (c connectStats) String() string {
	s := fmt.Sprintf("%d of %d connected in %.2fs: %.0f/s; dial→welcome %s", c.Held, c.Attempted, c.Seconds, c.PerSecond, c.Handshake)
	if c.Failed > 0 {
		s += fmt.Sprintf("\n  failed %d %v; first: %s", c.Failed, c.FailedBy, c.FirstErr)
	}
	return s
}

func (f *cpuFigure) String() string {
	if f == nil {
		return "?"
	}
	s := fmt.Sprintf("%.2f s (%.2f cores)", f.Seconds, f.Cores)
	if f.Per1000Messages > 0 {
		s += fmt.Sprintf(", %.3f s per 1000 msgs", f.Per1000Messages)
	}
	if f.Per1000Conns > 0 {
		s += fmt.Sprintf(", %.3f s per 1000 conns", f.Per1000Conns)
	}
	return s
}

func (c *cpuReport) print(w io.Writer, what string) {
	if c == nil {
		return
	}
	fmt.Fprintf(w, "CPU over %s (%.1fs): server %s; PostgreSQL %s; chatbench %s\n", what, c.WallSeconds, c.Server, c.Postgres, c.Bench)
}

// print writes the human summary.
func (r *report) print(w io.Writer) {
	cfg := r.Config
	fmt.Fprintf(w, "chatbench %s", r.Scenario)
	if cfg.Dialect != "" {
		fmt.Fprintf(w, " (%s dialect)", cfg.Dialect)
	}
	fmt.Fprintf(w, " against %s, %s (file limit %d", cfg.URL, r.Date, r.FileLimit)
	if cfg.ServerFileMax > 0 {
		fmt.Fprintf(w, ", server's %d", cfg.ServerFileMax)
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintf(w, "server before: %s\n", r.Server.Before)
	for i, c := range r.Connect {
		label := "connections"
		if len(r.Connect) > 1 {
			label = fmt.Sprintf("round %d", i+1)
		}
		fmt.Fprintf(w, "%s: %s\n", label, c)
		if c.CPU != nil {
			c.CPU.print(w, "connecting")
		}
	}
	if d := r.Idle; d != nil {
		fmt.Fprintf(w, "held %d connections for %.1fs\n", d.HeldAtEnd, d.HoldSeconds)
		fmt.Fprintf(w, "server settled: %s\n", d.Settled)
		fmt.Fprintf(w, "server at end:  %s\n", d.End)
		fmt.Fprintf(w, "per connection: RSS %.2f KiB", d.RSSPerConnKiB)
		if d.HeapPerConnKiB != 0 {
			fmt.Fprintf(w, ", heap in use %.2f KiB, %.2f goroutines", d.HeapPerConnKiB, d.GoroutinesPerConn)
		}
		if d.StackPerConnKiB != 0 {
			label := "heap allocated"
			if cfg.ForceGC {
				label = "heap live"
			}
			fmt.Fprintf(w, "; %s %.2f KiB, stacks %.2f KiB", label, d.HeapAllocPerConnKiB, d.StackPerConnKiB)
		}
		fmt.Fprintln(w)
	}
	if m := r.Messages; m != nil {
		acked, ackLabel := "acked", "ack"
		if cfg.Dialect == dialectSeed {
			acked, ackLabel = "back at their sender", "echo"
		}
		fmt.Fprintf(w, "sent %d visitor messages + %d admin replies in %.2fs", m.Sent, m.Replies, m.SendSeconds)
		if m.CompleteSeconds > 0 {
			fmt.Fprintf(w, ", all delivered after %.2fs", m.CompleteSeconds)
		}
		fmt.Fprintf(w, "; %s %d (%.0f msg/s stored)", acked, m.Acked, m.StoredPerSecond)
		if m.ServerStored != nil {
			fmt.Fprintf(w, "; server stored %d", *m.ServerStored)
		}
		fmt.Fprintf(w, "; refused %d", m.Refused)
		if len(m.RefusedByCode) > 0 {
			fmt.Fprintf(w, " %v", m.RefusedByCode)
		}
		fmt.Fprintf(w, "; unanswered %d\n", m.Unanswered)
		fmt.Fprintf(w, "delivered %d message frames (%.0f/s)\n", m.Delivered, m.DeliveredPerSecond)
		fmt.Fprintf(w, "%-12s %s\n", ackLabel, m.Ack)
		fmt.Fprintf(w, "%-12s %s\n", "user→admin", m.UserToAdmin)
		fmt.Fprintf(w, "%-12s %s\n", "admin→user", m.AdminToUser)
		if a := m.AfterWarmup; a != nil {
			fmt.Fprintf(w, "sent after the first %.1fs:\n", a.WarmupSeconds)
			fmt.Fprintf(w, "%-12s %s\n", ackLabel, a.Ack)
			fmt.Fprintf(w, "%-12s %s\n", "user→admin", a.UserToAdmin)
			fmt.Fprintf(w, "%-12s %s\n", "admin→user", a.AdminToUser)
		}
		if f := m.FirstMessage; f != nil {
			fmt.Fprintf(w, "each conversation's first message (its grain's activation):\n")
			fmt.Fprintf(w, "%-12s %s\n", ackLabel, f.Ack)
			fmt.Fprintf(w, "%-12s %s\n", "user→admin", f.UserToAdmin)
		}
		fmt.Fprintf(w, "lost=%d duplicates=%d out_of_order=%d double_acked=%d misrouted=%d\n", m.Lost, m.Duplicates, m.OutOfOrder, m.DoubleAcked, m.Misrouted)
	}
	if c := r.Churn; c != nil {
		fmt.Fprintf(w, "churned %d connections in %.1fs (%.0f/s) with %d visitors at a time\n", c.Churned, c.Seconds, c.PerSecond, c.Workers)
		fmt.Fprintf(w, "churn connects: %s\n", c.Connect)
	}
	if r.CPU != nil {
		r.CPU.print(w, "sending and draining")
	}
	if r.Churn != nil || len(r.Server.Timeline) > 2 {
		fmt.Fprintf(w, "server peak:   %s\n", r.Server.Peak)
	}
	fmt.Fprintf(w, "server after:  %s\n", r.Server.After)
	if c := r.Churn; c != nil {
		verdict := "settled"
		if !c.Settled {
			verdict = "NOT settled"
		}
		fmt.Fprintf(w, "soak: %s after %.1fs; against the baseline: goroutines %+d, RSS %+d KiB, heap in use %+d KiB, GC goal %+d KiB\n",
			verdict, c.SettleSeconds, c.GoroutinesDelta, c.RSSDeltaKiB, c.HeapDeltaKiB, c.HeapGoalDelta)
	}
	fmt.Fprintf(w, "connections closed by the server: %d", r.ClosedEarly)
	if len(r.ClosedByCode) > 0 {
		fmt.Fprintf(w, " %v", r.ClosedByCode)
	}
	fmt.Fprintln(w)
	for _, s := range r.Warnings {
		fmt.Fprintln(w, "warning:", s)
	}
	for _, p := range r.Problems {
		fmt.Fprintln(w, "PROBLEM:", p)
	}
	fmt.Fprintln(w, r.verdict())
}

// verdict is the summary's last line: OK, or FAIL with the number of
// problems listed above it.
func (r *report) verdict() string {
	if len(r.Problems) > 0 {
		return fmt.Sprintf("FAIL: %d problem(s) above; chatbench exits 1", len(r.Problems))
	}
	if m := r.Messages; m != nil {
		return fmt.Sprintf("OK: %d posts, every one stored and delivered to every receiver once, in order; refused %d", m.Sent+m.Replies, m.Refused)
	}
	return "OK"
}
