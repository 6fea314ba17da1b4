// Package actors holds grainchat's actors: a session actor per WebSocket, a
// conversation grain per conversation and one inbox grain, running on a
// protoactor-go cluster.
//
// Everything sent to a grain goes by cluster identity (resolved to a PID by
// the cluster's identity lookup) and everything sent to a session goes by PID,
// so grains and sessions may live on any node. Messages between them are the
// protobuf messages of package chatpb.
package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/batch"
	"github.com/grainchat/grainchat/transport/wire"
)

// Cluster kinds.
const (
	ConversationKind = "conversation"
	InboxKind        = "inbox"
	// ClaimsKind is never activated: members that register it answer
	// claims (see placement).
	ClaimsKind = "grainchat.claims"
)

// MaxHistoryPage bounds one history page.
const MaxHistoryPage = 100

// DefaultInboxPage is the size of an inbox page when the staff client names
// none (at most storage.MaxInboxPage).
const DefaultInboxPage = 100

func conversationIdentity(id int64) string { return strconv.FormatInt(id, 10) }

// Config configures a Node. Zero values mean the documented defaults.
type Config struct {
	// ClusterName must be the same on every node of one cluster. Zero means "grainchat".
	ClusterName string
	// Host and Port are where this node listens for other nodes (protoactor
	// remote, gRPC). Zero means 127.0.0.1 and a free port.
	Host string
	Port int
	// AdvertisedHost is the host:port other nodes use to reach this one, when
	// it differs from Host:Port (NAT, containers).
	AdvertisedHost string
	// Provider is the cluster membership provider. Required.
	Provider cluster.ClusterProvider
	// GrainIdleTimeout is how long a grain with no session subscribed (hubs
	// do not count) stays active without messages before it passivates.
	// Zero means 2 minutes.
	GrainIdleTimeout time.Duration
	// StoreTimeout bounds each store call made by an actor. Zero means 5s.
	StoreTimeout time.Duration
	// PostTimeout is how long a session waits for a grain to answer a post
	// before telling the client to retry. Zero means 10s.
	PostTimeout time.Duration
	// RetryInterval is how long a session waits before retrying a failed
	// lookup or subscription. Zero means 250ms.
	RetryInterval time.Duration
	// LookupTimeout bounds one grain lookup. Zero means 1.5s.
	LookupTimeout time.Duration
	// SubscribeTimeout is how long a session waits for a grain to confirm a
	// subscription before looking it up again, and after how long it resends
	// an unanswered post to a fresh lookup if the grain's node has left the
	// topology. Zero means 3s.
	SubscribeTimeout time.Duration
	// OwnerCheckInterval is how long after activating a conversation grain
	// checks that its node owns it (later checks come with topology
	// changes), how often the inbox grain checks, and how long a grain
	// waits for the answer to a claim (see placement). Zero means 1s.
	OwnerCheckInterval time.Duration
	// MaxOpenPerSession bounds the conversations an admin session follows
	// explicitly. Zero means 50.
	MaxOpenPerSession int
	// RefreshInterval is how often a staff session looks up the grains it
	// subscribes to again, to leave a stale activation. Zero means 30s (plus
	// jitter).
	RefreshInterval time.Duration
	// MaxMessageChars is announced to grainchat.v1 clients. Zero means 4000.
	MaxMessageChars int
	// RuntimeLogLevel is the lowest level of protoactor's own log records
	// that are kept. Zero means info; chatd sets warn by default.
	RuntimeLogLevel slog.Level
	// LeaveGracefully makes Shutdown deregister from the membership provider
	// and wait for grains to be handed over (multi-node providers). A single
	// node has no one to hand over to and stops at once.
	LeaveGracefully bool
	// TypingInterval is how often at most one user's typing in one
	// conversation is relayed. Zero means DefaultTypingInterval (2s).
	TypingInterval time.Duration
	// TypingShowsStaffNames makes visitors see which staff user types
	// (else "Support").
	TypingShowsStaffNames bool
	// PresenceGrace is how long a visitor stays online after their last
	// socket closed (a reload shows nothing). Zero means 3s.
	PresenceGrace time.Duration
	// PresencePeerTimeout is how long a node may stay silent before the
	// others drop its visitors and staff (it also leaves when the topology
	// drops it, usually sooner). Zero means 12s.
	PresencePeerTimeout time.Duration
	// AwayMessage is what visitors read while no staff user is available
	// (sent with the availability frame).
	AwayMessage string
	// TranscriptEmail lets visitors ask for their transcript by email
	// (chatd sets it with --smtp-url); the store must implement
	// storage.Mail.
	TranscriptEmail bool
	// LeaveGrace is how long a graceful leave waits after deregistering for
	// the other members to notice. Zero means 1s.
	LeaveGrace time.Duration
}

