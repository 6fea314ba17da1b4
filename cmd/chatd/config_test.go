package main

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/wsclient"
)

func parseForTest(t *testing.T, args []string, env map[string]string) (config, error) {
	t.Helper()
	var cfg config
	fs := flag.NewFlagSet("chatd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	getenv := func(k string) string { return env[k] }
	cfg.register(fs, getenv)
	err := parseConfig(fs, &cfg, args, getenv)
	return cfg, err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Precedence is defaults < file < environment < flags.
func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "c.yaml", "addr: 127.0.0.1:1111\nmax-message-chars: 10\nallowed-origins:\n  - https://a.example\n  - https://b.example\nidle-timeout: 90s\n")
	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		wantAddr string
		wantMax  int
	}{
		{"defaults", nil, nil, "127.0.0.1:8080", 4000},
		{"file", []string{"--config", file}, nil, "127.0.0.1:1111", 10},
		{"env over file", []string{"--config", file}, map[string]string{"CHAT_ADDR": "127.0.0.1:2222"}, "127.0.0.1:2222", 10},
		{"flag over env", []string{"--config", file, "--addr", "127.0.0.1:3333"}, map[string]string{"CHAT_ADDR": "127.0.0.1:2222"}, "127.0.0.1:3333", 10},
		{"CHAT_CONFIG selects the file", nil, map[string]string{"CHAT_CONFIG": file, "CHAT_MAX_MESSAGE_CHARS": "20"}, "127.0.0.1:1111", 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseForTest(t, tc.args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Addr != tc.wantAddr || cfg.MaxMessageChars != tc.wantMax {
				t.Fatalf("addr=%q max=%d, want %q %d", cfg.Addr, cfg.MaxMessageChars, tc.wantAddr, tc.wantMax)
			}
		})
	}
	cfg, err := parseForTest(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.origins(), " "); got != "https://a.example https://b.example" {
		t.Errorf("origins from a YAML list = %q", got)
	}
	if cfg.IdleTimeout != 90*time.Second {
		t.Errorf("idle-timeout = %v, want 90s", cfg.IdleTimeout)
	}
}

