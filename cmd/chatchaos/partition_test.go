package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/chatproc"
	"github.com/grainchat/grainchat/cmd/internal/netlab"
	"github.com/grainchat/grainchat/cmd/internal/prereq"
	"github.com/grainchat/grainchat/storage/pgtest"
)

// TestPartition runs chatchaos --partition on three real chatd processes,
// each in its own network namespace: every node in turn is cut off for 4 s
// from the other nodes (automanaged membership, and etcd membership), from
// PostgreSQL, and from etcd (etcd membership), while its visitors stay
// connected and post.
// Nothing acknowledged may be lost, doubled or skipped, every conversation
// must be served again within 15 s of each heal, and what the clients see
// during the cuts is as README's "Network partitions" says. It found a
// cluster that never healed (protoactor blocked the members it dropped,
// forever), hubs and the inbox that dropped subscribers of a node that came
// back, and announces lost on a connection broken by the cut.
func TestPartition(t *testing.T) {
	if err := netlab.Check(); err != nil {
		prereq.Missing(t, "the partition tests need root and the ip command ("+err.Error()+")", "iproute2")
	}
	bin, err := chatproc.Build(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cut, provider string
	}{
		{"peers", "automanaged"},
		{"db", "automanaged"},
		{"etcd", "etcd"},
		{"peers", "etcd"},
	} {
		name := tc.cut
		if tc.cut == "peers" && tc.provider == "etcd" {
			name = "peers-etcd"
		}
		t.Run(name, func(t *testing.T) {
			if tc.provider == "etcd" {
				if _, err := exec.LookPath("etcd"); err != nil {
					prereq.Missing(t, "the etcd partition test needs etcd", "etcd-server")
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			args := []string{"--chatd", bin, "--database-url", pgtest.NewDatabase(t), "--provider", tc.provider,
				"--partition", tc.cut, "--cut", "4s", "--visitors", "12", "--admins", "2", "--rate", "10",
				"--warmup", "3s", "--interval", "3s", "--recover-timeout", "15s", "--drain", "60s", "--json"}
			err := run(ctx, args, func(string) string { return "" }, &stdout, &stderr)
			t.Logf("%s", stderr.String())
			if err != nil {
				t.Fatalf("chatchaos: %v\n%s", err, stdout.String())
			}
			var rep report
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("report: %v\n%s", err, stdout.String())
			}
			if rep.Partition != tc.cut || len(rep.Kills) != 3 {
				t.Fatalf("want 3 cuts from %s, got %d from %q", tc.cut, len(rep.Kills), rep.Partition)
			}
			for i, k := range rep.Kills {
				if k.Action != "cut-"+tc.cut || k.Node != fmt.Sprintf("node-%d", i+1) || k.Cut == nil || k.Cut.CutSeconds < 4 {
					t.Fatalf("step %d: %+v", i+1, k)
				}
				if len(k.NotServed) > 0 || len(k.Conversations) != 12 {
					t.Errorf("cut %d: %d conversations measured, not served again within 15 s of the heal: %v", i+1, len(k.Conversations), k.NotServed)
				}
				// Each side of a cut from the peers serves its own
				// clients (automanaged membership); so does a node cut
				// from etcd (its view stands still). A node cut from
				// PostgreSQL serves the visitors whose grain is
				// elsewhere; one cut from its peers with etcd membership
				// is still a member on both sides, so its visitors whose
				// grain is elsewhere wait for the heal (checked above).
				allServed := name == "peers" || name == "etcd"
				t.Logf("cut %d: %d of the %d visitors on the cut node served during the cut", i+1, k.Cut.ServedOnNode, k.Sockets)
				if allServed && (k.Sockets == 0 || k.Cut.ServedOnNode != k.Sockets) {
					t.Errorf("cut %d: %d of the %d visitors on the cut node served during the cut", i+1, k.Cut.ServedOnNode, k.Sockets)
				}
			}
			if rep.Lost != 0 || rep.Duplicates != 0 || rep.Gaps != 0 || rep.Unacknowledged != 0 || rep.Mismatched != 0 || rep.SeqConflicts != 0 || rep.OutOfOrder != 0 {
				t.Errorf("lost %d, duplicates %d, gaps %d, unacknowledged %d, mismatched %d, seq conflicts %d, out of order %d",
					rep.Lost, rep.Duplicates, rep.Gaps, rep.Unacknowledged, rep.Mismatched, rep.SeqConflicts, rep.OutOfOrder)
			}
		})
	}
}