// Defaults of Config's zero values that chatd's flags share.
const (
	DefaultGrainIdleTimeout = 2 * time.Minute
	DefaultPostTimeout      = 10 * time.Second
	DefaultRefreshInterval  = 30 * time.Second
)

func (c *Config) setDefaults() {
	if c.ClusterName == "" {
		c.ClusterName = "grainchat"
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.GrainIdleTimeout <= 0 {
		c.GrainIdleTimeout = DefaultGrainIdleTimeout
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 5 * time.Second
	}
	if c.PostTimeout <= 0 {
		c.PostTimeout = DefaultPostTimeout
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 250 * time.Millisecond
	}
	if c.LookupTimeout <= 0 {
		c.LookupTimeout = 1500 * time.Millisecond
	}
	if c.SubscribeTimeout <= 0 {
		c.SubscribeTimeout = 3 * time.Second
	}
	if c.PresenceGrace <= 0 {
		c.PresenceGrace = DefaultPresenceGrace
	}
	if c.PresencePeerTimeout <= 0 {
		c.PresencePeerTimeout = DefaultPresencePeerTimeout
	}
	if c.TypingInterval <= 0 {
		c.TypingInterval = DefaultTypingInterval
	}
	if c.LeaveGrace <= 0 {
		c.LeaveGrace = time.Second
	}
	if c.OwnerCheckInterval <= 0 {
		c.OwnerCheckInterval = time.Second
	}
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.MaxOpenPerSession <= 0 {
		c.MaxOpenPerSession = 50
	}
	if c.MaxMessageChars <= 0 {
		c.MaxMessageChars = wire.DefaultMaxMessageChars
	}
}

// Metrics receives the actors' events. A nil Metrics in New means none.
type Metrics interface {
	GrainActivated(kind string)
	GrainPassivated(kind string)
	MessageStored()
	GapFilled(n int)
	GrainMoved()
}

type noMetrics struct{}

func (noMetrics) GrainActivated(string)  {}
func (noMetrics) GrainPassivated(string) {}
func (noMetrics) MessageStored()         {}
func (noMetrics) GapFilled(int)          {}
func (noMetrics) GrainMoved()            {}

// Node is one member of the grainchat cluster: an actor system with the
// conversation and inbox grain kinds and this process's session actors.
type Node struct {
	logger   *slog.Logger
	cfg      Config
	store    storage.Store
	appender *batch.Appender
	// loader groups the conversation grains' loads (see load).
	loader     *batch.Loader
	dispatcher *workerDispatcher
	metrics    Metrics
	system     *actor.ActorSystem
	cluster    *cluster.Cluster
	member     atomic.Bool  // this node is in the cluster topology
	members    atomic.Int32 // members in this node's view of the topology
	stopOnce   sync.Once
	leaveOnce  sync.Once
	stopped    chan struct{} // closed when Shutdown's work is done
	// owners answers "which member owns this identity" under the latest
	// topology this node has seen, as the identity lookup computes it.
	owners atomic.Pointer[cluster.Rendezvous]

	// hub subscribes to conversation grains for this node's visitor
	// sessions (see hub); addrs are the members' addresses in the latest
	// topology, whose hubs a grain announces itself to.
	hub      atomic.Pointer[actor.PID]
	hubProps *actor.Props
	addrs    atomic.Pointer[[]string]
	// down are the members whose connection from this node broke lately
	// (see downSet).
	down downSet
	// memberIDs are the member ids of the latest topology by address (a
	// process that restarts on the same address is a new member).
	memberIDs atomic.Pointer[map[string]string]
	// features are what the members in the latest topology do beyond the
	// oldest release's protocol, by address (see feature).
	features atomic.Pointer[map[string]feature]
	// topologyAt is when the latest topology arrived (Unix nanoseconds).
	topologyAt atomic.Int64
	// presence is the node's presence actor (see presence.go).
	presence      atomic.Pointer[actor.PID]
	presenceProps *actor.Props
	// placement is this node's directory of grain placement, as owner, and
	// placementProps its actor's, which answers claims (see placement).
	placement      *placement
	placementProps *actor.Props

	// grains are this node's conversation activations: when the topology
	// changes, each is told to check that its node still owns it and to
	// announce itself to the members' hubs.
	grainsMu sync.Mutex
	grains   map[pidKey]activation

	// For Status: lookups waiting, whether the inbox is active here, and
	// the latest ownership stops.
	lookups     atomic.Int64
	inboxActive atomic.Bool
	stops       stops
}

// activation is one of this node's conversation grains.
type activation struct {
	pid *actor.PID
	id  int64
}

// The dispatcher of the node's actors (see workerDispatcher): enough idle
// workers for the bursts of a busy node (an idle one costs its stack, a few
// KiB), and protoactor's default throughput.
const (
	dispatchWorkers    = 128
	dispatchThroughput = 300
)

// New builds a node; Start joins the cluster.
func New(logger *slog.Logger, cfg Config, store storage.Store, appender *batch.Appender, metrics Metrics) (*Node, error) {
	if cfg.Provider == nil {
		return nil, errors.New("actors: no cluster provider configured")
	}
	cfg.setDefaults()
	if metrics == nil {
		metrics = noMetrics{}
	}
	n := &Node{logger: logger, cfg: cfg, store: store, appender: appender, metrics: metrics,
		grains: make(map[pidKey]activation), loader: batch.NewLoader(logger.With("component", "loader"), store, cfg.StoreTimeout)}
	// protoactor is chatty at info: its records get their own threshold.
	actorLogger := slog.New(minLevel{logger.With("component", "protoactor").Handler(), cfg.RuntimeLogLevel})
	n.system = actor.NewActorSystemWithConfig(actor.Configure(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return actorLogger }),
	))
	remoteOpts := []remote.ConfigOption{}
	if cfg.AdvertisedHost != "" {
		remoteOpts = append(remoteOpts, remote.WithAdvertisedHost(cfg.AdvertisedHost))
	}
	n.dispatcher = newWorkerDispatcher(dispatchWorkers, dispatchThroughput)
	withDispatcher := actor.WithDispatcher(n.dispatcher)
	kinds := []*cluster.Kind{
		cluster.NewKind(ConversationKind, actor.PropsFromProducer(func() actor.Actor { return newConversationGrain(n) }, withDispatcher)),
		cluster.NewKind(InboxKind, actor.PropsFromProducer(func() actor.Actor { return newInboxGrain(n) }, withDispatcher)),
		// Kinds that are never activated: they tell the other members that
		// this one answers claims (see placement) and runs an inbox relay
		// (see relay.go).
		cluster.NewKind(ClaimsKind, neverActivated()),
		cluster.NewKind(RelayKind, neverActivated()),
	}
	// Active grains stay where they are when the topology changes (see
	// placement).
	n.placement = newPlacement(n)
	clusterCfg := cluster.Configure(cfg.ClusterName, cfg.Provider, disthash.NewWithPlacement(n.placement),
		remote.Configure(cfg.Host, cfg.Port, remoteOpts...),
		cluster.WithKinds(kinds...),
		cluster.WithRequestTimeout(cfg.StoreTimeout),
	)
	n.cluster = cluster.New(n.system, clusterCfg)
	n.hubProps = actor.PropsFromProducer(func() actor.Actor { return newHub(n) }, withDispatcher)
	n.presenceProps = actor.PropsFromProducer(func() actor.Actor { return newPresence(n) }, withDispatcher)
	n.placementProps = actor.PropsFromProducer(func() actor.Actor { return &placementActor{node: n} }, withDispatcher)
	// Readiness follows the topology events rather than reading the
	// library's member list, which is not safe for concurrent reads.
	// Members are matched by address: providers name members differently
	// (etcd uses "<cluster>@<id>").
	n.system.EventStream.Subscribe(func(evt any) {
		switch e := evt.(type) {
		case *remote.EndpointTerminatedEvent:
			n.down.mark(e.Address, time.Now())
		case *remote.EndpointConnectedEvent:
			n.down.clear(e.Address)
		}
		if topo, ok := evt.(*cluster.ClusterTopology); ok {
			self := n.system.Address()
			in := false
			addrs := make([]string, 0, len(topo.GetMembers()))
			features := make(map[string]feature, len(topo.GetMembers()))
			ids := make(map[string]string, len(topo.GetMembers()))
			for _, m := range topo.GetMembers() {
				if m.Address() == self {
					in = true
				}
				addrs = append(addrs, m.Address())
				features[m.Address()] = featuresOf(m)
				ids[m.Address()] = m.GetId()
			}
			rdv := cluster.NewRendezvous()
			rdv.UpdateMembers(topo.GetMembers())
			// The stamp last: whoever reads the new stamp (a grain's
			// check) reads the owners, members and features it stamps.
			n.addrs.Store(&addrs)
			n.features.Store(&features)
			n.memberIDs.Store(&ids)
			n.owners.Store(rdv)
			n.member.Store(in)
			n.members.Store(int32(len(topo.GetMembers())))
			n.topologyAt.Store(time.Now().UnixNano())
			n.placement.topology(ids)
			if p := n.presence.Load(); p != nil {
				n.system.Root.Send(p, &presenceTopology{addrs: addrs})
			}
			// Not under the library's topology lock: one send per grain.
			go n.checkGrainOwners()
		}
	})
	return n, nil
}

