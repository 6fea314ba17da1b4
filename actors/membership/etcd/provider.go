// Derived from protoactor-go's cluster/clusterproviders/etcd/etcd_provider.go
// (github.com/asynkron/protoactor-go v0.0.0-20240822202345-3c0e61ca19c9),
// Copyright Asynkron AB, Apache License 2.0 (LICENSE in this directory).
//
// Package etcd is protoactor's etcd cluster provider, changed for grainchat
// (issue 18: a SIGKILLed node took 3.4–4.9 s to be replaced with etcd
// membership, 1.6 s with automanaged). What changed, and why:
//
//   - The lease TTL is Config.LeaseTTL; upstream hard-codes 3 s in a private
//     field. A member whose process dies stays registered until its lease
//     expires: up to the TTL after its last renewal (renewals every TTL/3),
//     plus etcd's expiry sweep (every 500 ms).
//   - A member whose process died is removed at once, without waiting for its
//     lease: when this node's connection to a member breaks (protoactor's
//     remote publishes remote.EndpointTerminatedEvent), the provider dials
//     the member's cluster port (Config.ProbeTimeout). Connection refused
//     means nothing listens there any more (the process is gone, its kernel
//     answers for it): the provider deletes the member's key, if it is still
//     the registration it saw (a transaction on its mod revision), and every
//     node drops the member from the watch event. A dial that connects (five
//     times over a second: a killed process's listener closes a moment
//     after its connections broke) or times out (a paused process still accepts; a dead host or a partition
//     does not answer) changes nothing, and the lease decides.
//   - A member whose own key disappears (its lease expired during a pause or
//     while etcd was unreachable, or another node deleted it) registers
//     again, under a new member id "<cluster>@<actor system id>.<n>": the
//     library blocks the id of every member that left, forever, so upstream
//     re-registered under the old id and stayed out of the others' topology.
//     Upstream also dropped itself from its own topology on such a delete
//     and never came back.
//   - One lease per registration (upstream granted two, and kept the
//     second), kept alive by one goroutine; the watch starts at the revision
//     of the initial read (upstream could miss changes in between), reads the
//     members again after a watch error, and state shared between goroutines
//     is under a mutex (upstream's was not).
//   - Shutdown stops the provider's goroutines and closes its client.
//
// Keys and values are upstream's: <prefix>/<cluster name>/<member id> holds
// the member as JSON (node).
package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Defaults of Config.
const (
	// DefaultLeaseTTL is upstream's lease: a member whose host vanishes (no
	// process left to refuse the probe) leaves within about this long.
	DefaultLeaseTTL = 3 * time.Second
	// DefaultProbeTimeout bounds the dial that checks a member whose
	// connection broke.
	DefaultProbeTimeout = 500 * time.Millisecond
)

const (
	retryInterval  = time.Second     // between failed registrations or watches
	requestTimeout = 5 * time.Second // one etcd request
)

// Config configures New.
type Config struct {
	// Prefix is the key prefix: members register under
	// <Prefix>/<cluster name>/<member id>. Zero means "/protoactor",
	// upstream's.
	Prefix string
	// Client configures the etcd client (Endpoints, DialTimeout, …).
	Client clientv3.Config
	// LeaseTTL is how long a member's registration outlives its last
	// renewal (renewed every LeaseTTL/3), so how long a member whose host
	// vanished stays, and how long a pause (GC, CPU starvation, a slow or
	// unreachable etcd) may last before a live member's registration
	// expires (it then registers again: see the package comment). Rounded up
	// to whole seconds; etcd raises a TTL below its minimum (1.5 × its
	// election timeout, rounded up: 2 s with etcd's defaults) to that
	// minimum. Zero means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// ProbeTimeout bounds the dial of a member whose connection broke; a
	// refused dial removes the member at once. Zero means
	// DefaultProbeTimeout; negative turns the probe off (only an expired
	// lease removes a member, as upstream).
	ProbeTimeout time.Duration
	// Logger receives what the provider logs: registrations, removals,
	// failures. Nil means the cluster's logger.
	Logger *slog.Logger
}

