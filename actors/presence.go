// This file holds presence: which visitors are connected anywhere in the
// cluster, when they were last seen, and whether any staff user is available.
//
// Every node runs one presence actor. Its node's sessions join it when they
// start and leave it when they stop; it tells the other nodes' presence actors
// what changed (PresenceState, batched every presenceTick) and its whole state
// every presenceFullEvery, which doubles as a heartbeat. So each node knows the
// cluster's presence without a grain in between, and the message path (hubs,
// grains, the inbox) carries none of it.
//
//   - A visitor is online while one of their sessions is open on any node. A
//     session that closes leaves the visitor online for Config.PresenceGrace
//     more, so that a reload shows nothing; then the visitor is offline and
//     their last-seen time is stored (in batches).
//   - A node that leaves the topology, or is not heard from for
//     Config.PresencePeerTimeout, is dropped: its visitors are offline for the
//     others from then on, until they reconnect somewhere.
//   - Staff are available while a staff session that is not away is open on
//     any node; a closed one counts for the grace too (a staff reload does
//     not show visitors "away").
//
// Staff sessions get the online conversations when they join and a change for
// each visitor who comes or goes; visitors' grainchat.v1 sessions get staff
// availability when they join and when it changes.

package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// presenceName is the name of every node's presence actor.
const presenceName = "grainchat-presence"

// Presence timing defaults (see Config).
const (
	DefaultPresenceGrace       = 3 * time.Second
	DefaultPresencePeerTimeout = 12 * time.Second
)

// How often the presence actor sends its changes, its full state, and stores
// last-seen times.
const (
	presenceTick      = 250 * time.Millisecond
	presenceFullEvery = 4 * time.Second
	presenceSaveEvery = 2 * time.Second
	// maxLastSeenMemory bounds the last-seen times kept in memory; the
	// store keeps them all.
	maxLastSeenMemory = 100_000
	// maxUnsavedLastSeen bounds the last-seen times waiting for the store.
	maxUnsavedLastSeen = 10 * storage.MaxLastSeenBatch
)

// Messages between a node's sessions and its presence actor.
type (
	// presenceJoin: a session started. Visitors name their conversation;
	// staff their user.
	presenceJoin struct {
		session *actor.PID
		conv    int64 // visitors
		staff   bool
		userID  int64
		v1      bool
	}
	// presenceLeave: a session stopped.
	presenceLeave struct{ session *actor.PID }
	// presenceAway: a staff session set itself away or back.
	presenceAway struct {
		session *actor.PID
		away    bool
	}
	// presenceTopology: the members' addresses changed.
	presenceTopology struct{ addrs []string }
	// presenceTimer: the actor's periodic work.
	presenceTimer struct{}
	// presenceQuery asks whether the conversations' visitors are online
	// (answered with a map[int64]VisitorPresence through a future).
	presenceQuery struct{ convs []int64 }
	// staffQuery asks whether any staff user is available (answered with a
	// bool through a future).
	staffQuery struct{}
	// lastSeenSaved: a batch of last-seen times was written (or not).
	lastSeenSaved struct {
		seen []storage.LastSeen
		err  error
	}
)

// Messages from the presence actor to sessions.
type (
	// presenceSnapshot gives a staff session the online conversations.
	presenceSnapshot struct{ online map[int64]bool }
	// presenceChange tells a staff session that a visitor came or left.
	presenceChange struct {
		conv     int64
		online   bool
		lastSeen time.Time
	}
	// availabilityChange tells a visitor's session whether staff are
	// available.
	availabilityChange struct{ staffOnline bool }
)

// VisitorPresence is whether a conversation's visitor is connected, and when
// they were last (zero: not known).
type VisitorPresence struct {
	Online   bool
	LastSeen time.Time
}

// localSession is a session of this node, as presence knows it.
type localSession struct {
	pid    *actor.PID
	conv   int64
	staff  bool
	userID int64
	away   bool
	v1     bool
	// left is when a staff session closed (see staffLeaving).
	left time.Time
}

// peerPresence is what another node said it has.
type peerPresence struct {
	online map[int64]bool
	staff  []*chatpb.StaffPresence
	heard  time.Time
}

