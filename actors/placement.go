package actors

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/grainchat/grainchat/actors/chatpb"
)

// Placement: where a grain's activation lives.
//
// The cluster places an identity on its owner, the member that rendezvous
// hashing picks among the members of the topology; upstream's placement
// moves every activation to the new owner when the topology changes. When a
// member joins (a killed node coming back, a node added), a third of the
// active conversations — their sessions, their hubs' subscriptions, their
// posts in flight — would move to it, each move an activation stopped on one
// node and started on another.
//
// grainchat keeps active grains where they are instead. The owner stays the
// authority for its identities, and keeps a directory of the ones whose
// activation lives on another member: an activation whose node does not own
// its identity any more asks the owner to keep serving (a Claim), and the
// owner grants it unless it has an activation of its own or has granted
// another one. A granted activation serves on; the owner answers lookups
// with its PID, watches it and forgets it when it stops. A denied one stops
// ("owned by another node"), as does one whose claim goes unanswered
// (ClaimAttempts): two activations never persist. An identity with no
// activation anywhere is activated on its owner, as before.
//
// The owner's directory is the placement type, read by the library's
// placement actor (disthash.NewWithPlacement, grainchat's patch 4 of
// protoactor-go) and written by the node's placement actor (placementActor),
// which answers claims.

// placementName is the name of every node's placement actor, which answers
// claims.
const placementName = "grainchat-placement"

// claimAttempts is how many claims an activation makes to one owner before
// it stops: an owner that does not answer (an older chatd without claims, a
// node cut off) leaves the activation to the old rule.
const claimAttempts = 3

// placement is one node's directory of placement, as owner: its local
// activations and the activations on other members it granted.
type placement struct {
	node *Node
	mu   sync.Mutex
	// local: the activations this node's placement actor spawned, by
	// identity key (kind/identity), until they stop.
	local map[string]*actor.PID
	// granted: the activations on other members this node granted, by
	// identity key.
	granted map[string]*actor.PID
}

func newPlacement(n *Node) *placement {
	return &placement{node: n, local: make(map[string]*actor.PID), granted: make(map[string]*actor.PID)}
}

// Place implements disthash.Placement: an identity granted to a live
// activation on another member is served there; anything else is activated
// here, also an identity granted to an activation whose member left or whose
// connection just broke.
func (p *placement) Place(ci *cluster.ClusterIdentity, spawn func() *actor.PID) *actor.PID {
	key := ci.AsKey()
	p.mu.Lock()
	defer p.mu.Unlock()
	if pid, ok := p.granted[key]; ok {
		addr := pid.GetAddress()
		if p.node.isMember(addr) && !p.node.down.is(addr, time.Now()) {
			return pid
		}
		delete(p.granted, key) // its member left, or died (see downSet)
	}
	pid := spawn()
	p.local[key] = pid
	return pid
}

// stopped forgets a local activation that stopped.
func (p *placement) stopped(kind, identity string, pid *actor.PID) {
	key := kind + "/" + identity
	p.mu.Lock()
	if l, ok := p.local[key]; ok && l.Equal(pid) {
		delete(p.local, key)
	}
	p.mu.Unlock()
}

// claim decides a claim of the activation pid on another member: granted,
// or the owner in this node's view (this node: it has an activation of its
// own or granted a live one; another member: the views disagree).
func (p *placement) claim(kind, identity string, pid *actor.PID) (granted, fresh bool, owner string) {
	self := p.node.system.Address()
	if owner = p.node.ownerOf(identity, kind); owner != self && owner != "" {
		return false, false, owner
	}
	key := kind + "/" + identity
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.local[key]; ok && !l.Equal(pid) {
		return false, false, self
	}
	if g, ok := p.granted[key]; ok {
		if g.Equal(pid) {
			return true, false, self
		}
		if p.node.isMember(g.GetAddress()) {
			return false, false, self
		}
	}
	p.granted[key] = pid
	return true, true, self
}

// ended forgets the grant of an activation that stopped (or whose member
// left).
func (p *placement) ended(pid *actor.PID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, g := range p.granted {
		if g.Equal(pid) {
			delete(p.granted, k)
		}
	}
}

// grants is how many activations on other members this node granted.
func (p *placement) grants() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.granted)
}

// placementActor answers claims (see placement) and watches the granted
// activations.
type placementActor struct{ node *Node }

func (a *placementActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *chatpb.Claim:
		from := ctx.Sender()
		if from == nil {
			return
		}
		granted, fresh, owner := a.node.placement.claim(msg.GetKind(), msg.GetIdentity(), from)
		if fresh {
			ctx.Watch(from)
		}
		a.node.logger.Debug("placement: claim", "kind", msg.GetKind(), "identity", msg.GetIdentity(),
			"pid", pidValue{from}, "granted", granted, "owner", owner)
		reply(ctx, &chatpb.ClaimResult{Granted: granted, Owner: owner})
	case *actor.Terminated:
		a.node.placement.ended(msg.Who)
	}
}

