package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/chatproc"
	"github.com/grainchat/grainchat/transport/wsclient"
)

func TestSummarizeNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := summarize(d)
	if s.N != 100 || s.P50 != 50 || s.P99 != 99 || s.Max != 100 {
		t.Fatalf("got %+v", s)
	}
	if s := summarize([]time.Duration{7 * time.Millisecond}); s.P50 != 7 || s.P99 != 7 || s.Max != 7 {
		t.Fatalf("one sample: %+v", s)
	}
	if s := summarize(nil); s.N != 0 {
		t.Fatalf("no samples: %+v", s)
	}
	// Samples beyond the bound rank above every measured one.
	d = d[:0]
	for i := 1; i <= 98; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	d = append(d, -1, -1)
	if s := summarize(d); s.N != 100 || s.Over != 2 || s.P50 != 50 || s.P99 != -1 || s.Max != -1 || !strings.Contains(s.String(), "p99 beyond") {
		t.Fatalf("with two beyond the bound: %+v %s", s, s)
	}
}

func TestBody(t *testing.T) {
	b := body("v3 m17", 2)
	node, sent, ok := parseBody(b)
	if !ok || node != 2 || time.Since(sent) > time.Minute || time.Since(sent) < 0 {
		t.Fatalf("%q: %d %v %v", b, node, sent, ok)
	}
	for _, bad := range []string{"hello", "x t=12", "x n=1", "x t=1 n=2", "x n=a t=1", "x n=1 t=b"} {
		if _, _, ok := parseBody(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	if n, _, ok := parseBody(body("k1 v1", -1)); !ok || n != -1 {
		t.Errorf("no node: %d %v", n, ok)
	}
}

func TestNodeOrderSpreadsAKilledNodesClients(t *testing.T) {
	next := map[int]int{} // where node 0's clients go when it dies
	for k := 0; k < 12; k++ {
		o := nodeOrder(k, k, 3)
		if o[0] != k%3 {
			t.Fatalf("client %d starts at node %d", k, o[0])
		}
		seen := map[int]bool{}
		for _, i := range o {
			seen[i] = true
		}
		if len(seen) != 3 {
			t.Fatalf("client %d: order %v does not try every node", k, o)
		}
		if o[0] == 0 {
			next[o[1]]++
		}
	}
	if next[1] != 2 || next[2] != 2 {
		t.Fatalf("node 0's clients move on to %v, want two to node 1 and two to node 2", next)
	}
}

// visitorOf builds a visitor's record: posts p0..p(n-1) acknowledged with
// seqs 1..n in conversation conv, and delivered as given.
func visitorOf(conv int64, n int, delivered map[int64]string) visitorRecord {
	v := visitorRecord{posts: map[string]string{}, snap: wsclient.Snapshot{ConversationID: conv,
		Acked: map[string]wsclient.Ack{}, Seqs: map[int64][]int64{}, Texts: map[int64]map[int64]string{conv: delivered}}}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("p%d", i)
		v.posts[id] = fmt.Sprintf("text %d", i)
		v.snap.Acked[id] = wsclient.Ack{ConversationID: conv, Seq: int64(i + 1)}
	}
	for seq := int64(1); seq <= 1000; seq++ {
		if _, ok := delivered[seq]; ok {
			v.snap.Seqs[conv] = append(v.snap.Seqs[conv], seq)
		}
	}
	return v
}

func texts(conv int64, from, to int64) map[int64]string {
	m := map[int64]string{}
	for s := from; s <= to; s++ {
		m[s] = fmt.Sprintf("text %d", s-1)
	}
	return m
}

func adminOf(convs map[int64]map[int64]string) wsclient.Snapshot {
	s := wsclient.Snapshot{Seqs: map[int64][]int64{}, Texts: convs}
	for conv, m := range convs {
		for seq := int64(1); seq <= 1000; seq++ {
			if _, ok := m[seq]; ok {
				s.Seqs[conv] = append(s.Seqs[conv], seq)
			}
		}
	}
	return s
}

func TestCheckDelivery(t *testing.T) {
	t.Run("everything delivered", func(t *testing.T) {
		d := checkDelivery([]visitorRecord{visitorOf(1, 3, texts(1, 1, 3)), visitorOf(2, 2, texts(2, 1, 2))},
			[]wsclient.Snapshot{adminOf(map[int64]map[int64]string{1: texts(1, 1, 3), 2: texts(2, 1, 2)})})
		if d.Acknowledged != 5 || d.Posted != 5 || d.Lost != 0 || d.Mismatched != 0 || d.SeqConflicts != 0 || d.AdminLateStart != 0 {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("missing at the visitor and at an admin", func(t *testing.T) {
		v := texts(1, 1, 3)
		delete(v, 2)
		a := texts(1, 1, 3)
		delete(a, 3)
		d := checkDelivery([]visitorRecord{visitorOf(1, 3, v)},
			[]wsclient.Snapshot{adminOf(map[int64]map[int64]string{1: a}), adminOf(map[int64]map[int64]string{1: texts(1, 1, 3)})})
		if d.Lost != 2 || d.MissingAtVisitor != 1 || d.MissingAtAdmins != 1 {
			t.Fatalf("%+v", d)
		}
		want := []string{
			"conversation 1 seq 2 missing at visitor 0 (its last seq delivered: 3)",
			"conversation 1 seq 3 missing at admin 0 (its last seq delivered: 2)",
		}
		if !slices.Equal(d.LostDetails, want) {
			t.Errorf("lost details %q, want %q", d.LostDetails, want)
		}
	})
	t.Run("an admin that never saw the conversation", func(t *testing.T) {
		d := checkDelivery([]visitorRecord{visitorOf(1, 2, texts(1, 1, 2))}, []wsclient.Snapshot{adminOf(nil)})
		if d.Lost != 2 || d.MissingAtAdmins != 2 {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("an admin whose record starts later", func(t *testing.T) {
		d := checkDelivery([]visitorRecord{visitorOf(1, 3, texts(1, 1, 3))},
			[]wsclient.Snapshot{adminOf(map[int64]map[int64]string{1: texts(1, 2, 3)})})
		if d.Lost != 0 || d.AdminLateStart != 1 {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("another post's text at the acknowledged seq", func(t *testing.T) {
		v := texts(1, 1, 2)
		v[2] = "someone else"
		d := checkDelivery([]visitorRecord{visitorOf(1, 2, v)}, nil)
		if d.Mismatched != 1 || d.Lost != 0 {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("two posts acknowledged with one seq", func(t *testing.T) {
		v := visitorOf(1, 2, texts(1, 1, 2))
		v.snap.Acked["p1"] = wsclient.Ack{ConversationID: 1, Seq: 1}
		d := checkDelivery([]visitorRecord{v}, nil)
		if d.SeqConflicts != 1 {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("client counts", func(t *testing.T) {
		v := visitorOf(1, 1, texts(1, 1, 1))
		v.snap.Duplicates, v.snap.Gaps, v.snap.Connects, v.snap.Pending = 2, []string{"g"}, 3, 4
		v.snap.Refused = map[string]string{"x": "forbidden"}
		v.snap.Seqs[1] = []int64{1, 3, 2}
		d := checkDelivery([]visitorRecord{v}, nil)
		if d.Duplicates != 2 || d.Gaps != 1 || d.Reconnects != 2 || d.Unacknowledged != 4 || d.Refused["forbidden"] != 1 || d.OutOfOrder != 1 {
			t.Fatalf("%+v", d)
		}
	})
}

func TestReport(t *testing.T) {
	r := &report{Provider: "etcd", Nodes: 3, Kills: []killRecord{{N: 1, Node: "node-2", Grains: []int64{4}}}}
	var out bytes.Buffer
	r.print(&out)
	if !strings.Contains(out.String(), "OK: nothing lost") || len(r.problems()) != 0 {
		t.Fatalf("clean report:\n%s", out.String())
	}
	r.Lost, r.Gaps, r.NotServed = 1, 2, 3
	r.Refused = map[string]int{"forbidden": 1}
	if p := strings.Join(r.problems(), ","); p != "lost=1,gaps=2,not_served_again=3,refused=1" {
		t.Fatalf("problems: %s", p)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"lost":1`, `"serve_again":`, `"kills":[{"n":1,"node":"node-2"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
}

func TestParseOptions(t *testing.T) {
	env := func(k string) string {
		if k == "CHAT_DATABASE_URL" {
			return "postgres://x"
		}
		return ""
	}
	o, err := parseOptions(nil, env, &bytes.Buffer{})
	if err != nil || o.databaseURL != "postgres://x" || o.nodes != 3 || o.visitors != 30 || o.kills != 10 || o.seed == 0 {
		t.Fatalf("%+v %v", o, err)
	}
	_, err = parseOptions([]string{"--provider", "zk", "--nodes", "1", "--rate", "0"}, func(string) string { return "" }, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--database-url") || !strings.Contains(err.Error(), "--provider") ||
		!strings.Contains(err.Error(), "--nodes") || !strings.Contains(err.Error(), "--rate") {
		t.Fatalf("want every problem reported, got %v", err)
	}
}

// Without etcd on PATH, --provider etcd fails at once and names the package
// to install.
func TestEtcdMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"--provider", "etcd", "--database-url", "postgres://x"},
		func(string) string { return "" }, &bytes.Buffer{}, &stderr)
	if !errors.Is(err, chatproc.ErrEtcdNotInstalled) || !strings.Contains(err.Error(), "apt-get install etcd-server") {
		t.Fatalf("got %v, want chatproc.ErrEtcdNotInstalled", err)
	}
	if strings.Contains(stderr.String(), "building chatd") {
		t.Errorf("it built chatd first:\n%s", stderr.String())
	}
}