type presence struct {
	node *Node

	sessions map[pidKey]*localSession
	// staffLeaving are closed staff sessions within the grace.
	staffLeaving map[pidKey]*localSession
	visitors     map[int64]int       // conversation → visitor sessions here
	leaving      map[int64]time.Time // conversation → when its last session here closed
	peers        map[string]*peerPresence
	addrs        []string // the other members' addresses

	staffOnline bool
	lastSeen    map[int64]time.Time

	// Changes of this node's own state not yet sent to the peers.
	sendOnline, sendOffline map[int64]bool
	sendStaff               bool
	lastFull                time.Time

	unsaved   []storage.LastSeen
	saving    bool
	lastSaved time.Time

	// pages are the visitors' pages (visitorpage.go).
	pages pageState
}

func newPresence(n *Node) actor.Actor {
	return &presence{
		node:         n,
		sessions:     make(map[pidKey]*localSession),
		staffLeaving: make(map[pidKey]*localSession),
		visitors:     make(map[int64]int),
		leaving:      make(map[int64]time.Time),
		peers:        make(map[string]*peerPresence),
		lastSeen:     make(map[int64]time.Time),
		sendOnline:   make(map[int64]bool),
		sendOffline:  make(map[int64]bool),
		pages:        newPageState(),
	}
}

func (p *presence) Receive(ctx actor.Context) {
	defer func() {
		// A presence actor that stopped would leave its node's sessions
		// without presence: log and go on.
		if r := recover(); r != nil {
			p.node.logger.Error("presence panicked", "panic", r)
		}
	}()
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		p.after(ctx)
	case *presenceJoin:
		p.join(ctx, msg)
	case *presenceLeave:
		p.leave(ctx, msg.session)
	case *presenceAway:
		if s := p.sessions[keyOf(msg.session)]; s != nil && s.staff && s.away != msg.away {
			s.away = msg.away
			p.sendStaff = true
			p.checkAvailability(ctx)
		}
	case *chatpb.PresenceState:
		p.peerState(ctx, ctx.Sender(), msg)
	case *presenceTopology:
		p.topology(ctx, msg.addrs)
	case *presenceTimer:
		p.after(ctx) // first: a panic in tick must not stop the timer
		p.tick(ctx)
	case *presenceQuery:
		out := make(map[int64]VisitorPresence, len(msg.convs))
		for _, conv := range msg.convs {
			out[conv] = VisitorPresence{Online: p.online(conv), LastSeen: p.lastSeen[conv]}
		}
		ctx.Respond(out)
	case *staffQuery:
		ctx.Respond(p.anyStaff())
	case *presencePage:
		p.localPage(ctx, msg.page)
	case *pageQuery:
		pg := &chatpb.VisitorPage{}
		if r, ok := p.pages.recent[msg.conv]; ok {
			pg = r.page
		}
		ctx.Respond(pg)
	case *pagesSaved:
		p.pagesWritten(msg)
	case *lastSeenSaved:
		p.saving = false
		if msg.err != nil {
			p.node.logger.Warn("presence: storing last-seen times failed; retrying", "err", msg.err, "count", len(msg.seen))
			p.unsaved = append(msg.seen, p.unsaved...)
			if over := len(p.unsaved) - maxUnsavedLastSeen; over > 0 {
				p.unsaved = p.unsaved[over:] // the store is down for long: keep the newest
			}
		}
	}
}

func (p *presence) after(ctx actor.Context) {
	self, root := ctx.Self(), p.node.system.Root
	time.AfterFunc(presenceTick, func() { root.Send(self, &presenceTimer{}) })
}

// online reports whether conv's visitor is connected anywhere (or closed
// their last socket here less than the grace ago).
func (p *presence) online(conv int64) bool {
	if p.visitors[conv] > 0 {
		return true
	}
	if _, ok := p.leaving[conv]; ok {
		return true
	}
	for _, peer := range p.peers {
		if peer.online[conv] {
			return true
		}
	}
	return false
}

func (p *presence) join(ctx actor.Context, j *presenceJoin) {
	k := keyOf(j.session)
	if _, ok := p.sessions[k]; ok {
		return
	}
	s := &localSession{pid: j.session, conv: j.conv, staff: j.staff, userID: j.userID, v1: j.v1}
	p.sessions[k] = s
	// Not watched: a session always says it leaves (its Stopping), and a
	// watch costs ≈ 0.5 KiB an idle socket on both sides.
	if s.staff {
		p.sendStaff = true
		ctx.Send(j.session, &presenceSnapshot{online: p.onlineSet()})
		p.checkAvailability(ctx)
		return
	}
	if s.v1 {
		ctx.Send(j.session, &availabilityChange{staffOnline: p.staffOnline})
	}
	was := p.online(s.conv)
	if _, ok := p.leaving[s.conv]; ok {
		delete(p.leaving, s.conv) // a reload: it never left
	} else if p.visitors[s.conv] == 0 {
		p.sendOnline[s.conv], p.sendOffline[s.conv] = true, false
	}
	p.visitors[s.conv]++
	if !was {
		p.changed(ctx, s.conv, true)
	}
}

