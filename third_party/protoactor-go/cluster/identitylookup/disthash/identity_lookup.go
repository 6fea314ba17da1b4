package disthash

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
)

type IdentityLookup struct {
	partitionManager *Manager
	placement        Placement // grainchat patch 4
}

// Placement lets the application decide where an identity's activation
// lives when its owner is asked for it, and keep activations where they are
// when the topology moves their identities (grainchat patch 4: upstream
// always activates on the owner and poisons every local activation whose
// identity the topology moves elsewhere).
type Placement interface {
	// Place is called by a member's placement actor for an identity it has
	// no local activation of. spawn activates it on this member and returns
	// its PID; Place returns the PID the requester gets: spawn's, or that of
	// an activation the application knows lives elsewhere.
	Place(identity *cluster.ClusterIdentity, spawn func() *actor.PID) *actor.PID
}

func (p *IdentityLookup) Get(clusterIdentity *cluster.ClusterIdentity) *actor.PID {
	return p.partitionManager.Get(clusterIdentity)
}

func (p *IdentityLookup) RemovePid(clusterIdentity *cluster.ClusterIdentity, pid *actor.PID) {
	activationTerminated := &cluster.ActivationTerminated{
		Pid:             pid,
		ClusterIdentity: clusterIdentity,
	}
	p.partitionManager.cluster.MemberList.BroadcastEvent(activationTerminated, true)
}

func (p *IdentityLookup) Setup(cluster *cluster.Cluster, kinds []string, isClient bool) {
	p.partitionManager = newPartitionManager(cluster)
	p.partitionManager.placement = p.placement
	p.partitionManager.Start()
}

func (p *IdentityLookup) Shutdown() {
	p.partitionManager.Stop()
}

func New() cluster.IdentityLookup {
	return &IdentityLookup{}
}

// NewWithPlacement is New whose placement actors ask p where an activation
// lives, and leave the local activations whose identity moved to the
// application, which stops them when it decides to (grainchat patch 4).
func NewWithPlacement(p Placement) cluster.IdentityLookup {
	return &IdentityLookup{placement: p}
}
