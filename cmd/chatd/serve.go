package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"github.com/grainchat/grainchat/actors"
	"github.com/grainchat/grainchat/actors/membership"
	"github.com/grainchat/grainchat/cmd/internal/metrics"
	"github.com/grainchat/grainchat/integrations/mail"
	"github.com/grainchat/grainchat/integrations/webhook"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/batch"
	"github.com/grainchat/grainchat/storage/memstore"
	"github.com/grainchat/grainchat/storage/pgstore"
	"github.com/grainchat/grainchat/transport"
	"github.com/grainchat/grainchat/transport/anon"
	"github.com/grainchat/grainchat/transport/api"
	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/clientip"
	"github.com/grainchat/grainchat/transport/web"
)

func newLogger(cfg config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// runServe runs the server until ctx is cancelled, then stops gracefully.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig("chatd", args, getenv, stdout)
	if err != nil {
		return err
	}
	m := &Main{Config: cfg, Stdout: stdout}
	if err := m.Open(ctx); err != nil {
		m.Close()
		return err
	}
	defer m.Close()
	return m.Run(ctx)
}

// Main is chatd's server: Open builds every component from Config in
// dependency order, Run serves until its context ends and then stops
// gracefully, Close releases whatever Open built (also after a failed Open).
// Tests run the real program through it, injecting what they must (Store).
type Main struct {
	Config config
	Stdout io.Writer
	// Store, when set before Open, is used instead of the configured store
	// (and not closed by Close).
	Store storage.Store

	logger     *slog.Logger
	dev        bool
	tls        bool // the server serves TLS (read before Serve, which writes TLSConfig)
	node       *actors.Node
	ws         *transport.Server
	httpServer *http.Server
	ln         net.Listener
	// front serves the WebSocket handshakes of a plain-HTTP listener
	// before net/http (nil with TLS: net/http serves everything).
	front *transport.Front
	// closers release what Open built, last built first.
	closers []func(context.Context)
}

