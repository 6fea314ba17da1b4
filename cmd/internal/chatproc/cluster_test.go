package chatproc

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage/pgtest"
)

// takenPort hands out an address another listener holds for the first
// `taken` picks, then free ones, and counts the picks.
type takenPort struct {
	held  string
	taken int

	mu    sync.Mutex
	picks []string
}

func (p *takenPort) pick() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	addr := p.held
	if len(p.picks) >= p.taken {
		var err error
		if addr, err = FreeAddr(); err != nil {
			return "", err
		}
	}
	p.picks = append(p.picks, addr)
	return addr, nil
}

func (p *takenPort) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.picks)
}

// StartCluster starts the cluster again on fresh ports when a node finds
// its port taken ("address already in use"), three times at most, and not
// for other errors.
func TestStartClusterPortTaken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, err := Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dsn := pgtest.NewDatabase(t)
	if err := Migrate(ctx, bin, dsn); err != nil {
		t.Fatal(err)
	}
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	config := func(p *takenPort) ClusterConfig {
		return ClusterConfig{Node: NodeConfig{Binary: bin}, Provider: "automanaged", Nodes: 2,
			DatabaseURL: dsn, freeAddr: p.pick}
	}

	t.Run("taken once", func(t *testing.T) {
		// The first attempt's node-1 health address is taken: node-1 exits,
		// the second attempt picks two fresh ones and both nodes start.
		p := &takenPort{held: held.Addr().String(), taken: 1}
		c, err := StartCluster(ctx, config(p))
		if err != nil {
			t.Fatalf("StartCluster: %v", err)
		}
		defer c.Close()
		// 4: two per attempt, two attempts (6 only if another process took
		// a fresh port too, which the retry is for).
		if got := p.count(); got != 4 && got != 6 {
			t.Errorf("%d health addresses picked (%v), want 4: two per attempt, two attempts", got, p.picks)
		}
		if len(c.Nodes) != 2 {
			t.Fatalf("%d nodes, want 2", len(c.Nodes))
		}
		for _, n := range c.Nodes {
			if !n.Running() {
				t.Errorf("%s is not running", n.Name())
			}
			if status := httpStatus("http://" + n.Addr() + "/readyz"); status != 200 {
				t.Errorf("%s /readyz answered %d", n.Name(), status)
			}
		}
	})

	t.Run("always taken", func(t *testing.T) {
		p := &takenPort{held: held.Addr().String(), taken: 1 << 30}
		c, err := StartCluster(ctx, config(p))
		if err == nil {
			c.Close()
			t.Fatal("StartCluster succeeded on a taken port")
		}
		if !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("error %q does not say the address is in use", err)
		}
		if got := p.count(); got != 6 {
			t.Errorf("%d health addresses picked, want 6: two per attempt, three attempts", got)
		}
	})

	t.Run("other error", func(t *testing.T) {
		// A node that fails for another reason is not started again.
		p := &takenPort{}
		cfg := config(p)
		cfg.ExtraArgs = []string{"--no-such-flag"}
		c, err := StartCluster(ctx, cfg)
		if err == nil {
			c.Close()
			t.Fatal("StartCluster succeeded with an unknown flag")
		}
		if !strings.Contains(err.Error(), "no-such-flag") {
			t.Errorf("error %q does not name the unknown flag", err)
		}
		if got := p.count(); got != 2 {
			t.Errorf("%d health addresses picked, want 2: one attempt", got)
		}
	})
}
