// This file holds the session actor: what it is, how it starts and stops, its
// Receive, and how it routes client requests. Posting is in posting.go,
// delivery and gap filling in delivery.go, following grains (the inbox, opened
// conversations) in follow.go, inbox pages in inboxpage.go.

package actors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
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
	// Teams are a staff member's teams (their token's teams claim, valid
	// names): they see those teams' conversations and those without a team
	// (storage.InboxQuery.Teams). nil: every conversation.
	Teams []string
	// LastSeq is the newest seq of ConversationID when the visitor connected
	// (read with the user): where its deliveries start.
	LastSeq int64
	// V1 is set when the client chose the grainchat.v1 subprotocol.
	V1 bool
	// TokenExpiresAt is the socket's token's expiry, announced in the
	// welcome frame (the transport closes the socket then).
	TokenExpiresAt time.Time
	// Status is the visitor's conversation's status when it connected.
	Status string
	// Receipts are the visitor's conversation's read receipts when it
	// connected, if the store read them with the user (storage.Conversation
	// Receipts); nil: a v1 session reads them itself.
	Receipts *storage.ReadReceipts
	// UserAgent is a v1 visitor's handshake's User-Agent (wire.UserAgent),
	// which goes with its page reports; "" otherwise.
	UserAgent string
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
	// a client_msg_id unique across sessions, nodes and restarts (made at the
	// first such post).
	nonce string

	isReady bool
	cursor  map[int64]int64 // conversation → last seq delivered
	// inboxPageSize is the page size of the staff client's last inbox
	// request; 0 until it asks (see pageSize).
	inboxPageSize int
	opened        map[int64]bool  // conversations an admin follows explicitly
	updated       map[int64]int64 // conversation → last_seq of the last inbox_update sent

	// events are the desk events written (see seenEvents); readSeq the
	// staff user's read marks as written (see desksession.go).
	events  seenEvents
	readSeq map[int64]int64
	// typedAt is when the session last forwarded typing, per conversation
	// (see live.go).
	typedAt map[int64]time.Time
	// receiptSeq is the furthest read receipt written per conversation
	// (see receipts.go).
	receiptSeq map[int64]int64
	// online are the conversations whose visitor is connected (staff; see
	// presence.go).
	online map[int64]bool
	// leftAt are the last-seen times of the visitors this session saw
	// leave (staff; see presence.go), until the store has them.
	leftAt map[int64]time.Time
	// pageURL and pageTitle are the page a visitor's client last reported;
	// visitorAt the time of the page of the visitor frame last written per
	// opened conversation (staff). See visitorpage.go.
	pageURL, pageTitle string
	visitorAt          map[int64]time.Time

	// links and pending are made at first use: most sessions of an idle
	// node never post.
	links   map[int64]*link // conversation → its grain (see follow.go)
	inbox   grainRef        // admins: the inbox grain
	pending map[uint64]*pendingPost
	nextRef uint64
	// sweepArmed is set while a sweepPosts timer is pending.
	sweepArmed bool
	stopped    bool
}

