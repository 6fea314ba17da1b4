// Command chatbench is grainchat's load program. It speaks to a running chatd
// over real WebSockets, as real clients do (tokens minted with the server's
// secret, visitors and admins, each message carrying its send time and a
// unique id), and reports what the server sustained and whether every
// message reached its receivers exactly once, in order.
//
// Scenarios (--scenario):
//
//	chat     visitors post at --rate (or flat out), admins reply; throughput and latency
//	admins   the same with many admins (default 50): fan-out to every admin
//	idle     open --conns connections and hold them: connections held, connect rate, server RSS per connection
//	connect  open --conns connections as fast as --concurrency dialers can, --rounds times: connects/s
//	churn    visitors connect, post a few messages, wait for their acks, disconnect, for --duration,
//	         while admins verify every acknowledged message; the server's goroutines and RSS
//	         before, during and after (the soak of issue #6)
//
// Dialects (--dialect, chat and admins): v1 (the default) offers the
// grainchat.v1 subprotocol, tags every post with a client_msg_id and counts
// acks and error frames; flat out (--rate 0) each visitor keeps --window posts
// awaiting their ack. seed speaks only the original document's JSON
// ({"message"} from visitors, {"message","conversation_id"} from staff), gets
// no acks and no errors, and sends without a window (--window 0): each
// visitor writes its --messages all at once. A seed message counts as stored
// when it comes back to its sender (the server delivers only what it
// stored); it must also reach every admin (and a reply its visitor), once,
// in the order its sender sent it.
//
// The secret: --jwt-secret, else CHAT_JWT_SECRET, else the development
// secret a chatd started without one wrote (--dev-secret-file, else
// CHAT_DEV_SECRET_FILE, else ~/.local/state/grainchat/dev-jwt-secret), the
// same file `chatd token` reads: chatbench runs against the README's
// `go run ./cmd/chatd` as it is.
//
// Given the server's pid (--server-pid) it reads the server's RSS and CPU
// time from /proc; with --postgres-cpu also PostgreSQL's (every process named
// postgres); --metrics-url (by default http://<host of --url>/metrics) gives
// the server's goroutines and heap.
//
// The verdict, on the last line (OK or FAIL) and in the exit status (0 or
// 1): a run fails when any message was lost (acknowledged or echoed but not
// delivered to every receiver), duplicated or delivered out of order; when a
// post got no answer (v1: neither ack nor error; seed: never came back to
// its sender) by the end of the drain; when more than --allow-refused (a
// fraction, default 0) of the posts were refused (v1 error frames such as
// rate_limited); when connections failed; or when the server closed
// connections it should have kept.
//
//	chatbench --users 300 --admins 2 --rate 300 --reply-every 30 --duration 20s
//	chatbench --dialect seed --window 0 --users 200 --messages 100
//	chatbench --scenario idle --conns 19000 --server-pid 1234
//	chatbench --scenario churn --duration 3m --server-pid 1234 --json
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/devsecret"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "chatbench:", err)
		os.Exit(1)
	}
}

// errFailed is run's answer when the run was made but its report lists
// problems (the report, already written, says which; main repeats them on
// stderr).
var errFailed = errors.New("the run failed")

// Scenario names.
const (
	scenarioChat    = "chat"
	scenarioAdmins  = "admins"
	scenarioIdle    = "idle"
	scenarioConnect = "connect"
	scenarioChurn   = "churn"
)

// Dialects.
const (
	dialectV1   = "v1"
	dialectSeed = "seed"
)

// options are chatbench's flags, resolved: each scenario has its own
// defaults for the flags not given (see scenarioDefaults).
type options struct {
	scenario   string
	dialect    string
	url        string
	secret     string
	secretFile string
	prefix     string
	jsonOut    bool

	users       int
	admins      int
	conns       int
	rate        float64
	window      int
	messages    int
	duration    time.Duration
	drain       time.Duration
	replyEvery  int
	typingEvery time.Duration
	openPerAdm  int
	connectRate float64
	concurrency int
	rounds      int
	msgsPerConn int

	allowRefused float64

	settle        time.Duration
	settleTimeout time.Duration
	settleMargin  int
	settleGC      bool
	sampleEvery   time.Duration

	serverPID   int
	postgresCPU bool
	metricsURL  string
	forceGC     bool
	gcURL       string // derived from url: chatd's pprof heap profile after a collection
	cpuProfile  string
	slowLog     string
	slowOver    time.Duration
	warmup      time.Duration
}

