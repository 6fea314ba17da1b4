// This file holds read receipts: each side of a conversation learns how far
// the other has read it. A read mark is stored first (storage.Desk.MarkRead
// keeps the conversation's receipts with it); the node that stored it then
// tells the conversation's grain (Receipt), which keeps the furthest mark of
// each side and passes a new one on: staff marks through the hubs to the
// visitor's sessions, the visitor's to the staff sessions that opened the
// conversation. A grain gives its current receipts to each hub and staff
// session that subscribes, and a visitor's session gets them from the store
// when it connects (read with the user by Store.Connect, or by the session),
// so a receipt also reaches whoever was not connected, or subscribed to
// another activation, when it moved.

package actors

import (
	"context"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// receiptsLoaded carries the store's receipts to a visitor's session at
// connect.
type receiptsLoaded struct{ receipts storage.ReadReceipts }

// notifyReceipt tells conversation r's grain that a read mark moved. It looks
// the grain up (activating it if need be): not for an actor's goroutine. A
// receipt that cannot be sent is not lost: it is stored, and sessions read it
// when they connect or subscribe.
func (n *Node) notifyReceipt(r *chatpb.Receipt) {
	if r.GetSeq() <= 0 {
		return
	}
	if pid := n.lookup(conversationIdentity(r.GetConversationId()), ConversationKind); pid != nil {
		n.system.Root.Send(pid, r)
	}
}

// loadReceipts reads the visitor's conversation's receipts for its v1
// client, off the actor's goroutine; receiptsLoaded follows.
func (s *session) loadReceipts(ctx actor.Context) {
	self, root, store, conv, timeout := ctx.Self(), s.node.system.Root, s.node.store, s.cfg.ConversationID, s.node.cfg.StoreTimeout
	go func() {
		c, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		r, err := store.ReadReceipts(c, conv)
		if err != nil {
			return // the next receipt, or the next connect, brings it
		}
		root.Send(self, &receiptsLoaded{receipts: r})
	}()
}

// staffRead writes a staff receipt to the visitor's client if it is further
// than the last one written.
func (s *session) staffRead(seq int64) {
	if !s.cfg.V1 || s.cfg.User.IsAdmin || seq <= s.receiptSeq[s.cfg.ConversationID] {
		return
	}
	s.noteReceipt(s.cfg.ConversationID, seq)
	s.write(wire.ReceiptFrame(s.cfg.ConversationID, seq, wire.ReadByStaff))
}

// receiptDelivery writes a grain's receipt: by staff to the visitor's client,
// by the visitor to a staff client that has the conversation open.
func (s *session) receiptDelivery(d *chatpb.ReceiptDelivery) {
	conv, seq := d.GetConversationId(), d.GetSeq()
	switch {
	case !s.cfg.V1:
	case d.GetByStaff():
		if conv == s.cfg.ConversationID {
			s.staffRead(seq)
		}
	case s.cfg.User.IsAdmin && s.opened[conv] && seq > s.receiptSeq[conv]:
		s.noteReceipt(conv, seq)
		s.write(d.GetV1Frame())
	}
}

func (s *session) noteReceipt(conv, seq int64) {
	if s.receiptSeq == nil {
		s.receiptSeq = make(map[int64]int64)
	}
	s.receiptSeq[conv] = seq
}

// hubReceipt passes a staff receipt on to the visitor's sessions here.
func (h *hub) receipt(ctx actor.Context, d *chatpb.ReceiptDelivery) {
	if !d.GetByStaff() {
		return
	}
	for _, s := range h.sessions[d.GetConversationId()] {
		ctx.Send(s, d)
	}
}

// receipt records a moved read mark and tells the other side if it is the
// furthest of its side.
func (g *conversationGrain) receipt(ctx actor.Context, r *chatpb.Receipt) {
	if r.GetConversationId() != g.id {
		return
	}
	if err := g.load(); err != nil {
		g.debug("receipt dropped: conversation not loaded", "err", err)
		return
	}
	seq := r.GetSeq()
	if r.GetByStaff() {
		if seq <= g.staffRead {
			return
		}
		g.staffRead = seq
	} else {
		if seq <= g.visitorRead {
			return
		}
		g.visitorRead = seq
	}
	d := g.receiptDelivery(r.GetByStaff())
	for _, sub := range g.subs {
		if (sub.GetId() == hubName) == r.GetByStaff() {
			ctx.Send(sub, d)
		}
	}
}

// receiptDelivery is the grain's current receipt of one side.
func (g *conversationGrain) receiptDelivery(byStaff bool) *chatpb.ReceiptDelivery {
	seq, by := g.visitorRead, wire.ReadByVisitor
	if byStaff {
		seq, by = g.staffRead, wire.ReadByStaff
	}
	return &chatpb.ReceiptDelivery{ConversationId: g.id, Seq: seq, ByStaff: byStaff, V1Frame: wire.ReceiptFrame(g.id, seq, by)}
}

// sendReceipt gives a new subscriber the grain's receipt for its side: staff
// marks to a hub, the visitor's mark to a staff session.
func (g *conversationGrain) sendReceipt(ctx actor.Context, sub *actor.PID) {
	byStaff := sub.GetId() == hubName
	if (byStaff && g.staffRead > 0) || (!byStaff && g.visitorRead > 0) {
		ctx.Send(sub, g.receiptDelivery(byStaff))
	}
}