// Every problem is reported at once, with where it came from.
func TestConfigReportsAllProblems(t *testing.T) {
	file := writeFile(t, "bad.yaml", "adr: x\nmax-message-chars: lots\n")
	_, err := parseForTest(t, []string{"--config", file, "--log-level", "loud"},
		map[string]string{"CHAT_JWT_SECRET": "short", "CHAT_WRITE_QUEUE": "-1"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{`unknown key "adr"`, "max-message-chars", "log-level", "jwt-secret: must be at least 32 bytes", "write-queue"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if _, err := parseForTest(t, []string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, nil); err == nil {
		t.Error("a missing config file must be an error")
	}
}

// Webhooks need PostgreSQL, a secret and http(s) URLs; every problem is
// reported at once.
func TestConfigWebhooks(t *testing.T) {
	_, err := parseForTest(t, []string{"--webhook-url", "https://crm.example/hook,ftp://x/y", "--webhook-secret", "short",
		"--webhook-concurrency", "0", "--webhook-retention", "0s"}, nil)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"webhook-url: webhooks need --database-url", "webhook-secret: webhooks need a secret of at least 16 bytes",
		`webhook-url: "ftp://x/y": must be an http:// or https:// URL`, "webhook-concurrency", "webhook-retention: must be positive"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	cfg, err := parseForTest(t, []string{"--database-url", "postgres://db/x", "--webhook-secret", "sixteen-bytes-ok"},
		map[string]string{"CHAT_WEBHOOK_URL": "https://a.example/h, https://b.example/h"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.webhookURLs(); len(got) != 2 || got[1] != "https://b.example/h" {
		t.Errorf("webhook URLs %q", got)
	}
	// Without --webhook-url nothing is required.
	if _, err := parseForTest(t, nil, nil); err != nil {
		t.Errorf("no webhooks: %v", err)
	}
}

// The etcd settings: a lease of whole seconds (etcd's unit), at least 1s; a
// probe timeout of 0 (off) or more; checked by chatd check-config with the
// rest, only for --cluster-provider etcd.
func TestConfigEtcd(t *testing.T) {
	etcdArgs := []string{"check-config", "--jwt-secret", testSecret, "--cluster-provider", "etcd", "--database-url", "postgres://db/x"}
	err := run(context.Background(), append(etcdArgs, "--etcd-lease-ttl", "1500ms", "--etcd-probe-timeout", "-1s", "--max-conns", "0"),
		func(string) string { return "" }, io.Discard)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"etcd-lease-ttl: whole seconds", "etcd-probe-timeout: must not be negative", "max-conns"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if err := run(context.Background(), append(etcdArgs, "--etcd-lease-ttl", "0s"), func(string) string { return "" }, io.Discard); err == nil {
		t.Error("a lease of 0s accepted")
	}
	for _, ok := range [][]string{{"--etcd-lease-ttl", "2s", "--etcd-probe-timeout", "0"}, {"--etcd-lease-ttl", "5s", "--etcd-probe-timeout", "250ms"}} {
		if err := run(context.Background(), append(etcdArgs, ok...), func(string) string { return "" }, io.Discard); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	cfg, err := parseForTest(t, nil, map[string]string{"CHAT_ETCD_LEASE_TTL": "2s"})
	if err != nil || cfg.EtcdLeaseTTL != 2*time.Second || cfg.EtcdProbeTimeout != 500*time.Millisecond {
		t.Errorf("lease %v, probe %v, err %v; want 2s from the environment, the default 500ms", cfg.EtcdLeaseTTL, cfg.EtcdProbeTimeout, err)
	}
}

// Email needs PostgreSQL, a sender, a public URL and a usable SMTP URL;
// every problem is reported at once.
func TestConfigMail(t *testing.T) {
	_, err := parseForTest(t, []string{"--smtp-url", "imap://mail.example", "--mail-from", "not an address",
		"--public-url", "/relative", "--mail-staff-to", "a@b.example,nope", "--mail-delay", "0s", "--mail-attempts", "0"}, nil)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"smtp-url: email needs --database-url", `smtp-url: the scheme must be smtp or smtps, not "imap"`,
		`mail-from: "not an address" is not an email address`, "public-url: must be an absolute http or https URL",
		`mail-staff-to: "nope" is not an email address`, "mail-delay: must be positive", "mail-attempts: must be positive"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	for _, bad := range []string{"smtp://mail.example:99999", "smtp://mail.example?starttls=maybe", "smtp://"} {
		if _, err := parseForTest(t, []string{"--database-url", "postgres://db/x", "--smtp-url", bad, "--mail-from", "a@b.example",
			"--public-url", "https://chat.example"}, nil); err == nil || !strings.Contains(err.Error(), "smtp-url") {
			t.Errorf("--smtp-url %s: %v, want an smtp-url error", bad, err)
		}
	}
	cfg, err := parseForTest(t, []string{"--database-url", "postgres://db/x", "--mail-from", "Support <help@chat.example>",
		"--public-url", "https://chat.example"}, map[string]string{"CHAT_SMTP_URL": "smtps://u:p@mail.example", "CHAT_MAIL_STAFF_TO": "a@x.example, b@x.example"})
	if err != nil {
		t.Fatal(err)
	}
	if mc := cfg.mailConfig(); mc.Delay != 10*time.Minute || len(mc.StaffTo) != 2 || mc.NoStaffMail {
		t.Errorf("mail config %+v", mc)
	}
}

// `chatd token` signs with --jwt-secret, a token the server's verifier accepts.
func TestTokenCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"token", "--sub", "u-1", "--name", "Zoé", "--admin", "--jwt-secret", testSecret}, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "u-1" || id.Name != "Zoé" || !id.Admin {
		t.Fatalf("identity = %+v", id)
	}
	if err := run(context.Background(), []string{"token"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("token without --sub must fail")
	}
	// Teams: a visitor's --team, a staff member's --teams.
	for _, tc := range []struct {
		args  []string
		team  string
		teams []string
	}{
		{[]string{"--sub", "v-1", "--team", "billing"}, "billing", nil},
		{[]string{"--sub", "s-1", "--admin", "--teams", "billing,sales.eu"}, "", []string{"billing", "sales.eu"}},
		{[]string{"--sub", "s-1", "--admin", "--teams="}, "", []string{}},
		{[]string{"--sub", "s-1", "--admin"}, "", nil},
	} {
		out.Reset()
		if err := run(context.Background(), append([]string{"token", "--jwt-secret", testSecret}, tc.args...), func(string) string { return "" }, &out); err != nil {
			t.Fatalf("token %q: %v", tc.args, err)
		}
		id, err := v.Verify(strings.TrimSpace(out.String()))
		if err != nil || id.Team != tc.team || !slices.Equal(id.Teams, tc.teams) || (id.Teams == nil) != (tc.teams == nil) {
			t.Errorf("token %q: team %q teams %q (%v), want %q %q", tc.args, id.Team, id.Teams, err, tc.team, tc.teams)
		}
	}
	for _, args := range [][]string{
		{"--sub", "v-1", "--team", "Billing"},
		{"--sub", "s-1", "--admin", "--team", "billing"},
		{"--sub", "v-1", "--teams", "billing"},
		{"--sub", "s-1", "--admin", "--teams", "billing,,sales"},
	} {
		if err := run(context.Background(), append([]string{"token", "--jwt-secret", testSecret}, args...), func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("token %q must fail", args)
		}
	}
}

// With no configuration at all chatd runs: memory store, a generated secret
// kept where `chatd token` finds it, and a working chat.
func TestDevelopmentModeWithNoConfiguration(t *testing.T) {
	state := t.TempDir()
	env := map[string]string{"XDG_STATE_HOME": state}
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"--addr", "127.0.0.1:0"}, getenv, pw)
		pw.Close()
		done <- err
	}()
	var log strings.Builder
	addr := ""
	buf := make([]byte, 4096)
	for addr == "" {
		n, err := pr.Read(buf)
		if err != nil {
			t.Fatalf("chatd ended: %v\n%s", err, log.String())
		}
		log.Write(buf[:n])
		if m := listenLine.FindStringSubmatch(log.String()); m != nil {
			addr = m[1]
		}
	}
	for _, want := range []string{"NO DATABASE CONFIGURED", "DEVELOPMENT MODE"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log does not warn %q:\n%s", want, log.String())
		}
	}
	go io.Copy(io.Discard, pr) //nolint:errcheck // drain the rest of the log
	if _, err := os.Stat(filepath.Join(state, "grainchat", "dev-jwt-secret")); err != nil {
		t.Fatalf("development secret not written: %v", err)
	}
	var tok bytes.Buffer
	if err := run(context.Background(), []string{"token", "--sub", "alice", "--name", "Alice"}, getenv, &tok); err != nil {
		t.Fatal(err)
	}
	c, err := wsclient.Dial(ctxT(t, 10*time.Second), "ws://"+addr+"/ws/chat/", wsclient.Options{Token: strings.TrimSpace(tok.String())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(map[string]any{"message": "hello"}); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, c, "hello")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run returned %v", err)
	}
}

// `chatd migrate` creates the schema and is idempotent.
func TestMigrateCommand(t *testing.T) {
	dsn := newDatabase(t)
	for i := 0; i < 2; i++ {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"migrate", "--database-url", dsn, "--log-level", "warn"}, func(string) string { return "" }, &out); err != nil {
			t.Fatalf("migrate #%d: %v", i+1, err)
		}
		if !strings.Contains(out.String(), "migrations applied") {
			t.Fatalf("migrate #%d printed %q", i+1, out.String())
		}
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_name IN ('users','conversations','messages')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("%d of the 3 tables exist", n)
	}
	if err := run(context.Background(), []string{"migrate"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("migrate without a database URL must fail")
	}
}