func (p *presence) leave(ctx actor.Context, pid *actor.PID) {
	k := keyOf(pid)
	s := p.sessions[k]
	if s == nil {
		return
	}
	delete(p.sessions, k)
	if s.staff {
		s.left = time.Now() // available for the grace (see tick)
		p.staffLeaving[k] = s
		return
	}
	if p.visitors[s.conv]--; p.visitors[s.conv] <= 0 {
		delete(p.visitors, s.conv)
		// Offline after the grace, unless back. To the microsecond, as the
		// store and the frames keep it: every copy of it is the same.
		p.leaving[s.conv] = time.Now().Truncate(time.Microsecond)
	}
}

// tick ends the graces that ran out, drops silent peers, sends this node's
// changes (or, now and then, its whole state) to the peers, and stores
// last-seen times.
func (p *presence) tick(ctx actor.Context) {
	now := time.Now()
	for conv, left := range p.leaving {
		if now.Sub(left) < p.node.cfg.PresenceGrace {
			continue
		}
		delete(p.leaving, conv)
		p.sendOffline[conv], p.sendOnline[conv] = true, false
		p.seen(conv, left, true)
		if !p.online(conv) {
			p.changed(ctx, conv, false)
		}
	}
	for k, s := range p.staffLeaving {
		if now.Sub(s.left) >= p.node.cfg.PresenceGrace {
			delete(p.staffLeaving, k)
			p.sendStaff = true
			p.checkAvailability(ctx)
		}
	}
	for addr, peer := range p.peers {
		if now.Sub(peer.heard) >= p.node.cfg.PresencePeerTimeout {
			p.node.logger.Warn("presence: a node went silent; its visitors are offline", "address", addr)
			p.dropPeer(ctx, addr)
		}
	}
	if now.Sub(p.lastFull) >= presenceFullEvery {
		p.broadcastFull(ctx)
	} else if st := p.delta(); st != nil {
		p.broadcast(ctx, st)
	}
	p.pagesTick(ctx, now)
	if len(p.unsaved) > 0 && !p.saving && (now.Sub(p.lastSaved) >= presenceSaveEvery || len(p.unsaved) >= storage.MaxLastSeenBatch) {
		p.save(ctx)
	}
}

// seen records that conv's visitor was last seen at t: kept in memory for the
// presence frames and, if store, stored in the next batch.
func (p *presence) seen(conv int64, t time.Time, store bool) {
	if len(p.lastSeen) >= maxLastSeenMemory {
		clear(p.lastSeen) // the store has them
	}
	p.lastSeen[conv] = t
	if store {
		p.unsaved = append(p.unsaved, storage.LastSeen{ConversationID: conv, At: t})
	}
}

// save writes a batch of last-seen times off the actor's goroutine.
func (p *presence) save(ctx actor.Context) {
	batch := p.unsaved[:min(len(p.unsaved), storage.MaxLastSeenBatch)]
	p.unsaved = p.unsaved[len(batch):]
	p.saving, p.lastSaved = true, time.Now()
	self, root, store, timeout := ctx.Self(), p.node.system.Root, p.node.store, p.node.cfg.StoreTimeout
	go func() {
		c, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		root.Send(self, &lastSeenSaved{seen: batch, err: store.SaveLastSeen(c, batch)})
	}()
}

// changed tells this node's staff sessions that conv's visitor came or left.
func (p *presence) changed(ctx actor.Context, conv int64, online bool) {
	c := &presenceChange{conv: conv, online: online}
	if !online {
		c.lastSeen = p.lastSeen[conv]
	}
	for _, s := range p.sessions {
		if s.staff {
			ctx.Send(s.pid, c)
		}
	}
}

