package chatproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// NodeConfig configures StartNode. Only Binary is required.
type NodeConfig struct {
	// Binary is the chatd executable (see Build).
	Binary string
	// Name names the node in errors and logs. Empty means "chatd".
	Name string
	// Addr is the node's HTTP host:port. Empty means a free loopback port.
	// A restart keeps it, as a node behind a load balancer would.
	Addr string
	// Wrap, when set, is a command prefix the node runs under, e.g. `ip
	// netns exec NAME` (netlab.Lab.Exec): `<Wrap...> chatd --addr …`.
	Wrap []string
	// Args are chatd's flags; the node runs `chatd --addr <Addr> <Args...>`.
	// Status (and Hosted, Cluster.Hosts) need `--pprof`, which serves the
	// operator view GET /debug/cluster.
	Args []string
	// Env is the process's environment. Nil means this process's
	// environment with CHAT_DATABASE_URL emptied, so that only flags (and
	// the other CHAT_* variables) configure the node.
	Env []string
	// ReadyTimeout bounds the wait for GET /readyz to answer 200 at every
	// start. Zero means 30s.
	ReadyTimeout time.Duration
	// LogLimit bounds the output the node keeps in memory (about the last
	// LogLimit bytes; see Buffer). Zero means no limit.
	LogLimit int
	// LogTo, when not nil, also receives every line the node prints, from
	// every run, one Write per line, never concurrently.
	LogTo io.Writer
}

// Node is one chatd process, and its later runs after Kill or Stop and
// Restart. Its methods are safe for concurrent use.
type Node struct {
	cfg NodeConfig
	log *Buffer

	outMu sync.Mutex // serializes writes to log and cfg.LogTo

	mu  sync.Mutex
	run *run // the current or last run
}

// run is one process of a Node.
type run struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has ended and its output is read
	exit error         // cmd.Wait's answer, set before done is closed
}

func (r *run) ended() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// StartNode starts chatd and waits until GET /readyz answers 200 (or the
// process exits, or ReadyTimeout passes, or ctx ends: then the process is
// killed and the error carries the end of its output).
func StartNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	if cfg.Binary == "" {
		return nil, errors.New("start node: no chatd binary given")
	}
	if cfg.Name == "" {
		cfg.Name = "chatd"
	}
	if cfg.Addr == "" {
		addr, err := FreeAddr()
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", cfg.Name, err)
		}
		cfg.Addr = addr
	}
	if cfg.Env == nil {
		cfg.Env = append(os.Environ(), "CHAT_DATABASE_URL=")
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	n := &Node{cfg: cfg, log: NewBuffer(cfg.LogLimit)}
	if err := n.start(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Addr is the node's HTTP host:port.
func (n *Node) Addr() string { return n.cfg.Addr }

// URL is the node's WebSocket URL.
func (n *Node) URL() string { return "ws://" + n.cfg.Addr + "/ws/chat/" }

// Log is everything the node printed, over all its runs.
func (n *Node) Log() *Buffer { return n.log }

// Running reports whether the node's process is running.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.run != nil && !n.run.ended()
}

// Restart starts the node again, with the same arguments and HTTP address,
// and waits until it is ready, as StartNode does. The node must have ended
// (Kill, Stop).
func (n *Node) Restart(ctx context.Context) error { return n.start(ctx) }

// SetBinary makes the node's later runs (Restart) use another chatd
// executable, with the same arguments: a rolling upgrade's step.
func (n *Node) SetBinary(binary string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cfg.Binary = binary
}

// Binary is the executable of the node's current (or next) run.
func (n *Node) Binary() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cfg.Binary
}

func (n *Node) start(ctx context.Context) error {
	n.mu.Lock()
	if n.run != nil && !n.run.ended() {
		n.mu.Unlock()
		return fmt.Errorf("start %s: already running", n.cfg.Name)
	}
	argv := append(append(append([]string(nil), n.cfg.Wrap...), n.cfg.Binary, "--addr", n.cfg.Addr), n.cfg.Args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = n.cfg.Env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		n.mu.Unlock()
		return fmt.Errorf("start %s: %w", n.cfg.Name, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		n.mu.Unlock()
		return fmt.Errorf("start %s: %w", n.cfg.Name, err)
	}
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		return fmt.Errorf("start %s: %w", n.cfg.Name, err)
	}
	r := &run{cmd: cmd, done: make(chan struct{})}
	n.run = r
	n.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go n.readLines(r, stdout, &wg)
	go n.readLines(r, stderr, &wg)
	go func() {
		wg.Wait() // Wait closes the pipes: read them to the end first
		r.exit = cmd.Wait()
		close(r.done)
	}()
	return n.waitReady(ctx, r)
}

