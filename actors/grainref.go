// This file holds grainRef, the one implementation of "find a grain and
// follow it" that sessions (their conversations, the inbox) and conversation
// grains (the inbox) share.

package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// grainRef is an actor's handle on one grain, which may live on any node and
// may die, passivate or move at any time. It looks the grain up in the
// background (the cluster's identity lookup can block for seconds while
// membership changes, and the actor keeps serving meanwhile), watches the PID
// it found, leaves it for a new one, checks that requests expecting an answer
// get one, and forgets the PID when the grain terminates, answers moved or
// stays silent. The answers come back to the owning actor as messages naming
// the ref by key (refResolved, refRetry, refCheck); what to do with a new or a
// lost PID (subscribe, resend posts, flush notifications) is the owner's.
//
// A grainRef belongs to one actor and is used only from its Receive.
type grainRef struct {
	key      any // names the ref in the messages it sends its owner
	identity string
	kind     string

	pid       *actor.PID
	resolving bool
	// confirmed is false from a checked request until the grain answers it.
	confirmed bool
}

// refResolved carries a lookup's answer (nil: none found) to the ref's owner.
type refResolved struct {
	key any
	pid *actor.PID
}

// refRetry asks the ref's owner to look the grain up again.
type refRetry struct{ key any }

// refCheck fires a while after a checked request: if the grain has not
// answered (its node may have died before the watch was in place), the owner
// forgets it.
type refCheck struct {
	key any
	pid *actor.PID
}

// resolve looks the grain up in the background, unless a lookup is under
// way; refResolved follows.
func (r *grainRef) resolve(ctx actor.Context, n *Node) {
	if r.resolving {
		return
	}
	r.resolving = true
	self, root, key, identity, kind := ctx.Self(), n.system.Root, r.key, r.identity, r.kind
	go func() {
		root.Send(self, &refResolved{key: key, pid: n.lookup(identity, kind)})
	}()
}

// resolved applies a lookup's answer: a new PID is watched and replaces (and
// unwatches) the previous one, which it returns so that the owner can leave
// it. changed is false when the lookup found nothing (the owner decides
// whether to retry) or the PID the ref has.
func (r *grainRef) resolved(ctx actor.Context, pid *actor.PID) (left *actor.PID, changed bool) {
	r.resolving = false
	if pid == nil || r.is(pid) {
		return nil, false
	}
	left = r.pid
	if left != nil {
		ctx.Unwatch(left)
	}
	r.pid = pid
	ctx.Watch(pid)
	return left, true
}

// is reports whether pid is the ref's grain.
func (r *grainRef) is(pid *actor.PID) bool {
	return r.pid != nil && pid != nil && r.pid.Equal(pid)
}

// request sends msg to the grain with Request (the answer comes to the owner)
// and arranges a refCheck after check.
func (r *grainRef) request(ctx actor.Context, n *Node, msg any, check time.Duration) {
	r.confirmed = false
	ctx.Request(r.pid, msg)
	sendAfter(ctx, n, check, &refCheck{key: r.key, pid: r.pid})
}

// confirm records that the grain answered, if from is the ref's grain; it
// reports whether it was.
func (r *grainRef) confirm(from *actor.PID) bool {
	if !r.is(from) {
		return false
	}
	r.confirmed = true
	return true
}

// silent reports whether c finds the grain it was armed for still
// unanswered.
func (r *grainRef) silent(c *refCheck) bool {
	return !r.confirmed && r.is(c.pid)
}

// forget drops pid (dead, moved or silent) if it is still the ref's grain,
// and reports whether it was.
func (r *grainRef) forget(ctx actor.Context, pid *actor.PID) bool {
	if !r.is(pid) {
		return false
	}
	ctx.Unwatch(r.pid)
	r.pid = nil
	return true
}

// retryLater sends the owner a refRetry after the node's retry interval.
func (r *grainRef) retryLater(ctx actor.Context, n *Node) {
	sendAfter(ctx, n, n.cfg.RetryInterval, &refRetry{key: r.key})
}

// sendAfter sends msg to the actor of ctx after d.
func sendAfter(ctx actor.Context, n *Node, d time.Duration, msg any) {
	self, root := ctx.Self(), n.system.Root
	time.AfterFunc(d, func() { root.Send(self, msg) })
}

// mayBeAlive reports whether a Terminated may be a broken connection rather
// than an ended actor: the connection to the watched actor's node broke
// (AddressTerminated) while the topology still lists that node. Remote
// watches also end that way when a connection fails for a while and then
// comes back — a network partition that healed (chatchaos --partition peers
// saw a hub drop a live grain 4 s after the heal and its visitor stay deaf)
// — though the actor lives on. Whoever watched it then watches it again
// (rewatch) instead of forgetting it: an actor that is gone answers the new
// watch with Terminated, and a node that really died leaves the topology,
// which makes the next Terminated final.
func (n *Node) mayBeAlive(t *actor.Terminated) bool {
	addr := t.GetWho().GetAddress()
	return t.GetWhy() == actor.TerminatedReason_AddressTerminated && addr != n.system.Address() && n.isMember(addr)
}

// rewatch asks its actor to watch pid again (see Node.mayBeAlive).
type rewatch struct{ pid *actor.PID }

func (*rewatch) housekeeping() {}

// rewatchLater sends the actor of ctx a rewatch of pid after a second or
// RetryInterval, whichever is longer: a connection that keeps failing is
// retried at that pace until the topology drops its node.
func (n *Node) rewatchLater(ctx actor.Context, pid *actor.PID) {
	sendAfter(ctx, n, max(n.cfg.RetryInterval, time.Second), &rewatch{pid: pid})
}

// awaySubs are an actor's subscribers whose node left the topology: their
// connection broke (AddressTerminated) and the node is no longer a member.
// A node that died never comes back; one that was cut off (a partition, a
// lost etcd lease) comes back, and its sessions, whose own view may never
// have changed, think they are still subscribed. back returns those whose
// node is a member again, for the actor to subscribe them again; entries
// older than awayFor are dropped.
type awaySubs map[pidKey]awaySub

type awaySub struct {
	pid  *actor.PID
	user int64
	// teams and byTeam are an inbox subscriber's teams (see
	// inboxGrain.teams).
	teams  []string
	byTeam bool
	since  time.Time
}

// awayFor is how long a subscriber whose node left is remembered.
const awayFor = 2 * time.Minute

func (a *awaySubs) leave(s awaySub) {
	if *a == nil {
		*a = make(awaySubs)
	}
	s.since = time.Now()
	(*a)[keyOf(s.pid)] = s
}

func (a awaySubs) back(n *Node) []awaySub {
	var out []awaySub
	for k, s := range a {
		switch {
		case time.Since(s.since) > awayFor:
			delete(a, k)
		case n.isMember(s.pid.GetAddress()):
			delete(a, k)
			out = append(out, s)
		}
	}
	return out
}
