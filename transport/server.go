// Package transport serves grainchat's WebSocket endpoint (/ws/chat/) with
// gws: it authenticates each handshake, upgrades it, spawns the connection's
// session actor and moves frames between the socket and the actor.
package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
	"golang.org/x/time/rate"

	"github.com/grainchat/grainchat/actors"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/clientip"
	"github.com/grainchat/grainchat/transport/wire"
)

// Config configures the WebSocket server. Zero values mean the documented defaults.
type Config struct {
	// MaxFrameBytes bounds one client frame; a larger one closes the socket
	// with 1009. Zero means 32 KiB.
	MaxFrameBytes int
	// MaxMessageChars bounds a message's text, in characters. Zero means 4000.
	MaxMessageChars int
	// IdleTimeout closes a socket that sent nothing (not even a pong) for
	// this long. Zero means 60s.
	IdleTimeout time.Duration
	// PingInterval is how often the server pings every socket. Zero means 25s.
	PingInterval time.Duration
	// WriteQueue bounds the frames waiting to be written to one visitor's
	// socket. Zero means 512.
	WriteQueue int
	// AdminWriteQueue bounds the frames waiting to be written to one staff
	// socket: staff receive every conversation's messages. Zero means 16384.
	AdminWriteQueue int
	// WriteTimeout bounds one frame's write. Zero means 10s.
	WriteTimeout time.Duration
	// StoreTimeout bounds the store calls of a handshake. Zero means 5s.
	StoreTimeout time.Duration
	// MaxConns bounds the open sockets of this node; beyond it handshakes
	// get 503. Zero means 20000.
	MaxConns int
	// MaxConnsPerUser bounds one user's open sockets on this node; beyond it
	// handshakes get 429. Zero means 20.
	MaxConnsPerUser int
	// MaxAnonymousConnsPerIP bounds the open sockets of anonymous visitors
	// (auth.Identity.Anonymous) from one client address on this node;
	// beyond it handshakes get 429. Zero means unlimited.
	MaxAnonymousConnsPerIP int
	// MessageRate is how many frames per second one visitor may send, over
	// all their sockets on this node (token bucket). Beyond it the server
	// reads the user's sockets no faster (back-pressure): nothing is
	// refused. Zero means 10; negative means unlimited.
	MessageRate float64
	// MessageBurst is the bucket's size. Zero means 20.
	MessageBurst int
	// StaffMessageRate and StaffMessageBurst are the same for staff. Zero
	// means 30 and 120: a reply macro sent to 120 conversations goes out at
	// once.
	StaffMessageRate  float64
	StaffMessageBurst int
	// MaxPendingPosts bounds the message frames of one socket handed to its
	// session and not yet settled (stored or refused); while a socket has
	// that many the server does not read it. Zero means 64.
	MaxPendingPosts int
	// MaxHandshakes bounds the handshakes loading their user and starting
	// their session at once; more wait for a slot, up to HandshakeWait. Zero
	// means 64.
	MaxHandshakes int
	// HandshakeWait bounds a handshake's wait for a slot; then it is refused
	// with 503 and Retry-After: 1. Zero means 10s.
	HandshakeWait time.Duration
	// StallTimeout closes (wire.DisconnectUnavailable) a socket whose reading
	// has been paused this long because none of its posts settled. Zero
	// means 20s (chatd: twice --post-timeout).
	StallTimeout time.Duration
}

// Defaults of Config's zero values: chatd's flags default to them too.
const (
	DefaultMaxFrameBytes     = 32 << 10
	DefaultIdleTimeout       = 60 * time.Second
	DefaultPingInterval      = 25 * time.Second
	DefaultWriteQueue        = 512
	DefaultAdminWriteQueue   = 16384
	DefaultMaxConns          = 20000
	DefaultMaxConnsPerUser   = 20
	DefaultMaxHandshakes     = 64
	DefaultHandshakeWait     = 10 * time.Second
	DefaultMessageRate       = 10
	DefaultMessageBurst      = 20
	DefaultStaffMessageRate  = 30
	DefaultStaffMessageBurst = 120
	DefaultMaxPendingPosts   = 64
)

