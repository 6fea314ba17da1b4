package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/chatproc"
	"github.com/grainchat/grainchat/cmd/internal/prereq"
	"github.com/grainchat/grainchat/storage/pgtest"
)

// The release a rolling upgrade starts from: its tag and the commit the tag
// names (a clone without tags builds the commit). README's "Upgrading"
// says what a rolling upgrade from it guarantees; bump both at a release.
const (
	previousReleaseTag    = "v0.1.0"
	previousReleaseCommit = "fcefdff7dc146abe93db4ebd97314ee15f87b53d"
)

// TestRollingUpgrade runs the previous release's chatd, built from its git
// tag, as a 3-node cluster under traffic, then replaces the nodes one by one
// with this tree's chatd (SIGTERM, start on the new binary): while the second
// node is down, an old and a new node serve every conversation together. No
// acknowledged message may be lost, doubled or skipped, and every
// conversation must accept posts again after each step.
func TestRollingUpgrade(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	old := buildRelease(ctx, t, dir)
	cur, err := chatproc.Build(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.NewDatabase(t)

	var stdout, stderr bytes.Buffer
	args := []string{"--chatd", cur, "--upgrade-from", old, "--database-url", db,
		"--visitors", "12", "--admins", "2", "--rate", "10", "--warmup", "3s", "--interval", "3s",
		"--recover-timeout", "45s", "--json"}
	err = run(ctx, args, func(string) string { return "" }, &stdout, &stderr)
	if err != nil {
		t.Fatalf("chatchaos: %v\n%s\n%s", err, stderr.String(), stdout.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout.String())
	}
	t.Logf("%s", stderr.String())
	if rep.UpgradeFrom != old || len(rep.Kills) != 3 {
		t.Fatalf("want 3 upgrade steps from %s, got %d from %q", old, len(rep.Kills), rep.UpgradeFrom)
	}
	for i, k := range rep.Kills {
		if k.Action != "upgrade" || k.Node != fmt.Sprintf("node-%d", i+1) || k.Binary != cur {
			t.Errorf("step %d: %s of %s, now running %s; want an upgrade of node-%d to %s", i+1, k.Action, k.Node, k.Binary, i+1, cur)
		}
		if len(k.NotServed) > 0 || len(k.Conversations) != 12 {
			t.Errorf("step %d: %d conversations measured, not served again: %v", i+1, len(k.Conversations), k.NotServed)
		}
	}
	if rep.Lost != 0 || rep.Duplicates != 0 || rep.Gaps != 0 || rep.Unacknowledged != 0 || rep.Mismatched != 0 || rep.SeqConflicts != 0 || rep.OutOfOrder != 0 {
		t.Errorf("lost %d, duplicates %d, gaps %d, unacknowledged %d, mismatched %d, seq conflicts %d, out of order %d",
			rep.Lost, rep.Duplicates, rep.Gaps, rep.Unacknowledged, rep.Mismatched, rep.SeqConflicts, rep.OutOfOrder)
	}
	// 12 visitors × 10/s for at least 3 + 3 × 3 s, and 3 markers each.
	if rep.Acknowledged < 12*10*10 {
		t.Errorf("only %d posts acknowledged", rep.Acknowledged)
	}
}

// buildRelease builds the previous release's chatd into dir: its source is
// the tag's tree (or the commit's, when the clone has no tags), taken with
// git archive.
func buildRelease(ctx context.Context, t *testing.T, dir string) string {
	t.Helper()
	git := prereq.LookPath(t, "the rolling-upgrade test needs git (it builds the previous release from its tag)", "git", "git")
	top, err := exec.CommandContext(ctx, git, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		prereq.Missing(t, "the rolling-upgrade test needs a git checkout of grainchat (it builds the previous release from its tag), and git", "git")
	}
	root := strings.TrimSpace(string(top))
	rev := previousReleaseTag
	if exec.CommandContext(ctx, git, "-C", root, "rev-parse", "--verify", "--quiet", rev+"^{commit}").Run() != nil {
		rev = previousReleaseCommit
		if exec.CommandContext(ctx, git, "-C", root, "cat-file", "-e", rev+"^{commit}").Run() != nil {
			t.Fatalf("neither the tag %s nor its commit %s is in this clone (a shallow clone? fetch with --tags)", previousReleaseTag, previousReleaseCommit)
		}
	}
	src := filepath.Join(dir, "release-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := exec.CommandContext(ctx, git, "-C", root, "archive", "--format=tar", rev)
	extract := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	extract.Stdin = pipe
	var archErr, tarErr bytes.Buffer
	archive.Stderr, extract.Stderr = &archErr, &tarErr
	if err := extract.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", rev, err, archErr.String())
	}
	if err := extract.Wait(); err != nil {
		t.Fatalf("tar: %v\n%s", err, tarErr.String())
	}
	bin := filepath.Join(dir, "chatd-"+previousReleaseTag)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/chatd")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s (%s): %v\n%s", previousReleaseTag, rev, err, out)
	}
	return bin
}
