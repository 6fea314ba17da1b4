package main

import (
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/actors/membership"
)

// A node of an automanaged cluster stopped with SIGTERM is a fact each
// survivor logs once, at info (membership.MsgMemberLeft), not an error per
// poll of its health endpoint, forever; and the stopping node's own logs
// hold no error either (its endpoint's normal stop was "ERROR Automanaged
// server stopping..!"). The survivors' logs are read after they have polled
// the departed node at least three more times (their debug lines say so).
//
// With etcd membership there are no polls to count: the survivors' logs are
// watched for three seconds after the departure instead.
func TestClusterLogsAfterSIGTERM(t *testing.T) {
	clusterKinds(t, func(t *testing.T, start func(t *testing.T, dsn string, n int, extra ...string) *testCluster) {
		testClusterLogsAfterSIGTERM(t, start)
	})
}

func testClusterLogsAfterSIGTERM(t *testing.T, start func(t *testing.T, dsn string, n int, extra ...string) *testCluster) {
	c := start(t, newDatabase(t), 3)
	automanaged := strings.HasSuffix(t.Name(), "/automanaged")
	lines := func(n *nodeProc, sub string) []string {
		var out []string
		for _, l := range strings.Split(n.out.String(), "\n") {
			if strings.Contains(l, sub) {
				out = append(out, l)
			}
		}
		return out
	}
	joined := `msg="` + membership.MsgMemberJoined + `"`
	left := `msg="` + membership.MsgMemberLeft + `"`
	for _, n := range c.nodes {
		waitFor(t, 15*time.Second, n.name+" to log the two others joining", func() bool { return len(lines(n, joined)) >= 2 })
	}

	stopped := c.nodes[2]
	stopped.Stop()
	survivors := c.nodes[:2]
	// A poll that failed after the departure was logged: the survivor
	// kept polling the departed node (every 500 ms in these clusters).
	pollsSince := func(n *nodeProc) int {
		log := n.out.String()
		i := strings.Index(log, left)
		if i < 0 {
			return 0
		}
		return strings.Count(log[i:], "automanaged: a peer's health endpoint did not answer")
	}
	for _, n := range survivors {
		if automanaged {
			waitFor(t, 20*time.Second, n.name+" to log the departure and poll three more times", func() bool { return pollsSince(n) >= 3 })
		} else {
			waitFor(t, 20*time.Second, n.name+" to log the departure", func() bool { return len(lines(n, left)) > 0 })
		}
	}
	if !automanaged {
		// Three seconds in which nothing more may be logged as an error.
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if len(lines(survivors[0], "level=ERROR"))+len(lines(survivors[1], "level=ERROR")) > 0 {
				break
			}
		}
	}
	for _, n := range survivors {
		if got := lines(n, left); len(got) != 1 || !strings.Contains(got[0], "level=INFO") || !strings.Contains(got[0], "members=2") {
			t.Errorf("%s logged the departure %d times, want once at info with 2 members left: %q", n.name, len(got), got)
		}
		if got := lines(n, "level=ERROR"); len(got) > 0 {
			t.Errorf("%s logged errors after a clean stop of %s:\n%s", n.name, stopped.name, strings.Join(got, "\n"))
		}
		if got := lines(n, "node health status"); len(got) > 0 {
			t.Errorf("%s logged the library's poll records as they were: %q", n.name, got[0])
		}
	}
	if got := lines(stopped, "level=ERROR"); len(got) > 0 {
		t.Errorf("%s logged errors while stopping cleanly:\n%s", stopped.name, strings.Join(got, "\n"))
	}
	if got := lines(stopped, "Automanaged server stopping"); len(got) > 0 {
		t.Errorf("%s logged the library's stop line as it was: %q", stopped.name, got[0])
	}
	if t.Failed() {
		for _, n := range c.nodes {
			t.Logf("%s's log:\n%s", n.name, n.out.String())
		}
	}
}