func (c *Config) setDefaults() {
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.MaxMessageChars <= 0 {
		c.MaxMessageChars = wire.DefaultMaxMessageChars
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.WriteQueue <= 0 {
		c.WriteQueue = DefaultWriteQueue
	}
	if c.AdminWriteQueue <= 0 {
		c.AdminWriteQueue = DefaultAdminWriteQueue
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 5 * time.Second
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxConnsPerUser <= 0 {
		c.MaxConnsPerUser = DefaultMaxConnsPerUser
	}
	if c.MessageRate == 0 {
		c.MessageRate = DefaultMessageRate
	}
	if c.MessageBurst <= 0 {
		c.MessageBurst = DefaultMessageBurst
	}
	if c.StaffMessageRate == 0 {
		c.StaffMessageRate = DefaultStaffMessageRate
	}
	if c.StaffMessageBurst <= 0 {
		c.StaffMessageBurst = DefaultStaffMessageBurst
	}
	if c.MaxPendingPosts <= 0 {
		c.MaxPendingPosts = DefaultMaxPendingPosts
	}
	if c.MaxHandshakes <= 0 {
		c.MaxHandshakes = DefaultMaxHandshakes
	}
	if c.HandshakeWait <= 0 {
		c.HandshakeWait = DefaultHandshakeWait
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 20 * time.Second
	}
}

// Metrics receives the transport's events. A nil Metrics in New means none.
type Metrics interface {
	ConnOpened()
	ConnClosed()
	FrameIn()
	FramesOut(n int)
	FrameRefused(code string)
	SlowConsumer()
	HandshakeRefused(status int)
	// ReadPaused counts the times a socket's reading paused: reason "rate"
	// (its user is over the message rate) or "pending" (MaxPendingPosts
	// posts unsettled).
	ReadPaused(reason string)
}

type noMetrics struct{}

func (noMetrics) ConnOpened()          {}
func (noMetrics) ConnClosed()          {}
func (noMetrics) FrameIn()             {}
func (noMetrics) FramesOut(int)        {}
func (noMetrics) FrameRefused(string)  {}
func (noMetrics) SlowConsumer()        {}
func (noMetrics) HandshakeRefused(int) {}
func (noMetrics) ReadPaused(string)    {}

// Server is the /ws/chat/ endpoint.
type Server struct {
	logger   *slog.Logger
	cfg      Config
	verifier *auth.Verifier
	origins  *auth.OriginPolicy
	store    storage.Store
	node     *actors.Node
	metrics  Metrics
	decoder  wire.Decoder

	plain *gws.Upgrader // for clients that speak the seed protocol
	v1    *gws.Upgrader // for clients that offer the grainchat.v1 subprotocol

	// conns is the table of sockets: reserved, open, per user (see
	// registry).
	conns *registry
	// anonIPs counts anonymous visitors' sockets per client address.
	anonIPs *ipConns
	// handshakes holds a token per handshake doing store and actor work
	// (MaxHandshakes); waiting counts those waiting for one.
	handshakes chan struct{}
	waiting    atomic.Int64
	stopPing   chan struct{} // closed by the first StopAccepting
	pingDone   chan struct{}
}

// New builds the WebSocket server. Start begins its heartbeat.
func New(logger *slog.Logger, cfg Config, verifier *auth.Verifier, origins *auth.OriginPolicy,
	store storage.Store, node *actors.Node, metrics Metrics) *Server {
	cfg.setDefaults()
	if metrics == nil {
		metrics = noMetrics{}
	}
	s := &Server{
		logger:   logger.With("component", "transport"),
		cfg:      cfg,
		verifier: verifier,
		origins:  origins,
		store:    store,
		node:     node,
		metrics:  metrics,
		decoder:  wire.Decoder{MaxMessageChars: cfg.MaxMessageChars},
		stopPing: make(chan struct{}),
		pingDone: make(chan struct{}),

		handshakes: make(chan struct{}, cfg.MaxHandshakes),
	}
	s.conns = newRegistry(cfg.MaxConns, cfg.MaxConnsPerUser, s.newLimiter)
	s.anonIPs = newIPConns(cfg.MaxAnonymousConnsPerIP)
	opt := func(subprotocols []string) *gws.ServerOption {
		return &gws.ServerOption{
			ParallelEnabled:    false, // frames of one socket are handled in order
			CheckUtf8Enabled:   true,  // invalid UTF-8 in a text frame closes with 1007
			ReadMaxPayloadSize: cfg.MaxFrameBytes,
			Recovery:           gws.Recovery,
			HandshakeTimeout:   5 * time.Second,
			SubProtocols:       subprotocols,
			Logger:             gwsLogger{s.logger},
			NewSession:         func() gws.SessionStorage { return &connSession{} },
		}
	}
	s.plain = gws.NewUpgrader(s, opt(nil))
	s.v1 = gws.NewUpgrader(s, opt([]string{wire.Subprotocol}))
	return s
}

type gwsLogger struct{ l *slog.Logger }

func (g gwsLogger) Error(v ...any) { g.l.Error("gws", "err", fmt.Sprint(v...)) }

// Start begins pinging sockets; it returns at once.
func (s *Server) Start() {
	go func() {
		defer close(s.pingDone)
		t := time.NewTicker(s.cfg.PingInterval)
		defer t.Stop()
		var batch []*conn
		for {
			select {
			case <-s.stopPing:
				return
			case <-t.C:
				// Ping outside the registry's locks: with 19,000 sockets,
				// scheduling each ping under one lock held up every
				// handshake and close for the whole sweep. The copy
				// holds one shard's lock at a time.
				batch = s.conns.appendOpen(batch[:0])
				for _, c := range batch {
					c.ping()
				}
				clear(batch)
			}
		}
	}()
}

// Shutdown refuses new sockets, closes every open one with 1001 and waits
// (bounded by ctx) until their sessions have stopped. A socket that opens
// after StopAccepting is refused (ServeHTTP's add), so the sockets collected
// here are all there will be (see registry.stop).
func (s *Server) Shutdown(ctx context.Context) error {
	s.StopAccepting()
	for _, c := range s.conns.appendOpen(nil) {
		c.Close(wire.DisconnectShutdown)
	}
	<-s.pingDone
	select {
	case <-s.conns.drainedC():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close websockets: %w", ctx.Err())
	}
}

// StopAccepting refuses new sockets from now on, handshakes waiting for a
// slot included (503), and stops the pings; Shutdown closes the open ones.
// It is idempotent.
func (s *Server) StopAccepting() {
	if s.conns.stop() {
		close(s.stopPing)
	}
}

// Connections is the number of open sockets.
func (s *Server) Connections() int {
	return s.conns.openCount()
}

// refusal is a handshake answered with an HTTP status instead of an upgrade.
type refusal struct {
	status int
	msg    string
	// retryAfter, when set, is sent as Retry-After (seconds).
	retryAfter int
}

var (
	refuseOrigin      = &refusal{status: http.StatusForbidden, msg: "origin not allowed"}
	refuseToken       = &refusal{status: http.StatusUnauthorized, msg: "missing or invalid token"}
	refuseIdentity    = &refusal{status: http.StatusUnauthorized, msg: "invalid identity in token"}
	refuseNotUpgrade  = &refusal{status: http.StatusBadRequest, msg: "not a WebSocket handshake"}
	refuseShutdown    = &refusal{status: http.StatusServiceUnavailable, msg: "server shutting down"}
	refuseUnavailable = &refusal{status: http.StatusServiceUnavailable, msg: "chat temporarily unavailable", retryAfter: 1}
	refuseBusy        = &refusal{status: http.StatusServiceUnavailable, msg: "server busy: too many handshakes waiting", retryAfter: 1}
	refuseFull        = &refusal{status: http.StatusServiceUnavailable, msg: "server full or shutting down", retryAfter: 5}
	refuseUserConns   = &refusal{status: http.StatusTooManyRequests, msg: "too many connections for this user"}
	refuseIPConns     = &refusal{status: http.StatusTooManyRequests, msg: "too many anonymous connections from this address"}
	refuseMerged      = &refusal{status: http.StatusUnauthorized, msg: "this anonymous identity was merged into a signed-in user's"}
)

// ServeHTTP authenticates the handshake and upgrades it. Refusals get a real
// HTTP status before any upgrade (see admit and docs/PROTOCOL.md).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ref := s.admit(r)
	if ref != nil {
		s.refuse(w, ref)
		return
	}
	up := s.plain
	if h.conn.v1 {
		up = s.v1
	}
	socket, nc, err := upgrade(up, w, r)
	if err != nil {
		h.abandon()
		s.logger.Debug("upgrade failed", "err", err)
		return
	}
	c := h.conn
	socket.Session().Store(connKey, c)
	if !s.conns.add(c) {
		// Shutting down (Shutdown may have collected the open sockets
		// already), or the session closed the connection.
		h.abandon()
		_ = socket.WriteClose(wire.DisconnectShutdown.Code, []byte(wire.DisconnectShutdown.Reason))
		_ = socket.NetConn().Close()
		return
	}
	s.metrics.ConnOpened()
	_ = socket.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
	c.attach(socket, nc)
	c.expireAt(h.expiresAt)
	s.logger.Debug("socket open", "conn_id", c.id, "user_id", c.userID, "v1", c.v1, "client_ip", clientip.FromRequest(r).Addr)
	go socket.ReadLoop()
}

// admitted is a handshake that may upgrade: its socket is reserved and its
// session follows what it shows.
type admitted struct {
	server    *Server
	conn      *conn
	expiresAt time.Time
}

// abandon undoes an admission whose upgrade did not complete.
func (h *admitted) abandon() {
	h.server.node.StopSession(h.conn.pid)
	h.server.release(h.conn)
}

// release gives back what admit reserved for c: its place among its user's
// sockets, and an anonymous visitor's among its address's.
func (s *Server) release(c *conn) {
	s.conns.release(c.userID)
	if c.anonIP != "" {
		s.anonIPs.release(c.anonIP)
	}
}

// admit checks a handshake in order — Origin, token, that it is an upgrade,
// not shutting down — then waits for a handshake slot (at most
// HandshakeWait: connects queue under load instead of failing), loads the
// user, reserves the socket and starts the session, which follows its
// conversation (visitors: through the node's hub; admins: the inbox) before
// the handshake completes, so that every message stored after the client
// sees its connection open reaches it.
func (s *Server) admit(r *http.Request) (*admitted, *refusal) {
	if err := s.origins.Check(r); err != nil {
		return nil, refuseOrigin
	}
	ident, err := s.verifier.FromRequest(r)
	if err != nil {
		return nil, refuseToken
	}
	if !isUpgrade(r) {
		// Refused before any store or actor work (gws would refuse it too,
		// but only after the session was set up).
		return nil, refuseNotUpgrade
	}
	if s.isClosing() {
		return nil, refuseShutdown
	}
	var anonIP string
	if ident.Anonymous {
		anonIP = clientip.FromRequest(r).Addr
		if !s.anonIPs.acquire(anonIP) {
			return nil, refuseIPConns
		}
	}
	h, ref := s.admitIdentity(r, ident, anonIP)
	if ref != nil && anonIP != "" {
		s.anonIPs.release(anonIP)
	}
	return h, ref
}

// admitIdentity is admit's part after the token: anonIP is an anonymous
// visitor's address, counted already ("" for others).
func (s *Server) admitIdentity(r *http.Request, ident auth.Identity, anonIP string) (*admitted, *refusal) {
	if ref := s.acquireHandshake(r.Context()); ref != nil {
		return nil, ref
	}
	defer s.releaseHandshake()

	// A visitor's team is stored (Connect checks it); a staff member's
	// teams are their token's, checked here.
	team, teams := ident.Team, ident.Teams
	if ident.Admin {
		team = ""
		if err := storage.CheckTeams(teams); err != nil {
			s.logger.Info("handshake refused: invalid identity in token", "err", err)
			return nil, refuseIdentity
		}
	} else {
		teams = nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.StoreTimeout)
	defer cancel()
	user, conv, err := s.store.Connect(ctx, storage.UserInput{ExternalID: ident.Subject, Name: ident.Name, IsAdmin: ident.Admin,
		Email: ident.Email, Context: ident.Context, Team: team})
	if err != nil {
		if storage.ErrorCode(err) == storage.EINVALID {
			s.logger.Info("handshake refused: invalid identity in token", "err", err)
			return nil, refuseIdentity
		}
		s.logger.Warn("handshake: load user", "err", err)
		return nil, refuseUnavailable
	}
	if user.MergedInto != 0 {
		return nil, refuseMerged
	}
	us, err := s.conns.reserve(user.ID, user.IsAdmin)
	switch {
	case errors.Is(err, errUserConns):
		return nil, refuseUserConns
	case err != nil:
		return nil, refuseFull
	}
	v1 := offersSubprotocol(r, wire.Subprotocol)
	seq := connSeq.Add(1)
	c := &conn{id: connID(seq), seq: seq, server: s, userID: user.ID, v1: v1, maxQueued: s.cfg.WriteQueue, user: us,
		subject: ident.Subject, admin: ident.Admin, anonIP: anonIP}
	if user.IsAdmin {
		c.maxQueued = s.cfg.AdminWriteQueue
	}
	ready := make(chan struct{})
	var userAgent string
	if v1 && !user.IsAdmin {
		userAgent = wire.UserAgent(r.UserAgent()) // the browser, for staff (page frames)
	}
	c.pid = s.node.SpawnSession(actors.SessionConfig{
		ConnID: c.id, Sink: c, User: user, ConversationID: conv.ID, LastSeq: conv.LastSeq, V1: v1, Ready: ready, Teams: teams,
		TokenExpiresAt: ident.ExpiresAt, Status: conv.Status, Receipts: conv.Receipts, UserAgent: userAgent,
	})
	h := &admitted{server: s, conn: c, expiresAt: ident.ExpiresAt}
	select {
	case <-ready:
		return h, nil
	case <-ctx.Done():
		h.abandon()
		s.logger.Warn("handshake: session did not subscribe in time", "conn_id", c.id, "user_id", user.ID)
		return nil, refuseUnavailable
	}
}

// isClosing reports whether StopAccepting was called.
func (s *Server) isClosing() bool { return s.conns.stopped() }

// acquireHandshake waits, at most HandshakeWait, for one of the
// MaxHandshakes slots of handshakes doing store and actor work. At most
// MaxConns handshakes wait; beyond, or after the wait, it refuses with 503
// and Retry-After.
func (s *Server) acquireHandshake(ctx context.Context) *refusal {
	select {
	case s.handshakes <- struct{}{}:
		return nil
	default:
	}
	if s.waiting.Add(1) > int64(s.cfg.MaxConns) {
		s.waiting.Add(-1)
		return refuseBusy
	}
	defer s.waiting.Add(-1)
	t := time.NewTimer(s.cfg.HandshakeWait)
	defer t.Stop()
	select {
	case s.handshakes <- struct{}{}:
		return nil
	case <-t.C:
		return refuseBusy
	case <-ctx.Done():
		return refuseBusy
	case <-s.stopPing: // closed by StopAccepting
		return refuseShutdown
	}
}

func (s *Server) releaseHandshake() { <-s.handshakes }

// isUpgrade reports whether r is a WebSocket handshake that gws accepts:
// GET, Connection: upgrade, Upgrade: websocket, a key and version 13.
func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		headerHasToken(r.Header, "Connection", "upgrade") &&
		strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		r.Header.Get("Sec-WebSocket-Key") != "" &&
		r.Header.Get("Sec-WebSocket-Version") == "13"
}

