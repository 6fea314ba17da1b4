package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/chatproc"
)

// TestQuickStartServer runs chatbench against the README's quick-start
// server: development mode (no --jwt-secret: chatbench finds the secret the
// server wrote, as `chatd token` does), the memory store, the default rate
// limit: the README's load passes. Then against a server that refuses every
// one of chatbench's posts (--max-message-chars 10: message_too_long): the
// run fails loudly (an error, a FAIL line naming the refusals) unless
// --allow-refused lets the refusals through.
func TestQuickStartServer(t *testing.T) {
	dir := t.TempDir()
	// Building is not what the deadline below is for: on a cold build
	// cache under load it alone took over two minutes.
	bin, err := chatproc.Build(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	secretFile := filepath.Join(dir, "state", "grainchat", "dev-jwt-secret")
	node, err := chatproc.StartNode(ctx, chatproc.NodeConfig{Binary: bin, LogLimit: 1 << 20,
		Args: []string{"--jwt-secret=", "--dev-secret-file", secretFile, "--log-level", "warn"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chatd's output:\n%s", node.Log().String())
		}
		_ = node.Kill()
	})
	// Only the development secret file, as a newcomer's shell has it.
	getenv := func(k string) string {
		if k == "CHAT_DEV_SECRET_FILE" {
			return secretFile
		}
		return ""
	}
	bench := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"--url", node.URL(), "--drain", "10s", "--metrics-url", "-"}, args...), getenv, &out)
		return out.String(), err
	}

	t.Run("within the limit", func(t *testing.T) {
		// The README's command, smaller: 1 message per visitor per second,
		// a few replies per admin per second (the limit is 10/s, burst 20).
		out, err := bench("--users", "10", "--admins", "2", "--rate", "10", "--reply-every", "5", "--duration", "2s")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "OK: ") || !strings.HasSuffix(last, "refused 0") {
			t.Errorf("last line %q, want OK with nothing refused:\n%s", last, out)
		}
	})
	refusing, err := chatproc.StartNode(ctx, chatproc.NodeConfig{Binary: bin, LogLimit: 1 << 20, Name: "refusing",
		Args: []string{"--jwt-secret=", "--dev-secret-file", secretFile, "--log-level", "warn", "--max-message-chars", "10"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = refusing.Kill() })
	refused := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"--url", refusing.URL(), "--drain", "10s", "--metrics-url", "-",
			"--users", "3", "--admins", "1", "--rate", "30", "--duration", "1s"}, args...), getenv, &out)
		return out.String(), err
	}
	t.Run("refused fails", func(t *testing.T) {
		out, err := refused()
		if !errors.Is(err, errFailed) {
			t.Fatalf("every post refused: %v, want the run to fail\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "FAIL: ") {
			t.Errorf("last line %q, want FAIL:\n%s", last, out)
		}
		if !strings.Contains(out, "PROBLEM: the server refused") || !strings.Contains(out, "message_too_long") {
			t.Errorf("the summary does not say what was refused:\n%s", out)
		}
		if !strings.Contains(err.Error(), "refused") {
			t.Errorf("error %q does not say what failed", err)
		}
	})
	t.Run("allow refused", func(t *testing.T) {
		out, err := refused("--allow-refused", "1")
		if err != nil {
			t.Fatalf("--allow-refused 1: %v\n%s", err, out)
		}
		if !strings.Contains(out, "message_too_long") {
			t.Errorf("nothing was refused, the test proves nothing:\n%s", out)
		}
		out, err = refused("--allow-refused", "0.5")
		if !errors.Is(err, errFailed) {
			t.Errorf("--allow-refused 0.5 with every post refused: %v\n%s", err, out)
		}
	})
	t.Run("no secret", func(t *testing.T) {
		missing := filepath.Join(dir, "nowhere")
		var out bytes.Buffer
		err := run(ctx, []string{"--url", node.URL()}, func(k string) string {
			if k == "CHAT_DEV_SECRET_FILE" {
				return missing
			}
			return ""
		}, &out)
		if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "--jwt-secret") {
			t.Errorf("without a secret: %v", err)
		}
	})
}