// Provider is a cluster.ClusterProvider keeping the membership in etcd.
// Build it with New; a Provider serves one cluster, once.
type Provider struct {
	cfg    Config
	client *clientv3.Client

	// Set by start, read-only after.
	cluster *cluster.Cluster
	logger  *slog.Logger
	prefix  string // <Prefix>/<cluster name>/
	baseID  string // <cluster name>@<actor system id>
	ctx     context.Context
	cancel  context.CancelFunc
	sub     *eventstream.Subscription

	wg       sync.WaitGroup
	lost     chan struct{} // own registration deleted (capacity 1)
	suspects chan string   // addresses whose connection broke

	mu      sync.Mutex
	self    *node              // nil: a client
	gen     int                // registrations after the first
	lease   clientv3.LeaseID   // of self's key
	members map[string]*member // by member id, self included
	stopped bool
	err     error // the latest watch failure, nil once it recovers
}

// member is a registration seen in etcd.
type member struct {
	node *node
	rev  int64 // mod revision of its key
}

var _ cluster.ClusterProvider = (*Provider)(nil)

// New connects to etcd (clientv3.New: it does not wait for etcd to answer).
func New(cfg Config) (*Provider, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "/protoactor"
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.ProbeTimeout == 0 {
		cfg.ProbeTimeout = DefaultProbeTimeout
	}
	client, err := clientv3.New(cfg.Client)
	if err != nil {
		return nil, err
	}
	return &Provider{cfg: cfg, client: client, lost: make(chan struct{}, 1),
		suspects: make(chan string, 64), members: map[string]*member{}}, nil
}

// LeaseSeconds is the TTL New asks etcd for: Config.LeaseTTL rounded up
// to whole seconds.
func LeaseSeconds(ttl time.Duration) int64 {
	return max(int64((ttl+time.Second-1)/time.Second), 1)
}

// StartMember implements cluster.ClusterProvider: it reads the members,
// registers this node and publishes the topology, then follows etcd.
func (p *Provider) StartMember(c *cluster.Cluster) error {
	if err := p.start(c); err != nil {
		return err
	}
	host, port, err := splitHostPort(c.ActorSystem.Address())
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.self = newNode(p.baseID, host, port, c.GetClusterKinds())
	p.mu.Unlock()
	rev, err := p.resync()
	if err != nil {
		return err
	}
	if err := p.register(false); err != nil {
		return err
	}
	p.follow(rev)
	p.wg.Add(1)
	go p.keepRegistered()
	return nil
}

// StartClient implements cluster.ClusterProvider: it follows the members
// without registering.
func (p *Provider) StartClient(c *cluster.Cluster) error {
	if err := p.start(c); err != nil {
		return err
	}
	rev, err := p.resync()
	if err != nil {
		return err
	}
	p.follow(rev)
	return nil
}

func (p *Provider) start(c *cluster.Cluster) error {
	if p.cluster != nil {
		return errors.New("etcd provider: already started")
	}
	p.cluster = c
	p.logger = p.cfg.Logger
	if p.logger == nil {
		p.logger = c.Logger()
	}
	p.prefix = strings.TrimSuffix(p.cfg.Prefix, "/") + "/" + c.Config.Name + "/"
	p.baseID = c.Config.Name + "@" + c.ActorSystem.ID
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return nil
}

// follow starts watching etcd from rev on and, unless the probe is off,
// checking the members whose connection breaks.
func (p *Provider) follow(rev int64) {
	p.wg.Add(1)
	go p.watch(rev)
	if p.cfg.ProbeTimeout > 0 {
		// The handler runs on the publisher's goroutine, possibly under the
		// library's member-list lock (a member leaving is announced this
		// way too): it only hands the address over.
		p.sub = p.cluster.ActorSystem.EventStream.Subscribe(func(evt any) {
			if e, ok := evt.(*remote.EndpointTerminatedEvent); ok {
				select {
				case p.suspects <- e.Address:
				default: // full: the lease will do
				}
			}
		})
		p.wg.Add(1)
		go p.probeLoop()
	}
}