// Addr is the address the server listens on, once Open succeeded.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Open builds the server and starts listening; Run serves.
func (m *Main) Open(ctx context.Context) error {
	cfg := m.Config
	logger, err := newLogger(cfg, m.Stdout)
	if err != nil {
		return err
	}
	m.logger = logger
	tlsConfig, err := cfg.tlsConfig()
	if err != nil {
		return err
	}
	proxies, err := clientip.New(cfg.trustedProxies())
	if err != nil {
		return err // validated already
	}

	store := m.Store
	if store == nil {
		if store, err = openStore(ctx, logger, cfg); err != nil {
			return err
		}
		m.onClose(func(context.Context) { store.Close() })
	}

	secret, dev, err := jwtSecret(logger, cfg)
	if err != nil {
		return err
	}
	m.dev = dev
	m.tls = tlsConfig != nil
	var anonymous *auth.Anonymous
	if cfg.AnonymousVisitors {
		if anonymous, err = auth.NewAnonymous(auth.Config{Secret: secret}, cfg.AnonymousTTL); err != nil {
			return fmt.Errorf("anonymous-visitors: %w", err)
		}
	}
	verifier, err := auth.NewVerifier(auth.Config{Secret: secret, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Anonymous: anonymous})
	if err != nil {
		return fmt.Errorf("jwt: %w", err)
	}
	origins, err := auth.NewOriginPolicy(cfg.origins())
	if err != nil {
		return fmt.Errorf("allowed-origins: %w", err)
	}

	metric := metrics.New(func() int { return m.node.Members() }) // scraped only once the node is set
	if err := m.startWebhooks(ctx, store, metric); err != nil {
		return err
	}
	appender := batch.New(logger.With("component", "batch"), store, batch.Options{Observe: metric.ObserveBatch, Writers: cfg.StoreWriters})
	m.onClose(func(context.Context) { appender.Close() })

	provider, err := newProvider(cfg)
	if err != nil {
		return err
	}
	var actorLevel slog.Level
	_ = actorLevel.UnmarshalText([]byte(cfg.ActorLogLevel)) // validated
	node, err := actors.New(membership.Logs(logger, provider), actors.Config{
		ClusterName:      cfg.ClusterName,
		Host:             cfg.ClusterHost,
		Port:             cfg.ClusterPort,
		AdvertisedHost:   cfg.ClusterAdvertisedAddr,
		Provider:         provider,
		LeaveGracefully:  cfg.ClusterProvider != "single",
		LeaveGrace:       leaveGrace(cfg),
		RuntimeLogLevel:  actorLevel,
		GrainIdleTimeout: cfg.GrainIdleTimeout,
		PostTimeout:      cfg.PostTimeout,
		RefreshInterval:  cfg.RefreshInterval,
		MaxMessageChars:  cfg.MaxMessageChars,
		TypingInterval:   cfg.TypingInterval,

		TypingShowsStaffNames: cfg.TypingStaffNames,
		PresenceGrace:         cfg.PresenceGrace,
		AwayMessage:           cfg.AwayMessage,
		TranscriptEmail:       cfg.SMTPURL != "",
	}, store, appender, metric)
	if err != nil {
		return err
	}
	if err := node.Start(ctx); err != nil {
		return err
	}
	m.node = node
	m.onClose(func(ctx context.Context) {
		if err := node.Shutdown(ctx); err != nil {
			logger.Warn("leave cluster", "err", err)
		}
	})
	if err := m.startMail(store, node, metric); err != nil {
		return err
	}

	ws := transport.New(logger, transport.Config{
		MaxFrameBytes:          cfg.MaxFrameBytes,
		MaxMessageChars:        cfg.MaxMessageChars,
		IdleTimeout:            cfg.IdleTimeout,
		PingInterval:           cfg.PingInterval,
		WriteQueue:             cfg.WriteQueue,
		AdminWriteQueue:        cfg.AdminWriteQueue,
		MaxConns:               cfg.MaxConns,
		MaxConnsPerUser:        cfg.MaxConnsPerUser,
		MaxAnonymousConnsPerIP: cfg.AnonymousConnsPerIP,
		MessageRate:            cfg.MessageRate,
		MessageBurst:           cfg.MessageBurst,
		StaffMessageRate:       cfg.StaffRate,
		StaffMessageBurst:      cfg.StaffBurst,
		StallTimeout:           2 * cfg.PostTimeout,
		MaxHandshakes:          cfg.MaxHandshakes,
		HandshakeWait:          cfg.HandshakeWait,
	}, verifier, origins, store, node, metric)
	ws.Start()
	m.ws = ws
	m.onClose(func(ctx context.Context) {
		if err := ws.Shutdown(ctx); err != nil {
			logger.Warn("websocket shutdown", "err", err)
		}
	})

	ready := func(ctx context.Context) error {
		if err := store.Ping(ctx); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if !node.Ready() {
			return errors.New("cluster member not up")
		}
		return nil
	}
	var devIssuer *auth.Issuer
	if dev {
		if devIssuer, err = auth.NewIssuer(auth.Config{Secret: secret, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience}); err != nil {
			return fmt.Errorf("jwt: %w", err)
		}
	}
	extra := web.New(logger, web.Config{DevIssuer: devIssuer, Verifier: verifier, EmbedOrigins: origins.Allowed,
		Anonymous: anonymous != nil}).Routes()
	if cfg.Pprof {
		extra["/debug/pprof/"] = http.HandlerFunc(pprof.Index)
		extra["/debug/pprof/profile"] = http.HandlerFunc(pprof.Profile)
		extra["/debug/pprof/trace"] = http.HandlerFunc(pprof.Trace)
		extra["/debug/pprof/symbol"] = http.HandlerFunc(pprof.Symbol)
		extra["/debug/pprof/cmdline"] = http.HandlerFunc(pprof.Cmdline)
		extra["GET /debug/cluster"] = clusterStatusHandler(node, ws)
	}
	extra["GET /metrics"] = metric.Handler()
	rest := api.New(api.Config{
		Logger: logger.With("component", "api"), Verifier: verifier, Store: store, Desk: node,
		MaxMessageChars: cfg.MaxMessageChars, Rate: cfg.StaffRate, Burst: cfg.StaffBurst, Timeout: cfg.PostTimeout + 5*time.Second,
	})
	m.onClose(func(context.Context) { rest.Close() }) // after the HTTP server's shutdown: no request left
	restRoutes := rest.Routes()
	for pattern, h := range restRoutes {
		extra[pattern] = h
	}
	if anonymous != nil {
		anonHandler := anon.New(anon.Config{Logger: logger.With("component", "anonymous"), Anonymous: anonymous,
			Verifier: verifier, Origins: origins, Store: store, Merger: node, NewPerHour: cfg.AnonymousNewPerHour})
		for pattern, h := range anonHandler.Routes() {
			extra[pattern] = h
		}
	}
	// The inbox page's transcript download: its token is in the HttpOnly
	// cookie, the API takes only a bearer token (web.CookieBearer).
	extra["GET /admin/conversations/{id}/transcript"] = web.CookieBearer(restRoutes["GET /api/v1/conversations/{id}/transcript"])
	m.httpServer = &http.Server{
		Handler:           proxies.Handler(transport.Routes(ws, ready, extra)),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		// net/http's own complaints (TLS handshake errors, handler panics)
		// go to chatd's log rather than to stderr.
		ErrorLog: slog.NewLogLogger(logger.With("component", "http").Handler(), slog.LevelWarn),
	}
	if m.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if !m.tls {
		m.front = transport.NewFront(logger.With("component", "http"), m.ln, proxies.Handler(ws), transport.FrontConfig{
			Prefix: "GET " + transport.ChatPath, ReadHeaderTimeout: m.httpServer.ReadHeaderTimeout,
			MaxHeaderBytes: m.httpServer.MaxHeaderBytes,
		})
	}
	m.onClose(func(ctx context.Context) {
		if err := m.httpServer.Shutdown(ctx); err != nil {
			logger.Warn("http shutdown", "err", err)
		}
	})
	return nil
}