// checkAvailability tells this node's visitors when staff availability
// changed.
func (p *presence) checkAvailability(ctx actor.Context) {
	now := p.anyStaff()
	if now == p.staffOnline {
		return
	}
	p.staffOnline = now
	c := &availabilityChange{staffOnline: now}
	for _, s := range p.sessions {
		if !s.staff && s.v1 {
			ctx.Send(s.pid, c)
		}
	}
}

func (p *presence) anyStaff() bool {
	for _, s := range p.sessions {
		if s.staff && !s.away {
			return true
		}
	}
	for _, s := range p.staffLeaving {
		if !s.away {
			return true
		}
	}
	for _, peer := range p.peers {
		for _, st := range peer.staff {
			if !st.GetAway() {
				return true
			}
		}
	}
	return false
}

// onlineSet returns every online conversation.
func (p *presence) onlineSet() map[int64]bool {
	out := make(map[int64]bool, len(p.visitors)+len(p.leaving))
	for conv := range p.visitors {
		out[conv] = true
	}
	for conv := range p.leaving {
		out[conv] = true
	}
	for _, peer := range p.peers {
		for conv := range peer.online {
			out[conv] = true
		}
	}
	return out
}

// fullState is this node's whole state. Sent to every peer, it replaces the
// changes not yet sent (see broadcastFull); to one peer, it does not.
func (p *presence) fullState() *chatpb.PresenceState {
	st := &chatpb.PresenceState{Full: true, StaffSet: true, Staff: p.localStaff()}
	for conv := range p.visitors {
		st.Online = append(st.Online, conv)
	}
	for conv := range p.leaving {
		st.Online = append(st.Online, conv)
	}
	return st
}

// broadcastFull sends this node's whole state to every peer.
func (p *presence) broadcastFull(ctx actor.Context) {
	st := p.fullState()
	st.Pages = p.takePages()
	// The visitors who left since the last state, with when they left: the
	// full state replaces the delta that would have said it (without them,
	// peers would record the time the state arrived).
	for conv, off := range p.sendOffline {
		if off {
			st.Offline = append(st.Offline, conv)
			st.OfflineAtUnixMicro = append(st.OfflineAtUnixMicro, p.lastSeen[conv].UnixMicro())
		}
	}
	p.broadcast(ctx, st)
	clear(p.sendOnline)
	clear(p.sendOffline)
	p.sendStaff = false
	p.lastFull = time.Now()
}

// delta is this node's changes since the last state sent; nil if none.
func (p *presence) delta() *chatpb.PresenceState {
	if len(p.sendOnline) == 0 && len(p.sendOffline) == 0 && !p.sendStaff && len(p.pages.send) == 0 {
		return nil
	}
	st := &chatpb.PresenceState{Pages: p.takePages()}
	for conv, on := range p.sendOnline {
		if on {
			st.Online = append(st.Online, conv)
		}
	}
	for conv, off := range p.sendOffline {
		if off {
			st.Offline = append(st.Offline, conv)
			st.OfflineAtUnixMicro = append(st.OfflineAtUnixMicro, p.lastSeen[conv].UnixMicro())
		}
	}
	if p.sendStaff {
		st.StaffSet, st.Staff = true, p.localStaff()
	}
	clear(p.sendOnline)
	clear(p.sendOffline)
	p.sendStaff = false
	return st
}

func (p *presence) localStaff() []*chatpb.StaffPresence {
	var out []*chatpb.StaffPresence
	for _, s := range p.sessions {
		if s.staff {
			out = append(out, &chatpb.StaffPresence{UserId: s.userID, Away: s.away})
		}
	}
	for _, s := range p.staffLeaving {
		out = append(out, &chatpb.StaffPresence{UserId: s.userID, Away: s.away})
	}
	return out
}

func (p *presence) broadcast(ctx actor.Context, st *chatpb.PresenceState) {
	for _, addr := range p.addrs {
		ctx.Request(actor.NewPID(addr, presenceName), st)
	}
}