// Start joins the cluster as a member hosting grains.
func (n *Node) Start(ctx context.Context) (err error) {
	defer func() {
		// protoactor reports start-up failures (port taken, provider down) by panicking.
		if r := recover(); r != nil {
			err = fmt.Errorf("start cluster member: %v", r)
		}
	}()
	n.cluster.StartMember()
	// The hub is spawned once remoting runs: an actor spawned before has
	// the address "nonhost", which other nodes read as their own. Grains
	// activated meanwhile could not announce themselves to it: the topology
	// check makes every local grain announce itself again.
	hub, err := n.system.Root.SpawnNamed(n.hubProps, hubName)
	if err != nil {
		return fmt.Errorf("spawn the node's hub: %w", err)
	}
	n.hub.Store(hub)
	// The placement actor likewise: claims sent to it before are not
	// answered, and their claimants ask again (see claimant.expired).
	if _, err := n.system.Root.SpawnNamed(n.placementProps, placementName); err != nil {
		return fmt.Errorf("spawn the node's placement actor: %w", err)
	}
	// The inbox relay likewise; the inbox relays to it only once this
	// node's sessions subscribe, after Start.
	if _, err := n.system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &inboxRelay{node: n} }, actor.WithDispatcher(n.dispatcher)), inboxRelayName); err != nil {
		return fmt.Errorf("spawn the node's inbox relay: %w", err)
	}
	// Presence likewise; it learns the members from the topology events
	// that follow, and from the current ones now.
	presence, err := n.system.Root.SpawnNamed(n.presenceProps, presenceName)
	if err != nil {
		return fmt.Errorf("spawn the node's presence actor: %w", err)
	}
	n.presence.Store(presence)
	n.system.Root.Send(presence, &presenceTopology{addrs: n.memberAddrs()})
	go n.checkGrainOwners()
	n.logger.Info("cluster member started", "node", n.system.ID, "address", n.system.Address())
	return nil
}