// headerHasToken reports whether a comma-separated header lists token
// (case-insensitively).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// upgrade completes the handshake like gws's Upgrader.Upgrade, but over a
// frameConn, so that the conn can write its frames itself, coalesced.
func upgrade(up *gws.Upgrader, w http.ResponseWriter, r *http.Request) (*gws.Conn, *frameConn, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("upgrade: the response cannot be hijacked")
	}
	raw, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("upgrade: hijack: %w", err)
	}
	// Bytes the HTTP server read past the request belong to the socket.
	var rd io.Reader = raw
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		rd = io.MultiReader(bytes.NewReader(bytes.Clone(early)), raw)
	}
	// The response waits for the first frame (the v1 welcome) to go out with
	// it: attach releases it.
	nc := &frameConn{Conn: raw, hold: true}
	socket, err := up.UpgradeFromConn(nc, bufio.NewReaderSize(quietReader{rd}, readBufferSize), r)
	if err != nil {
		return nil, nil, err
	}
	return socket, nc, nil
}

// quietReader replaces the network's read errors, whose texts name the
// node's addresses, by fixed ones: gws sends a failed read's error text as the
// reason of its close frame (an idle socket is closed with 1000 and this
// reason).
type quietReader struct{ r io.Reader }

var (
	errIdle = errors.New("idle timeout")
	errRead = errors.New("connection error")
)

