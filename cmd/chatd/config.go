package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/grainchat/grainchat/actors"
	"github.com/grainchat/grainchat/cmd/internal/devsecret"
	"github.com/grainchat/grainchat/integrations/mail"
	"github.com/grainchat/grainchat/integrations/webhook"
	"github.com/grainchat/grainchat/transport"
	"github.com/grainchat/grainchat/transport/anon"
	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/clientip"
	"github.com/grainchat/grainchat/transport/wire"
)

// config is chatd's configuration. Every field is a flag; each flag has a
// CHAT_* environment variable (the flag name upper-cased, "-" → "_") and a
// key of the same name in the YAML file given by --config. Precedence:
// defaults < file < environment < flags.
type config struct {
	Config string

	Addr           string
	DatabaseURL    string
	Migrate        bool
	JWTSecret      string
	JWTIssuer      string
	JWTAudience    string
	AllowedOrigins string
	DevSecretFile  string
	TLSCert        string
	TLSKey         string
	TrustedProxies string

	LogLevel  string
	LogFormat string

	ClusterName           string
	ClusterProvider       string
	ClusterHost           string
	ClusterPort           int
	ClusterAdvertisedAddr string
	ClusterPeers          string
	AutomanagedAddr       string
	AutomanagedRefresh    time.Duration
	EtcdEndpoints         string
	EtcdPrefix            string
	EtcdLeaseTTL          time.Duration
	EtcdProbeTimeout      time.Duration
	ActorLogLevel         string
	RefreshInterval       time.Duration
	TypingInterval        time.Duration
	TypingStaffNames      bool
	PresenceGrace         time.Duration
	AwayMessage           string

	MaxMessageChars  int
	MaxFrameBytes    int
	IdleTimeout      time.Duration
	PingInterval     time.Duration
	WriteQueue       int
	AdminWriteQueue  int
	GrainIdleTimeout time.Duration
	PostTimeout      time.Duration
	ShutdownTimeout  time.Duration
	Pprof            bool
	MaxConns         int
	MaxConnsPerUser  int
	MessageRate      float64
	MessageBurst     int
	StaffRate        float64
	StaffBurst       int
	MaxHandshakes    int
	HandshakeWait    time.Duration
	StoreWriters     int

	WebhookURL         string
	WebhookSecret      string
	WebhookTimeout     time.Duration
	WebhookRetention   time.Duration
	WebhookRetryMax    time.Duration
	WebhookConcurrency int

	AnonymousVisitors   bool
	AnonymousNewPerHour int
	AnonymousConnsPerIP int
	AnonymousTTL        time.Duration

	SMTPURL      string
	MailFrom     string
	PublicURL    string
	MailDelay    time.Duration
	MailStaffTo  string
	MailStaff    bool
	MailPoll     time.Duration
	MailAttempts int
}

// DefaultAwayMessage is what visitors read while no staff user is available.
const DefaultAwayMessage = "We're away right now. Leave a message and we'll answer as soon as we're back."

