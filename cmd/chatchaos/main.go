// Command chatchaos runs grainchat's failover scenario at scale: it starts a
// chatd cluster on loopback (automanaged or etcd membership, one shared
// PostgreSQL database), connects visitors and admins with resuming clients
// (wsclient.Resumer) that post at a steady rate, then repeatedly SIGKILLs the
// node hosting a busy conversation grain, measures how long each affected
// conversation takes to accept messages again, and restarts the node on the
// same address. At the end it stops the traffic, waits until every post is
// acknowledged and delivered, and reports the time to serve again
// (p50/p99/max), messages acknowledged, lost, duplicates, gaps and
// visitor → admin delivery latency. It exits non-zero when anything was
// lost, doubled, skipped or never acknowledged.
//
//	chatchaos --database-url 'postgres://postgres@127.0.0.1:5432/chaos?sslmode=disable' --provider automanaged --kills 10
//
// With --upgrade-from OLD it runs a rolling upgrade instead of the kills:
// the cluster starts on the OLD chatd binary (the database migrated by it),
// then each node in turn is stopped gracefully (SIGTERM) and started again on
// the new binary (--chatd, or the module's), so that old and new nodes serve
// together under traffic; the same checks apply.
//
//	chatchaos --database-url '…' --upgrade-from /tmp/chatd-v0.1.0
//
// With --partition peers|db|etcd it cuts the network instead (as root: each
// node runs in its own network namespace, see cmd/internal/netlab): each node
// in turn is cut off from the other nodes, from PostgreSQL or from etcd for
// --cut, while its clients stay connected, then healed; it reports what the
// clients saw during the cut and how soon every conversation was served
// after the heal.
//
//	chatchaos --database-url '…' --partition peers --cut 5s
//
// It must run inside the grainchat module unless --chatd names a binary.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/chatproc"
	"github.com/grainchat/grainchat/cmd/internal/netlab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatchaos:", err)
		os.Exit(1)
	}
}

// options are chatchaos's flags.
type options struct {
	chatd          string
	databaseURL    string
	provider       string
	refresh        time.Duration // automanaged poll interval
	nodes          int
	visitors       int
	admins         int
	rate           float64 // messages per second per visitor
	kills          int
	interval       time.Duration
	warmup         time.Duration
	target         string
	recoverTimeout time.Duration
	drain          time.Duration
	timeout        time.Duration
	seed           int64
	logDir         string
	chatdArgs      stringList
	jsonOut        bool
	upgradeFrom    string        // the old chatd binary of a rolling upgrade
	stopTimeout    time.Duration // a rolling upgrade's bound on a graceful stop
	partition      string        // peers, db or etcd: cut instead of kill
	cutFor         time.Duration // how long each cut lasts
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("chatchaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.chatd, "chatd", "", "chatd binary; empty = build it with go build (inside the grainchat module) into a temporary directory")
	fs.StringVar(&o.databaseURL, "database-url", getenv("CHAT_DATABASE_URL"), "PostgreSQL database the nodes share (default CHAT_DATABASE_URL); migrated with chatd migrate")
	fs.StringVar(&o.provider, "provider", "automanaged", "membership provider: automanaged or etcd (a throwaway etcd on loopback)")
	fs.DurationVar(&o.refresh, "automanaged-refresh", time.Second, "automanaged: chatd's --automanaged-refresh (how often peers are polled; an unanswered poll removes a node); 1s is chatd's default and the configs'")
	fs.IntVar(&o.nodes, "nodes", 3, "chatd nodes")
	fs.IntVar(&o.visitors, "visitors", 30, "visitors, one conversation each, spread over the nodes")
	fs.IntVar(&o.admins, "admins", 2, "admins, each on a different node (from node 2 on)")
	fs.Float64Var(&o.rate, "rate", 20, "messages per second per visitor")
	fs.IntVar(&o.kills, "kills", 10, "SIGKILLs, one after the other")
	fs.DurationVar(&o.interval, "interval", 5*time.Second, "traffic between a restarted node being ready and the next kill (and after the last)")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "traffic before the first kill")
	fs.StringVar(&o.target, "target", "busiest", "which node to kill: busiest (the host of the conversation with the most acknowledged posts since the last kill) or random (the host of a random visitor's conversation)")
	fs.DurationVar(&o.recoverTimeout, "recover-timeout", 60*time.Second, "bound on the wait for every conversation to accept messages again after a kill")
	fs.DurationVar(&o.drain, "drain", 2*time.Minute, "bound on the final wait for every post to be acknowledged and delivered")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound on the whole run")
	fs.Int64Var(&o.seed, "seed", 0, "random seed; 0 = from the clock")
	fs.StringVar(&o.logDir, "log-dir", "", "where the nodes' logs go; empty = a temporary directory, removed unless the run fails")
	fs.Var(&o.chatdArgs, "chatd-arg", "extra chatd flag for every node (repeatable), e.g. --chatd-arg=--post-timeout=5s")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&o.upgradeFrom, "upgrade-from", "", "run a rolling upgrade instead of kills: start every node on this older chatd binary, then stop each node in turn (SIGTERM) and start it on the new one (--chatd)")
	fs.DurationVar(&o.stopTimeout, "stop-timeout", 30*time.Second, "--upgrade-from: bound on a node's graceful stop (it is then killed and the run fails)")
	fs.StringVar(&o.partition, "partition", "", "cut the network instead of killing (as root; nodes in network namespaces): peers (a node from the other nodes), db (from PostgreSQL) or etcd (from etcd; --provider etcd); each node once, in turn")
	fs.DurationVar(&o.cutFor, "cut", 5*time.Second, "--partition: how long each cut lasts")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var problems []string
	if o.databaseURL == "" {
		problems = append(problems, "--database-url (or CHAT_DATABASE_URL) is required")
	}
	if o.provider != "automanaged" && o.provider != "etcd" {
		problems = append(problems, fmt.Sprintf("--provider %q: automanaged or etcd", o.provider))
	}
	if o.target != "busiest" && o.target != "random" {
		problems = append(problems, fmt.Sprintf("--target %q: busiest or random", o.target))
	}
	if o.nodes < 2 || o.nodes > 16 {
		problems = append(problems, "--nodes: 2 to 16 (a killed node's grains need another node)")
	}
	if o.visitors < 1 || o.visitors > 10000 {
		problems = append(problems, "--visitors: 1 to 10000")
	}
	if o.admins < 1 || o.admins > 100 {
		problems = append(problems, "--admins: 1 to 100")
	}
	if o.rate <= 0 || o.rate > 1000 {
		problems = append(problems, "--rate: more than 0, at most 1000 per visitor")
	}
	if o.kills < 0 || o.kills > 1000 {
		problems = append(problems, "--kills: 0 to 1000")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", o.interval}, {"warmup", o.warmup}, {"automanaged-refresh", o.refresh}, {"recover-timeout", o.recoverTimeout}, {"drain", o.drain}, {"timeout", o.timeout}, {"stop-timeout", o.stopTimeout}, {"cut", o.cutFor}} {
		if d.v <= 0 {
			problems = append(problems, fmt.Sprintf("--%s must be positive", d.name))
		}
	}
	if o.upgradeFrom != "" && set["kills"] {
		problems = append(problems, "--kills and --upgrade-from exclude each other (a rolling upgrade stops each node once)")
	}
	switch o.partition {
	case "", "peers", "db":
	case "etcd":
		if o.provider != "etcd" {
			problems = append(problems, "--partition etcd needs --provider etcd")
		}
	default:
		problems = append(problems, fmt.Sprintf("--partition %q: peers, db or etcd", o.partition))
	}
	if o.partition != "" && (set["kills"] || o.upgradeFrom != "") {
		problems = append(problems, "--partition excludes --kills and --upgrade-from (it cuts each node once)")
	}
	if len(problems) > 0 {
		return o, errors.New(strings.Join(problems, "; "))
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano()
	}
	return o, nil
}

