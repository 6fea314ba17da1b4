package chatproc

import (
	"strings"
	"testing"
)

func TestBufferLimit(t *testing.T) {
	b := NewBuffer(100)
	for i := 0; i < 50; i++ {
		_, _ = b.Write([]byte("0123456789\n"))
	}
	s := b.String()
	if len(s) > 100 || len(s) < 40 || !strings.HasSuffix(s, "0123456789\n") || !strings.HasPrefix(s, "0123456789\n") {
		t.Fatalf("kept %d bytes: %q", len(s), s)
	}
	if b.Dropped()+int64(len(s)) != 550 {
		t.Fatalf("dropped %d + kept %d != 550", b.Dropped(), len(s))
	}
	u := NewBuffer(0)
	for i := 0; i < 50; i++ {
		_, _ = u.Write([]byte("0123456789\n"))
	}
	if len(u.String()) != 550 || u.Dropped() != 0 {
		t.Fatalf("unlimited buffer kept %d, dropped %d", len(u.String()), u.Dropped())
	}
}

// FreePort's ports are below the ephemeral range, where binding port 0
// cannot take them, and free.
func TestFreePortBelowEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for range 50 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if low-20000 >= 1000 && (p < 20000 || p >= low) {
			t.Fatalf("port %d outside [20000, %d)", p, low)
		}
		seen[p] = true
	}
	if len(seen) < 40 {
		t.Errorf("only %d different ports in 50 picks", len(seen))
	}
}
