package chatproc

import (
	"strings"
	"testing"
)

func TestParseGrainLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		conv int64
		ev   grainEvent
	}{
		{`time=2026-11-26T11:15:16.180Z level=DEBUG msg="conversation activated" component=conversation conversation_id=4 node=7BQZ address=127.0.0.1:41747`, 4, grainActivated},
		{`time=x level=DEBUG msg="conversation activated" component=conversation conversation_id=123 node=a`, 123, grainActivated},
		{`time=x level=DEBUG msg="conversation activated" component=conversation conversation_id=12x node=a`, 0, grainNone},
		{`time=x level=DEBUG msg="conversation owned by another node: stopping this activation" component=conversation conversation_id=7`, 7, grainStopped},
		{`time=x level=DEBUG msg="passivating idle conversation" component=conversation conversation_id=8 `, 8, grainStopped},
		{`time=x level=ERROR msg="conversation grain panicked" conversation_id=9 panic=boom`, 9, grainStopped},
		{`time=x level=DEBUG msg="Actor moved" component=protoactor identity=conversation/5 owner=127.0.0.1:1 me=127.0.0.1:2`, 5, grainStopped},
		{`time=x level=DEBUG msg="Actor moved" component=protoactor identity=inbox/inbox owner=127.0.0.1:1 me=127.0.0.1:2`, 0, grainNone},
		{`time=x level=DEBUG msg="Actor stays" component=protoactor identity=conversation/5 owner=a me=a`, 0, grainNone},
		{`time=x level=DEBUG msg="grain resolved" component=session conversation_id=4 pid=x`, 0, grainNone},
		{`time=x level=DEBUG msg="conversation activated" component=conversation conversation_id=`, 0, grainNone},
	} {
		conv, ev := parseGrainLine([]byte(tc.line + "\n"))
		if conv != tc.conv || ev != tc.ev {
			t.Errorf("%s: got (%d, %d), want (%d, %d)", tc.line, conv, ev, tc.conv, tc.ev)
		}
	}
}

// The activation line Activated looks for is the one the cluster tests
// searched the log for before chatproc existed.
func TestActivationLineMatchesTheTestsPattern(t *testing.T) {
	line := `time=x level=DEBUG msg="conversation activated" component=conversation conversation_id=42 node=n address=a` + "\n"
	if !strings.Contains(line, `msg="conversation activated" component=conversation conversation_id=42 `) {
		t.Fatal("pattern")
	}
	if conv, ev := parseGrainLine([]byte(line)); conv != 42 || ev != grainActivated {
		t.Fatalf("got %d %d", conv, ev)
	}
}

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