// register declares cfg's flags on fs with their defaults.
func (cfg *config) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&cfg.Config, "config", "", "YAML configuration file (keys are flag names)")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "HTTP listen address (WebSocket at /ws/chat/)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "PostgreSQL URL; empty = in-memory store that persists nothing")
	fs.BoolVar(&cfg.Migrate, "migrate", true, "apply database migrations at start-up")
	fs.StringVar(&cfg.JWTSecret, "jwt-secret", "", "HS256 secret of the host site's tokens (>= 32 bytes); empty = development mode with a generated secret")
	fs.StringVar(&cfg.JWTIssuer, "jwt-issuer", "", "if set, tokens must carry this iss")
	fs.StringVar(&cfg.JWTAudience, "jwt-audience", "", "if set, tokens must carry this aud")
	fs.StringVar(&cfg.AllowedOrigins, "allowed-origins", "", "comma-separated browser origins allowed besides the server's own (e.g. https://shop.example.com)")
	fs.StringVar(&cfg.DevSecretFile, "dev-secret-file", devsecret.DefaultFile(getenv), "where development mode writes its generated secret (read by `chatd token`)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) file; with --tls-key, serve HTTPS and WSS on --addr (TLS 1.2 or later)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key file of --tls-cert")
	fs.StringVar(&cfg.TrustedProxies, "trusted-proxies", "", "comma-separated CIDRs (or addresses) of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed; empty = none")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "text or json")
	fs.StringVar(&cfg.ClusterName, "cluster-name", "grainchat", "cluster name; the same on every node")
	fs.StringVar(&cfg.ClusterProvider, "cluster-provider", "single", "membership provider: single (one node), automanaged (static peer list) or etcd")
	fs.StringVar(&cfg.ClusterHost, "cluster-host", "127.0.0.1", "host the node listens on for other nodes")
	fs.IntVar(&cfg.ClusterPort, "cluster-port", 0, "port the node listens on for other nodes; 0 = any free port")
	fs.StringVar(&cfg.ClusterAdvertisedAddr, "cluster-advertised-address", "", "host:port other nodes use to reach this one, if not cluster-host:cluster-port")
	fs.StringVar(&cfg.ClusterPeers, "cluster-peers", "", "automanaged: comma-separated health endpoints (host:port) of every node, this one included")
	fs.StringVar(&cfg.AutomanagedAddr, "automanaged-listen", "127.0.0.1:6330", "automanaged: where this node serves the health endpoint its peers poll")
	fs.DurationVar(&cfg.AutomanagedRefresh, "automanaged-refresh", time.Second, "automanaged: how often peers are polled; an unanswered poll removes a node")
	fs.StringVar(&cfg.EtcdEndpoints, "etcd-endpoints", "127.0.0.1:2379", "etcd: comma-separated endpoints")
	fs.StringVar(&cfg.EtcdPrefix, "etcd-prefix", "/grainchat", "etcd: key prefix of the member registrations")
	fs.DurationVar(&cfg.EtcdLeaseTTL, "etcd-lease-ttl", 3*time.Second, "etcd: lease of each node's registration, whole seconds (etcd's minimum is 2s with its defaults): how long a node whose host vanished stays a member, and how long a live node may miss its renewals (a pause, a slow etcd) before it is dropped and registers again")
	fs.DurationVar(&cfg.EtcdProbeTimeout, "etcd-probe-timeout", 500*time.Millisecond, "etcd: when the connection to a member breaks, dial its cluster port for at most this long; refused (its process is gone) removes it at once; 0 = off (only its lease expiry removes it)")
	fs.StringVar(&cfg.ActorLogLevel, "actor-log-level", "warn", "log level of the actor runtime (protoactor), which is chatty at info")
	fs.DurationVar(&cfg.RefreshInterval, "grain-refresh-interval", actors.DefaultRefreshInterval, "how often staff sessions look up their grains again, to leave a stale activation after membership changes")
	fs.DurationVar(&cfg.TypingInterval, "typing-interval", actors.DefaultTypingInterval, "relay one user's typing in a conversation at most this often")
	fs.BoolVar(&cfg.TypingStaffNames, "typing-staff-names", false, "visitors see which staff user is typing (else \"Support is typing\")")
	fs.DurationVar(&cfg.PresenceGrace, "presence-grace", actors.DefaultPresenceGrace, "a visitor stays online this long after their last socket closed (hides reloads)")
	fs.StringVar(&cfg.AwayMessage, "away-message", DefaultAwayMessage, "what visitors read while no staff user is available")
	fs.IntVar(&cfg.MaxMessageChars, "max-message-chars", wire.DefaultMaxMessageChars, "longest accepted message, in characters")
	fs.IntVar(&cfg.MaxFrameBytes, "max-frame-bytes", transport.DefaultMaxFrameBytes, "largest accepted WebSocket frame; larger closes with 1009")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", transport.DefaultIdleTimeout, "close sockets silent for this long")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", transport.DefaultPingInterval, "how often the server pings each socket")
	fs.IntVar(&cfg.WriteQueue, "write-queue", transport.DefaultWriteQueue, "frames queued per visitor socket before it is closed as a slow consumer")
	fs.IntVar(&cfg.AdminWriteQueue, "admin-write-queue", transport.DefaultAdminWriteQueue, "frames queued per staff socket before it is closed as a slow consumer")
	fs.DurationVar(&cfg.GrainIdleTimeout, "grain-idle-timeout", actors.DefaultGrainIdleTimeout, "passivate conversation grains this long without messages (unless staff opened them; connected visitors do not keep them)")
	fs.DurationVar(&cfg.PostTimeout, "post-timeout", actors.DefaultPostTimeout, "how long a post may wait to be stored before the client is told to retry")
	fs.IntVar(&cfg.MaxConns, "max-conns", transport.DefaultMaxConns, "open sockets this node accepts; more get 503")
	fs.IntVar(&cfg.MaxConnsPerUser, "max-conns-per-user", transport.DefaultMaxConnsPerUser, "open sockets one user may have on this node; more get 429")
	fs.Float64Var(&cfg.MessageRate, "message-rate", transport.DefaultMessageRate, "frames per second one visitor may send over their sockets on a node (token bucket); beyond it the server reads their sockets no faster; -1 = unlimited")
	fs.IntVar(&cfg.MessageBurst, "message-burst", transport.DefaultMessageBurst, "token bucket size of --message-rate")
	fs.Float64Var(&cfg.StaffRate, "staff-message-rate", transport.DefaultStaffMessageRate, "the same as --message-rate for staff; -1 = unlimited")
	fs.IntVar(&cfg.StaffBurst, "staff-message-burst", transport.DefaultStaffMessageBurst, "token bucket size of --staff-message-rate")
	fs.IntVar(&cfg.MaxHandshakes, "max-handshakes", transport.DefaultMaxHandshakes, "handshakes loading their user and starting their session at once; more wait for a slot")
	fs.DurationVar(&cfg.HandshakeWait, "handshake-wait", transport.DefaultHandshakeWait, "how long a handshake may wait for a slot before 503 with Retry-After")
	fs.IntVar(&cfg.StoreWriters, "store-writers", 1, "message batches written to the database at the same time (fewer: bigger batches, less database CPU)")
	fs.StringVar(&cfg.WebhookURL, "webhook-url", "", "comma-separated endpoints (YAML: a list) that get every event as a signed POST (docs/WEBHOOKS.md); needs --database-url and --webhook-secret")
	fs.StringVar(&cfg.WebhookSecret, "webhook-secret", "", "key of the webhooks' HMAC-SHA256 signatures (>= 16 bytes)")
	fs.DurationVar(&cfg.WebhookTimeout, "webhook-timeout", webhook.DefaultTimeout, "bound on one webhook attempt; a slower answer is a failed attempt")
	fs.DurationVar(&cfg.WebhookRetention, "webhook-retention", webhook.DefaultRetention, "how long a webhook event is retried before it is given up")
	fs.DurationVar(&cfg.WebhookRetryMax, "webhook-retry-max", webhook.DefaultRetryMax, "longest wait between two attempts of one webhook event (the backoff starts at 1s and doubles)")
	fs.IntVar(&cfg.WebhookConcurrency, "webhook-concurrency", webhook.DefaultConcurrency, "conversations whose webhook events one endpoint is sent at once (each conversation's in order)")
	fs.BoolVar(&cfg.AnonymousVisitors, "anonymous-visitors", false, "visitors without a token get an identity issued by chatd (POST /anonymous; docs/API.md, SECURITY.md)")
	fs.IntVar(&cfg.AnonymousNewPerHour, "anonymous-new-per-hour", anon.DefaultNewPerHour, "new anonymous identities (so new conversations) one client address gets per hour, per node")
	fs.IntVar(&cfg.AnonymousConnsPerIP, "anonymous-conns-per-ip", 20, "open sockets of anonymous visitors from one client address, per node")
	fs.DurationVar(&cfg.AnonymousTTL, "anonymous-ttl", auth.DefaultAnonymousTTL, "how long an anonymous identity's token is valid (the page renews it at each visit)")
	fs.StringVar(&cfg.SMTPURL, "smtp-url", "", "SMTP server of the email notifications (docs/EMAIL.md): smtp://[user:pass@]host[:port][?starttls=require|opportunistic|none] or smtps://…; needs --database-url, --mail-from and --public-url")
	fs.StringVar(&cfg.MailFrom, "mail-from", "", "sender address of the emails, e.g. \"Support <help@example.com>\"")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "grainchat's public base URL, which the emails link to (<url>/chat/ for visitors, <url>/admin/ for staff)")
	fs.DurationVar(&cfg.MailDelay, "mail-delay", mail.DefaultDelay, "a staff reply the visitor has not read this long, while they are offline, is emailed to them")
	fs.StringVar(&cfg.MailStaffTo, "mail-staff-to", "", "comma-separated addresses told of a new conversation while no agent is online; empty = every staff user with an email claim")
	fs.BoolVar(&cfg.MailStaff, "mail-staff", true, "email staff of a new conversation while no agent is online")
	fs.DurationVar(&cfg.MailPoll, "mail-poll", mail.DefaultPollInterval, "how often the node that sends the emails looks for due ones")
	fs.IntVar(&cfg.MailAttempts, "mail-attempts", mail.DefaultMaxAttempts, "attempts of one email before it is given up (the wait doubles from 30s to 1h)")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/ (for profiling; keep off in production)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long a graceful stop may take")
}