func newSession(n *Node, cfg SessionConfig) *session {
	return &session{
		node:   n,
		cfg:    cfg,
		cursor: make(map[int64]int64, 1),
		inbox:  grainRef{key: inboxKey{}, identity: inboxIdentity, kind: InboxKind},
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
		s.joinPresence(ctx)
		if s.cfg.User.IsAdmin {
			if s.cfg.V1 {
				s.write(wire.WelcomeFrame(s.welcome(0, 0)))
			}
			s.inbox.resolve(ctx, s.node)
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
				if r := s.cfg.Receipts; r != nil {
					s.staffRead(r.Staff)
				} else {
					s.loadReceipts(ctx)
				}
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
		if !s.seesTeam(msg.GetEntry().GetTeam()) && !concerns(msg, s.cfg.User.ID) {
			return // another team's (an opened conversation comes through its grain)
		}
		if ev := msg.GetEvent(); ev != nil {
			s.event(ev)
			return
		}
		s.deliver(msg.GetDelivery())
		s.inboxUpdate(msg)
	case *chatpb.EventDelivery:
		s.event(msg)
	case *chatpb.TypingDelivery:
		s.typingDelivery(msg)
	case *chatpb.ViewersDelivery:
		s.viewersDelivery(msg)
	case *chatpb.ReceiptDelivery:
		s.receiptDelivery(msg)
	case *receiptsLoaded:
		s.staffRead(msg.receipts.Staff)
	case *presenceSnapshot:
		s.online = msg.online
	case *presenceChange:
		s.presenceChanged(msg)
	case *availabilityChange:
		s.availability(msg)
	case *visitorChange:
		s.visitorChanged(msg, false)
	case *visitorLoaded:
		s.visitorChanged((*visitorChange)(msg), true)
	case *chatpb.ReadMarked:
		s.readMarked(msg.GetConversationId(), msg.GetSeq())
	case *deskDone:
		s.deskDone(msg)
	case *chatpb.PostResult:
		s.postResult(ctx, msg)
	case *sweepPosts:
		s.sweepPosts(ctx)
	case *refResolved:
		s.refResolved(ctx, msg)
	case *refRetry:
		s.refRetry(ctx, msg)
	case *refCheck:
		s.refChecked(ctx, msg)
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
		Status:          s.visitorStatus(),
		TranscriptEmail: s.canEmailTranscript(),
	}
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
		s.inboxPage(req)
	case wire.TypeStatus, wire.TypeAssign, wire.TypeNote:
		s.deskRequest(ctx, req)
	case wire.TypeRead:
		s.markRead(req)
	case wire.TypeCanned, wire.TypeCannedSave, wire.TypeCannedDelete, wire.TypeStaff:
		s.cannedRequest(req)
	case wire.TypeTyping:
		s.typing(ctx, req)
	case wire.TypeAway:
		s.away(ctx, req)
	case wire.TypeTranscriptEmail:
		s.transcriptEmail()
	case wire.TypePage:
		s.reportPage(ctx, req)
	case wire.TypeOpen:
		s.open(ctx, req.ConversationID)
	case wire.TypeLeave:
		if !s.cfg.User.IsAdmin && req.ConversationID != s.cfg.ConversationID {
			s.fail(&wire.Error{Code: wire.CodeForbidden, Message: "visitors can only use their own conversation", ConversationID: req.ConversationID})
			return
		}
		if s.opened[req.ConversationID] {
			delete(s.opened, req.ConversationID)
			delete(s.receiptSeq, req.ConversationID) // a new open gets the receipt again
			delete(s.visitorAt, req.ConversationID)  // and the visitor
			if l := s.links[req.ConversationID]; l != nil && l.pid != nil {
				ctx.Request(l.pid, &chatpb.Unsubscribe{ConversationId: req.ConversationID})
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
	if !s.cfg.V1 {
		return
	}
	events, err := s.historyEvents(ctx, conv, msgs)
	if err != nil {
		code := codeFromStorage(err)
		s.fail(&wire.Error{Code: code, Message: messageForCode(code), ConversationID: conv})
		return
	}
	s.write(wire.HistoryFrame(conv, out, hasMore, events))
}

func newNonce() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *session) stop(ctx actor.Context) {
	s.stopped = true
	s.leavePresence(ctx)
	if s.cfg.ConversationID != 0 {
		ctx.Send(s.node.hub.Load(), &hubLeave{conversationID: s.cfg.ConversationID, session: ctx.Self()})
	}
	// Unwatch too: a watched actor keeps its watchers' PIDs until it stops,
	// so a grain that outlives many short sessions would accumulate them.
	if pid := s.inbox.pid; s.inbox.forget(ctx, pid) {
		ctx.Request(pid, &chatpb.InboxUnsubscribe{})
	}
	for conv, l := range s.links {
		if l.pid == nil {
			continue
		}
		ctx.Unwatch(l.pid)
		if s.subscribedTo(conv) {
			ctx.Request(l.pid, &chatpb.Unsubscribe{ConversationId: conv})
		}
	}
}

// seesTeam reports whether a staff session shows, through the inbox, the
// conversations of team (SessionConfig.Teams); it also shows those of other
// teams assigned to its user (see concerns).
func (s *session) seesTeam(team string) bool {
	return s.cfg.Teams == nil || team == "" || slices.Contains(s.cfg.Teams, team)
}
