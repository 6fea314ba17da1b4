package chatproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// EtcdConfig configures StartEtcd. The zero value is usable.
type EtcdConfig struct {
	// Binary is the etcd executable. Empty means "etcd" from PATH.
	Binary string
	// Dir is the data directory. Empty means a new temporary directory,
	// removed by Stop.
	Dir string
	// StartTimeout bounds the wait for /health. Zero means 20s.
	StartTimeout time.Duration
}

// Etcd is a throwaway single-member etcd on loopback ports.
type Etcd struct {
	cmd      *exec.Cmd
	endpoint string
	out      *Buffer
	done     chan struct{}
	tempDir  string // removed by Stop
}

// ErrEtcdNotInstalled is StartEtcd's error (possibly wrapped) when no
// Binary is given and there is no etcd on PATH. Tests skip on it locally and
// fail under CI=true (cmd/internal/prereq); programs report it.
var ErrEtcdNotInstalled = errors.New("etcd is not installed: apt-get install etcd-server (or make deps)")

// StartEtcd starts etcd and waits until its /health answers 200.
func StartEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("etcd"); err != nil {
			return nil, ErrEtcdNotInstalled
		}
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 20 * time.Second
	}
	e := &Etcd{out: NewBuffer(1 << 20), done: make(chan struct{})}
	dir := cfg.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "grainchat-etcd-"); err != nil {
			return nil, fmt.Errorf("start etcd: %w", err)
		}
		e.tempDir = dir
	}
	client, err := FreePort()
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	peer, err := FreePort()
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	e.endpoint = fmt.Sprintf("127.0.0.1:%d", client)
	e.cmd = exec.Command(bin, "--name", "test", "--data-dir", dir,
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "test="+peerURL, "--log-level", "error")
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	if err := e.cmd.Start(); err != nil {
		e.removeDir()
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	go func() { _ = e.cmd.Wait(); close(e.done) }()
	deadline := time.NewTimer(cfg.StartTimeout)
	defer deadline.Stop()
	for httpStatus(clientURL+"/health") != 200 {
		var err error
		select {
		case <-e.done:
			err = fmt.Errorf("etcd exited during start-up:\n%s", e.out.String())
		case <-deadline.C:
			err = fmt.Errorf("etcd did not start within %v:\n%s", cfg.StartTimeout, e.out.String())
		case <-ctx.Done():
			err = fmt.Errorf("start etcd: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if err != nil {
			e.Stop()
			return nil, err
		}
	}
	return e, nil
}

// Endpoint is etcd's client host:port, for chatd's --etcd-endpoints.
func (e *Etcd) Endpoint() string { return e.endpoint }

// Stop kills etcd, waits (at most 10s) until it has ended and removes its
// temporary data directory. Calling it again does nothing.
func (e *Etcd) Stop() {
	_ = e.cmd.Process.Kill()
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
	}
	e.removeDir()
}

func (e *Etcd) removeDir() {
	if e.tempDir != "" {
		_ = os.RemoveAll(e.tempDir)
		e.tempDir = ""
	}
}