// Members is the number of members in this node's view of the cluster.
func (n *Node) Members() int { return int(n.members.Load()) }

// Ready reports whether this node is a member of the cluster's topology.
func (n *Node) Ready() bool {
	return n.member.Load()
}

// Shutdown leaves the cluster. Sessions should be stopped first.
//
// With LeaveGracefully, the node first deregisters from the membership
// provider and waits LeaveGrace (bounded by ctx), the time the other members
// need to drop it from their topology: they then place its grains elsewhere
// while it still answers. Only then does it stop its actors.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stopOnce.Do(func() { n.stopped = make(chan struct{}) })
	done := n.stopped
	n.leaveOnce.Do(func() { go n.leave(ctx, done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("leave cluster: %w", ctx.Err())
	}
}

// leave runs Shutdown's work once, closing done at the end.
func (n *Node) leave(ctx context.Context, done chan struct{}) {
	{
		defer close(done)
		if n.cfg.LeaveGracefully {
			if err := n.cfg.Provider.Shutdown(true); err != nil {
				n.logger.Warn("deregister from the membership provider", "err", err)
			}
			// The providers stop updating this node's own view once it
			// deregisters: wait the time the others need to notice.
			t := time.NewTimer(n.cfg.LeaveGrace)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		// The library's own graceful path would deregister again, sleep 2s
		// and wait for remote endpoints (up to ~10s toward nodes that are
		// gone); the leave is done already.
		n.cluster.Shutdown(false)
		n.dispatcher.Close()
		n.loader.Close()
	}
}

// addGrain and removeGrain keep the registry of this node's conversation
// activations.
func (n *Node) addGrain(pid *actor.PID, conv int64) {
	n.grainsMu.Lock()
	n.grains[keyOf(pid)] = activation{pid: pid, id: conv}
	n.grainsMu.Unlock()
}

func (n *Node) removeGrain(pid *actor.PID) {
	n.grainsMu.Lock()
	delete(n.grains, keyOf(pid))
	n.grainsMu.Unlock()
}

// checkGrainOwners tells every local conversation activation that the
// topology changed: each checks that this node still owns it, and announces
// itself to the members' hubs (new members need it). Ownership changes only
// with the topology, so grains need no periodic check of their own: this
// replaces a timer per grain per OwnerCheckInterval.
func (n *Node) checkGrainOwners() {
	n.grainsMu.Lock()
	pids := make([]*actor.PID, 0, len(n.grains))
	for _, a := range n.grains {
		pids = append(pids, a.pid)
	}
	n.grainsMu.Unlock()
	for _, pid := range pids {
		n.system.Root.Send(pid, &topologyChanged{})
	}
}

// topologyChangedWithin reports whether the last topology change was less
// than d ago.
func (n *Node) topologyChangedWithin(d time.Duration) bool {
	at := n.topologyAt.Load()
	return at != 0 && time.Since(time.Unix(0, at)) < d
}

// isMember reports whether addr is a member's in the latest topology (true
// before the first topology is known).
func (n *Node) isMember(addr string) bool {
	addrs := n.addrs.Load()
	if addrs == nil {
		return true
	}
	for _, a := range *addrs {
		if a == addr {
			return true
		}
	}
	return false
}

// memberAddrs returns the members' addresses in the latest topology.
func (n *Node) memberAddrs() []string {
	if p := n.addrs.Load(); p != nil {
		return *p
	}
	return nil
}

// feature is a set of what a member does beyond the oldest release's
// protocol between nodes. Members say so by registering kinds that are
// never activated: a message type an older release does not know is sent
// only to members that announce it (v0.1.0 dies on one).
type feature uint8

const (
	featureClaims feature = 1 << iota // answers chatpb.Claim (ClaimsKind)
	featureRelay                      // runs an inbox relay (RelayKind)
)

func featuresOf(m *cluster.Member) feature {
	var f feature
	if m.HasKind(ClaimsKind) {
		f |= featureClaims
	}
	if m.HasKind(RelayKind) {
		f |= featureRelay
	}
	return f
}

// neverActivated are the props of the kinds that only announce a feature.
func neverActivated() *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*actor.Started); ok {
			ctx.Stop(ctx.Self())
		}
	})
}