// startWebhooks starts the webhooks' dispatcher when --webhook-url is set:
// the store must keep their outbox (pgstore; validate refuses the memory
// store already).
func (m *Main) startWebhooks(ctx context.Context, store storage.Store, metric *metrics.Metrics) error {
	cfg := m.Config
	urls := cfg.webhookURLs()
	if len(urls) == 0 {
		return nil
	}
	outbox, ok := store.(storage.Webhooks)
	if !ok {
		return errors.New("webhook-url: webhooks need --database-url (this store keeps no outbox)")
	}
	d, err := webhook.New(m.logger.With("component", "webhook"), webhook.Config{
		URLs:        urls,
		Secret:      []byte(cfg.WebhookSecret),
		Timeout:     cfg.WebhookTimeout,
		Retention:   cfg.WebhookRetention,
		RetryMax:    cfg.WebhookRetryMax,
		Concurrency: cfg.WebhookConcurrency,
	}, outbox, metric)
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	m.onClose(func(ctx context.Context) {
		if err := d.Shutdown(ctx); err != nil {
			m.logger.Warn("webhooks shutdown", "err", err)
		}
	})
	return nil
}

// startMail starts the email notifier when --smtp-url is set: the store must
// keep its state (pgstore; validate refuses the memory store already). It
// stops first at Close, before the node whose presence it asks.
func (m *Main) startMail(store storage.Store, node *actors.Node, metric *metrics.Metrics) error {
	cfg := m.Config
	if cfg.SMTPURL == "" {
		return nil
	}
	state, ok := store.(mail.Store)
	if !ok {
		return errors.New("smtp-url: email needs --database-url (this store keeps no mail state)")
	}
	sender, err := mail.NewSMTP(cfg.SMTPURL)
	if err != nil {
		return err
	}
	mailer, err := mail.New(m.logger.With("component", "mail"), cfg.mailConfig(), state, mailPresence{node}, sender, metric)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		mailer.Run(ctx)
	}()
	m.onClose(func(ctx context.Context) {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			m.logger.Warn("mail shutdown: a send outlasted the shutdown timeout")
		}
	})
	return nil
}

// mailPresence answers the mailer's presence questions from the node.
type mailPresence struct{ node *actors.Node }

func (p mailPresence) VisitorsOnline(ctx context.Context, convs []int64) (map[int64]bool, error) {
	vp, err := p.node.VisitorPresence(ctx, convs)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]bool, len(vp))
	for id, v := range vp {
		out[id] = v.Online
	}
	return out, nil
}

func (p mailPresence) StaffOnline(ctx context.Context) (bool, error) {
	return p.node.StaffAvailable(ctx)
}

// onClose arranges for f to run at Close, before what was built earlier.
func (m *Main) onClose(f func(context.Context)) { m.closers = append(m.closers, f) }

// Run serves until ctx ends (or the HTTP server fails), then stops: HTTP
// first, then the sockets (1001), then the cluster node, within
// --shutdown-timeout.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config
	serveErr := make(chan error, 1)
	scheme, wsScheme := "http", "ws"
	if m.tls {
		scheme, wsScheme = "https", "wss"
		go func() { serveErr <- m.httpServer.ServeTLS(m.ln, "", "") }() // the pair is in TLSConfig
	} else {
		go func() { _ = m.front.Serve() }() // ends when the HTTP server closes its listener
		go func() { serveErr <- m.httpServer.Serve(m.front.Listener()) }()
	}
	url := scheme + "://" + m.Addr()
	wsURL := wsScheme + "://" + m.Addr() + "/ws/chat/"
	m.logger.Info("chatd listening", "addr", m.Addr(), "websocket", wsURL, "tls", m.tls,
		"trusted_proxies", len(cfg.trustedProxies()), "dev_mode", m.dev)
	fmt.Fprintf(m.Stdout, "chatd: listening on %s (WebSocket at %s)\n", url, wsURL)
	if m.dev {
		fmt.Fprintf(m.Stdout, "chatd: development mode: open %s/login to sign in as a visitor or as staff, or mint a token with `go run ./cmd/chatd token --sub alice --name Alice`\n", url)
	}
	var err error
	select {
	case err = <-serveErr:
		err = fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	m.logger.Info("shutting down")
	m.Close()
	m.logger.Info("stopped")
	return err
}

