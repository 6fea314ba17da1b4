// This file holds what a node tells an operator about itself (Node.Status):
// the cluster as it sees it, the grains it hosts, and recent ownership stops.

package actors

import (
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
)

// Status is one node's view of the cluster and of what it hosts, for
// operators (chatd's /debug/cluster and `chatd cluster status`) and tests.
type Status struct {
	// Node is this node's cluster address.
	Node string `json:"node"`
	// Member is whether this node is in its own view of the topology.
	Member bool `json:"member"`
	// Members are the members' addresses in that view, sorted.
	Members []string `json:"members"`
	// Conversations are the conversation grains active on this node, by
	// conversation id, sorted.
	Conversations []int64 `json:"conversations"`
	// InboxOwner is the member that owns the inbox grain in this node's
	// view ("" before the first topology). The inbox's activation may live
	// on another member that the owner granted it to (see InboxActive and
	// Granted).
	InboxOwner string `json:"inbox_owner"`
	// InboxActive is whether the inbox grain is active on this node.
	InboxActive bool `json:"inbox_active"`
	// Granted is how many activations on other members this node granted
	// (as their identities' owner when it did) and still lets serve where
	// they are (see placement.go).
	Granted int `json:"granted"`
	// LookupsInFlight are the grain lookups this node is waiting for.
	LookupsInFlight int64 `json:"lookups_in_flight"`
	// OwnershipStops are the latest activations (at most 50) this node
	// stopped because another member owns their grain, newest last.
	OwnershipStops []OwnershipStop `json:"ownership_stops"`
}

// OwnershipStop is an activation stopped because another member owns it.
type OwnershipStop struct {
	Identity string    `json:"identity"` // kind/identity, e.g. conversation/17
	At       time.Time `json:"at"`
	Owner    string    `json:"owner"` // the owner in this node's view
}

// maxOwnershipStops bounds the stops a node remembers.
const maxOwnershipStops = 50

// stops remembers a node's latest ownership stops.
type stops struct {
	mu   sync.Mutex
	list []OwnershipStop
}

func (s *stops) add(st OwnershipStop) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.list) == maxOwnershipStops {
		s.list = append(s.list[:0], s.list[1:]...)
	}
	s.list = append(s.list, st)
}

func (s *stops) copy() []OwnershipStop {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.list)
}

// Status reports this node's view. It is safe to call from any goroutine.
func (n *Node) Status() Status {
	st := Status{
		Node:            n.system.Address(),
		Member:          n.member.Load(),
		Members:         slices.Clone(n.memberAddrs()),
		LookupsInFlight: n.lookups.Load(),
		OwnershipStops:  n.stops.copy(),
		InboxActive:     n.inboxActive.Load(),
		Granted:         n.placement.grants(),
	}
	slices.Sort(st.Members)
	n.grainsMu.Lock()
	for _, conv := range n.grains {
		st.Conversations = append(st.Conversations, conv.id)
	}
	n.grainsMu.Unlock()
	slices.Sort(st.Conversations)
	if rdv := n.owners.Load(); rdv != nil {
		st.InboxOwner = rdv.GetByClusterIdentity(cluster.NewClusterIdentity(inboxIdentity, InboxKind))
	}
	if st.Members == nil {
		st.Members = []string{}
	}
	if st.Conversations == nil {
		st.Conversations = []int64{}
	}
	if st.OwnershipStops == nil {
		st.OwnershipStops = []OwnershipStop{}
	}
	return st
}

// ownershipStopped records that an activation of kind/identity stopped
// because another member owns it.
func (n *Node) ownershipStopped(kind, identity string) {
	owner := ""
	if rdv := n.owners.Load(); rdv != nil {
		owner = rdv.GetByClusterIdentity(cluster.NewClusterIdentity(identity, kind))
	}
	n.stops.add(OwnershipStop{Identity: kind + "/" + identity, At: time.Now(), Owner: owner})
}