// loadConfig parses a command's configuration (file < environment < flags;
// every problem at once); usage goes to stdout.
func loadConfig(command string, args []string, getenv func(string) string, stdout io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.SetOutput(stdout)
	cfg.register(fs, getenv)
	err := parseConfig(fs, &cfg, args, getenv)
	return cfg, err
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "CHAT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig applies file < environment < flags on top of the defaults and
// reports every problem at once.
func parseConfig(fs *flag.FlagSet, cfg *config, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	fromFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { fromFlags[f.Name] = true })

	fromEnv := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && !fromFlags[f.Name] {
			fromEnv[f.Name] = v
		}
	})
	var problems []string
	path := cfg.Config
	if !fromFlags["config"] && fromEnv["config"] != "" {
		path = fromEnv["config"]
	}
	if path != "" {
		values, err := readConfigFile(path)
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(values))
		for k := range values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if fs.Lookup(k) == nil || k == "config" {
				problems = append(problems, fmt.Sprintf("%s: unknown key %q", path, k))
				continue
			}
			if fromFlags[k] || fromEnv[k] != "" {
				continue
			}
			if err := fs.Set(k, values[k]); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %s: %v", path, k, err))
			}
		}
	}
	for name, v := range fromEnv {
		if err := fs.Set(name, v); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", envName(name), err))
		}
	}
	problems = append(problems, cfg.validate()...)
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New("invalid configuration:\n  " + strings.Join(problems, "\n  "))
	}
	return nil
}

func readConfigFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse config file %s: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case []any:
			parts := make([]string, len(v))
			for i, p := range v {
				parts[i] = fmt.Sprint(p)
			}
			out[k] = strings.Join(parts, ",")
		case nil:
			out[k] = ""
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out, nil
}

func (cfg *config) validate() []string {
	var p []string
	if cfg.JWTSecret != "" && len(cfg.JWTSecret) < 32 {
		p = append(p, "jwt-secret: must be at least 32 bytes")
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		p = append(p, "tls-cert, tls-key: give both (to serve TLS) or neither")
	}
	for _, s := range splitList(cfg.TrustedProxies) {
		if _, err := clientip.ParsePrefix(s); err != nil {
			p = append(p, "trusted-proxies: "+err.Error())
		}
	}
	for _, l := range []struct{ name, v string }{{"log-level", cfg.LogLevel}, {"actor-log-level", cfg.ActorLogLevel}} {
		switch l.v {
		case "debug", "info", "warn", "error":
		default:
			p = append(p, l.name+": must be debug, info, warn or error")
		}
	}
	switch cfg.LogFormat {
	case "text", "json":
	default:
		p = append(p, "log-format: must be text or json")
	}
	switch cfg.ClusterProvider {
	case "single":
	case "automanaged":
		if cfg.DatabaseURL == "" {
			p = append(p, "database-url: a cluster needs a shared PostgreSQL database")
		}
		if len(splitList(cfg.ClusterPeers)) == 0 {
			p = append(p, "cluster-peers: automanaged needs the peers' health endpoints")
		}
	case "etcd":
		if cfg.DatabaseURL == "" {
			p = append(p, "database-url: a cluster needs a shared PostgreSQL database")
		}
		if len(splitList(cfg.EtcdEndpoints)) == 0 {
			p = append(p, "etcd-endpoints: etcd needs at least one endpoint")
		}
		if cfg.EtcdLeaseTTL < time.Second || cfg.EtcdLeaseTTL%time.Second != 0 {
			p = append(p, "etcd-lease-ttl: whole seconds, at least 1s (etcd leases count seconds)")
		}
		if cfg.EtcdProbeTimeout < 0 {
			p = append(p, "etcd-probe-timeout: must not be negative (0 turns the probe off)")
		}
	default:
		p = append(p, fmt.Sprintf("cluster-provider: unknown provider %q", cfg.ClusterProvider))
	}
	if cfg.MaxMessageChars < 1 {
		p = append(p, "max-message-chars: must be positive")
	}
	if cfg.MaxFrameBytes < 1024 {
		p = append(p, "max-frame-bytes: must be at least 1024")
	}
	if cfg.MaxConns < 1 || cfg.MaxConnsPerUser < 1 || cfg.MessageBurst < 1 || cfg.StaffBurst < 1 || cfg.StoreWriters < 1 || cfg.MaxHandshakes < 1 {
		p = append(p, "max-conns, max-conns-per-user, message-burst, staff-message-burst, store-writers, max-handshakes: must be positive")
	}
	if cfg.MessageRate == 0 || (cfg.MessageRate < 0 && cfg.MessageRate != -1) {
		p = append(p, "message-rate: must be positive, or -1 for unlimited")
	}
	if cfg.StaffRate == 0 || (cfg.StaffRate < 0 && cfg.StaffRate != -1) {
		p = append(p, "staff-message-rate: must be positive, or -1 for unlimited")
	}
	if cfg.WriteQueue < 1 || cfg.AdminWriteQueue < 1 {
		p = append(p, "write-queue, admin-write-queue: must be positive")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"idle-timeout", cfg.IdleTimeout}, {"ping-interval", cfg.PingInterval}, {"grain-idle-timeout", cfg.GrainIdleTimeout},
		{"post-timeout", cfg.PostTimeout}, {"shutdown-timeout", cfg.ShutdownTimeout}, {"handshake-wait", cfg.HandshakeWait},
		{"automanaged-refresh", cfg.AutomanagedRefresh}, {"grain-refresh-interval", cfg.RefreshInterval},
		{"typing-interval", cfg.TypingInterval}, {"presence-grace", cfg.PresenceGrace},
		{"webhook-timeout", cfg.WebhookTimeout}, {"webhook-retention", cfg.WebhookRetention}, {"webhook-retry-max", cfg.WebhookRetryMax},
		{"mail-delay", cfg.MailDelay}, {"mail-poll", cfg.MailPoll}, {"anonymous-ttl", cfg.AnonymousTTL}} {
		if d.v <= 0 {
			p = append(p, d.name+": must be positive")
		}
	}
	if urls := cfg.webhookURLs(); len(urls) > 0 {
		if cfg.DatabaseURL == "" {
			p = append(p, "webhook-url: webhooks need --database-url (the memory store keeps no outbox)")
		}
		if len(cfg.WebhookSecret) < 16 {
			p = append(p, "webhook-secret: webhooks need a secret of at least 16 bytes")
		}
		for _, u := range urls {
			if err := webhook.CheckURL(u); err != nil {
				p = append(p, "webhook-url: "+err.Error())
			}
		}
	}
	if cfg.SMTPURL != "" {
		if cfg.DatabaseURL == "" {
			p = append(p, "smtp-url: email needs --database-url (the memory store keeps no mail state)")
		}
		if _, err := mail.NewSMTP(cfg.SMTPURL); err != nil {
			p = append(p, err.Error())
		}
		if err := mail.CheckConfig(cfg.mailConfig()); err != nil {
			p = append(p, strings.Split(err.Error(), "\n")...)
		}
		if cfg.MailAttempts < 1 {
			p = append(p, "mail-attempts: must be positive")
		}
	}
	if cfg.AnonymousNewPerHour < 1 || cfg.AnonymousConnsPerIP < 1 {
		p = append(p, "anonymous-new-per-hour, anonymous-conns-per-ip: must be positive")
	}
	if cfg.AnonymousTTL > 0 && cfg.AnonymousTTL < time.Minute {
		p = append(p, "anonymous-ttl: must be at least a minute")
	}
	if cfg.WebhookConcurrency < 1 {
		p = append(p, "webhook-concurrency: must be positive")
	}
	if cfg.PingInterval >= cfg.IdleTimeout {
		p = append(p, "ping-interval: must be shorter than idle-timeout")
	}
	return p
}

func (cfg *config) origins() []string { return splitList(cfg.AllowedOrigins) }

func (cfg *config) trustedProxies() []string { return splitList(cfg.TrustedProxies) }

func (cfg *config) webhookURLs() []string { return splitList(cfg.WebhookURL) }

// mailConfig is the mailer's configuration.
func (cfg *config) mailConfig() mail.Config {
	return mail.Config{
		From:         cfg.MailFrom,
		PublicURL:    cfg.PublicURL,
		Delay:        cfg.MailDelay,
		StaffTo:      splitList(cfg.MailStaffTo),
		NoStaffMail:  !cfg.MailStaff,
		PollInterval: cfg.MailPoll,
		MaxAttempts:  cfg.MailAttempts,
	}
}

// tlsConfig loads the --tls-cert/--tls-key pair: nil without them. Beyond a
// floor of TLS 1.2 it keeps Go's defaults (cipher suites, curves, HTTP/2).
func (cfg *config) tlsConfig() (*tls.Config, error) {
	if cfg.TLSCert == "" && cfg.TLSKey == "" {
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("tls-cert, tls-key: load the key pair: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}, nil
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, o := range strings.Split(s, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}