// Shutdown implements cluster.ClusterProvider: it stops following etcd
// and deletes this node's registration (graceful or not: the node is
// leaving either way).
func (p *Provider) Shutdown(graceful bool) error {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	p.mu.Unlock()
	if p.cluster == nil { // never started
		return p.client.Close()
	}
	if p.sub != nil {
		p.cluster.ActorSystem.EventStream.Unsubscribe(p.sub)
	}
	p.cancel()
	p.wg.Wait() // no registration changes after this
	p.mu.Lock()
	self, lease := p.self, p.lease
	p.mu.Unlock()
	var err error
	if self != nil {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		if _, err = p.client.Delete(ctx, p.key(self.ID)); err != nil {
			err = fmt.Errorf("etcd: deregister: %w", err)
			p.logger.Error("etcd: deregister", slog.Any("err", err))
		}
		if lease != 0 {
			_, _ = p.client.Revoke(ctx, lease)
		}
		cancel()
	}
	_ = p.client.Close()
	return err
}

// GetHealthStatus returns the latest failure to watch etcd, nil once the
// watch runs again.
func (p *Provider) GetHealthStatus() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// SetLogger replaces Config.Logger; call it before StartMember.
func (p *Provider) SetLogger(l *slog.Logger) { p.cfg.Logger = l }

func (p *Provider) key(id string) string { return p.prefix + id }

// register puts this node's key under a new lease; with newID, under a new
// member id (the old one may be blocked by the others: see the package
// comment), which it publishes in its own topology.
func (p *Provider) register(newID bool) error {
	p.mu.Lock()
	self := *p.self
	if newID {
		p.gen++
		self.ID = p.baseID + "." + strconv.Itoa(p.gen)
		self.Name = self.ID
	}
	p.mu.Unlock()
	data, err := self.serialize()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(p.ctx, requestTimeout)
	defer cancel()
	grant, err := p.client.Grant(ctx, LeaseSeconds(p.cfg.LeaseTTL))
	if err != nil {
		return fmt.Errorf("etcd: grant lease: %w", err)
	}
	if _, err := p.client.Put(ctx, p.key(self.ID), string(data), clientv3.WithLease(grant.ID)); err != nil {
		_, _ = p.client.Revoke(ctx, grant.ID)
		return fmt.Errorf("etcd: register: %w", err)
	}
	p.mu.Lock()
	old, oldLease := p.self, p.lease
	p.self, p.lease = &self, grant.ID
	delete(p.members, old.ID)
	p.members[self.ID] = &member{node: &self}
	select {
	case <-p.lost: // about the registration replaced
	default:
	}
	if newID {
		p.publishLocked()
	}
	p.mu.Unlock()
	if oldLease != 0 {
		_, _ = p.client.Revoke(ctx, oldLease) // its key is gone; stop it
	}
	p.logger.Info("etcd: registered", slog.String("member", self.ID), slog.String("address", self.addr()),
		slog.Int64("lease_ttl_s", grant.TTL))
	return nil
}

// keepRegistered keeps this node's lease alive and registers again when
// the registration is lost (lease expired, key deleted).
func (p *Provider) keepRegistered() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		lease, id := p.lease, p.self.ID
		p.mu.Unlock()
		why := p.keepAlive(lease)
		if p.ctx.Err() != nil {
			return
		}
		p.logger.Warn("etcd: this node's registration was lost; registering again under a new member id",
			slog.String("member", id), slog.String("reason", why))
		for {
			err := p.register(true)
			if err == nil {
				break
			}
			p.logger.Warn("etcd: register again", slog.Any("err", err), slog.Duration("retry_in", retryInterval))
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(retryInterval):
			}
		}
	}
}