// scenarioDefaults are the values of the flags a scenario changes when they
// are not given on the command line.
var scenarioDefaults = map[string]map[string]string{
	scenarioChat:    {"users": "300", "admins": "2", "duration": "20s", "connect-rate": "2000"},
	scenarioAdmins:  {"users": "200", "admins": "50", "duration": "20s", "rate": "200", "connect-rate": "2000"},
	scenarioIdle:    {"admins": "0", "conns": "1000", "duration": "10s", "settle": "5s"},
	scenarioConnect: {"admins": "0", "conns": "5000", "rounds": "2"},
	scenarioChurn:   {"users": "100", "admins": "2", "duration": "60s", "connect-rate": "200", "settle": "5s", "settle-gc": "true", "settle-timeout": "150s"},
}

func parseOptions(args []string, getenv func(string) string) (options, error) {
	var o options
	fs := flag.NewFlagSet("chatbench", flag.ContinueOnError)
	fs.StringVar(&o.scenario, "scenario", scenarioChat, "chat, admins, idle, connect or churn")
	fs.StringVar(&o.dialect, "dialect", dialectV1, "chat, admins: v1 (grainchat.v1: acks, errors, windowed) or seed (the original JSON only: no acks, no window, --window 0)")
	fs.StringVar(&o.url, "url", "ws://127.0.0.1:8080/ws/chat/", "chatd WebSocket URL")
	fs.StringVar(&o.secret, "jwt-secret", getenv(devsecret.EnvSecret), "chatd's HS256 secret (default CHAT_JWT_SECRET, else the development secret file)")
	fs.StringVar(&o.secretFile, "dev-secret-file", devsecret.DefaultSecretFile(getenv), "the development secret a chatd without --jwt-secret wrote, read when no --jwt-secret is given (default CHAT_DEV_SECRET_FILE, else this; the same file as chatd token)")
	fs.StringVar(&o.prefix, "prefix", "bench-"+strconv.FormatInt(time.Now().UnixNano(), 36), "prefix of the users' subs (the same prefix reconnects the same users)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write chatbench's own CPU profile to this file (to see what the load program costs)")
	fs.StringVar(&o.slowLog, "slow-log", "", "chat, admins: write each user→admin delivery slower than --slow-over to this file, a line each: the send time (Unix ms) and the latency (ms), in send order (to see when a tail happens)")
	fs.DurationVar(&o.warmup, "warmup", 0, "chat, admins: also report the latencies of the messages sent after this much of the send phase (after_warmup), leaving out the run's first moments, when each conversation's first message activates its grain; 0 = no such report")
	fs.DurationVar(&o.slowOver, "slow-over", 20*time.Millisecond, "the latency above which --slow-log records a delivery")

	fs.IntVar(&o.users, "users", 300, "chat, admins, churn: visitors, one conversation each (chat 300, admins 200, churn 100)")
	fs.IntVar(&o.admins, "admins", 2, "staff connections (chat 2, admins 50, churn 2, idle and connect 0)")
	fs.IntVar(&o.conns, "conns", 1000, "idle, connect: visitor connections to open (idle 1000, connect 5000)")
	fs.Float64Var(&o.rate, "rate", 0, "chat, admins: visitor messages per second in total; 0 = flat out (admins 200)")
	fs.IntVar(&o.window, "window", 4, "v1 flat out: messages each visitor keeps waiting for their ack (chatd reads at most 64 unacknowledged posts of a socket, then slows it); 0 = no window: each visitor sends its --messages at once (seed: always 0)")
	fs.IntVar(&o.messages, "messages", 0, "chat, admins: messages each visitor sends, then the run drains and ends (--duration is then not used); 0 = send for --duration. Required with --window 0")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "chat, admins, churn: how long visitors send; idle: how long connections are held (idle 10s, churn 60s)")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "how long to wait for outstanding acks and deliveries at the end (seed: how long without any new frame)")
	fs.IntVar(&o.replyEvery, "reply-every", 10, "an admin replies to every Nth visitor message of a conversation (the admin conversation_id mod admins); 0 = never")
	fs.DurationVar(&o.typingEvery, "typing-every", 0, "chat (v1): each visitor also sends a typing frame this often, phases spread evenly, while messages are sent (e.g. 3s); 0 = never")
	fs.IntVar(&o.openPerAdm, "open-per-admin", 0, "chat (v1): each admin opens this many of the conversations it replies in (conversation_id mod --admins) before messages flow, as an agent with conversations on screen, and so also gets their typing frames (typing_received); 0 = admins follow the inbox only")
	fs.Float64Var(&o.connectRate, "connect-rate", 0, "connections opened per second; 0 = as fast as --concurrency dialers can (chat, admins 2000 at start; churn 200 throughout)")
	fs.IntVar(&o.concurrency, "concurrency", 100, "dialers opening connections at the same time (churn: at most --users)")
	fs.IntVar(&o.rounds, "rounds", 1, "connect: times the same --conns visitors connect (round 1 creates their conversations; connect 2)")
	fs.IntVar(&o.msgsPerConn, "msgs-per-conn", 2, "churn: messages a visitor posts on each connection")
	fs.Float64Var(&o.allowRefused, "allow-refused", 0, "fraction (0 to 1) of the posts the server may refuse (v1 error frames: message_too_long, unavailable, …) without failing the run; 0 = any refusal fails it")

	fs.DurationVar(&o.settle, "settle", 0, "idle: pause after connecting before the server's RSS is read; churn: pause after closing before the settle check (idle, churn 5s)")
	fs.DurationVar(&o.settleTimeout, "settle-timeout", 60*time.Second, "churn: how long to wait for the server's goroutines to return to their baseline (churn 150s)")
	fs.IntVar(&o.settleMargin, "settle-margin", 10, "churn: goroutines above the baseline still counted as back to it")
	fs.BoolVar(&o.settleGC, "settle-gc", false, "churn: also wait for a garbage collection after the last connection closed, so that the heap figures after are live data (an idle Go process collects at least every 2 minutes; churn true)")
	fs.DurationVar(&o.sampleEvery, "sample-every", 5*time.Second, "how often the server's goroutines, RSS and connections are sampled during a run")

	fs.IntVar(&o.serverPID, "server-pid", 0, "chatd's pid: read its RSS and CPU time from /proc (same machine only)")
	fs.BoolVar(&o.postgresCPU, "postgres-cpu", false, "also read the CPU time of every process named postgres from /proc")
	fs.StringVar(&o.metricsURL, "metrics-url", "", "chatd's Prometheus endpoint; default http://<host of --url>/metrics; \"-\" = none")
	fs.BoolVar(&o.forceGC, "force-gc", false, "have the server collect garbage before the memory samples that matter (before, settled, after), through /debug/pprof/heap?gc=1: chatd must run with --pprof")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	defaults, ok := scenarioDefaults[o.scenario]
	if !ok {
		return o, fmt.Errorf("unknown --scenario %q (chat, admins, idle, connect or churn)", o.scenario)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, v := range defaults {
		if !given[name] {
			if err := fs.Set(name, v); err != nil {
				return o, fmt.Errorf("default of --%s: %w", name, err)
			}
		}
	}

	var problems []string
	if secret, err := devsecret.Resolve(o.secret, o.secretFile); err != nil {
		problems = append(problems, err.Error())
	} else if len(secret) < devsecret.MinLength {
		problems = append(problems, fmt.Sprintf("--jwt-secret (or CHAT_JWT_SECRET) must be at least %d bytes", devsecret.MinLength))
	} else {
		o.secret = secret
	}
	switch o.dialect {
	case dialectV1:
		if o.window == 0 && o.messages == 0 && o.rate == 0 {
			problems = append(problems, "--window 0 sends without waiting: give --messages (how many each visitor sends)")
		}
	case dialectSeed:
		if o.scenario != scenarioChat && o.scenario != scenarioAdmins {
			problems = append(problems, "--dialect seed is for the chat and admins scenarios")
		}
		if given["window"] && o.window != 0 {
			problems = append(problems, "--dialect seed: seed clients get no acks to keep a window on: --window must be 0")
		}
		o.window = 0
		if o.messages == 0 && o.rate == 0 {
			problems = append(problems, "--dialect seed sends without a window: give --messages (how many each visitor sends) or --rate")
		}
	default:
		problems = append(problems, fmt.Sprintf("unknown --dialect %q (v1 or seed)", o.dialect))
	}
	if o.allowRefused < 0 || o.allowRefused > 1 {
		problems = append(problems, "--allow-refused is a fraction between 0 and 1")
	}
	if o.messages < 0 {
		problems = append(problems, "--messages cannot be negative")
	}
	switch o.scenario {
	case scenarioChat, scenarioAdmins, scenarioChurn:
		if o.users < 1 || o.admins < 1 {
			problems = append(problems, "--users and --admins must be at least 1")
		}
	case scenarioIdle, scenarioConnect:
		if o.conns < 1 || o.admins < 0 {
			problems = append(problems, "--conns must be at least 1 and --admins at least 0")
		}
	}
	if o.concurrency < 1 || o.rounds < 1 || o.msgsPerConn < 1 || o.window < 0 {
		problems = append(problems, "--concurrency, --rounds and --msgs-per-conn must be at least 1, --window at least 0")
	}
	if o.rate < 0 || o.connectRate < 0 || o.replyEvery < 0 || o.settleMargin < 0 || o.typingEvery < 0 || o.openPerAdm < 0 {
		problems = append(problems, "--rate, --connect-rate, --reply-every, --settle-margin, --typing-every and --open-per-admin cannot be negative")
	}
	if o.duration <= 0 || o.sampleEvery <= 0 {
		problems = append(problems, "--duration and --sample-every must be positive")
	}
	u, err := url.Parse(o.url)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("--url %q is not a ws:// or wss:// URL", o.url))
	} else {
		if o.metricsURL == "" {
			o.metricsURL = metricsURLFor(u)
		}
		o.gcURL = strings.TrimSuffix(metricsURLFor(u), "/metrics") + "/debug/pprof/heap?gc=1"
	}
	if o.metricsURL == "-" {
		o.metricsURL = ""
	}
	if len(problems) > 0 {
		return o, errors.New(strings.Join(problems, "; "))
	}
	return o, nil
}

