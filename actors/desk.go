// This file holds the support desk in the actors: a conversation grain
// changes its status and assignee through the store and fans the recorded
// events out (to its subscribers and, through the inbox grain, to every staff
// session); the stale-reply guard on staff posts; and the Node's desk API,
// which sessions and the REST API share.

package actors

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// changed is the store's answer to a Change the grain ran (see change).
type changed struct {
	from *actor.PID
	ref  uint64
	res  storage.ChangeResult
	err  error
}

// change runs c in the store off the grain's goroutine; the grain answers
// and fans out when the store answered (changed).
func (g *conversationGrain) change(ctx actor.Context, c *chatpb.Change) {
	from, ref := ctx.Sender(), c.GetRef()
	if err := g.load(); err != nil {
		g.changeFailed(ctx, from, ref, err)
		return
	}
	sc := storage.Change{ActorID: c.GetActorId()}
	if c.GetSetStatus() {
		st := c.GetStatus()
		sc.Status = &st
	}
	if c.GetSetAssignee() {
		a := c.GetAssigneeId()
		sc.Assignee = &a
	}
	if c.GetSetNote() {
		note := c.GetNote()
		sc.Note = &note
	}
	self, root, store, id, timeout := ctx.Self(), g.node.system.Root, g.node.store, g.id, g.node.cfg.StoreTimeout
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		res, err := store.ChangeConversation(sctx, id, sc)
		root.Send(self, &changed{from: from, ref: ref, res: res, err: err})
	}()
}

func (g *conversationGrain) changeFailed(ctx actor.Context, from *actor.PID, ref uint64, err error) {
	code := codeFromStorage(err)
	msg := messageForCode(code)
	if storage.ErrorCode(err) == storage.EINVALID {
		code = wire.CodeInvalidRequest
		var se *storage.Error
		if errors.As(err, &se) {
			msg = se.Message
		}
	}
	if from != nil {
		ctx.Request(from, &chatpb.ChangeResult{Ref: ref, ErrorCode: code, ErrorMessage: msg})
	}
}

// changeDone answers a change and fans its events out.
func (g *conversationGrain) changeDone(ctx actor.Context, c *changed) {
	if c.err != nil {
		g.changeFailed(ctx, c.from, c.ref, c.err)
		return
	}
	st := c.res.State
	g.status = st.Status
	g.assignee = deskUserToProto(st.Assignee)
	out := &chatpb.ChangeResult{Ref: c.ref, Status: st.Status, Assignee: g.assignee, LastSeq: st.LastSeq}
	for _, e := range c.res.Events {
		out.Events = append(out.Events, eventToProto(e))
	}
	if c.from != nil {
		ctx.Request(c.from, out)
	}
	for _, e := range out.Events {
		g.fanOutEvent(ctx, e)
	}
}

// fanOutEvent sends an event to the subscribers (the hubs pass status events
// on to visitors) and to the inbox, with the conversation's desk state.
func (g *conversationGrain) fanOutEvent(ctx actor.Context, e *chatpb.ChatEvent) {
	d := &chatpb.EventDelivery{Event: e, V1Frame: wire.EventFrame(eventToWire(e))}
	for _, pid := range g.subs {
		ctx.Send(pid, d)
	}
	entry := g.inboxEntry(nil)
	g.sendInbox(ctx, &chatpb.InboxNotify{Entry: entry, Event: d})
}

// inboxEntry is the conversation's inbox entry with its desk state; msg,
// when not nil, is its newest message.
func (g *conversationGrain) inboxEntry(msg *chatpb.ChatMessage) *chatpb.InboxEntry {
	e := &chatpb.InboxEntry{
		ConversationId: g.id,
		UserId:         g.entry.GetUserId(),
		UserExternalId: g.entry.GetUserExternalId(),
		UserName:       g.entry.GetUserName(),
		Team:           g.entry.GetTeam(),
		LastSeq:        g.lastSeq,
		Status:         g.status,
		Assignee:       g.assignee,
	}
	if msg != nil {
		e.LastSeq = msg.GetSeq()
		e.LastMessageAtUnixMicro = msg.GetCreatedAtUnixMicro()
		e.LastMessage = msg
	}
	return e
}

