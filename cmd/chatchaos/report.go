package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// stats summarizes durations, in milliseconds. Samples that were not
// measured because they exceeded a bound (Over of the N) rank above every
// measured one; a percentile that falls among them is -1 ("beyond the
// bound").
type stats struct {
	N    int     `json:"n"`
	Over int     `json:"over_bound,omitempty"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

// summarize computes nearest-rank percentiles of d; a negative duration is
// a sample beyond the bound.
func summarize(d []time.Duration) stats {
	if len(d) == 0 {
		return stats{}
	}
	var s []time.Duration
	over := 0
	for _, v := range d {
		if v < 0 {
			over++
		} else {
			s = append(s, v)
		}
	}
	s = sortedDurations(s)
	rank := func(p float64) float64 {
		i := min(max(int(math.Ceil(p*float64(len(d))))-1, 0), len(d)-1)
		if i >= len(s) {
			return -1
		}
		return ms(s[i])
	}
	return stats{N: len(d), Over: over, P50: rank(0.50), P99: rank(0.99), Max: rank(1)}
}

func (s stats) String() string {
	if s.N == 0 {
		return "n=0"
	}
	out := fmt.Sprintf("p50 %s  p99 %s  max %s  (n=%d)", fmtMS(s.P50), fmtMS(s.P99), fmtMS(s.Max), s.N)
	if s.Over > 0 {
		out += fmt.Sprintf(", %d beyond the bound", s.Over)
	}
	return out
}

func fmtMS(v float64) string {
	if v < 0 {
		return "beyond"
	}
	if v >= 1000 {
		return fmt.Sprintf("%.2f s", v/1000)
	}
	return fmt.Sprintf("%.1f ms", v)
}

// report is chatchaos's outcome.
type report struct {
	Provider       string  `json:"provider"`
	Refresh        string  `json:"automanaged_refresh,omitempty"`
	Nodes          int     `json:"nodes"`
	Visitors       int     `json:"visitors"`
	Admins         int     `json:"admins"`
	RatePerVisitor float64 `json:"rate_per_visitor"`
	Seed           int64   `json:"seed"`
	SendSeconds    float64 `json:"send_seconds"`
	DrainSeconds   float64 `json:"drain_seconds"`
	DrainError     string  `json:"drain_error,omitempty"`
	// UpgradeFrom is the old binary of a rolling upgrade (--upgrade-from);
	// its steps are in Kills, with action "upgrade".
	UpgradeFrom string `json:"upgrade_from,omitempty"`
	// Partition is what --partition cut each node off from; its steps are
	// in Kills, with action "cut-…" and what the clients saw in cut.
	Partition string `json:"partition,omitempty"`

	Kills []killRecord `json:"kills"`
	// ServeAgain: per kill, every conversation whose grain the killed
	// node hosted: time from the kill until a post made after it was
	// acknowledged (beyond the bound: not within --recover-timeout).
	ServeAgain stats `json:"serve_again"`
	// ServeAgainSocketOnly: visitors connected to the killed node whose
	// grain lived elsewhere (reconnect and resume).
	ServeAgainSocketOnly stats `json:"serve_again_socket_only"`
	// ServeAgainUntouched: conversations with neither their grain nor
	// their visitor's socket on the killed node.
	ServeAgainUntouched stats `json:"serve_again_untouched"`
	// ServeAgainAll: every conversation, every kill.
	ServeAgainAll stats `json:"serve_again_all"`
	NotServed     int   `json:"not_served"`

	deliveryCheck

	// Latencies from a message's first send: visitor → admin deliveries
	// of live frames where the visitor posted through another node than
	// the admin's, and post → ack; of what arrived before the first kill,
	// and over the whole run (which includes messages held up by
	// failovers).
	CrossNodeBeforeKills stats `json:"cross_node_before_kills"`
	CrossNodeAll         stats `json:"cross_node_all"`
	AckBeforeKills       stats `json:"ack_before_kills"`
	AckAll               stats `json:"ack_all"`
}

// deliveryCheck is what the clients' records say about every post.
type deliveryCheck struct {
	Posted         int            `json:"posted"`
	Acknowledged   int            `json:"acknowledged"`
	Unacknowledged int            `json:"unacknowledged"`
	Refused        map[string]int `json:"refused"`
	// Lost: acknowledged messages not delivered to their visitor or to an
	// admin (from the first seq the admin saw of that conversation on)
	// by the end of the drain.
	Lost             int `json:"lost"`
	MissingAtVisitor int `json:"missing_at_visitor"`
	MissingAtAdmins  int `json:"missing_at_admins"` // (message, admin) pairs
	// LostDetails names the first 20 missing (message, client) pairs, each
	// with the last seq that client delivered of the conversation: a
	// missing seq above it is a tail no later message revealed.
	LostDetails    []string `json:"lost_details,omitempty"`
	Mismatched     int      `json:"mismatched"`       // a delivered seq whose text is not the acknowledged post's
	SeqConflicts   int      `json:"seq_conflicts"`    // two posts acknowledged with one seq, or into another conversation
	AdminLateStart int      `json:"admin_late_start"` // (admin, conversation) pairs first seen after seq 1
	// Duplicates and Gaps are the Resumers' counts of the server's
	// violations: a live message repeating (or going back to) a seq on one
	// connection, or skipping one.
	Duplicates int      `json:"duplicates"`
	Gaps       int      `json:"gaps"`
	GapDetails []string `json:"gap_details,omitempty"`
	// OutOfOrder counts delivered seqs not greater than the one before
	// (the Resumer drops those, so this checks the checker).
	OutOfOrder int `json:"out_of_order"`
	Reconnects int `json:"reconnects"`
}

// check compares what was acknowledged with what every client delivered.
func (c *chaos) check(kills []killRecord, firstKill time.Time) *report {
	rep := &report{Provider: c.o.provider, Nodes: c.o.nodes, Visitors: c.o.visitors, Admins: c.o.admins,
		RatePerVisitor: c.o.rate, Seed: c.o.seed, Kills: kills, UpgradeFrom: c.o.upgradeFrom, Partition: c.o.partition}
	if c.o.provider == "automanaged" {
		rep.Refresh = c.o.refresh.String()
	}

	var affected, socketOnly, untouched, all []time.Duration
	for _, k := range kills {
		for i, d := range k.ServeAgain {
			if d < 0 {
				rep.NotServed++ // and ranked beyond the bound below
			}
			all = append(all, d)
			switch {
			case k.grainOnNode[i]:
				affected = append(affected, d)
			case k.socketOnNode[i]:
				socketOnly = append(socketOnly, d)
			default:
				untouched = append(untouched, d)
			}
		}
	}
	rep.ServeAgain, rep.ServeAgainSocketOnly = summarize(affected), summarize(socketOnly)
	rep.ServeAgainUntouched, rep.ServeAgainAll = summarize(untouched), summarize(all)

	var vs []visitorRecord
	for _, v := range c.visitors {
		v.mu.Lock()
		posts := make(map[string]string, len(v.posts))
		for id, t := range v.posts {
			posts[id] = t
		}
		v.mu.Unlock()
		vs = append(vs, visitorRecord{snap: v.r.Snapshot(), posts: posts})
	}
	var as []wsclient.Snapshot
	for _, a := range c.admins {
		as = append(as, a.r.Snapshot())
	}
	rep.deliveryCheck = checkDelivery(vs, as)

	c.mu.Lock()
	var crossBefore, crossAll, ackBefore, ackAll []time.Duration
	for _, s := range c.toAdmin {
		if !s.crossNode {
			continue
		}
		crossAll = append(crossAll, s.d)
		if s.sent.Add(s.d).Before(firstKill) {
			crossBefore = append(crossBefore, s.d)
		}
	}
	for _, s := range c.acks {
		ackAll = append(ackAll, s.d)
		if s.sent.Add(s.d).Before(firstKill) {
			ackBefore = append(ackBefore, s.d)
		}
	}
	c.mu.Unlock()
	rep.CrossNodeBeforeKills, rep.CrossNodeAll = summarize(crossBefore), summarize(crossAll)
	rep.AckBeforeKills, rep.AckAll = summarize(ackBefore), summarize(ackAll)
	return rep
}

// visitorRecord is one visitor's client record and its posts
// (client_msg_id → text).
type visitorRecord struct {
	snap  wsclient.Snapshot
	posts map[string]string
}

// checkDelivery checks, per conversation, that every acknowledged post was
// delivered, with its text, to its visitor and to every admin (from the
// first seq the admin recorded of that conversation on), and sums what the
// clients counted.
func checkDelivery(visitors []visitorRecord, admins []wsclient.Snapshot) deliveryCheck {
	d := deliveryCheck{Refused: map[string]int{}}
	type msg struct {
		conv, seq int64
		text      string
	}
	var acked []msg
	lost := map[[2]int64]bool{}
	missing := func(who string, s wsclient.Snapshot, conv, seq int64) {
		if len(d.LostDetails) < 20 {
			last := int64(0)
			if seqs := s.Seqs[conv]; len(seqs) > 0 {
				last = seqs[len(seqs)-1]
			}
			d.LostDetails = append(d.LostDetails, fmt.Sprintf("conversation %d seq %d missing at %s (its last seq delivered: %d)", conv, seq, who, last))
		}
	}
	for i, v := range visitors {
		s := v.snap
		d.Posted += len(v.posts)
		d.Acknowledged += len(s.Acked)
		d.Unacknowledged += s.Pending
		for _, code := range s.Refused {
			d.Refused[code]++
		}
		seen := map[int64]bool{}
		for id, a := range s.Acked {
			text := v.posts[id]
			if a.ConversationID != s.ConversationID || seen[a.Seq] {
				d.SeqConflicts++
				continue
			}
			seen[a.Seq] = true
			acked = append(acked, msg{a.ConversationID, a.Seq, text})
			got, ok := s.Texts[a.ConversationID][a.Seq]
			switch {
			case !ok:
				d.MissingAtVisitor++
				lost[[2]int64{a.ConversationID, a.Seq}] = true
				missing(fmt.Sprintf("visitor %d", i), s, a.ConversationID, a.Seq)
			case got != text:
				d.Mismatched++
			}
		}
	}
	for i, s := range admins {
		first := map[int64]int64{}
		for conv, seqs := range s.Seqs {
			if len(seqs) > 0 {
				first[conv] = seqs[0]
				if seqs[0] > 1 {
					d.AdminLateStart++
				}
			}
		}
		for _, m := range acked {
			if f, ok := first[m.conv]; ok && m.seq < f {
				continue // the admin's record of this conversation starts later
			}
			got, ok := s.Texts[m.conv][m.seq]
			switch {
			case !ok:
				d.MissingAtAdmins++
				lost[[2]int64{m.conv, m.seq}] = true
				missing(fmt.Sprintf("admin %d", i), s, m.conv, m.seq)
			case got != m.text:
				d.Mismatched++
			}
		}
	}
	d.Lost = len(lost)
	all := append([]wsclient.Snapshot(nil), admins...)
	for _, v := range visitors {
		all = append(all, v.snap)
	}
	for _, s := range all {
		d.Duplicates += s.Duplicates
		d.Gaps += len(s.Gaps)
		for _, g := range s.Gaps {
			if len(d.GapDetails) < 20 {
				d.GapDetails = append(d.GapDetails, g)
			}
		}
		d.Reconnects += max(s.Connects-1, 0)
		for _, seqs := range s.Seqs {
			for i := 1; i < len(seqs); i++ {
				if seqs[i] <= seqs[i-1] {
					d.OutOfOrder++
				}
			}
		}
	}
	return d
}

// problems lists what makes the run a failure.
func (r *report) problems() []string {
	var p []string
	add := func(n int, what string) {
		if n > 0 {
			p = append(p, fmt.Sprintf("%s=%d", what, n))
		}
	}
	add(r.Lost, "lost")
	add(r.Duplicates, "duplicates")
	add(r.Gaps, "gaps")
	add(r.OutOfOrder, "out_of_order")
	add(r.Mismatched, "mismatched")
	add(r.SeqConflicts, "seq_conflicts")
	add(r.Unacknowledged, "unacknowledged")
	add(r.NotServed, "not_served_again")
	refused := 0
	for _, n := range r.Refused {
		refused += n
	}
	add(refused, "refused")
	if r.DrainError != "" {
		p = append(p, "drain: "+r.DrainError)
	}
	return p
}

func (r *report) print(w io.Writer) {
	provider := r.Provider
	if r.Refresh != "" {
		provider += ", refresh " + r.Refresh
	}
	steps := fmt.Sprintf("%d kills", len(r.Kills))
	switch {
	case r.UpgradeFrom != "":
		steps = fmt.Sprintf("rolling upgrade from %s (%d steps)", r.UpgradeFrom, len(r.Kills))
	case r.Partition != "":
		steps = fmt.Sprintf("%d cuts from %s", len(r.Kills), r.Partition)
	}
	fmt.Fprintf(w, "chatchaos: %d nodes (%s), %d visitors × %.0f msg/s, %d admins, %s, seed %d\n",
		r.Nodes, provider, r.Visitors, r.RatePerVisitor, r.Admins, steps, r.Seed)
	fmt.Fprintf(w, "\n%-5s %-8s %-8s %-7s %-8s %-8s %-12s %-12s %s\n", "step", "action", "node", "grains", "sockets", "down", "affected max", "all max", "restart")
	for _, k := range r.Kills {
		fmt.Fprintf(w, "%-5d %-8s %-8s %-7d %-8d %-8s %-12s %-12s %.2f s\n", k.N, k.Action, k.Node, len(k.Grains), k.Sockets,
			fmt.Sprintf("%.2f s", k.DownSeconds), fmtMS(k.AffectedMaxMS), fmtMS(k.AllMaxMS), k.RestartSeconds)
	}
	for _, k := range r.Kills {
		if c := k.Cut; c != nil {
			fmt.Fprintf(w, "during cut %d (%.1f s): %d posts acknowledged, %d of them from the %d visitors on %s; visitors served %d of %d, on %s %d of %d\n",
				k.N, c.CutSeconds, c.Acked, c.AckedOnNode, k.Sockets, k.Node, c.Served, r.Visitors, k.Node, c.ServedOnNode, k.Sockets)
		}
	}
	fmt.Fprintf(w, "\ntime to serve again (a kill, or the end of a graceful stop or a cut → ack of a post made after it)\n")
	fmt.Fprintf(w, "  grain on the killed node:       %s\n", r.ServeAgain)
	fmt.Fprintf(w, "  only the socket on it:          %s\n", r.ServeAgainSocketOnly)
	fmt.Fprintf(w, "  neither on it:                  %s\n", r.ServeAgainUntouched)
	fmt.Fprintf(w, "  every conversation:             %s\n", r.ServeAgainAll)
	fmt.Fprintf(w, "  not served within the bound:    %d\n", r.NotServed)
	fmt.Fprintf(w, "\nmessages: posted %d, acknowledged %d, unacknowledged %d, refused %d %v\n",
		r.Posted, r.Acknowledged, r.Unacknowledged, sumValues(r.Refused), r.Refused)
	fmt.Fprintf(w, "lost %d (missing at visitor %d, at admins %d), duplicates %d, gaps %d, out of order %d, mismatched %d, seq conflicts %d\n",
		r.Lost, r.MissingAtVisitor, r.MissingAtAdmins, r.Duplicates, r.Gaps, r.OutOfOrder, r.Mismatched, r.SeqConflicts)
	for _, l := range r.LostDetails {
		fmt.Fprintf(w, "  lost: %s\n", l)
	}
	for _, g := range r.GapDetails {
		fmt.Fprintf(w, "  gap: %s\n", g)
	}
	fmt.Fprintf(w, "client reconnects %d; admin records starting after seq 1: %d\n", r.Reconnects, r.AdminLateStart)
	fmt.Fprintf(w, "\nvisitor → admin on another node, before the first kill: %s\n", r.CrossNodeBeforeKills)
	fmt.Fprintf(w, "visitor → admin on another node, whole run:             %s\n", r.CrossNodeAll)
	fmt.Fprintf(w, "post → ack, before the first kill:                      %s\n", r.AckBeforeKills)
	fmt.Fprintf(w, "post → ack, whole run:                                  %s\n", r.AckAll)
	fmt.Fprintf(w, "\nsent for %.1f s; drained in %.2f s\n", r.SendSeconds, r.DrainSeconds)
	if r.DrainError != "" {
		fmt.Fprintf(w, "drain: %s\n", r.DrainError)
	}
	if p := r.problems(); len(p) > 0 {
		fmt.Fprintf(w, "FAILED: %s\n", strings.Join(p, ", "))
	} else {
		fmt.Fprintln(w, "OK: nothing lost, doubled, skipped or left unacknowledged")
	}
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
