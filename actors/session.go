package actors

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/grainchat/grainchat/actors/chatpb"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// Sink is a session's connection: the transport implements it. Its methods
// are safe for concurrent use and never block.
type Sink interface {
	// Write queues one text frame. When the connection's bounded queue is
	// full the sink closes the connection itself (wire.DisconnectSlowConsumer).
	Write(frame []byte)
	// Close closes the connection with d's code and reason.
	Close(d wire.Disconnect)
	// PostSettled tells the transport that one message frame it handed to the
	// session is settled (acknowledged, refused, or given up with a close):
	// the transport holds at most Config.MaxPendingPosts unsettled message
	// frames per socket and stops reading the socket while it has that many
	// (back-pressure). The session calls it exactly once per Inbound whose
	// request is a message.
	PostSettled()
}

// SessionConfig describes one connected socket.
type SessionConfig struct {
	ConnID string
	Sink   Sink
	User   storage.User
	// ConversationID is the visitor's own conversation; 0 for admins.
	ConversationID int64
	// LastSeq is the newest seq of ConversationID when the visitor connected
	// (read with the user): where its deliveries start.
	LastSeq int64
	// V1 is set when the client chose the grainchat.v1 subprotocol.
	V1 bool
	// TokenExpiresAt is the socket's token's expiry, announced in the
	// welcome frame (the transport closes the socket then).
	TokenExpiresAt time.Time
	// Ready, if not nil, is closed once the session follows what it shows
	// (visitors: their conversation, through the node's hub, at once; admins:
	// the inbox, once its snapshot arrived).
	Ready chan struct{}
}

// Inbound carries one decoded client frame from the transport to its session.
type Inbound struct{ Req wire.Request }

// session is the actor of one WebSocket. It turns client frames into grain
// requests and grain deliveries into frames, and guarantees that its client
// sees each conversation's messages in seq order with no gap and no duplicate:
// it remembers the last seq it delivered per conversation, drops what is not
// newer and fills gaps from the store.
type session struct {
	node   *Node
	cfg    SessionConfig
	logger *slog.Logger // built on first use: see log
	// nonce makes the idempotency keys this session invents for posts without
	// a client_msg_id unique across sessions, nodes and restarts.
	nonce string

	isReady bool
	cursor  map[int64]int64 // conversation → last seq delivered
	// inboxPageSize is the page size of the staff client's last inbox
	// request; 0 until it asks (see pageSize).
	inboxPageSize int
	opened        map[int64]bool  // conversations an admin follows explicitly
	updated       map[int64]int64 // conversation → last_seq of the last inbox_update sent

	links   map[int64]*link // conversation → its grain (see links.go)
	inbox   link            // admins: the inbox grain
	pending map[uint64]*pendingPost
	nextRef uint64
	// sweepArmed is set while a sweepPosts timer is pending.
	sweepArmed bool
	stopped    bool
}

func newSession(n *Node, cfg SessionConfig) *session {
	return &session{
		node:    n,
		cfg:     cfg,
		nonce:   newNonce(),
		cursor:  make(map[int64]int64),
		links:   make(map[int64]*link),
		pending: make(map[uint64]*pendingPost),
	}
}

// log returns the session's logger, built on first use: most sessions never
// log, and slog's With allocates a handler with its attributes formatted.
func (s *session) log() *slog.Logger {
	if s.logger == nil {
		s.logger = s.node.logger.With("component", "session", "conn_id", s.cfg.ConnID, "user_id", s.cfg.User.ID)
	}
	return s.logger
}

// debug logs at debug level, building the logger only if that level is on.
func (s *session) debug(msg string, args ...any) {
	if s.node.logger.Enabled(context.Background(), slog.LevelDebug) {
		s.log().Debug(msg, args...)
	}
}