func (q quietReader) Read(p []byte) (int, error) {
	n, err := q.r.Read(p)
	if err != nil && err != io.EOF {
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			err = errIdle
		} else {
			err = errRead
		}
	}
	return n, err
}

// readBufferSize is each socket's read buffer. Client frames are small (a
// typical message frame is 100–200 bytes; a long one is read through the
// buffer in a few calls, or straight into the payload), and every open socket
// holds its buffer: 512 bytes instead of gws's 4 KiB saves 3.5 KiB an idle
// connection.
const readBufferSize = 512

// newLimiter makes the frame rate limiter of a user (staff: admin), shared
// by all of the user's sockets on this node.
func (s *Server) newLimiter(admin bool) *rate.Limiter {
	perSecond, burst := s.cfg.MessageRate, s.cfg.MessageBurst
	if admin {
		perSecond, burst = s.cfg.StaffMessageRate, s.cfg.StaffMessageBurst
	}
	limit := rate.Inf
	if perSecond > 0 {
		limit = rate.Limit(perSecond)
	}
	return rate.NewLimiter(limit, burst)
}

func (s *Server) refuse(w http.ResponseWriter, r *refusal) {
	s.metrics.HandshakeRefused(r.status)
	if r.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(r.retryAfter))
	}
	http.Error(w, r.msg, r.status)
}