// loadDesk takes the conversation's status and assignee, read on
// activation (batch.Loader, Store.ConversationStates).
func (g *conversationGrain) loadDesk(conv storage.Conversation, assignee *storage.User) {
	g.status = conv.Status
	g.assignee = nil
	if assignee != nil {
		g.assignee = &chatpb.DeskUser{Id: assignee.ID, ExternalId: assignee.ExternalID, Name: assignee.Name}
	}
}

// recentSender is the sender of a message this activation stored or
// delivered, kept for the stale-reply guard.
type recentSender struct {
	seq, senderID int64
	clientMsgID   string
}

// maxRecent bounds the senders a grain remembers (beyond, the guard reads
// the store).
const maxRecent = 256

func (g *conversationGrain) remember(m *chatpb.ChatMessage) {
	if len(g.recent) >= maxRecent {
		g.recent = g.recent[1:]
	}
	g.recent = append(g.recent, recentSender{seq: m.GetSeq(), senderID: m.GetSenderId(), clientMsgID: m.GetClientMsgId()})
}

// stale reports whether p, a guarded post, is out of date: a message of
// another sender was stored after p.based_on_seq. It is called with no batch
// being written, so lastSeq is the conversation's newest seq. A message of
// p's sender with p's client message id after based_on_seq means p is a
// resend of a post stored already: not stale (the store answers duplicate).
func (g *conversationGrain) stale(p *chatpb.Post) (bool, error) {
	based := p.GetBasedOnSeq()
	if based <= 0 || based >= g.lastSeq {
		return false, nil
	}
	senders, err := g.sendersAfter(based)
	if err != nil {
		return false, err
	}
	other := false
	for _, r := range senders {
		if r.senderID == p.GetSenderId() && r.clientMsgID == p.GetClientMsgId() {
			return false, nil
		}
		if r.senderID != p.GetSenderId() {
			other = true
		}
	}
	return other, nil
}

// sendersAfter returns the senders of the messages after seq up to lastSeq:
// from memory when the grain remembers them all, else from the store.
func (g *conversationGrain) sendersAfter(seq int64) ([]recentSender, error) {
	want := g.lastSeq - seq
	if n := int64(len(g.recent)); n >= want && g.recent[n-1].seq == g.lastSeq && g.recent[n-want].seq == seq+1 {
		return g.recent[n-want:], nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.node.cfg.StoreTimeout)
	defer cancel()
	var out []recentSender
	for after := seq; after < g.lastSeq; {
		msgs, err := g.node.store.Messages(ctx, g.id, storage.Page{AfterSeq: after, Limit: storage.MaxPageSize})
		if err != nil {
			return nil, err
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			out = append(out, recentSender{seq: m.Seq, senderID: m.SenderID, clientMsgID: m.ClientMsgID})
		}
		after = msgs[len(msgs)-1].Seq
	}
	return out, nil
}

// refuseStale answers a stale post.
func (g *conversationGrain) refuseStale(ctx actor.Context, pp grainPost) {
	if pp.from != nil {
		ctx.Request(pp.from, &chatpb.PostResult{Ref: pp.post.GetRef(), ErrorCode: wire.CodeStaleReply,
			ErrorMessage: "the conversation got messages after based_on_seq; send again with force to send anyway",
			LastSeq:      g.lastSeq})
	}
}

// ErrDesk is the error of a desk request the grain refused: Code is a wire
// error code (conversation_not_found, invalid_request, forbidden,
// unavailable, internal, stale_reply).
type ErrDesk struct {
	Code    string
	Message string
	// LastSeq is the conversation's newest seq (stale_reply).
	LastSeq int64
}

func (e *ErrDesk) Error() string { return e.Code + ": " + e.Message }

// ChangeOutcome is the state of a conversation after a Change and the events
// it recorded.
type ChangeOutcome struct {
	Status   string
	Assignee *storage.UserRef
	LastSeq  int64
	Events   []storage.Event
}

