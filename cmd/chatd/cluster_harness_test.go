package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Multi-process cluster tests run real chatd binaries on loopback ports: what
// crosses nodes must really cross the network (protobuf over gRPC).

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
		chatdBin = filepath.Join(dir, "chatd")
		out, err := exec.Command("go", "build", "-o", chatdBin, ".").CombinedOutput()
		if err != nil {
			chatdBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if chatdBinErr != nil {
		t.Fatal(chatdBinErr)
	}
	return chatdBin
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// nodeProc is one chatd process.
type nodeProc struct {
	t    *testing.T
	name string
	args []string
	Addr string // HTTP host:port
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// URL is the node's WebSocket URL.
func (p *nodeProc) URL() string { return "ws://" + p.Addr + "/ws/chat/" }

// startNode runs chatd with args and waits until /readyz answers 200.
func startNode(t *testing.T, name string, args ...string) *nodeProc {
	t.Helper()
	p := &nodeProc{t: t, name: name, args: args, out: &syncBuffer{}}
	p.start()
	t.Cleanup(func() { p.Kill() })
	return p
}

func (p *nodeProc) start() {
	t := p.t
	t.Helper()
	if p.Addr == "" { // a restart keeps its address, as behind a load balancer
		p.Addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	args := append([]string{"--addr", p.Addr, "--jwt-secret", testSecret, "--log-level", "debug", "--shutdown-timeout", "15s", "--message-rate", "-1"}, p.args...)
	p.cmd = exec.Command(chatdBinary(t), args...)
	p.cmd.Env = append(os.Environ(), "CHAT_DATABASE_URL=") // only flags configure the node
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			_, _ = p.out.Write(append(sc.Bytes(), '\n'))
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if httpStatusQuiet("http://"+p.Addr+"/readyz") == 200 {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited during start-up:\n%s", p.name, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 30s:\n%s", p.name, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

func httpStatusQuiet(url string) int {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Kill sends SIGKILL and waits for the process to end.
func (p *nodeProc) Kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits (bounded) for a clean exit.
func (p *nodeProc) Stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			p.t.Errorf("%s exited with %d after SIGTERM:\n%s", p.name, code, p.out.String())
		}
	case <-time.After(30 * time.Second):
		p.t.Errorf("%s did not stop within 30s of SIGTERM", p.name)
		p.Kill()
	}
}

// Restart starts the node again with the same arguments and HTTP address.
func (p *nodeProc) Restart() { p.start() }

// hosts reports whether the node's log says it activated conversation conv.
func (p *nodeProc) hosts(conv int64) bool {
	return strings.Contains(p.out.String(), fmt.Sprintf(`msg="conversation activated" component=conversation conversation_id=%d `, conv))
}

// etcdServer runs a throwaway single-member etcd on loopback ports.
func startEtcd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd is not installed: apt-get install etcd-server (.ci/run does)")
	}
	client, peer := freePort(t), freePort(t)
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	cmd := exec.Command(bin, "--name", "test", "--data-dir", t.TempDir(),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "test="+peerURL, "--log-level", "error")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for httpStatusQuiet(clientURL+"/health") != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("etcd did not start:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("127.0.0.1:%d", client)
}

// cluster is a set of chatd nodes sharing a database and a membership.
type testCluster struct {
	t     *testing.T
	nodes []*nodeProc
}

// startAutomanagedCluster starts n nodes with the automanaged provider.
func startAutomanagedCluster(t *testing.T, dsn string, n int, extra ...string) *testCluster {
	t.Helper()
	health := make([]string, n)
	for i := range health {
		health[i] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	c := &testCluster{t: t}
	name := fmt.Sprintf("am-%d", time.Now().UnixNano())
	for i := 0; i < n; i++ {
		args := append([]string{"--database-url", dsn, "--cluster-name", name, "--cluster-provider", "automanaged",
			"--automanaged-listen", health[i], "--cluster-peers", strings.Join(health, ","),
			"--automanaged-refresh", "500ms"}, extra...)
		c.nodes = append(c.nodes, startNode(t, fmt.Sprintf("node-%d", i+1), args...))
	}
	return c
}

// startEtcdCluster starts n nodes with membership in a fresh etcd.
func startEtcdCluster(t *testing.T, dsn string, n int, extra ...string) *testCluster {
	t.Helper()
	endpoint := startEtcd(t)
	c := &testCluster{t: t}
	for i := 0; i < n; i++ {
		args := append([]string{"--database-url", dsn, "--cluster-name", "etcd-test", "--cluster-provider", "etcd",
			"--etcd-endpoints", endpoint}, extra...)
		c.nodes = append(c.nodes, startNode(t, fmt.Sprintf("node-%d", i+1), args...))
	}
	return c
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
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s", d, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