// memberID is the id of the member at addr in the latest topology ("" if
// none).
func (n *Node) memberID(addr string) string {
	if m := n.memberIDs.Load(); m != nil {
		return (*m)[addr]
	}
	return ""
}

// hasFeature reports whether the member at addr has feature f in the
// latest topology.
func (n *Node) hasFeature(addr string, f feature) bool {
	m := n.features.Load()
	return m != nil && (*m)[addr]&f != 0
}

// SpawnSession starts the session actor of one connection.
func (n *Node) SpawnSession(cfg SessionConfig) *actor.PID {
	props := actor.PropsFromProducer(func() actor.Actor { return newSession(n, cfg) }, actor.WithDispatcher(n.dispatcher))
	return n.system.Root.Spawn(props)
}

// SendInbound hands a decoded client request to its session.
func (n *Node) SendInbound(pid *actor.PID, in *Inbound) { n.system.Root.Send(pid, in) }

// StopSession stops a session actor (its socket closed).
func (n *Node) StopSession(pid *actor.PID) { n.system.Root.Stop(pid) }

// lookup resolves a grain identity to its PID through the cluster's
// identity lookup, activating the grain if needed; nil when the cluster cannot
// place it now. It can block for seconds while membership changes: callers
// run it off their actor's goroutine.
//
// The library's lookup waits up to 5s for a placement answer, even from a
// node that just died; lookup gives up after LookupTimeout instead and the
// caller retries, by which time the membership has usually dropped the dead
// node. An abandoned lookup finishes in the background.
//
// It also gives up as soon as the member it asked (the identity's owner when
// the lookup started) leaves the topology: that member died, and its answer
// would come only at the library's 5 s deadline, while the caller's retry
// asks the new owner. (A member joining does not cut a lookup short: the
// owner asked is alive and answers.)
func (n *Node) lookup(identity, kind string) *actor.PID {
	n.lookups.Add(1)
	defer n.lookups.Add(-1)
	asked := n.ownerOf(identity, kind)
	topo := n.topologyAt.Load()
	ch := make(chan *actor.PID, 1)
	go func() {
		pid := n.cluster.Get(identity, kind)
		if pid != nil && pid.GetAddress() != n.system.Address() && n.down.is(pid.GetAddress(), time.Now()) {
			// An activation on a member whose connection just broke (an
			// owner that granted it has not heard yet): retry.
			pid = nil
		}
		ch <- pid
	}()
	t := time.NewTimer(n.cfg.LookupTimeout)
	defer t.Stop()
	tick := time.NewTicker(lookupPoll)
	defer tick.Stop()
	for {
		select {
		case pid := <-ch:
			return pid
		case <-t.C:
			return nil
		case <-tick.C:
			if now := n.topologyAt.Load(); now != topo {
				topo = now
				if asked != "" && asked != n.system.Address() && !n.isMember(asked) {
					return nil // the owner asked has left: retry with the new one
				}
			}
		}
	}
}