// peerState applies another node's state, telling this node's sessions what
// changed.
func (p *presence) peerState(ctx actor.Context, from *actor.PID, st *chatpb.PresenceState) {
	if from == nil || from.GetAddress() == p.node.system.Address() || !p.node.isMember(from.GetAddress()) {
		return // a node this one has dropped: it rejoins with the topology
	}
	addr := from.GetAddress()
	peer := p.peers[addr]
	if peer == nil {
		peer = &peerPresence{online: make(map[int64]bool)}
		p.peers[addr] = peer
		// A node new to this one: it gets this node's state at once.
		ctx.Request(from, p.fullState())
	}
	peer.heard = time.Now()
	// Every conversation the state names, or the node had, with whether it
	// was online before the state applies.
	before := make(map[int64]bool)
	left := make(map[int64]time.Time) // when the peer's visitors left, as it says
	note := func(conv int64) {
		if _, ok := before[conv]; !ok {
			before[conv] = p.online(conv)
		}
	}
	for _, conv := range st.GetOnline() {
		note(conv)
	}
	if st.GetFull() {
		for conv := range peer.online {
			note(conv)
		}
		peer.online = make(map[int64]bool, len(st.GetOnline()))
	}
	// A full state names the visitors who left since the last state too,
	// with their times, as a delta does.
	at := st.GetOfflineAtUnixMicro()
	for i, conv := range st.GetOffline() {
		note(conv)
		delete(peer.online, conv)
		if i < len(at) && at[i] > 0 {
			left[conv] = time.UnixMicro(at[i]).UTC()
		}
	}
	for _, conv := range st.GetOnline() {
		peer.online[conv] = true
	}
	// The node that had the visitor stores when they left.
	p.notifyFlips(ctx, before, left, false)
	if st.GetStaffSet() {
		peer.staff = st.GetStaff()
		p.checkAvailability(ctx)
	}
	p.peerPages(ctx, st.GetPages())
}

// notifyFlips tells staff sessions about the conversations whose online
// state differs from before; store also stores when the visitors who left
// were last seen: at their time in left, else now.
func (p *presence) notifyFlips(ctx actor.Context, before map[int64]bool, left map[int64]time.Time, store bool) {
	now := time.Now().Truncate(time.Microsecond) // as leave's
	for conv, was := range before {
		if on := p.online(conv); on != was {
			if !on {
				at, ok := left[conv]
				if !ok {
					at = now
				}
				p.seen(conv, at, store)
			}
			p.changed(ctx, conv, on)
		}
	}
}

// topology drops the nodes that left and sends this node's state to the
// ones that joined.
func (p *presence) topology(ctx actor.Context, addrs []string) {
	self := p.node.system.Address()
	known := make(map[string]bool, len(p.addrs))
	for _, a := range p.addrs {
		known[a] = true
	}
	p.addrs = p.addrs[:0]
	current := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		if a == self {
			continue
		}
		current[a] = true
		p.addrs = append(p.addrs, a)
		if !known[a] {
			ctx.Request(actor.NewPID(a, presenceName), p.fullState())
		}
	}
	for addr := range p.peers {
		if !current[addr] {
			p.dropPeer(ctx, addr)
		}
	}
}

// dropPeer forgets a node: its visitors are offline unless connected
// elsewhere, its staff gone.
func (p *presence) dropPeer(ctx actor.Context, addr string) {
	peer := p.peers[addr]
	if peer == nil {
		return
	}
	before := make(map[int64]bool, len(peer.online))
	for conv := range peer.online {
		before[conv] = true
	}
	delete(p.peers, addr)
	p.notifyFlips(ctx, before, nil, true) // the node that had them cannot
	p.checkAvailability(ctx)
}

// joinPresence tells the node's presence actor that the session started.
func (s *session) joinPresence(ctx actor.Context) {
	if p := s.node.presence.Load(); p != nil {
		ctx.Send(p, &presenceJoin{session: ctx.Self(), conv: s.cfg.ConversationID, staff: s.cfg.User.IsAdmin,
			userID: s.cfg.User.ID, v1: s.cfg.V1})
	}
}

// leavePresence tells the node's presence actor that the session stops.
func (s *session) leavePresence(ctx actor.Context) {
	if p := s.node.presence.Load(); p != nil {
		ctx.Send(p, &presenceLeave{session: ctx.Self()})
	}
}

// presenceChanged records a visitor's coming or leaving and tells a staff
// client.
func (s *session) presenceChanged(c *presenceChange) {
	if s.online == nil {
		s.online = make(map[int64]bool)
	}
	if c.online {
		s.online[c.conv] = true
		delete(s.leftAt, c.conv)
	} else {
		delete(s.online, c.conv)
		s.rememberLeft(c.conv, c.lastSeen)
	}
	if s.cfg.V1 {
		s.write(wire.PresenceFrame(c.conv, wire.VisitorPresence{Online: c.online, LastSeen: c.lastSeen}))
	}
}