// keepAlive renews lease until it is lost or this node's key is deleted,
// and says which; "" when the provider stops.
func (p *Provider) keepAlive(lease clientv3.LeaseID) string {
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	ch, err := p.client.KeepAlive(ctx, lease)
	if err != nil {
		return "keepalive: " + err.Error()
	}
	for {
		select {
		case resp, ok := <-ch:
			if !ok || resp == nil {
				return "the lease expired or etcd did not answer within its TTL"
			}
		case <-p.lost:
			return "its key was deleted"
		case <-p.ctx.Done():
			return ""
		}
	}
}

// resync reads every member, replaces the known ones (self kept) and
// publishes the topology; it returns the revision read.
func (p *Provider) resync() (int64, error) {
	ctx, cancel := context.WithTimeout(p.ctx, requestTimeout)
	defer cancel()
	resp, err := p.client.Get(ctx, p.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("etcd: read members: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	members := map[string]*member{}
	selfSeen := false
	for _, kv := range resp.Kvs {
		id, ok := p.memberID(kv.Key)
		if !ok {
			continue
		}
		if p.self != nil && id == p.self.ID {
			selfSeen = true
			continue
		}
		n, err := parseNode(kv.Value)
		if err != nil {
			p.logger.Error("etcd: invalid member", slog.String("key", string(kv.Key)), slog.Any("err", err))
			continue
		}
		members[id] = &member{node: n, rev: kv.ModRevision}
	}
	if p.self != nil {
		members[p.self.ID] = &member{node: p.self}
		if !selfSeen && p.lease != 0 {
			p.signalLost()
		}
	}
	p.members = members
	p.publishLocked()
	return resp.Header.Revision, nil
}

// watch applies etcd's changes from rev on; after a failure it reads every
// member again and watches from there.
func (p *Provider) watch(rev int64) {
	defer p.wg.Done()
	for {
		wch := p.client.Watch(clientv3.WithRequireLeader(p.ctx), p.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		var werr error
		for resp := range wch {
			if werr = resp.Err(); werr != nil {
				break
			}
			p.apply(resp.Events)
		}
		// Whatever ended the watch, the members are read again below and
		// the next watch starts from that read's revision.
		for {
			if p.ctx.Err() != nil {
				return
			}
			if werr == nil {
				werr = errors.New("watch ended")
			}
			p.logger.Warn("etcd: watch failed; reading the members again", slog.Any("err", werr))
			p.mu.Lock()
			p.err = werr
			p.mu.Unlock()
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(retryInterval):
			}
			var err error
			if rev, err = p.resync(); err == nil {
				p.mu.Lock()
				p.err = nil
				p.mu.Unlock()
				break
			}
			werr = err
		}
	}
}

// apply applies watch events and publishes the topology if it changed.
func (p *Provider) apply(events []*clientv3.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	changed := false
	for _, ev := range events {
		id, ok := p.memberID(ev.Kv.Key)
		if !ok {
			continue
		}
		self := p.self != nil && id == p.self.ID
		switch ev.Type {
		case clientv3.EventTypePut:
			if self {
				continue
			}
			n, err := parseNode(ev.Kv.Value)
			if err != nil {
				p.logger.Error("etcd: invalid member", slog.String("key", string(ev.Kv.Key)), slog.Any("err", err))
				continue
			}
			p.members[id] = &member{node: n, rev: ev.Kv.ModRevision}
			changed = true
		case clientv3.EventTypeDelete:
			if self {
				p.signalLost()
				continue
			}
			if _, ok := p.members[id]; ok {
				delete(p.members, id)
				changed = true
			}
		}
	}
	if changed {
		p.publishLocked()
	}
}

func (p *Provider) signalLost() {
	select {
	case p.lost <- struct{}{}:
	default:
	}
}

// memberID is the member id of a key under the prefix.
func (p *Provider) memberID(key []byte) (string, bool) {
	id, ok := strings.CutPrefix(string(key), p.prefix)
	return id, ok && id != "" && !strings.Contains(id, "/")
}

// publishLocked hands the members to the cluster; p.mu is held, so that
// topologies are published in the order they were seen.
func (p *Provider) publishLocked() {
	res := make([]*cluster.Member, 0, len(p.members))
	for _, m := range p.members {
		res = append(res, m.node.member())
	}
	p.cluster.MemberList.UpdateClusterTopology(res)
}

// probeLoop checks the members whose connection broke, one address at a
// time.
func (p *Provider) probeLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case addr := <-p.suspects:
			p.probe(addr)
		}
	}
}