func (n *Node) waitReady(ctx context.Context, r *run) error {
	deadline := time.NewTimer(n.cfg.ReadyTimeout)
	defer deadline.Stop()
	for {
		if httpStatus("http://"+n.cfg.Addr+"/readyz") == 200 {
			return nil
		}
		select {
		case <-r.done:
			return fmt.Errorf("%s exited during start-up (%v):\n%s", n.cfg.Name, r.exit, n.tail())
		case <-deadline.C:
			n.kill(r)
			return fmt.Errorf("%s not ready within %v:\n%s", n.cfg.Name, n.cfg.ReadyTimeout, n.tail())
		case <-ctx.Done():
			n.kill(r)
			return fmt.Errorf("start %s: %w", n.cfg.Name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail is the end of the node's output, for error messages.
func (n *Node) tail() string {
	const max = 64 << 10
	s := n.log.String()
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}

func (n *Node) readLines(r *run, rd io.Reader, wg *sync.WaitGroup) {
	defer wg.Done()
	br := bufio.NewReaderSize(rd, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				line = append(line, '\n')
			}
			n.outMu.Lock()
			_, _ = n.log.Write(line)
			if n.cfg.LogTo != nil {
				_, _ = n.cfg.LogTo.Write(line)
			}
			n.outMu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// Kill sends SIGKILL and waits (at most 30s) until the process has ended.
// Killing a node that is not running does nothing.
func (n *Node) Kill() error {
	n.mu.Lock()
	r := n.run
	n.mu.Unlock()
	if r == nil {
		return nil
	}
	return n.kill(r)
}

func (n *Node) kill(r *run) error {
	if r.ended() {
		return nil
	}
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", n.cfg.Name, err)
	}
	select {
	case <-r.done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("kill %s: the process did not end within 30s of SIGKILL", n.cfg.Name)
	}
}

// Stop sends SIGTERM and waits up to timeout for the process to exit. An
// exit status other than 0 is an error; so is the timeout, after which the
// node is killed.
func (n *Node) Stop(timeout time.Duration) error {
	n.mu.Lock()
	r := n.run
	n.mu.Unlock()
	if r == nil || r.ended() {
		return fmt.Errorf("stop %s: not running", n.cfg.Name)
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", n.cfg.Name, err)
	}
	select {
	case <-r.done:
		if code := r.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("%s exited with %d after SIGTERM:\n%s", n.cfg.Name, code, n.tail())
		}
		return nil
	case <-time.After(timeout):
		_ = n.kill(r)
		return fmt.Errorf("%s did not stop within %v of SIGTERM", n.cfg.Name, timeout)
	}
}

// Status is what GET /debug/cluster answers (chatd's operator view; the
// node needs --pprof), in part: the node's view of the cluster and the
// grains it hosts.
type Status struct {
	Node          string   `json:"node"`
	Member        bool     `json:"member"`
	Members       []string `json:"members"`
	Conversations []int64  `json:"conversations"` // conversation grains active on the node, sorted
	InboxOwner    string   `json:"inbox_owner"`
	InboxActive   bool     `json:"inbox_active"`
	Sessions      int      `json:"sessions"`
}

// Status asks the node's current process for its operator view (bounded by
// 5 s and ctx). An error when the node is not running or does not answer.
func (n *Node) Status(ctx context.Context) (Status, error) {
	if !n.Running() {
		return Status{}, fmt.Errorf("%s is not running", n.cfg.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.cfg.Addr+"/debug/cluster", nil)
	if err != nil {
		return Status{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Status{}, fmt.Errorf("%s: status: %w", n.cfg.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Status{}, fmt.Errorf("%s: status: %s (is chatd running with --pprof?)", n.cfg.Name, resp.Status)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return Status{}, fmt.Errorf("%s: status: %w", n.cfg.Name, err)
	}
	return st, nil
}

// Hosted lists, in increasing order, the conversations whose grains the
// node's current process hosts (its Status); none when it does not answer.
func (n *Node) Hosted(ctx context.Context) []int64 {
	st, err := n.Status(ctx)
	if err != nil {
		return nil
	}
	return st.Conversations
}
