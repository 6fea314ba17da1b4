// Command webhooksink is a trivial webhook receiver for load tests: it
// verifies each request's signature (integrations/webhook.Verify), answers
// 204, and counts events by type, duplicates (an event id seen before) and
// bad signatures. GET /stats answers the counts as JSON; SIGINT or SIGTERM
// prints them and exits.
//
//	webhooksink --addr 127.0.0.1:9099 --secret "$CHAT_WEBHOOK_SECRET"
//
// It keeps every event id it has seen, in memory (about 50 bytes each).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/grainchat/grainchat/integrations/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "webhooksink:", err)
		os.Exit(1)
	}
}

// stats are the sink's counts.
type stats struct {
	Events        int64            `json:"events"`
	Distinct      int64            `json:"distinct"`
	Duplicates    int64            `json:"duplicates"`
	BadSignatures int64            `json:"bad_signatures"`
	ByType        map[string]int64 `json:"by_type"`
}

// sink counts what it receives.
type sink struct {
	secret []byte
	mu     sync.Mutex
	seen   map[string]bool
	st     stats
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/stats" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.snapshot())
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	if webhook.Verify(s.secret, r.Header.Get(webhook.HeaderSignature), body, time.Now(), 0) != nil {
		s.mu.Lock()
		s.st.BadSignatures++
		s.mu.Unlock()
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	var env webhook.Envelope
	_ = json.Unmarshal(body, &env)
	s.mu.Lock()
	s.st.Events++
	if s.seen[env.ID] {
		s.st.Duplicates++
	} else {
		s.seen[env.ID] = true
		s.st.Distinct++
		s.st.ByType[env.Type]++
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *sink) snapshot() stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.st
	out.ByType = make(map[string]int64, len(s.st.ByType))
	for k, v := range s.st.ByType {
		out.ByType[k] = v
	}
	return out
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("webhooksink", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9099", "listen address")
	secret := fs.String("secret", os.Getenv("CHAT_WEBHOOK_SECRET"), "the webhooks' secret (default $CHAT_WEBHOOK_SECRET)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secret == "" {
		return errors.New("--secret (or CHAT_WEBHOOK_SECRET) is required")
	}
	s := &sink{secret: []byte(*secret), seen: map[string]bool{}, st: stats{ByType: map[string]int64{}}}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "webhooksink: listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	b, _ := json.Marshal(s.snapshot())
	fmt.Fprintf(stdout, "webhooksink: %s\n", b)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
