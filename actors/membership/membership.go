// Package membership builds the cluster membership providers chatd supports:
//
//   - Single: one node; membership is in-process (protoactor's in-memory
//     provider). The default.
//   - Automanaged: a static list of peers that poll each other's health
//     endpoint (protoactor's automanaged provider). The library binds that
//     endpoint to all interfaces; grainchat binds it to the address it is
//     given instead.
//   - Etcd: membership held in etcd with a lease per node (protoactor's etcd
//     provider, carried in ./etcd with a configurable lease, the removal of
//     a member whose process died as soon as its connection breaks, and
//     re-registration of a member whose key was lost).
package membership

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	clustertest "github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/grainchat/grainchat/actors/membership/etcd"
	"github.com/labstack/echo"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Single returns the provider of a one-node cluster.
func Single() cluster.ClusterProvider {
	return clustertest.NewTestProvider(clustertest.NewInMemAgent())
}

// AutomanagedConfig configures Automanaged.
type AutomanagedConfig struct {
	// Listen is the host:port of this node's health endpoint, which the
	// peers poll. Required.
	Listen string
	// Peers are the health endpoints (host:port) of every node, this one
	// included. Required.
	Peers []string
	// Refresh is how often the peers are polled; a node that does not
	// answer a poll leaves the cluster. Zero means 1s.
	Refresh time.Duration
}

// Automanaged is protoactor's automanaged provider with its health endpoint
// bound to AutomanagedConfig.Listen.
type Automanaged struct {
	*automanaged.AutoManagedProvider
	cluster atomic.Pointer[cluster.Cluster]
	port    int

	topologyLog
}

// NewAutomanaged binds the health endpoint (so a taken port fails here) and
// returns the provider.
func NewAutomanaged(cfg AutomanagedConfig) (*Automanaged, error) {
	if len(cfg.Peers) == 0 {
		return nil, errors.New("automanaged: no peers configured")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Second
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("automanaged: listen: %w", err)
	}
	a := &Automanaged{port: ln.Addr().(*net.TCPAddr).Port}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Listener = ln // the library would listen on 0.0.0.0
	e.GET("/_health", func(ec echo.Context) error {
		c := a.cluster.Load()
		if c == nil {
			return ec.NoContent(http.StatusServiceUnavailable)
		}
		host, port, err := c.ActorSystem.GetHostPort()
		if err != nil {
			return ec.NoContent(http.StatusServiceUnavailable)
		}
		return ec.JSON(http.StatusOK, automanaged.NewNode(c.Config.Name, c.ActorSystem.ID, host, port, a.port, c.GetClusterKinds()))
	})
	a.AutoManagedProvider = automanaged.NewWithTesting(cfg.Refresh, a.port, e, cfg.Peers...)
	return a, nil
}

// StartMember implements cluster.ClusterProvider. With a logger from Logs,
// it logs the members that join and leave (see logTopology).
func (a *Automanaged) StartMember(c *cluster.Cluster) error {
	a.cluster.Store(c)
	a.topologyLog.start(c)
	return a.AutoManagedProvider.StartMember(c)
}

// Shutdown implements cluster.ClusterProvider: the node leaves; what the
// library logs about its own endpoint stopping from now on is expected.
func (a *Automanaged) Shutdown(graceful bool) error {
	a.topologyLog.stop()
	return a.AutoManagedProvider.Shutdown(graceful)
}

// EtcdConfig configures Etcd.
type EtcdConfig struct {
	// Endpoints of the etcd cluster. Required.
	Endpoints []string
	// Prefix of the keys the members are registered under. Zero means "/grainchat".
	Prefix string
	// DialTimeout bounds connecting to etcd. Zero means 5s.
	DialTimeout time.Duration
	// LeaseTTL is each member's lease (etcd.Config.LeaseTTL: whole
	// seconds; etcd raises it to its minimum, 2s with its defaults). Zero
	// means 3s.
	LeaseTTL time.Duration
	// ProbeTimeout bounds the dial that checks a member whose connection
	// broke; refused removes it at once (etcd.Config.ProbeTimeout). Zero
	// means 500ms; negative turns the check off.
	ProbeTimeout time.Duration
}

// Etcd is grainchat's etcd provider (package etcd), which logs membership
// changes when set up by Logs.
type Etcd struct {
	*etcd.Provider
	topologyLog
}

// StartMember implements cluster.ClusterProvider.
func (e *Etcd) StartMember(c *cluster.Cluster) error {
	if l := e.topologyLog.log.Load(); l != nil {
		e.Provider.SetLogger(l)
	}
	e.topologyLog.start(c)
	return e.Provider.StartMember(c)
}

// Shutdown implements cluster.ClusterProvider.
func (e *Etcd) Shutdown(graceful bool) error {
	e.topologyLog.stop()
	return e.Provider.Shutdown(graceful)
}

// NewEtcd returns the etcd provider.
func NewEtcd(cfg EtcdConfig) (*Etcd, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints configured")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/grainchat"
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	p, err := etcd.New(etcd.Config{
		Prefix: strings.TrimSuffix(cfg.Prefix, "/"),
		Client: clientv3.Config{
			Endpoints:   cfg.Endpoints,
			DialTimeout: cfg.DialTimeout,
		},
		LeaseTTL:     cfg.LeaseTTL,
		ProbeTimeout: cfg.ProbeTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	return &Etcd{Provider: p}, nil
}
