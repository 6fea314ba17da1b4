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
// with its PID, watches it and forgets it when it stops or its member
// leaves or restarts. A denied one stops ("owned by another node"), as does
// one whose claims go unanswered (claimAttempts), and one whose owner takes
// its grant back (the owner took a broken connection for its death and
// activated the identity itself): a granted activation claims again at each
// topology change and every grantRenewal while it serves, so two
// activations do not persist. An identity with no activation anywhere is
// activated on its owner, as before.
//
// The owner's directory is the placement type: the library's placement
// actor reads it and records local spawns (Place; disthash.NewWithPlacement,
// grainchat's patch 4 of protoactor-go), the node's placement actor
// (placementActor) records grants, local activations record their stops.

// placementName is the name of every node's placement actor, which answers
// claims.
const placementName = "grainchat-placement"

// claimAttempts is how many claims an activation makes to one owner before
// it stops: an owner that does not answer (an older chatd without claims, a
// node cut off) leaves the activation to the old rule.
const claimAttempts = 3

// grantRenewal is how often a granted activation that serves claims its
// grant again: an owner that forgot it or granted elsewhere (a connection
// blip it took for a death) answers with a refusal, and the activation
// stops, so two activations never serve for longer than this.
const grantRenewal = 15 * time.Second

// placement is one node's directory of placement, as owner: its local
// activations and the activations on other members it granted. The
// library's placement actor reads it (Place) and records local spawns; this
// node's placement actor records grants and their ends; local activations
// record their stops.
type placement struct {
	node *Node
	mu   sync.Mutex
	// local: the activations this node's placement actor spawned, by
	// identity key (kind/identity), until they stop.
	local map[string]*actor.PID
	// granted: the activations on other members this node granted, by
	// identity key; byPID the same by activation.
	granted map[string]grant
	byPID   map[pidKey]string
}

// grant is an activation on another member, and that member's id when it
// was granted (a process restarted on the same address is another member).
type grant struct {
	pid    *actor.PID
	member string
}

func newPlacement(n *Node) *placement {
	return &placement{node: n, local: make(map[string]*actor.PID), granted: make(map[string]grant), byPID: make(map[pidKey]string)}
}

// Place implements disthash.Placement: an identity granted to a live
// activation on another member is served there; anything else is activated
// here, also an identity granted to an activation whose member left or whose
// connection just broke. In that last case the activation may be alive (a
// connection blip): it is told that its grant is gone, and stops when it
// hears it.
func (p *placement) Place(ci *cluster.ClusterIdentity, spawn func() *actor.PID) *actor.PID {
	key := ci.AsKey()
	p.mu.Lock()
	defer p.mu.Unlock()
	if g, ok := p.granted[key]; ok {
		addr := g.pid.GetAddress()
		// A member id that changed at the same address may be the same
		// process registered again (etcd, after a lost lease): still live.
		live := p.node.isMember(addr)
		if live && !p.node.down.is(addr, time.Now()) {
			return g.pid
		}
		p.dropLocked(key, g)
		if live {
			p.node.system.Root.RequestWithCustomSender(g.pid, &chatpb.ClaimResult{Owner: p.node.system.Address()}, p.node.placementPID())
		}
	}
	pid := spawn()
	p.local[key] = pid
	return pid
}

func (p *placement) dropLocked(key string, g grant) {
	delete(p.granted, key)
	delete(p.byPID, keyOf(g.pid))
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
	member := p.node.memberID(pid.GetAddress())
	if member == "" {
		return false, false, self // not a member in this node's view
	}
	key := kind + "/" + identity
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.local[key]; ok && !l.Equal(pid) {
		return false, false, self
	}
	if g, ok := p.granted[key]; ok {
		if g.pid.Equal(pid) {
			return true, false, self
		}
		if p.node.memberID(g.pid.GetAddress()) == g.member {
			return false, false, self
		}
		p.dropLocked(key, g)
	}
	p.granted[key] = grant{pid: pid, member: member}
	p.byPID[keyOf(pid)] = key
	return true, true, self
}

// ended forgets the grant of an activation that stopped.
func (p *placement) ended(pid *actor.PID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if key, ok := p.byPID[keyOf(pid)]; ok {
		p.dropLocked(key, p.granted[key])
	}
}

// topology forgets the grants to members that left (ids: the member ids of
// the new topology by address). A new member id at the same address may be
// the same process registered again (etcd, after a lost lease): its
// activations claim again, and a restarted process's are new PIDs (claim).
func (p *placement) topology(ids map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, g := range p.granted {
		if ids[g.pid.GetAddress()] == "" {
			p.dropLocked(key, g)
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
		if a.node.mayBeAlive(msg) {
			// A broken connection, perhaps a blip: keep the grant (Place
			// drops it while the member is down) and watch again.
			a.node.rewatchLater(ctx, msg.Who)
			return
		}
		a.node.placement.ended(msg.Who)
	case *rewatch:
		if a.node.placement.isGranted(msg.pid) {
			ctx.Watch(msg.pid)
		}
	}
}

// isGranted reports whether pid holds a grant of this node's.
func (p *placement) isGranted(pid *actor.PID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.byPID[keyOf(pid)]
	return ok
}

// placementPID is this node's placement actor.
func (n *Node) placementPID() *actor.PID { return actor.NewPID(n.system.Address(), placementName) }

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
	// grantedBy is the owner that granted this activation ("" if none),
	// grantedAt when it last did (see grantRenewal).
	grantedBy string
	grantedAt time.Time
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
	if c.grantedBy != "" && c.topology == topology && time.Since(c.grantedAt) < grantRenewal {
		return false // granted by the owner under this topology, lately
	}
	owner := n.ownerOf(c.identity, c.kind)
	switch {
	case owner == "" || owner == n.system.Address():
		c.grantedBy, c.owner, c.pending, c.attempts = "", "", false, 0
		c.ownedAt = topology
		return false
	case !n.hasFeature(owner, featureClaims):
		return time.Since(c.activated) >= n.cfg.OwnerCheckInterval
	case c.grantedBy == owner && c.topology == topology && time.Since(c.grantedAt) < grantRenewal:
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
	refusedByOwner := !res.GetGranted() && (res.GetOwner() == addr || res.GetOwner() == "")
	if !c.pending && addr == c.grantedBy && refusedByOwner {
		c.grantedBy = ""
		return true // the owner that granted it took its grant back (see Place)
	}
	if !c.pending || addr != c.owner {
		return false // an earlier claim's
	}
	if res.GetGranted() {
		c.grantedBy, c.grantedAt, c.pending, c.attempts = addr, time.Now(), false, 0
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