// availability tells a visitor's client whether staff are available.
func (s *session) availability(c *availabilityChange) {
	if s.cfg.V1 && !s.cfg.User.IsAdmin {
		s.write(wire.AvailabilityFrame(c.staffOnline, s.node.cfg.AwayMessage))
	}
}

// away sets a staff session away or back.
func (s *session) away(ctx actor.Context, req wire.Request) {
	if !s.cfg.User.IsAdmin {
		s.fail(&wire.Error{Code: wire.CodeForbidden, Message: "only staff can be away"})
		return
	}
	if p := s.node.presence.Load(); p != nil {
		ctx.Send(p, &presenceAway{session: ctx.Self(), away: req.Away})
	}
	if s.cfg.V1 {
		s.write(wire.AwayFrame(req.Away))
	}
}

// maxLeftAt bounds a staff session's leftAt. The presence actors store
// last-seen times within seconds (presenceSaveEvery), so only the latest
// departures are missing from the store; past the bound the session
// forgets them all and reads the store's.
const maxLeftAt = 1024

// rememberLeft records that conv's visitor left at t, for the inbox pages
// read before the store has it (see withPresence).
func (s *session) rememberLeft(conv int64, t time.Time) {
	if t.IsZero() {
		return
	}
	if s.leftAt == nil || len(s.leftAt) >= maxLeftAt {
		s.leftAt = make(map[int64]time.Time)
	}
	s.leftAt[conv] = t
}

// withPresence fills the entries' visitor presence: online from what the
// node's presence actor told the session, the last-seen times of the others
// from the store (left out if it fails), or from the presence frames the
// session got when they are later (the store gets them in batches, a few
// seconds after the visitor left).
func (s *session) withPresence(ctx context.Context, entries []wire.InboxEntry) {
	var offline []int64
	for i := range entries {
		conv := entries[i].ConversationID
		entries[i].Visitor = &wire.VisitorPresence{Online: s.online[conv]}
		if !s.online[conv] {
			offline = append(offline, conv)
		}
	}
	if len(offline) == 0 {
		return
	}
	seen, err := s.node.store.LastSeen(ctx, offline)
	if err != nil {
		seen = nil // the session's own, if any
	}
	for i := range entries {
		v := entries[i].Visitor
		if v.Online {
			continue
		}
		if at, ok := seen[entries[i].ConversationID]; ok {
			v.LastSeen = at
		}
		if at, ok := s.leftAt[entries[i].ConversationID]; ok && at.After(v.LastSeen) {
			v.LastSeen = at
		}
	}
}

// StaffAvailable returns whether a staff user is available anywhere in the
// cluster (a staff session that is not away, or closed less than the grace
// ago).
func (n *Node) StaffAvailable(ctx context.Context) (bool, error) {
	res, err := n.askPresence(ctx, &staffQuery{})
	if err != nil {
		return false, err
	}
	return res.(bool), nil
}

// askPresence asks this node's presence actor q, within the store timeout
// and ctx's deadline.
func (n *Node) askPresence(ctx context.Context, q any) (any, error) {
	p := n.presence.Load()
	if p == nil {
		return nil, &ErrDesk{Code: wire.CodeUnavailable, Message: messageForCode(wire.CodeUnavailable)}
	}
	wait := n.cfg.StoreTimeout
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d))
	}
	res, err := n.system.Root.RequestFuture(p, q, wait).Result()
	if err != nil {
		return nil, &ErrDesk{Code: wire.CodeUnavailable, Message: messageForCode(wire.CodeUnavailable)}
	}
	return res, nil
}

// VisitorPresence returns whether the visitors of conversations ids are
// connected anywhere in the cluster, and when they were last seen if not
// (from the store when this node has not seen them leave). At most
// storage.MaxLastSeenBatch ids.
func (n *Node) VisitorPresence(ctx context.Context, ids []int64) (map[int64]VisitorPresence, error) {
	res, err := n.askPresence(ctx, &presenceQuery{convs: ids})
	if err != nil {
		return nil, err
	}
	out := res.(map[int64]VisitorPresence)
	var unknown []int64
	for id, v := range out {
		if !v.Online && v.LastSeen.IsZero() {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) == 0 {
		return out, nil
	}
	seen, err := n.store.LastSeen(ctx, unknown)
	if err != nil {
		return nil, err
	}
	for id, at := range seen {
		out[id] = VisitorPresence{LastSeen: at}
	}
	return out, nil
}
