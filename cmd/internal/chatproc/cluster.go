package chatproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/netlab"
)

// ClusterConfig configures StartCluster.
type ClusterConfig struct {
	// Node is the template of every node: Binary is required; Name and
	// Addr are set per node (node-1, node-2, …; free loopback ports); Args
	// come first on every node's command line.
	Node NodeConfig
	// Provider is the membership provider: "automanaged" or "etcd".
	Provider string
	// Nodes is how many nodes to start, one after the other.
	Nodes int
	// DatabaseURL is the PostgreSQL database every node shares.
	DatabaseURL string
	// Name is the cluster name. Empty means "<provider>-<unix nanoseconds>".
	Name string
	// ExtraArgs come last on every node's command line, after the
	// membership flags, which they may override.
	ExtraArgs []string
	// AutomanagedRefresh is the automanaged peers' poll interval
	// (--automanaged-refresh). Zero means 500ms.
	AutomanagedRefresh time.Duration
	// EtcdEndpoint is the etcd the nodes register in. Empty means a
	// throwaway etcd (StartEtcd), stopped by Close.
	EtcdEndpoint string
	// Lab, when set, runs node i in the lab's namespace i, on the lab's
	// address for it (HTTP on port 8080, cluster port 9090, automanaged
	// health on 6330): tests cut the nodes apart with Lab.Cut. DatabaseURL
	// and EtcdEndpoint must then be reachable from the namespaces (a
	// netlab.Proxy on Lab.HostIP), and EtcdEndpoint must be set for etcd.
	Lab *netlab.Lab
	// LogDir, when set, receives each node's output, over all its runs, in
	// <LogDir>/<node name>.log (appended to), besides Node.Log; it
	// replaces Node.LogTo.
	LogDir string

	// freeAddr picks the automanaged health addresses; nil means FreeAddr.
	// Tests hand out a taken address with it.
	freeAddr func() (string, error)
}

// Cluster is a set of chatd nodes sharing a database and a membership.
type Cluster struct {
	// Nodes are the cluster's nodes, in start order.
	Nodes []*Node
	etcd  *Etcd      // started by StartCluster, stopped by Close
	logs  []*os.File // closed by Close
}

// StartCluster starts the nodes one after the other, each ready before the
// next starts. On error it stops what it started.
//
// The nodes' ports are picked free (FreePort) before the first node starts,
// and the last node binds its own a few seconds later: another process may
// take one meanwhile (seen with two test suites and two test loops on one
// machine). A node that exits during start-up because its address is in use
// makes StartCluster stop the nodes it started (gracefully: they leave the
// membership) and start the cluster again on fresh ports, three times at
// most.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	for attempt := 1; ; attempt++ {
		c, err := startCluster(ctx, cfg)
		if err == nil || attempt == 3 || cfg.Lab != nil || !strings.Contains(err.Error(), "address already in use") {
			return c, err
		}
	}
}

func startCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Nodes < 1 {
		return nil, errors.New("start cluster: at least one node")
	}
	if cfg.DatabaseURL == "" {
		return nil, errors.New("start cluster: a cluster needs a shared PostgreSQL database")
	}
	if cfg.Name == "" {
		cfg.Name = fmt.Sprintf("%s-%d", cfg.Provider, time.Now().UnixNano())
	}
	if cfg.AutomanagedRefresh <= 0 {
		cfg.AutomanagedRefresh = 500 * time.Millisecond
	}
	if cfg.freeAddr == nil {
		cfg.freeAddr = FreeAddr
	}
	c := &Cluster{}
	var membership func(i int) []string
	switch cfg.Provider {
	case "automanaged":
		health := make([]string, cfg.Nodes)
		for i := range health {
			if cfg.Lab != nil {
				health[i] = net.JoinHostPort(cfg.Lab.NodeIP(i), "6330")
				continue
			}
			addr, err := cfg.freeAddr()
			if err != nil {
				return nil, fmt.Errorf("start cluster: %w", err)
			}
			health[i] = addr
		}
		membership = func(i int) []string {
			return []string{"--cluster-provider", "automanaged", "--automanaged-listen", health[i],
				"--cluster-peers", strings.Join(health, ","), "--automanaged-refresh", cfg.AutomanagedRefresh.String()}
		}
	case "etcd":
		endpoint := cfg.EtcdEndpoint
		if endpoint == "" && cfg.Lab != nil {
			return nil, errors.New("start cluster: in a netlab, etcd membership needs an EtcdEndpoint the namespaces reach")
		}
		if endpoint == "" {
			e, err := StartEtcd(ctx, EtcdConfig{})
			if err != nil {
				return nil, fmt.Errorf("start cluster: %w", err)
			}
			c.etcd = e
			endpoint = e.Endpoint()
		}
		membership = func(int) []string {
			return []string{"--cluster-provider", "etcd", "--etcd-endpoints", endpoint}
		}
	default:
		return nil, fmt.Errorf("start cluster: unknown provider %q (automanaged or etcd)", cfg.Provider)
	}
	for i := 0; i < cfg.Nodes; i++ {
		nc := cfg.Node
		nc.Name = fmt.Sprintf("node-%d", i+1)
		nc.Addr = ""
		if cfg.LogDir != "" {
			f, err := os.OpenFile(filepath.Join(cfg.LogDir, nc.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("start cluster: %w", err)
			}
			c.logs = append(c.logs, f)
			nc.LogTo = f
		}
		nc.Args = append(append([]string(nil), cfg.Node.Args...), "--database-url", cfg.DatabaseURL, "--cluster-name", cfg.Name)
		if cfg.Lab != nil {
			if i >= cfg.Lab.Nodes() {
				c.Close()
				return nil, fmt.Errorf("start cluster: %d nodes in a lab of %d", cfg.Nodes, cfg.Lab.Nodes())
			}
			nc.Wrap = cfg.Lab.Exec(i)
			nc.Addr = net.JoinHostPort(cfg.Lab.NodeIP(i), "8080")
			nc.Args = append(nc.Args, "--cluster-host", cfg.Lab.NodeIP(i), "--cluster-port", "9090")
		}
		nc.Args = append(append(nc.Args, membership(i)...), cfg.ExtraArgs...)
		n, err := StartNode(ctx, nc)
		if err != nil {
			for _, started := range c.Nodes {
				_ = started.Stop(10 * time.Second) // deregister (etcd): a retry must not see them
			}
			c.Close()
			return nil, fmt.Errorf("start cluster: %w", err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	return c, nil
}

// URLs are the nodes' WebSocket URLs, in node order.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.URL()
	}
	return out
}

// Hosts lists the nodes whose current process hosts the grain of conv
// (their Status), in the cluster's order. Right after a membership change
// two nodes may both host it for a while.
func (c *Cluster) Hosts(ctx context.Context, conv int64) []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if slices.Contains(n.Hosted(ctx), conv) {
			out = append(out, n)
		}
	}
	return out
}

// Close kills every node and stops the etcd StartCluster started. The first
// error is returned; every node is killed regardless.
func (c *Cluster) Close() error {
	var first error
	for _, n := range c.Nodes {
		if err := n.Kill(); err != nil && first == nil {
			first = err
		}
	}
	if c.etcd != nil {
		c.etcd.Stop()
		c.etcd = nil
	}
	for _, f := range c.logs {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.logs = nil
	return first
}
