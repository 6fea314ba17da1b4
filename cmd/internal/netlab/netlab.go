// Package netlab builds a small network of Linux network namespaces for
// partition tests, with iproute2: one namespace per node, each with a veth
// pair into a bridge in the calling (root) namespace. The bridge holds the
// host's address on the lab's /24, which is where the nodes reach the host's
// services (through a Proxy) and where the host's clients come from. Cut and
// Heal add and remove blackhole routes between two nodes' namespaces: packets
// between them vanish (a connection attempt fails at once, an established
// connection's segments are dropped until its timeouts), while both keep
// talking to the host and its clients.
//
// It needs root (CAP_NET_ADMIN) and the ip command; Check says whether this
// machine has them.
package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Lab is a bridge and a namespace per node. Its methods are safe for
// concurrent use.
type Lab struct {
	id     string // short random id in every name
	prefix string // the lab's /24 without the last octet, e.g. "10.213.7"
	bridge string
	spaces []string // namespace names, one per node
	hostV  []string // host ends of the veth pairs

	mu  sync.Mutex
	cut map[[2]int]bool // blackholed node pairs (i < j)
}

// Check reports why netlab cannot run here (not root, no ip command), or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("netlab needs root (network namespaces and veth pairs)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("netlab needs the ip command (iproute2)")
	}
	return nil
}

// New builds a lab of n nodes. On error it removes what it built.
func New(ctx context.Context, n int) (*Lab, error) {
	if n < 1 || n > 250 {
		return nil, fmt.Errorf("netlab: %d nodes: 1 to 250", n)
	}
	if err := Check(); err != nil {
		return nil, err
	}
	routes, err := exec.CommandContext(ctx, "ip", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		return nil, fmt.Errorf("netlab: ip route: %w", err)
	}
	b := make([]byte, 4)
	var prefix string
	for range 20 { // a /24 in 10.200.0.0–10.249.255.0 that no route of this host mentions
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		prefix = fmt.Sprintf("10.%d.%d", 200+int(b[2])%50, b[3])
		if !strings.Contains(string(routes), prefix+".") {
			break
		}
	}
	id := hex.EncodeToString(b[:2])
	l := &Lab{id: id, prefix: prefix, bridge: "gcb" + id, cut: map[[2]int]bool{}}
	if err := l.build(ctx, n); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) build(ctx context.Context, n int) error {
	if err := ip(ctx, "", "link", "add", l.bridge, "type", "bridge"); err != nil {
		return err
	}
	if err := ip(ctx, "", "addr", "add", l.HostIP()+"/24", "dev", l.bridge); err != nil {
		return err
	}
	if err := ip(ctx, "", "link", "set", l.bridge, "up"); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("gc-%s-n%d", l.id, i+1)
		host, inner := fmt.Sprintf("gc%sh%d", l.id, i+1), fmt.Sprintf("gc%sn%d", l.id, i+1)
		if err := ip(ctx, "", "netns", "add", ns); err != nil {
			return err
		}
		l.spaces = append(l.spaces, ns)
		if err := ip(ctx, "", "link", "add", host, "type", "veth", "peer", "name", inner); err != nil {
			return err
		}
		l.hostV = append(l.hostV, host)
		steps := [][]string{
			{"", "link", "set", inner, "netns", ns},
			{"", "link", "set", host, "master", l.bridge},
			{"", "link", "set", host, "up"},
			{ns, "link", "set", "lo", "up"},
			{ns, "addr", "add", l.NodeIP(i) + "/24", "dev", inner},
			{ns, "link", "set", inner, "up"},
		}
		for _, s := range steps {
			if err := ip(ctx, s[0], s[1:]...); err != nil {
				return err
			}
		}
	}
	return nil
}

// HostIP is the host's address on the lab's network (the bridge's).
func (l *Lab) HostIP() string { return l.prefix + ".254" }

// NodeIP is node i's address (i from 0).
func (l *Lab) NodeIP(i int) string { return fmt.Sprintf("%s.%d", l.prefix, i+1) }

// Nodes is how many nodes the lab has.
func (l *Lab) Nodes() int { return len(l.spaces) }

// Namespace is node i's network namespace.
func (l *Lab) Namespace(i int) string { return l.spaces[i] }

// Exec is the command prefix that runs a program in node i's namespace.
func (l *Lab) Exec(i int) []string { return []string{"ip", "netns", "exec", l.spaces[i]} }

// Cut blackholes the traffic between nodes i and j, both ways.
func (l *Lab) Cut(ctx context.Context, i, j int) error { return l.route(ctx, i, j, "add") }

// Heal undoes Cut.
func (l *Lab) Heal(ctx context.Context, i, j int) error { return l.route(ctx, i, j, "del") }

func (l *Lab) route(ctx context.Context, i, j int, op string) error {
	if i == j {
		return nil
	}
	key := [2]int{min(i, j), max(i, j)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut[key] == (op == "add") {
		return nil // already so
	}
	if err := ip(ctx, l.spaces[i], "route", op, "blackhole", l.NodeIP(j)+"/32"); err != nil {
		return err
	}
	if err := ip(ctx, l.spaces[j], "route", op, "blackhole", l.NodeIP(i)+"/32"); err != nil {
		return err
	}
	l.cut[key] = op == "add"
	return nil
}

// Isolate cuts node i from every other node (not from the host).
func (l *Lab) Isolate(ctx context.Context, i int) error {
	for j := range l.spaces {
		if err := l.Cut(ctx, i, j); err != nil {
			return err
		}
	}
	return nil
}

// Rejoin heals every cut of node i.
func (l *Lab) Rejoin(ctx context.Context, i int) error {
	for j := range l.spaces {
		if err := l.Heal(ctx, i, j); err != nil {
			return err
		}
	}
	return nil
}

// Close removes the namespaces (with their veth ends) and the bridge. The
// processes still running in a namespace keep it until they exit: stop them
// first.
func (l *Lab) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, ns := range l.spaces {
		errs = append(errs, ip(ctx, "", "netns", "del", ns))
	}
	for _, h := range l.hostV {
		// A veth pair goes with its inner end's namespace, which the
		// kernel frees a moment after `ip netns del` (or once the last
		// process in it exits): already gone, or going, is fine.
		if err := ip(ctx, "", "link", "del", h); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			errs = append(errs, err)
		}
	}
	if l.bridge != "" && exec.CommandContext(ctx, "ip", "link", "show", l.bridge).Run() == nil {
		errs = append(errs, ip(ctx, "", "link", "del", l.bridge))
	}
	l.spaces, l.hostV = nil, nil
	return errors.Join(errs...)
}

// ip runs `ip [-n ns] args...`.
func ip(ctx context.Context, ns string, args ...string) error {
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netlab: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Do runs f on a thread of this process that is in node i's namespace:
// sockets f opens (listeners, dials) belong to that namespace and stay there
// after Do returns. It is for tests that play a node without a process.
func (l *Lab) Do(i int, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it ends with the goroutine, so
		// that no other goroutine runs in the namespace afterwards.
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+l.spaces[i], unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netlab: open namespace %s: %w", l.spaces[i], err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netlab: enter namespace %s: %w", l.spaces[i], err)
			return
		}
		errc <- f()
	}()
	return <-errc
}
