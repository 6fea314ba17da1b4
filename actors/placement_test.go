package actors

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/grainchat/grainchat/actors/chatpb"
)

// The owner's directory decides claims: it grants an identity to one
// activation at a time, never over one of its own, again to the same
// activation, and to another one once the granted one ended; Place answers
// with the granted activation instead of spawning.
func TestPlacementDecidesClaims(t *testing.T) {
	e := newTestEnv(t, Config{})
	waitUntil(t, 10*time.Second, func() bool { return e.node.Members() == 1 })
	p, self := e.node.placement, e.node.system.Address()
	// Activations "on another member": PIDs of this member's address, the
	// only member (isMember must hold for a grant to stand).
	x, y := actor.NewPID(self, "x"), actor.NewPID(self, "y")

	spawned := 0
	spawn := func() *actor.PID { spawned++; return actor.NewPID(self, "local") }

	if granted, fresh, owner := p.claim(ConversationKind, "1", x); !granted || !fresh || owner != self {
		t.Fatalf("first claim: granted %v fresh %v owner %q, want a fresh grant by %q", granted, fresh, owner, self)
	}
	if granted, fresh, _ := p.claim(ConversationKind, "1", x); !granted || fresh {
		t.Fatalf("the same activation's claim again: granted %v fresh %v, want granted, not fresh", granted, fresh)
	}
	if granted, _, owner := p.claim(ConversationKind, "1", y); granted || owner != self {
		t.Fatalf("a second activation's claim: granted %v owner %q, want refused by the owner", granted, owner)
	}
	if got := p.Place(cluster.NewClusterIdentity("1", ConversationKind), spawn); !got.Equal(x) || spawned != 0 {
		t.Fatalf("Place of a granted identity = %v (spawned %d), want %v without spawning", got, spawned, x)
	}
	p.ended(x)
	if p.grants() != 0 {
		t.Fatalf("grants after the granted activation ended = %d, want 0", p.grants())
	}
	// Not granted any more: Place spawns here, and a claim over the local
	// activation is refused until it stops.
	local := p.Place(cluster.NewClusterIdentity("1", ConversationKind), spawn)
	if spawned != 1 {
		t.Fatalf("Place of an identity granted to nobody spawned %d times, want 1", spawned)
	}
	if granted, _, owner := p.claim(ConversationKind, "1", y); granted || owner != self {
		t.Fatalf("a claim over a local activation: granted %v owner %q, want refused", granted, owner)
	}
	p.stopped(ConversationKind, "1", local)
	if granted, fresh, _ := p.claim(ConversationKind, "1", y); !granted || !fresh {
		t.Fatalf("a claim once the local activation stopped: granted %v fresh %v, want a fresh grant", granted, fresh)
	}
	// Other identities and kinds are apart.
	if granted, _, _ := p.claim(InboxKind, "1", x); !granted {
		t.Fatal("a claim of another kind's identity was refused")
	}
	// A topology without the grantee's address ends its grants; one where
	// it is the same member, or registered again under a new id (etcd after
	// a lost lease: the same process), keeps them.
	ids := map[string]string{self: e.node.memberID(self)}
	p.topology(ids)
	if p.grants() != 2 {
		t.Fatalf("grants after an unchanged topology = %d, want 2", p.grants())
	}
	ids[self] = "registered-again"
	p.topology(ids)
	if p.grants() != 2 {
		t.Fatalf("grants after the grantee registered again = %d, want 2", p.grants())
	}
	delete(ids, self)
	p.topology(ids)
	if p.grants() != 0 {
		t.Fatalf("grants after the grantee's member left = %d, want 0", p.grants())
	}
}

// An activation's claimant: a grant from the owner asked keeps it, a refusal
// from the owner stops it, a refusal naming another owner (views that
// disagree) or an answer from a member not asked changes nothing.
func TestClaimantAnswers(t *testing.T) {
	c := claimant{kind: ConversationKind, identity: "1", owner: "b:1", pending: true}
	if c.answered("c:1", &chatpb.ClaimResult{Granted: true}) || !c.pending || c.grantedBy != "" {
		t.Fatalf("an answer from a member not asked was taken: %+v", c)
	}
	if c.answered("b:1", &chatpb.ClaimResult{Owner: "c:1"}) || !c.pending {
		t.Fatalf("a refusal naming another owner stopped the activation or ended the wait: %+v", c)
	}
	if c.answered("b:1", &chatpb.ClaimResult{Granted: true}) || c.pending || c.grantedBy != "b:1" {
		t.Fatalf("a grant was not taken: %+v", c)
	}
	// Granted, then the owner takes the grant back unasked (see Place).
	if c.answered("c:1", &chatpb.ClaimResult{Owner: "c:1"}) {
		t.Fatal("a refusal from a member that did not grant stopped the activation")
	}
	if !c.answered("b:1", &chatpb.ClaimResult{Owner: "b:1"}) {
		t.Fatal("the granting owner's refusal did not stop the activation")
	}
	c = claimant{kind: ConversationKind, identity: "1", owner: "b:1", pending: true}
	if !c.answered("b:1", &chatpb.ClaimResult{Owner: "b:1"}) {
		t.Fatal("the owner's refusal did not stop the activation")
	}
}

// A member whose connection broke is down until it connects again or
// downFor passes.
func TestDownSet(t *testing.T) {
	var d downSet
	now := time.Now()
	if d.is("a:1", now) {
		t.Fatal("an unknown member is down")
	}
	d.mark("a:1", now)
	if !d.is("a:1", now.Add(downFor-time.Millisecond)) || d.is("b:1", now) {
		t.Fatal("the member whose connection broke is not down, or another one is")
	}
	if d.is("a:1", now.Add(downFor)) {
		t.Fatal("still down after downFor")
	}
	d.mark("a:1", now)
	d.clear("a:1")
	if d.is("a:1", now) {
		t.Fatal("still down after it connected again")
	}
}