// metricsURLFor is the /metrics URL of the server of a WebSocket URL.
func metricsURLFor(ws *url.URL) string {
	scheme := "http"
	if ws.Scheme == "wss" {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: ws.Host, Path: "/metrics"}).String()
}

// run runs one scenario and writes its report to stdout. It returns an error
// when the run could not be made or its report lists problems (see
// report.problems), after writing the report.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parseOptions(args, getenv)
	if err != nil {
		return err
	}
	limit, err := raiseFileLimit()
	if err != nil {
		return err
	}
	need := uint64(o.admins + 64)
	switch o.scenario {
	case scenarioIdle, scenarioConnect:
		need += uint64(o.conns)
	default:
		need += uint64(o.users)
	}
	if need > limit {
		return fmt.Errorf("%d connections need about %d file descriptors; this process may open %d (raise the hard limit: ulimit -Hn)", need-64, need, limit)
	}
	b, err := newBench(o)
	if err != nil {
		return err
	}
	b.fileLimit = limit
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var rep *report
	switch o.scenario {
	case scenarioChat, scenarioAdmins:
		rep, err = b.runChat(ctx)
	case scenarioIdle, scenarioConnect:
		rep, err = b.runConnections(ctx)
	case scenarioChurn:
		rep, err = b.runChurn(ctx)
	}
	if err != nil {
		return err
	}
	if o.slowLog != "" {
		if err := b.writeSlowLog(o.slowLog); err != nil {
			return err
		}
	}
	rep.Problems = rep.problems()
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.print(stdout)
	}
	if len(rep.Problems) > 0 {
		return fmt.Errorf("%w: %s", errFailed, strings.Join(rep.Problems, "; "))
	}
	return nil
}

// raiseFileLimit raises this process's soft RLIMIT_NOFILE to its hard limit
// (each connection is a file descriptor) and returns the new soft limit.
func raiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("read the file limit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, fmt.Errorf("raise the file limit to %d: %w", l.Max, err)
		}
	}
	return l.Cur, nil
}