// run is the whole program: main only calls it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	o, err := parseOptions(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.provider == "etcd" {
		// Say so before building and migrating, not a minute later.
		if _, err := exec.LookPath("etcd"); err != nil {
			return chatproc.ErrEtcdNotInstalled
		}
	}
	if o.partition != "" {
		if err := netlab.Check(); err != nil {
			return fmt.Errorf("--partition: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	progress := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, a...)...)
	}

	bin := o.chatd
	if bin == "" {
		dir, err := os.MkdirTemp("", "chatchaos-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		progress("building chatd")
		if bin, err = chatproc.Build(ctx, dir); err != nil {
			return fmt.Errorf("%w (run inside the grainchat module, or give --chatd)", err)
		}
	}
	o.chatd = bin
	first := bin // the nodes' binary at the start
	if o.upgradeFrom != "" {
		first = o.upgradeFrom
	}
	// The schema of the binary the cluster starts on; in a rolling upgrade,
	// the new nodes migrate it further when they start (chatd --migrate,
	// the default), while old nodes still serve.
	if err := chatproc.Migrate(ctx, first, o.databaseURL); err != nil {
		return err
	}

	logDir := o.logDir
	if logDir == "" {
		if logDir, err = os.MkdirTemp("", "chatchaos-logs-"); err != nil {
			return err
		}
		defer func() {
			if err == nil {
				os.RemoveAll(logDir)
			} else {
				fmt.Fprintf(stderr, "chatchaos: node logs kept in %s\n", logDir)
			}
		}()
	} else if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}

	nw, err := newNetwork(ctx, o)
	if err != nil {
		return err
	}
	defer nw.close()

	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	jwtSecret := "chatchaos-" + hex.EncodeToString(secret)
	progress("starting %d nodes (%s membership); logs in %s", o.nodes, o.provider, logDir)
	cl, err := chatproc.StartCluster(ctx, chatproc.ClusterConfig{
		Node: chatproc.NodeConfig{
			Binary: first,
			// --pprof serves the operator view (GET /debug/cluster),
			// which says where grains are. The per-user rate limit is
			// lifted, as loadtest.sh does: this measures failover, not
			// the limiter (--chatd-arg --message-rate=10 puts it back).
			Args:         []string{"--jwt-secret", jwtSecret, "--pprof", "--log-format", "text", "--message-rate", "-1"},
			ReadyTimeout: 60 * time.Second,
			LogLimit:     4 << 20,
		},
		Provider:           o.provider,
		AutomanagedRefresh: o.refresh,
		Nodes:              o.nodes,
		DatabaseURL:        nw.databaseURL,
		EtcdEndpoint:       nw.etcdEndpoint,
		Lab:                nw.lab,
		Name:               fmt.Sprintf("chaos-%d", time.Now().UnixNano()),
		ExtraArgs:          o.chatdArgs,
		LogDir:             logDir,
	})
	if err != nil {
		return err
	}
	defer cl.Close()

	c, err := newChaos(o, cl, jwtSecret, progress)
	if err != nil {
		return err
	}
	c.net = nw
	rep, err := c.run(ctx)
	if err != nil {
		return err
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.print(stdout)
	}
	if problems := rep.problems(); len(problems) > 0 {
		return errors.New("failed: " + strings.Join(problems, "; "))
	}
	return nil
}