// claimant is an activation's side of placement: it knows whether its
// node owns the identity, or which owner granted it, and asks the owner
// when neither holds.
type claimant struct {
	kind, identity string
	// log is the activation's logger (built on first use).
	log func() *slog.Logger
	// activated is when the activation started.
	activated time.Time
	// stopped is set once the activation stopped for another owner.
	stopped bool
	// grantedBy is the owner that granted this activation ("" if none).
	grantedBy string
	// owner is the owner claimed last; pending while its answer is
	// awaited. seq names the claim (the expiries of older ones are
	// ignored); attempts counts the claims to owner that were not granted.
	owner    string
	pending  bool
	seq      int
	attempts int
	// topology is the node's topology stamp at the last claim: a granted
	// activation claims again after a topology change (the owner may be a
	// new process that forgot its grants). ownedAt is the stamp under which
	// the node was found to own the identity (0: not).
	topology, ownedAt int64
}

// verify checks the activation's placement (see check) and stops it when it
// must.
func (c *claimant) verify(ctx actor.Context, n *Node) {
	if !c.stopped && c.check(ctx, n) {
		c.stop(ctx, n)
	}
}

// refuses reports whether the activation answers a request with moved: once
// it stopped for another owner. Otherwise it serves, claiming the owner's
// grant first if it needs one (see check).
func (c *claimant) refuses(ctx actor.Context, n *Node) bool {
	c.verify(ctx, n)
	return c.stopped
}

// receive handles the claim messages addressed to the activation (an
// owner's answer, a claim's expiry); it reports whether msg was one.
func (c *claimant) receive(ctx actor.Context, n *Node, msg any) bool {
	var stop bool
	switch m := msg.(type) {
	case *chatpb.ClaimResult:
		stop = c.answered(ctx.Sender().GetAddress(), m)
	case *claimExpired:
		stop = c.expired(ctx, n, m)
	default:
		return false
	}
	if stop {
		c.stop(ctx, n)
	}
	return true
}

// stop stops the activation, once: another one, on the identity's owner or
// granted by it, serves the identity; the activation's watchers (sessions,
// hubs) look it up again.
func (c *claimant) stop(ctx actor.Context, n *Node) {
	if c.stopped {
		return
	}
	c.stopped = true
	if n.logger.Enabled(context.Background(), slog.LevelDebug) {
		c.log().Debug(c.kind + " owned by another node: stopping this activation")
	}
	n.ownershipStopped(c.kind, c.identity)
	ctx.Stop(ctx.Self())
}

// claimExpired is the end of the wait for a claim's answer.
type claimExpired struct{ seq int }

func (*claimExpired) housekeeping() {}

// check claims the owner's grant when the activation needs one; it reports
// whether the activation must stop now. An activation whose node owns the
// identity, or that the owner granted, goes on; otherwise it claims and goes
// on meanwhile (two activations serve for a moment at most, and write
// through the store, which orders their messages). A granted activation
// claims again after a topology change: the owner may be a new process that
// forgot its grants. An owner that does not answer claims (a release before
// them, which would die on a message type it does not know) keeps the
// older rule: the activation stops for it, once older than
// OwnerCheckInterval (its check at that age stops it): when two members'
// views of the topology differ for a moment, a lookup on one places the
// grain on the other, which would otherwise stop it at once, again and
// again, until the views agree.
func (c *claimant) check(ctx actor.Context, n *Node) (stop bool) {
	topology := n.topologyAt.Load()
	if topology != 0 && topology == c.ownedAt {
		return false // this node owned it under this topology (every post asks)
	}
	owner := n.ownerOf(c.identity, c.kind)
	switch {
	case owner == "" || owner == n.system.Address():
		c.grantedBy, c.owner, c.pending, c.attempts = "", "", false, 0
		c.ownedAt = topology
		return false
	case !n.hasFeature(owner, featureClaims):
		return time.Since(c.activated) >= n.cfg.OwnerCheckInterval
	case c.grantedBy == owner && c.topology == topology:
		return false
	case c.pending && c.owner == owner:
		return false // the answer is awaited
	}
	if owner != c.owner {
		c.attempts = 0
	}
	c.grantedBy, c.owner, c.pending, c.topology = "", owner, true, topology
	c.seq++
	ctx.Request(actor.NewPID(owner, placementName), &chatpb.Claim{Kind: c.kind, Identity: c.identity})
	self, root, seq := ctx.Self(), n.system.Root, c.seq
	time.AfterFunc(n.cfg.OwnerCheckInterval, func() { root.Send(self, &claimExpired{seq: seq}) })
	return false
}

// answered handles an answer from the member at addr; it reports whether
// the activation must stop.
func (c *claimant) answered(addr string, res *chatpb.ClaimResult) (stop bool) {
	if !c.pending || addr != c.owner {
		return false // an earlier claim's
	}
	if res.GetGranted() {
		c.grantedBy, c.pending, c.attempts = addr, false, 0
		return false
	}
	if o := res.GetOwner(); o == addr || o == "" {
		c.pending = false
		return true // the owner keeps another activation
	}
	// The views disagree about the owner for a moment: the claim's expiry
	// asks again.
	return false
}

// expired handles the end of a claim's wait (unanswered, or answered by a
// member whose view differed); it reports whether the activation must stop.
func (c *claimant) expired(ctx actor.Context, n *Node, e *claimExpired) (stop bool) {
	if e.seq != c.seq || !c.pending {
		return false
	}
	c.pending = false
	c.attempts++
	if c.attempts >= claimAttempts {
		return true
	}
	return c.check(ctx, n)
}
