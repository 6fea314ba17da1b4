// Package chatproc runs real chatd processes on loopback: it builds (or takes)
// the chatd binary, starts nodes and waits until they are ready, kills,
// stops and restarts them on the same HTTP address, keeps their output and
// follows which conversation grains each one hosts, and starts clusters of
// several nodes with automanaged or etcd membership (with a throwaway etcd).
//
// The multi-process tests of cmd/chatd and the failover program
// cmd/chatchaos use it. Every call that can fail returns an error; nothing
// here knows about testing.T. Every wait is bounded.
package chatproc

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Package is the import path of the chatd command, as Build compiles it.
const Package = "github.com/grainchat/grainchat/cmd/chatd"

// Build compiles chatd with `go build` into dir and returns the binary's
// path. The go command finds the grainchat module from the working
// directory, so Build works only inside the module's tree.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "chatd")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, Package).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", Package, err, out)
	}
	return bin, nil
}

// Migrate applies the database migrations with `chatd migrate`.
func Migrate(ctx context.Context, binary, databaseURL string) error {
	cmd := exec.CommandContext(ctx, binary, "migrate", "--database-url", databaseURL)
	cmd.Env = append(os.Environ(), "CHAT_DATABASE_URL=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("chatd migrate: %v\n%s", err, out)
	}
	return nil
}

// FreePort returns a loopback TCP port that was free a moment ago. It is
// picked at random below the kernel's ephemeral range (ports it hands out for
// port 0 and outgoing connections), so that between this call and the bind
// of whoever uses the port, no process binding port 0 can take it: a chatd
// binds its cluster port 0 while its peers' health and HTTP ports are
// reserved. (Ports from port 0 collided with those now and then: "address
// already in use", a peer's health poll answered by gRPC.) When the
// ephemeral range starts too low to leave room, it falls back to port 0.
func FreePort() (int, error) {
	lo, hi := 20000, ephemeralLow()
	for range 200 {
		if hi-lo < 1000 {
			break
		}
		p := lo + mrand.IntN(hi-lo)
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			ln.Close()
			return p, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux:
// /proc/sys/net/ipv4/ip_local_port_range; 32768 when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// FreeAddr returns "127.0.0.1:<port>" for a port that was free a moment ago.
func FreeAddr() (string, error) {
	p, err := FreePort()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", p), nil
}

// WaitFor polls cond every 50ms until it holds, timeout passes (an error
// naming what) or ctx ends (ctx's error).
func WaitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// httpStatus returns the status of GET url, 0 when there is no answer.
func httpStatus(url string) int {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