func offersSubprotocol(r *http.Request, want string) bool {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if strings.TrimSpace(p) == want {
				return true
			}
		}
	}
	return false
}

// connKey is where a socket's *conn is kept in its gws session storage, so
// that reading a frame takes no registry lock.
const connKey = "grainchat.conn"

func (s *Server) lookup(socket *gws.Conn) *conn {
	v, ok := socket.Session().Load(connKey)
	if !ok {
		return nil
	}
	c, _ := v.(*conn)
	return c
}

// OnOpen implements gws.Event.
func (s *Server) OnOpen(*gws.Conn) {}

// OnClose implements gws.Event: the session actor stops with its socket.
// It undoes ServeHTTP's add once: a socket that was never added has nothing
// to undo.
func (s *Server) OnClose(socket *gws.Conn, err error) {
	c := s.lookup(socket)
	if c == nil || !s.conns.remove(c) {
		return
	}
	c.closed()
	s.release(c)
	s.metrics.ConnClosed()
	if c.pid != nil {
		s.node.StopSession(c.pid)
	}
	s.logger.Debug("socket closed", "conn_id", c.id, "err", err)
}

// OnPing implements gws.Event: answer with the ping's payload.
func (s *Server) OnPing(socket *gws.Conn, payload []byte) {
	_ = socket.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
	_ = socket.WritePong(payload)
}

