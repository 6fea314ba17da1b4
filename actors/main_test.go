package actors

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakSettle is how long TestMain lets goroutines that are bounded by a
// timeout finish before it calls them leaks: a grain lookup abandoned by
// Node.lookup ends within the library's 5s placement timeout, a dead-letter
// log throttle within 1s.
const leakSettle = 10 * time.Second

// leakIgnores are goroutines of protoactor-go (pinned in go.mod) and of the
// gRPC client it uses, which are not ours to stop. The closure names are
// those the compiler gives the library's code (its NewThrottle is inlined
// into its callers): a new library version may rename them, which makes the
// check fail loudly rather than hide a leak.
var leakIgnores = []goleak.Option{
	// The gossip log throttles: one-shot timer goroutines with a 60s period,
	// started by a member's first gossip; the cluster's shutdown does not
	// wait for them.
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster.(*Gossiper).StartGossiping.NewThrottle.func3.1"),
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster.NewGossipActor.NewThrottleWithLogger.func2.1"),
	// The in-memory membership provider of these tests ranges over a
	// ticker's channel, which Ticker.Stop never closes: its TTL goroutine
	// outlives every provider.
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster/clusterproviders/test.(*Provider).startTtlReport.func1"),
	// Two members in one process (cluster_test.go, built without -race):
	// after one leaves, the other's endpoint writer retries connecting to it
	// (5 × 2s), and each attempt's gRPC client connection keeps its
	// goroutines. Node.Shutdown stops the cluster with graceful=false, which
	// skips protoactor's remote endpoint manager, so they are never closed.
	goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/remote.(*endpointWriter).initialize"),
	goleak.IgnoreTopFunction("google.golang.org/grpc.(*addrConn).resetTransportAndUnlock"),
	goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
}

// TestMain fails the package's tests if a goroutine outlives them for longer
// than leakSettle: a session, grain, lookup or timer that keeps running after
// its node shut down.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := settledLeaks(leakSettle); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines outlived the tests by %v: %v\n", leakSettle, err)
			code = 1
		}
	}
	os.Exit(code)
}

// settledLeaks polls goleak until no unexpected goroutine is left or d has
// passed, and returns the last finding.
func settledLeaks(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := goleak.Find(leakIgnores...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
