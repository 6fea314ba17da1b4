package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/grainchat/grainchat/actors"
	"github.com/grainchat/grainchat/transport"
)

// nodeStatus is what GET /debug/cluster answers: the node's view of the
// cluster and what it hosts (actors.Status), and its open sockets.
type nodeStatus struct {
	actors.Status
	Sessions int `json:"sessions"`
}

// clusterStatusHandler serves GET /debug/cluster. Like pprof it is served
// only with --pprof: route it to operators only.
func clusterStatusHandler(node *actors.Node, ws *transport.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(nodeStatus{Status: node.Status(), Sessions: ws.Connections()})
	})
}

// runClusterStatus prints the status of the nodes at --url (one or more,
// comma-separated HTTP base URLs of chatd nodes started with --pprof).
func runClusterStatus(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("chatd cluster status", flag.ContinueOnError)
	fs.SetOutput(stdout)
	urls := fs.String("url", "http://127.0.0.1:8080", "comma-separated base URLs of the nodes (chatd started with --pprof)")
	asJSON := fs.Bool("json", false, "print each node's status as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var failed []error
	for _, base := range splitList(*urls) {
		st, err := fetchStatus(ctx, base)
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", base, err))
			continue
		}
		if *asJSON {
			b, _ := json.Marshal(st)
			fmt.Fprintf(stdout, "%s\n", b)
			continue
		}
		fmt.Fprintf(stdout, "node %s (%s): member %v, %d members [%s], %d sessions\n",
			st.Node, base, st.Member, len(st.Members), strings.Join(st.Members, " "), st.Sessions)
		fmt.Fprintf(stdout, "  conversations hosted: %d %v\n", len(st.Conversations), st.Conversations)
		fmt.Fprintf(stdout, "  inbox: owner %s, active here: %v; lookups in flight: %d; granted to other members: %d\n",
			st.InboxOwner, st.InboxActive, st.LookupsInFlight, st.Granted)
		fmt.Fprintf(stdout, "  ownership stops (latest %d):", len(st.OwnershipStops))
		for _, s := range st.OwnershipStops {
			fmt.Fprintf(stdout, " %s→%s", s.Identity, s.Owner)
		}
		fmt.Fprintln(stdout)
	}
	return errors.Join(failed...)
}

func fetchStatus(ctx context.Context, base string) (nodeStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/debug/cluster", nil)
	if err != nil {
		return nodeStatus{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nodeStatus{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nodeStatus{}, fmt.Errorf("GET /debug/cluster: %s (is chatd running with --pprof?)", resp.Status)
	}
	var st nodeStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&st); err != nil {
		return nodeStatus{}, fmt.Errorf("decode status: %w", err)
	}
	return st, nil
}
