package netlab

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/prereq"
)

func newLab(t *testing.T, n int) *Lab {
	t.Helper()
	if err := Check(); err != nil {
		prereq.Missing(t, "the partition tests need root and the ip command ("+err.Error()+")", "iproute2")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := New(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// echo serves one echo listener on ln.
func echo(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
	}
}

// roundTrip dials addr from node i (or the host when i < 0), writes a byte
// and reads it back within d.
func roundTrip(l *Lab, i int, addr string, d time.Duration) error {
	try := func() error {
		c, err := net.DialTimeout("tcp", addr, d)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(d))
		if _, err := c.Write([]byte{7}); err != nil {
			return err
		}
		b := make([]byte, 1)
		_, err = io.ReadFull(c, b)
		return err
	}
	if i < 0 {
		return try()
	}
	return l.Do(i, try)
}

// Nodes reach each other and the host; a cut stops exactly the traffic
// between its two nodes, both ways, and healing restores it.
func TestCutAndHeal(t *testing.T) {
	l := newLab(t, 3)
	ctx := context.Background()
	addrs := make([]string, 3)
	for i := range addrs {
		i := i
		err := l.Do(i, func() error {
			ln, err := net.Listen("tcp", net.JoinHostPort(l.NodeIP(i), "0"))
			if err != nil {
				return err
			}
			t.Cleanup(func() { ln.Close() })
			addrs[i] = ln.Addr().String()
			go echo(ln)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			if err := roundTrip(l, i, addrs[j], 5*time.Second); err != nil {
				t.Fatalf("node %d → node %d before any cut: %v", i+1, j+1, err)
			}
		}
		if err := roundTrip(l, -1, addrs[i], 5*time.Second); err != nil {
			t.Fatalf("host → node %d: %v", i+1, err)
		}
	}
	if err := l.Isolate(ctx, 0); err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]int{{0, 1}, {1, 0}, {0, 2}, {2, 0}} {
		if err := roundTrip(l, pair[0], addrs[pair[1]], 500*time.Millisecond); err == nil {
			t.Errorf("node %d → node %d crossed the cut", pair[0]+1, pair[1]+1)
		}
	}
	for _, pair := range [][2]int{{1, 2}, {2, 1}} {
		if err := roundTrip(l, pair[0], addrs[pair[1]], 5*time.Second); err != nil {
			t.Errorf("node %d → node %d, not cut: %v", pair[0]+1, pair[1]+1, err)
		}
	}
	if err := roundTrip(l, -1, addrs[0], 5*time.Second); err != nil {
		t.Errorf("host → the isolated node: %v", err)
	}
	if err := l.Rejoin(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(l, 1, addrs[0], 5*time.Second); err != nil {
		t.Errorf("node 2 → node 1 after the heal: %v", err)
	}
}

// The proxy forwards a node's connections to a loopback service; a cut holds
// that node's bytes (the connection stays open) and the heal delivers them.
func TestProxyCutHoldsBytes(t *testing.T) {
	l := newLab(t, 2)
	svc, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	go echo(svc)
	p, err := Listen(net.JoinHostPort(l.HostIP(), "0"), svc.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := 0; i < 2; i++ {
		if err := roundTrip(l, i, p.Addr(), 5*time.Second); err != nil {
			t.Fatalf("node %d through the proxy: %v", i+1, err)
		}
	}
	p.Cut(l.NodeIP(0))
	if err := roundTrip(l, 0, p.Addr(), 500*time.Millisecond); err == nil {
		t.Fatal("node 1's bytes crossed a cut proxy")
	}
	if err := roundTrip(l, 1, p.Addr(), 5*time.Second); err != nil {
		t.Fatalf("node 2, not cut: %v", err)
	}
	// A connection opened during the cut gets its echo once healed.
	got := make(chan error, 1)
	go func() { got <- roundTrip(l, 0, p.Addr(), 10*time.Second) }()
	time.Sleep(300 * time.Millisecond) // the byte is held at the proxy meanwhile
	select {
	case err := <-got:
		t.Fatalf("answered during the cut: %v", err)
	default:
	}
	p.Heal(l.NodeIP(0))
	if err := <-got; err != nil {
		t.Fatalf("after the heal: %v", err)
	}
}