// /healthz and /readyz answer.
func TestHealthAndReadiness(t *testing.T) {
	s := startServer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		if got := httpStatus(t, "http://"+s.Addr+path, nil); got != 200 {
			t.Errorf("%s = %d, want 200", path, got)
		}
	}
}

// --tls-cert and --tls-key come as a pair; --trusted-proxies is a list of
// CIDRs or addresses. Both layer file < environment < flags like the rest,
// and their problems are reported with the others.
func TestConfigTLSAndTrustedProxies(t *testing.T) {
	file := writeFile(t, "c.yaml", "tls-cert: /etc/chat/cert.pem\ntls-key: /etc/chat/key.pem\ntrusted-proxies:\n  - 10.0.0.0/8\n  - 192.0.2.7\n")
	cases := []struct {
		name           string
		args           []string
		env            map[string]string
		cert, key      string
		trustedProxies string
	}{
		{"defaults: no TLS, no proxies", nil, nil, "", "", ""},
		{"file", []string{"--config", file}, nil, "/etc/chat/cert.pem", "/etc/chat/key.pem", "10.0.0.0/8 192.0.2.7"},
		{"env over file", []string{"--config", file},
			map[string]string{"CHAT_TLS_CERT": "/env/cert.pem", "CHAT_TLS_KEY": "/env/key.pem", "CHAT_TRUSTED_PROXIES": "172.16.0.0/12, fd00::/8"},
			"/env/cert.pem", "/env/key.pem", "172.16.0.0/12 fd00::/8"},
		{"flags over env", []string{"--config", file, "--tls-cert", "c", "--tls-key", "k", "--trusted-proxies", "127.0.0.1/32"},
			map[string]string{"CHAT_TLS_CERT": "/env/cert.pem", "CHAT_TRUSTED_PROXIES": "172.16.0.0/12"},
			"c", "k", "127.0.0.1/32"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseForTest(t, tc.args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.TLSCert != tc.cert || cfg.TLSKey != tc.key || strings.Join(cfg.trustedProxies(), " ") != tc.trustedProxies {
				t.Fatalf("tls-cert=%q tls-key=%q trusted-proxies=%q; want %q %q %q",
					cfg.TLSCert, cfg.TLSKey, cfg.trustedProxies(), tc.cert, tc.key, tc.trustedProxies)
			}
		})
	}

	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"only a certificate", []string{"--tls-cert", "cert.pem"}, nil, []string{"tls-cert, tls-key: give both"}},
		{"only a key", nil, map[string]string{"CHAT_TLS_KEY": "key.pem"}, []string{"tls-cert, tls-key: give both"}},
		{"bad proxies, with another problem", []string{"--trusted-proxies", "10.0.0.0/33, proxy.example,127.0.0.1", "--log-level", "loud"}, nil,
			[]string{`trusted-proxies: "10.0.0.0/33"`, `trusted-proxies: "proxy.example"`, "log-level"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseForTest(t, tc.args, tc.env)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not mention %q:\n%v", want, err)
				}
			}
			if strings.Contains(err.Error(), `"127.0.0.1"`) {
				t.Errorf("error blames a valid entry:\n%v", err)
			}
		})
	}
}

// The example configuration is valid as it is, the TLS and proxy keys
// included.
func TestConfigExampleFileParses(t *testing.T) {
	cfg, err := parseForTest(t, []string{"--config", filepath.Join("..", "..", "configs", "chatd.example.yaml")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" || len(cfg.trustedProxies()) != 0 {
		t.Errorf("the example turns TLS or proxies on: %q %q %q", cfg.TLSCert, cfg.TLSKey, cfg.trustedProxies())
	}
}

// chatd check-config validates without serving: a valid configuration exits
// 0 with a summary, an invalid one reports every problem at once.
func TestCheckConfig(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"check-config", "--jwt-secret", testSecret}, func(string) string { return "" }, &out); err != nil {
		t.Fatalf("valid configuration: %v", err)
	}
	if !strings.Contains(out.String(), "configuration OK") || !strings.Contains(out.String(), "production mode") {
		t.Errorf("check-config printed %q", out.String())
	}
	out.Reset()
	err := run(context.Background(), []string{"check-config", "--jwt-secret", "short", "--max-conns", "0", "--tls-cert", "/nonexistent"},
		func(string) string { return "" }, &out)
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{"jwt-secret", "max-conns", "tls-cert"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
