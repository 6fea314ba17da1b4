// This file holds what a session writes of the messages it receives: each
// conversation's messages in seq order, never twice, never with a gap (gaps
// are filled from the store), and staff's inbox updates once per new
// last_seq.

package actors

import (
	"context"
	"fmt"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// catchUp moves conv's cursor to lastSeq, the grain's view at (re)subscribe
// time: at first subscription that is the starting point; later (after a grain
// restart) what lies between is filled from the store. It returns false when
// the session had to close.
func (s *session) catchUp(conv, lastSeq int64) bool {
	cur, known := s.cursor[conv]
	if !known {
		s.cursor[conv] = lastSeq
		return true
	}
	if lastSeq > cur {
		return s.fill(conv, cur, lastSeq+1)
	}
	return true
}

// inboxUpdate sends a grainchat.v1 admin the inbox entry of a conversation
// once per new last_seq, whichever path (inbox or opened grain) delivered the
// message first.
func (s *session) inboxUpdate(d *chatpb.InboxDelivery) {
	if !s.cfg.V1 {
		return
	}
	conv, seq := d.GetEntry().GetConversationId(), d.GetEntry().GetLastSeq()
	if s.updated == nil {
		s.updated = make(map[int64]int64)
	}
	if seq <= s.updated[conv] {
		return
	}
	s.updated[conv] = seq
	s.write(d.GetUpdateFrame())
}

// deliver writes d's message unless the client has it already, filling any gap
// before it. It reports whether the message was written.
func (s *session) deliver(d *chatpb.Delivery) bool {
	m := d.GetMessage()
	conv, seq := m.GetConversationId(), m.GetSeq()
	cur, known := s.cursor[conv]
	switch {
	case !known:
		// A conversation this session has no starting point for (an admin
		// seeing a conversation newer than its inbox snapshot): start here.
	case seq <= cur:
		return false // duplicate
	case seq > cur+1:
		if !s.fill(conv, cur, seq) {
			return false
		}
	}
	if s.cfg.V1 {
		s.write(d.GetV1Frame())
	} else {
		s.write(d.GetSeedFrame())
	}
	s.cursor[conv] = seq
	return true
}

// fill writes conv's messages with after < seq < before from the store and
// advances the cursor. On failure the client cannot be given a gap-free
// stream: the connection is closed with wire.DisconnectResync so that it reconnects and
// resumes by seq.
func (s *session) fill(conv, after, before int64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.node.cfg.StoreTimeout)
	defer cancel()
	for after+1 < before {
		msgs, err := s.node.store.Messages(ctx, conv, storage.Page{AfterSeq: after, BeforeSeq: before, Limit: storage.MaxPageSize})
		if err == nil && len(msgs) == 0 {
			err = fmt.Errorf("seq %d..%d missing from the store", after+1, before-1)
		}
		if err != nil {
			s.log().Warn("fill gap", "conversation_id", conv, "after_seq", after, "before_seq", before, "err", err)
			s.cfg.Sink.Close(wire.DisconnectResync)
			return false
		}
		for _, m := range msgs {
			w := storageToWire(m)
			if s.cfg.V1 {
				s.write(wire.MessageFrame(w))
			} else {
				s.write(wire.SeedMessageFrame(w))
			}
			after = m.Seq
		}
		s.node.metrics.GapFilled(len(msgs))
	}
	s.cursor[conv] = after
	return true
}
