package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/chatproc"
	"github.com/grainchat/grainchat/cmd/internal/prereq"
)

// Multi-process cluster tests run real chatd binaries on loopback ports: what
// crosses nodes must really cross the network (protobuf over gRPC). The
// processes are run by cmd/internal/chatproc; this file adapts it to tests.

var (
	chatdBinOnce sync.Once
	chatdBin     string
	chatdBinErr  error
)

// chatdBinary builds chatd once per test process.
func chatdBinary(t *testing.T) string {
	t.Helper()
	chatdBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "grainchat-bin-")
		if err != nil {
			chatdBinErr = err
			return
		}
		chatdBin, chatdBinErr = chatproc.Build(context.Background(), dir)
	})
	if chatdBinErr != nil {
		t.Fatal(chatdBinErr)
	}
	return chatdBin
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := chatproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// nodeTemplate is every test node: the chatd binary, the test secret, debug
// logs (kept for a failed test), /debug/cluster (--pprof: the tests ask a node
// what it hosts) and no per-user rate limit (the tests' visitors post faster
// than people type).
func nodeTemplate(t *testing.T) chatproc.NodeConfig {
	return chatproc.NodeConfig{
		Binary: chatdBinary(t),
		Args:   []string{"--jwt-secret", testSecret, "--log-level", "debug", "--shutdown-timeout", "15s", "--message-rate", "-1", "--pprof"},
	}
}

// nodeProc is one chatd process.
type nodeProc struct {
	t    *testing.T
	name string
	node *chatproc.Node
	out  *chatproc.Buffer // everything it printed, over all its runs
}

func newNodeProc(t *testing.T, n *chatproc.Node) *nodeProc {
	// Registered first, so it runs after the kill: a failed test leaves
	// each node's whole log (debug level) beside the screenshots.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		root, err := repoRoot()
		if err != nil {
			t.Logf("node %s log not saved: %v", n.Name(), err)
			return
		}
		dir := filepath.Join(root, "artifacts", "logs")
		name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "-" + n.Name() + ".log"
		err = os.MkdirAll(dir, 0o755)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), []byte(n.Log().String()), 0o644)
		}
		if err != nil {
			t.Logf("node %s log not saved: %v", n.Name(), err)
			return
		}
		t.Logf("node %s log: %s", n.Name(), filepath.Join(dir, name))
	})
	t.Cleanup(func() { _ = n.Kill() })
	return &nodeProc{t: t, name: n.Name(), node: n, out: n.Log()}
}

// URL is the node's WebSocket URL.
func (p *nodeProc) URL() string { return p.node.URL() }

// startNode runs chatd with args and waits until /readyz answers 200.
func startNode(t *testing.T, name string, args ...string) *nodeProc {
	t.Helper()
	cfg := nodeTemplate(t)
	cfg.Name = name
	cfg.Args = append(cfg.Args, args...)
	n, err := chatproc.StartNode(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return newNodeProc(t, n)
}

// Kill sends SIGKILL and waits for the process to end.
func (p *nodeProc) Kill() {
	if err := p.node.Kill(); err != nil {
		p.t.Error(err)
	}
}

// Stop sends SIGTERM and waits (bounded) for a clean exit.
func (p *nodeProc) Stop() {
	p.t.Helper()
	if err := p.node.Stop(30 * time.Second); err != nil {
		p.t.Error(err)
	}
}

// Restart starts the node again with the same arguments and HTTP address.
func (p *nodeProc) Restart() {
	p.t.Helper()
	if err := p.node.Restart(context.Background()); err != nil {
		p.t.Fatal(err)
	}
}

// hosts reports whether the node hosts conversation conv's grain now, as its
// /debug/cluster says (false when it does not answer: stopped or killed).
func (p *nodeProc) hosts(conv int64) bool {
	st, err := fetchStatus(context.Background(), "http://"+p.node.Addr())
	return err == nil && slices.Contains(st.Conversations, conv)
}

// startEtcd runs a throwaway single-member etcd on loopback ports. Without
// etcd on PATH the test skips, saying what to install (fails with CI=true),
// as the browser tests do without a browser.
func startEtcd(t *testing.T) string {
	t.Helper()
	bin := prereq.LookPath(t, "cluster tests with etcd membership need etcd", "etcd-server", "etcd")
	e, err := chatproc.StartEtcd(context.Background(), chatproc.EtcdConfig{Binary: bin, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	return e.Endpoint()
}

// cluster is a set of chatd nodes sharing a database and a membership.
type testCluster struct {
	t     *testing.T
	nodes []*nodeProc
}

func startCluster(t *testing.T, cfg chatproc.ClusterConfig) *testCluster {
	t.Helper()
	cfg.Node = nodeTemplate(t)
	pc, err := chatproc.StartCluster(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t}
	for _, n := range pc.Nodes {
		c.nodes = append(c.nodes, newNodeProc(t, n))
	}
	return c
}

// startAutomanagedCluster starts n nodes with the automanaged provider.
func startAutomanagedCluster(t *testing.T, dsn string, n int, extra ...string) *testCluster {
	t.Helper()
	return startCluster(t, chatproc.ClusterConfig{Provider: "automanaged", Nodes: n, DatabaseURL: dsn,
		Name: fmt.Sprintf("am-%d", time.Now().UnixNano()), ExtraArgs: extra})
}

// startEtcdCluster starts n nodes with membership in a fresh etcd.
func startEtcdCluster(t *testing.T, dsn string, n int, extra ...string) *testCluster {
	t.Helper()
	endpoint := startEtcd(t)
	return startCluster(t, chatproc.ClusterConfig{Provider: "etcd", Nodes: n, DatabaseURL: dsn,
		Name: "etcd-test", EtcdEndpoint: endpoint, ExtraArgs: extra})
}

func (c *testCluster) urls() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.URL())
	}
	return out
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := chatproc.WaitFor(context.Background(), d, what, cond); err != nil {
		t.Fatal(err)
	}
}