// Change asks conversation conv's grain to apply c (see
// storage.Desk.ChangeConversation) and fan its events out. Errors are
// *ErrDesk.
func (n *Node) Change(ctx context.Context, conv int64, c storage.Change) (ChangeOutcome, error) {
	req := &chatpb.Change{ActorId: c.ActorID}
	if c.Status != nil {
		req.SetStatus, req.Status = true, *c.Status
	}
	if c.Assignee != nil {
		req.SetAssignee, req.AssigneeId = true, *c.Assignee
	}
	if c.Note != nil {
		req.SetNote, req.Note = true, *c.Note
	}
	res, err := n.requestGrain(ctx, conv, req)
	if err != nil {
		return ChangeOutcome{}, err
	}
	r := res.(*chatpb.ChangeResult)
	if r.GetErrorCode() != "" {
		return ChangeOutcome{}, &ErrDesk{Code: r.GetErrorCode(), Message: r.GetErrorMessage()}
	}
	out := ChangeOutcome{Status: r.GetStatus(), Assignee: deskUserFromProto(r.GetAssignee()), LastSeq: r.GetLastSeq()}
	for _, e := range r.GetEvents() {
		out.Events = append(out.Events, eventFromProto(e))
	}
	return out, nil
}

// PostInput is a message to post through Node.Post.
type PostInput struct {
	Sender      storage.User
	Body        string
	ClientMsgID string
	// BasedOnSeq, when > 0, guards the post against replying out of date
	// (see chatpb.Post.based_on_seq).
	BasedOnSeq int64
}

// Post stores a message in conversation conv through its grain, which
// delivers it live like any other, and returns it. Errors are *ErrDesk.
func (n *Node) Post(ctx context.Context, conv int64, in PostInput) (storage.Message, bool, error) {
	key := in.ClientMsgID
	if key == "" {
		// requestGrain may send the post twice: a key makes that safe.
		key = "~" + newNonce()
	}
	p := &chatpb.Post{
		SenderId: in.Sender.ID, SenderName: in.Sender.Name, SenderIsAdmin: in.Sender.IsAdmin,
		Body: in.Body, ClientMsgId: key, BasedOnSeq: in.BasedOnSeq,
	}
	if !in.Sender.IsAdmin {
		p.SenderTeam = &in.Sender.Team // a merged visitor's (see MergeAnonymous)
	}
	res, err := n.requestGrain(ctx, conv, p)
	if err != nil {
		return storage.Message{}, false, err
	}
	r := res.(*chatpb.PostResult)
	if r.GetErrorCode() != "" {
		return storage.Message{}, false, &ErrDesk{Code: r.GetErrorCode(), Message: r.GetErrorMessage(), LastSeq: r.GetLastSeq()}
	}
	m := r.GetMessage()
	return storage.Message{
		ID: m.GetId(), ConversationID: m.GetConversationId(), Seq: m.GetSeq(), SenderID: m.GetSenderId(),
		SenderName: m.GetSenderName(), SenderIsAdmin: m.GetSenderIsAdmin(), Body: m.GetBody(),
		ClientMsgID: in.ClientMsgID, CreatedAt: fromMicros(m.GetCreatedAtUnixMicro()),
	}, r.GetDuplicate(), nil
}

// MarkRead moves userID's read mark of conv forward to seq in the store and
// tells that user's staff sessions (on every node, through the inbox grain).
// It returns the mark after the move.
func (n *Node) MarkRead(ctx context.Context, userID, conv, seq int64) (int64, error) {
	mark, err := n.store.MarkRead(ctx, userID, conv, seq)
	if err != nil {
		return 0, err
	}
	n.notifyRead(&chatpb.ReadMarked{UserId: userID, ConversationId: conv, Seq: mark})
	go n.notifyReceipt(&chatpb.Receipt{ConversationId: conv, Seq: mark, ByStaff: true})
	return mark, nil
}