func (s *session) Receive(ctx actor.Context) {
	defer s.recoverPanic(ctx)
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		if s.cfg.User.IsAdmin {
			if s.cfg.V1 {
				s.write(wire.WelcomeFrame(s.welcome(0, 0)))
			}
			s.resolveInbox(ctx)
			s.scheduleRefresh(ctx)
		} else {
			// The node's hub delivers the conversation's messages and
			// catches the session up with any stored since LastSeq was
			// read; no grain is needed until the visitor posts.
			conv := s.cfg.ConversationID
			s.cursor[conv] = s.cfg.LastSeq
			ctx.Send(s.node.hub.Load(), &hubJoin{conversationID: conv, session: ctx.Self()})
			if s.cfg.V1 {
				s.write(wire.WelcomeFrame(s.welcome(conv, s.cfg.LastSeq)))
			}
			s.markReady()
		}
	case *Inbound:
		s.handle(ctx, msg.Req)
	case *chatpb.Subscribed:
		s.subscribed(ctx, msg)
	case *caughtUp:
		if _, known := s.cursor[msg.conversationID]; known {
			s.catchUp(msg.conversationID, msg.lastSeq)
		}
	case *chatpb.InboxSnapshot:
		s.inboxSnapshot(ctx, msg)
	case *chatpb.Delivery:
		s.deliver(msg)
	case *chatpb.InboxDelivery:
		s.deliver(msg.GetDelivery())
		s.inboxUpdate(msg)
	case *chatpb.PostResult:
		s.postResult(ctx, msg)
	case *sweepPosts:
		s.sweepPosts(ctx)
	case *subscribeCheck:
		s.subscribeChecked(ctx, msg)
	case *inboxCheck:
		s.inboxChecked(ctx, msg)
	case *grainResolved:
		s.resolved(ctx, msg)
	case *retryResolve:
		s.resolve(ctx, msg.conversationID)
	case *inboxResolved:
		s.inboxResolvedMsg(ctx, msg)
	case *retryInbox:
		s.resolveInbox(ctx)
	case *refresh:
		s.refresh(ctx)
	case *actor.Terminated:
		s.grainTerminated(ctx, msg.Who)
	case *actor.Stopping:
		s.stop(ctx)
	}
}

func (s *session) recoverPanic(ctx actor.Context) {
	if r := recover(); r != nil {
		s.log().Error("session panicked", "panic", fmt.Sprint(r))
		s.cfg.Sink.Close(wire.DisconnectInternal)
		ctx.Stop(ctx.Self())
	}
}

func (s *session) markReady() {
	if !s.isReady {
		s.isReady = true
		if s.cfg.Ready != nil {
			close(s.cfg.Ready)
		}
	}
}

func (s *session) write(frame []byte) {
	s.cfg.Sink.Write(frame)
}

func (s *session) fail(e *wire.Error) {
	if s.cfg.V1 {
		s.write(wire.ErrorFrame(e))
	}
}

func (s *session) welcome(conv, lastSeq int64) wire.Welcome {
	return wire.Welcome{
		User:            wire.User{ID: s.cfg.User.ID, Name: s.cfg.User.Name, IsAdmin: s.cfg.User.IsAdmin},
		ConversationID:  conv,
		LastSeq:         lastSeq,
		MaxMessageChars: s.node.cfg.MaxMessageChars,
		StoreID:         s.node.store.StoreID(),
		TokenExpiresAt:  s.cfg.TokenExpiresAt,
	}
}

// subscribedTo reports whether the session holds a subscription to conv's
// grain: an admin's opened conversation. (A visitor follows its own
// conversation through the node's hub.)
func (s *session) subscribedTo(conv int64) bool {
	return s.opened[conv]
}

func (s *session) subscribed(ctx actor.Context, msg *chatpb.Subscribed) {
	conv := msg.GetConversationId()
	if msg.GetErrorCode() == wire.CodeConversationNotFound {
		// Final, whichever activation said it: the grain stops right after
		// answering, so its Terminated may have been handled already.
		if s.opened[conv] {
			delete(s.opened, conv)
			s.fail(&wire.Error{Code: wire.CodeConversationNotFound, Message: msg.GetErrorMessage(), ConversationID: conv})
		}
		return
	}
	l := s.links[conv]
	if l == nil || l.pid == nil || ctx.Sender() == nil || !l.pid.Equal(ctx.Sender()) {
		return // an answer from a grain the session has left
	}
	l.confirmed = true
	if code := msg.GetErrorCode(); code == chatpb.CodeMoved {
		s.forget(ctx, conv, l.pid)
		return
	}
	if code := msg.GetErrorCode(); code != "" {
		if code == wire.CodeConversationNotFound {
			delete(s.opened, conv)
			s.fail(&wire.Error{Code: code, Message: msg.GetErrorMessage(), ConversationID: conv})
			return
		}
		s.fail(&wire.Error{Code: code, Message: msg.GetErrorMessage(), ConversationID: conv})
		s.forget(ctx, conv, l.pid)
		return
	}
	if !s.subscribedTo(conv) {
		return // left meanwhile
	}
	if !s.catchUp(conv, msg.GetLastSeq()) {
		return
	}
	if s.cfg.V1 {
		s.write(wire.OpenedFrame(conv, s.cursor[conv]))
	}
}

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