// downSet remembers the members whose connection from this node broke
// (protoactor's EndpointTerminatedEvent) until it connects again, for
// downFor at most. A lookup can answer with an activation on such a member
// when the identity's owner granted it and has not noticed the death yet;
// sending to it would wait for a connection that protoactor retries every
// 2 s, so the lookup is retried instead (see lookup and placement.Place).
type downSet struct {
	mu sync.Mutex
	at map[string]time.Time
}

// downFor bounds how long a broken connection marks its member down: a
// partition that heals without a new connection (none was needed yet) does
// not keep its member's grains unreachable.
const downFor = 3 * time.Second

func (d *downSet) mark(addr string, now time.Time) {
	d.mu.Lock()
	if d.at == nil {
		d.at = make(map[string]time.Time)
	}
	d.at[addr] = now
	d.mu.Unlock()
}

func (d *downSet) clear(addr string) {
	d.mu.Lock()
	delete(d.at, addr)
	d.mu.Unlock()
}

// is reports whether addr's connection broke less than downFor before now
// and did not come back.
func (d *downSet) is(addr string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.at[addr]
	if ok && now.Sub(at) >= downFor {
		delete(d.at, addr)
		return false
	}
	return ok
}

// lookupPoll is how often a lookup in flight checks whether the owner it
// asked has left the topology.
const lookupPoll = 20 * time.Millisecond

// ownerOf is the address of the member that places identity in the latest
// topology ("" before the first).
func (n *Node) ownerOf(identity, kind string) string {
	rdv := n.owners.Load()
	if rdv == nil {
		return ""
	}
	return rdv.GetByClusterIdentity(cluster.NewClusterIdentity(identity, kind))
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.Handler.Enabled(ctx, l)
}
func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(a), m.min}
}
func (m minLevel) WithGroup(n string) slog.Handler { return minLevel{m.Handler.WithGroup(n), m.min} }

// reply answers the sender of the current message with the replying actor
// as the sender, so that the receiver can tell which activation answered
// (actor.Context.Respond sends without a sender).
func reply(ctx actor.Context, msg any) {
	if to := ctx.Sender(); to != nil {
		ctx.Request(to, msg)
	}
}