// notifyRead sends a moved read mark to the inbox grain, which tells the
// user's sessions. It looks the grain up: not for an actor's goroutine. A
// mark that cannot be sent is not lost: it is stored, and inbox pages show
// it.
func (n *Node) notifyRead(rm *chatpb.ReadMarked) {
	if pid := n.lookup(inboxIdentity, InboxKind); pid != nil {
		n.system.Root.Send(pid, rm)
	}
}

// requestGrain sends msg to conversation conv's grain and waits for its
// answer, looking the grain up again when it moved or did not answer, until
// ctx ends.
func (n *Node) requestGrain(ctx context.Context, conv int64, msg any) (any, error) {
	identity := conversationIdentity(conv)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, &ErrDesk{Code: wire.CodeUnavailable, Message: messageForCode(wire.CodeUnavailable)}
			case <-time.After(min(50*time.Millisecond<<min(attempt, 4), time.Second)):
			}
		}
		pid := n.lookup(identity, ConversationKind)
		if pid == nil {
			continue
		}
		wait := n.cfg.PostTimeout
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		if wait <= 0 {
			return nil, &ErrDesk{Code: wire.CodeUnavailable, Message: messageForCode(wire.CodeUnavailable)}
		}
		res, err := n.system.Root.RequestFuture(pid, msg, wait).Result()
		if err != nil {
			continue // timed out or dead letter: look it up again
		}
		switch r := res.(type) {
		case *chatpb.PostResult:
			if r.GetErrorCode() == chatpb.CodeMoved {
				continue
			}
		case *chatpb.ChangeResult:
			if r.GetErrorCode() == chatpb.CodeMoved {
				continue
			}
		}
		return res, nil
	}
}

func deskUserToProto(u *storage.UserRef) *chatpb.DeskUser {
	if u == nil {
		return nil
	}
	return &chatpb.DeskUser{Id: u.ID, ExternalId: u.ExternalID, Name: u.Name}
}

func deskUserFromProto(u *chatpb.DeskUser) *storage.UserRef {
	if u == nil {
		return nil
	}
	return &storage.UserRef{ID: u.GetId(), ExternalID: u.GetExternalId(), Name: u.GetName()}
}

func deskUserToWire(u *chatpb.DeskUser) *wire.DeskUser {
	if u == nil {
		return nil
	}
	return &wire.DeskUser{ID: u.GetId(), ExternalID: u.GetExternalId(), Name: u.GetName()}
}

func eventToProto(e storage.Event) *chatpb.ChatEvent {
	return &chatpb.ChatEvent{
		Id: e.ID, ConversationId: e.ConversationID, AfterSeq: e.AfterSeq, Kind: e.Kind, Status: e.Status,
		Assignee: deskUserToProto(e.Assignee), Actor: deskUserToProto(&e.Actor),
		CreatedAtUnixMicro: e.CreatedAt.UnixMicro(), Body: e.Body,
	}
}

func eventFromProto(e *chatpb.ChatEvent) storage.Event {
	out := storage.Event{
		ID: e.GetId(), ConversationID: e.GetConversationId(), AfterSeq: e.GetAfterSeq(), Kind: e.GetKind(),
		Status: e.GetStatus(), Assignee: deskUserFromProto(e.GetAssignee()), CreatedAt: fromMicros(e.GetCreatedAtUnixMicro()),
		Body: e.GetBody(),
	}
	if a := deskUserFromProto(e.GetActor()); a != nil {
		out.Actor = *a
	}
	return out
}

func eventToWire(e *chatpb.ChatEvent) wire.Event {
	out := wire.Event{
		ID: e.GetId(), ConversationID: e.GetConversationId(), AfterSeq: e.GetAfterSeq(), Kind: e.GetKind(),
		Status: e.GetStatus(), Assignee: deskUserToWire(e.GetAssignee()), CreatedAt: fromMicros(e.GetCreatedAtUnixMicro()),
		Body: e.GetBody(),
	}
	if a := deskUserToWire(e.GetActor()); a != nil {
		out.Actor = *a
	}
	return out
}

// StorageEventToWire converts a stored event for frames and the REST API.
func StorageEventToWire(e storage.Event) wire.Event { return eventToWire(eventToProto(e)) }