// Close releases what Open built, last built first, within
// --shutdown-timeout. It is safe to call more than once.
func (m *Main) Close() {
	sctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
	defer cancel()
	if m.ws != nil {
		// Handshakes waiting for a slot would hold up the HTTP server's
		// shutdown: refuse them first.
		m.ws.StopAccepting()
	}
	for i := len(m.closers) - 1; i >= 0; i-- {
		m.closers[i](sctx)
	}
	m.closers = nil
}

func newProvider(cfg config) (cluster.ClusterProvider, error) {
	switch cfg.ClusterProvider {
	case "automanaged":
		return membership.NewAutomanaged(membership.AutomanagedConfig{
			Listen:  cfg.AutomanagedAddr,
			Peers:   splitList(cfg.ClusterPeers),
			Refresh: cfg.AutomanagedRefresh,
		})
	case "etcd":
		probe := cfg.EtcdProbeTimeout
		if probe == 0 {
			probe = -1 // off
		}
		return membership.NewEtcd(membership.EtcdConfig{Endpoints: splitList(cfg.EtcdEndpoints), Prefix: cfg.EtcdPrefix,
			LeaseTTL: cfg.EtcdLeaseTTL, ProbeTimeout: probe})
	default:
		return membership.Single(), nil
	}
}

// leaveGrace is how long the other members need to notice that this node
// deregistered: two polls for automanaged, a watch event for etcd.
func leaveGrace(cfg config) time.Duration {
	if cfg.ClusterProvider == "automanaged" {
		return 2*cfg.AutomanagedRefresh + 500*time.Millisecond
	}
	return time.Second
}

func openStore(ctx context.Context, logger *slog.Logger, cfg config) (storage.Store, error) {
	if cfg.DatabaseURL == "" {
		logger.Warn("NO DATABASE CONFIGURED: using the in-memory store; every message is lost when chatd stops. Set --database-url / CHAT_DATABASE_URL for PostgreSQL.")
		return memstore.New(memstore.Options{}), nil
	}
	store, err := pgstore.Open(ctx, logger.With("component", "pgstore"), cfg.DatabaseURL, pgstore.Options{
		SkipMigrations: !cfg.Migrate,
		Webhooks:       len(cfg.webhookURLs()) > 0,
		// Each batch writer has a connection of its own, and one more.
		AppendConns: max(cfg.StoreWriters+1, pgstore.DefaultAppendConns),
	})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return store, nil
}

// jwtSecret returns the configured secret, or in development mode (none
// configured) the development secret: the one in DevSecretFile if there is
// one (so that several local nodes, and tokens minted before a restart, keep
// working), else a fresh random one written there for `chatd token`.
func jwtSecret(logger *slog.Logger, cfg config) (secret []byte, dev bool, err error) {
	if cfg.JWTSecret != "" {
		return []byte(cfg.JWTSecret), false, nil
	}
	if b, err := os.ReadFile(cfg.DevSecretFile); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		logger.Warn("DEVELOPMENT MODE: no --jwt-secret (CHAT_JWT_SECRET) configured; using the development secret",
			"secret_file", cfg.DevSecretFile)
		return []byte(strings.TrimSpace(string(b))), true, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, false, fmt.Errorf("generate development secret: %w", err)
	}
	s := hex.EncodeToString(b)
	if err := os.MkdirAll(filepath.Dir(cfg.DevSecretFile), 0o700); err != nil {
		return nil, false, fmt.Errorf("development secret: %w", err)
	}
	if err := os.WriteFile(cfg.DevSecretFile, []byte(s+"\n"), 0o600); err != nil {
		return nil, false, fmt.Errorf("development secret: %w", err)
	}
	logger.Warn("DEVELOPMENT MODE: no --jwt-secret (CHAT_JWT_SECRET) configured; generated a development secret",
		"secret_file", cfg.DevSecretFile)
	return []byte(s), true, nil
}
