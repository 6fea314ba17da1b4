package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// A user sending faster than --message-rate is slowed, not refused: once the
// burst is spent, the server reads the user's frames at the rate, and every
// message is stored, in order, without an error frame.
func TestRateLimitPerUser(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t), "--message-rate", "2", "--message-burst", "3")
	v := dial(t, s, "user-1", "Alice", false, true)
	start := time.Now()
	for i := 0; i < 7; i++ {
		if err := v.Send(map[string]any{"message": fmt.Sprint("m", i), "client_msg_id": fmt.Sprint("c", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var acks []wsclient.Frame
	_, _, err := v.WaitFor(ctxT(t, 15*time.Second), 0, func(f wsclient.Frame) bool {
		if f.Type() == "ack" {
			acks = append(acks, f)
		}
		return len(acks) == 7
	})
	if err != nil {
		t.Fatalf("%d of 7 acks: %v%s", len(acks), err, dump(v))
	}
	for i, a := range acks {
		if a.Int("seq") != int64(i+1) || a.String("client_msg_id") != fmt.Sprint("c", i) {
			t.Errorf("ack %d: %s, want seq %d for c%d", i, a.Raw, i+1, i)
		}
	}
	// 3 at once, then 4 more at 2/s: at least 1.5 s.
	if d := acks[6].At.Sub(start); d < 1500*time.Millisecond {
		t.Errorf("7 messages acknowledged in %v: the rate (2/s, burst 3) was not applied", d)
	}
	if n := len(framesOfType(v, 0, "error")); n != 0 {
		t.Errorf("%d error frames, want none:%s", n, dump(v))
	}
}

// --max-conns-per-user and --max-conns bound sockets with 429 and 503.
func TestConnectionCaps(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t), "--max-conns-per-user", "2", "--max-conns", "3")
	dial(t, s, "user-1", "Alice", false, true)
	dial(t, s, "user-1", "Alice", false, true)
	c, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Token: mint(t, "user-1", "Alice", false)})
	if err == nil || c.Resp == nil || c.Resp.StatusCode != 429 {
		t.Fatalf("third socket of one user: %v, want 429", err)
	}
	dial(t, s, "user-2", "Bob", false, true)
	c, err = wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Token: mint(t, "user-3", "Cy", false)})
	if err == nil || c.Resp == nil || c.Resp.StatusCode != 503 {
		t.Fatalf("fourth socket of the node: %v, want 503", err)
	}
}