func (s *session) inboxSnapshot(ctx actor.Context, snap *chatpb.InboxSnapshot) {
	if from := ctx.Sender(); s.inbox.pid != nil && from != nil && s.inbox.pid.Equal(from) {
		s.inbox.confirmed = true
	}
	if snap.GetErrorCode() == chatpb.CodeMoved {
		if from := ctx.Sender(); from != nil {
			s.forgetInbox(ctx, from)
		}
		return
	}
	if code := snap.GetErrorCode(); code != "" {
		s.fail(&wire.Error{Code: code, Message: snap.GetErrorMessage()})
		s.retryLater(ctx, &retryInbox{})
		return
	}
	// The first page of the inbox (the snapshot is sorted, and holds all
	// of it up to storage.MaxInboxSize); inboxPage serves the next ones.
	all := snap.GetEntries()
	first := all[:min(len(all), s.pageSize())]
	entries := make([]wire.InboxEntry, 0, len(first))
	for _, e := range first {
		if !s.catchUp(e.GetConversationId(), e.GetLastSeq()) {
			return
		}
		entries = append(entries, inboxEntryToWire(e))
	}
	if s.cfg.V1 {
		page := wire.InboxPage{Entries: entries, HasMore: len(all) > len(first), StoreID: s.node.store.StoreID()}
		if page.HasMore {
			last := first[len(first)-1]
			page.NextCursor = encodeInboxCursor(storage.InboxCursor{
				LastMessageAt: time.UnixMicro(last.GetLastMessageAtUnixMicro()), ConversationID: last.GetConversationId()})
		}
		s.write(wire.InboxFrame(page))
	}
	s.markReady()
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

func (s *session) handle(ctx actor.Context, req wire.Request) {
	switch req.Type {
	case wire.TypeMessage:
		s.post(ctx, req)
	case wire.TypeHistory:
		s.history(req)
	case wire.TypeInbox:
		if !s.cfg.User.IsAdmin {
			s.fail(&wire.Error{Code: wire.CodeForbidden, Message: "only staff can read the inbox"})
			return
		}
		s.inboxPageSize = inboxPageSize(req.Limit)
		if req.Cursor != "" {
			s.inboxPage(req.Cursor)
			return
		}
		if s.inbox.pid != nil {
			ctx.Request(s.inbox.pid, &chatpb.InboxQuery{})
		}
	case wire.TypeOpen:
		s.open(ctx, req.ConversationID)
	case wire.TypeLeave:
		if !s.cfg.User.IsAdmin && req.ConversationID != s.cfg.ConversationID {
			s.fail(&wire.Error{Code: wire.CodeForbidden, Message: "visitors can only use their own conversation", ConversationID: req.ConversationID})
			return
		}
		if s.opened[req.ConversationID] {
			delete(s.opened, req.ConversationID)
			if l := s.links[req.ConversationID]; l != nil && l.pid != nil {
				ctx.Send(l.pid, &chatpb.Unsubscribe{ConversationId: req.ConversationID})
			}
		}
		if s.cfg.V1 {
			s.write(wire.LeftFrame(req.ConversationID))
		}
	}
}

// conversationFor resolves which conversation a frame may address.
func (s *session) conversationFor(req wire.Request) (int64, *wire.Error) {
	if !s.cfg.User.IsAdmin {
		if req.ConversationID != 0 && req.ConversationID != s.cfg.ConversationID {
			return 0, &wire.Error{Code: wire.CodeForbidden, Message: "visitors can only use their own conversation",
				ClientMsgID: req.ClientMsgID, ConversationID: req.ConversationID}
		}
		return s.cfg.ConversationID, nil
	}
	if req.ConversationID == 0 {
		return 0, &wire.Error{Code: wire.CodeConversationRequired, Message: "staff must name a conversation_id",
			ClientMsgID: req.ClientMsgID}
	}
	return req.ConversationID, nil
}

// inboxPage answers a request for the inbox page after cursor from the store:
// pages after the first are read there, not from the inbox grain. Live
// inbox_update frames cover what moves above the cursor meanwhile.
func (s *session) inboxPage(cursor string) {
	after, ok := decodeInboxCursor(cursor)
	if !ok {
		s.fail(&wire.Error{Code: wire.CodeInvalidRequest, Message: "cursor is not one the server gave"})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.node.cfg.StoreTimeout)
	defer cancel()
	size := s.pageSize()
	rows, err := s.node.store.InboxPage(ctx, after, size+1) // one more: is there a next page?
	if err != nil {
		code := codeFromStorage(err)
		s.fail(&wire.Error{Code: code, Message: messageForCode(code)})
		return
	}
	page := wire.InboxPage{Cursor: cursor, HasMore: len(rows) > size, StoreID: s.node.store.StoreID()}
	rows = rows[:min(len(rows), size)]
	page.Entries = make([]wire.InboxEntry, len(rows))
	for i, e := range rows {
		if _, known := s.cursor[e.ConversationID]; !known {
			s.cursor[e.ConversationID] = e.LastSeq // deliveries start after it
		}
		page.Entries[i] = inboxEntryToWire(inboxEntryToProto(e))
	}
	if page.HasMore {
		page.NextCursor = encodeInboxCursor(rows[len(rows)-1].Cursor())
	}
	if s.cfg.V1 {
		s.write(wire.InboxFrame(page))
	}
}

// pageSize is the staff client's inbox page size.
func (s *session) pageSize() int {
	if s.inboxPageSize == 0 {
		return DefaultInboxPage
	}
	return s.inboxPageSize
}

// inboxPageSize is the page size an inbox request's limit asks for.
func inboxPageSize(limit int) int {
	if limit <= 0 {
		return DefaultInboxPage
	}
	return min(limit, storage.MaxInboxPage)
}

// An inbox cursor on the wire is "<last_message_at in Unix microseconds>.<conversation id>":
// opaque to clients, exact for the store.
func encodeInboxCursor(c storage.InboxCursor) string {
	return strconv.FormatInt(c.LastMessageAt.UnixMicro(), 10) + "." + strconv.FormatInt(c.ConversationID, 10)
}

func decodeInboxCursor(s string) (storage.InboxCursor, bool) {
	at, id, ok := strings.Cut(s, ".")
	if !ok {
		return storage.InboxCursor{}, false
	}
	micros, err1 := strconv.ParseInt(at, 10, 64)
	conv, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil || micros <= 0 || conv <= 0 {
		return storage.InboxCursor{}, false
	}
	return storage.InboxCursor{LastMessageAt: time.UnixMicro(micros).UTC(), ConversationID: conv}, true
}

func (s *session) history(req wire.Request) {
	conv, werr := s.conversationFor(req)
	if werr != nil {
		s.fail(werr)
		return
	}
	limit := req.Limit
	if limit <= 0 {
		limit = storage.DefaultPageSize
	}
	limit = min(limit, MaxHistoryPage)
	ctx, cancel := context.WithTimeout(context.Background(), s.node.cfg.StoreTimeout)
	defer cancel()
	if s.cfg.User.IsAdmin {
		if _, err := s.node.store.Conversation(ctx, conv); err != nil {
			code := codeFromStorage(err)
			s.fail(&wire.Error{Code: code, Message: messageForCode(code), ConversationID: conv})
			return
		}
	}
	// Ask for one more than the page to learn whether more exist.
	msgs, err := s.node.store.Messages(ctx, conv, storage.Page{AfterSeq: req.AfterSeq, BeforeSeq: req.BeforeSeq, Limit: limit + 1})
	if err != nil {
		code := codeFromStorage(err)
		s.fail(&wire.Error{Code: code, Message: messageForCode(code), ConversationID: conv})
		return
	}
	hasMore := len(msgs) > limit
	if hasMore {
		if req.BeforeSeq != 0 && req.AfterSeq == 0 {
			msgs = msgs[1:] // newest page before before_seq: drop the oldest
		} else {
			msgs = msgs[:limit]
		}
	}
	out := make([]wire.Message, len(msgs))
	for i, m := range msgs {
		out[i] = storageToWire(m)
	}
	if s.cfg.V1 {
		s.write(wire.HistoryFrame(conv, out, hasMore))
	}
}

func (s *session) open(ctx actor.Context, conv int64) {
	if !s.cfg.User.IsAdmin {
		if conv != s.cfg.ConversationID {
			s.fail(&wire.Error{Code: wire.CodeForbidden, Message: "visitors can only use their own conversation", ConversationID: conv})
			return
		}
		if s.cfg.V1 {
			s.write(wire.OpenedFrame(conv, s.cursor[conv]))
		}
		return
	}
	if s.opened == nil {
		s.opened = make(map[int64]bool)
	}
	if s.opened[conv] {
		if s.cfg.V1 {
			s.write(wire.OpenedFrame(conv, s.cursor[conv]))
		}
		return
	}
	if len(s.opened) >= s.node.cfg.MaxOpenPerSession {
		s.fail(&wire.Error{Code: wire.CodeTooManyOpen, Message: "too many open conversations; leave one first", ConversationID: conv})
		return
	}
	s.opened[conv] = true
	if l := s.links[conv]; l != nil && l.pid != nil {
		s.subscribe(ctx, conv, l)
		return
	}
	s.resolve(ctx, conv)
}