// OnPong implements gws.Event.
func (s *Server) OnPong(socket *gws.Conn, _ []byte) {
	_ = socket.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
}

// OnMessage implements gws.Event: decode the frame and hand it to the session.
func (s *Server) OnMessage(socket *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	_ = socket.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
	c := s.lookup(socket)
	if c == nil {
		return
	}
	s.metrics.FrameIn()
	// Every frame counts against the user's rate, refused ones too.
	if !s.paceRate(c) {
		return // the socket closed while it waited
	}
	// A socket quiet only because the server stopped reading it is not
	// idle: its deadline starts again when reading resumes.
	_ = socket.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
	if msg.Opcode != gws.OpcodeText {
		s.metrics.FrameRefused(wire.CodeInvalidRequest)
		if c.v1 {
			c.Write(wire.ErrorFrame(&wire.Error{Code: wire.CodeInvalidRequest, Message: "frames must be text (JSON)"}))
		}
		return
	}
	req, err := s.decoder.Decode(msg.Bytes())
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			we = &wire.Error{Code: wire.CodeInternal, Message: "internal error"}
		}
		s.metrics.FrameRefused(we.Code)
		switch {
		case c.v1:
			c.Write(wire.ErrorFrame(we))
		case we.Code == wire.CodeMessageTooLong:
			// A seed client sees no error frame, and the original server
			// had no length limit: a message over it is closed on, with
			// 1009, rather than dropped in silence.
			c.Close(wire.DisconnectMessageTooLong)
		}
		return
	}
	if req.Type == wire.TypeMessage {
		if !s.pacePosts(c) {
			return // the socket closed while it waited
		}
		_ = socket.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
	}
	if req.Type == wire.TypeAuth {
		s.reauth(c, req.Token)
		return
	}
	s.node.SendInbound(c.pid, &actors.Inbound{Req: req})
}