// probe dials addr; if nothing listens there (connection refused), it
// deletes the registrations of the members at addr that it knows, unless
// they changed meanwhile.
func (p *Provider) probe(addr string) {
	type reg struct {
		id  string
		rev int64
	}
	var regs []reg
	p.mu.Lock()
	for id, m := range p.members {
		if (p.self == nil || id != p.self.ID) && m.node.addr() == addr {
			regs = append(regs, reg{id, m.rev})
		}
	}
	p.mu.Unlock()
	if len(regs) == 0 {
		return // not a member (any more)
	}
	d := net.Dialer{Timeout: p.cfg.ProbeTimeout}
	switch v, err := probePort(p.ctx, d.DialContext, addr, probeRetries); v {
	case portAccepts:
		p.logger.Debug("etcd: a member's connection broke, but its cluster port accepts: leaving it to its lease", slog.String("address", addr))
		return
	case portUnknown:
		p.logger.Debug("etcd: a member's connection broke and its cluster port does not answer: leaving it to its lease",
			slog.String("address", addr), slog.Any("err", err))
		return
	}
	for _, r := range regs {
		ctx, cancel := context.WithTimeout(p.ctx, requestTimeout)
		resp, err := p.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(p.key(r.id)), "=", r.rev)).
			Then(clientv3.OpDelete(p.key(r.id))).
			Commit()
		cancel()
		switch {
		case err != nil:
			p.logger.Warn("etcd: remove a dead member's registration", slog.String("member", r.id), slog.Any("err", err))
		case resp.Succeeded:
			p.logger.Info("etcd: a member's cluster port refuses connections: removed its registration",
				slog.String("member", r.id), slog.String("address", addr))
		}
	}
}

// portVerdict is what a probe found at a member's cluster port.
type portVerdict int

const (
	portRefused portVerdict = iota // nothing listens: the process is gone
	portAccepts                    // something listens still
	portUnknown                    // no answer (a timeout, no route): it may be a partition
)

// probePort dials addr until a dial is refused, or waits gives out. A
// SIGKILLed process's connections break a moment before its listening
// socket closes, so a port that accepts, or that resets the dial (the
// listening socket closing under it: every kill that was left to its lease
// in chatchaos --provider etcd runs, 3 s instead of 1), is dialled again
// after each wait in turn.
func probePort(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), addr string, waits []time.Duration) (portVerdict, error) {
	if len(waits) == 0 {
		waits = []time.Duration{0} // one dial
	}
	var err error
	for i, wait := range waits {
		var conn net.Conn
		conn, err = dial(ctx, "tcp", addr)
		switch {
		case err == nil:
			_ = conn.Close()
		case errors.Is(err, syscall.ECONNREFUSED):
			return portRefused, err
		case !errors.Is(err, syscall.ECONNRESET):
			return portUnknown, err
		}
		if i == len(waits)-1 {
			break
		}
		select {
		case <-ctx.Done():
			return portUnknown, ctx.Err()
		case <-time.After(wait):
		}
	}
	if err != nil {
		return portUnknown, err // reset every time
	}
	return portAccepts, nil
}

// probeRetries are the waits between a probe's dials of a port that
// accepts or resets the dial (the last is not waited).
var probeRetries = []time.Duration{50 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond, 500 * time.Millisecond, 0}

func splitHostPort(addr string) (string, int, error) {
	h, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("etcd: cluster address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return "", 0, fmt.Errorf("etcd: cluster address %q: %w", addr, err)
	}
	return h, port, nil
}