// reauth handles an auth frame: a fresh token for the same user (subject and
// role) moves the socket's expiry; anything else is refused with
// invalid_token and changes nothing.
func (s *Server) reauth(c *conn, token string) {
	id, err := s.verifier.Verify(token)
	if err != nil || id.Subject != c.subject || id.Admin != c.admin {
		s.metrics.FrameRefused(wire.CodeInvalidToken)
		if c.v1 {
			c.Write(wire.ErrorFrame(&wire.Error{Code: wire.CodeInvalidToken,
				Message: "the token is invalid, expired, or not this user's; the socket keeps its current expiry"}))
		}
		return
	}
	c.expireAt(id.ExpiresAt)
	if c.v1 {
		c.Write(wire.AuthFrame(id.ExpiresAt))
	}
}

// paceRate and pacePosts are flow control. They run on the socket's read
// goroutine, so waiting in them stops reading the socket, and a flooding
// client fills its own send buffer: paceRate waits while the user is over its
// message rate (every frame counts), pacePosts, for a message, while
// MaxPendingPosts of the socket's posts are unsettled. Nothing is refused for
// being too fast, in either dialect. They report false if the socket closed
// meanwhile.
func (s *Server) paceRate(c *conn) bool {
	if r := c.user.limiter.Reserve(); r.OK() {
		if d := r.Delay(); d > 0 {
			s.metrics.ReadPaused("rate")
			return c.wait(d)
		}
	}
	return true
}

// pacePosts is the second half of flow control, for a message: it waits
// while MaxPendingPosts of the socket's posts are unsettled (see paceRate).
func (s *Server) pacePosts(c *conn) bool {
	if c.full(s.cfg.MaxPendingPosts) {
		s.metrics.ReadPaused("pending")
	}
	return c.waitForRoom(s.cfg.MaxPendingPosts, s.cfg.StallTimeout)
}
