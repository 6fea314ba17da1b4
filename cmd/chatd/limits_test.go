package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// A user sending faster than --message-rate is refused with rate_limited once
// the burst is spent, the socket stays usable, and nothing refused is stored.
func TestRateLimitPerUser(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t), "--message-rate", "1", "--message-burst", "3")
	v := dial(t, s, "user-1", "Alice", false, true)
	for i := 0; i < 5; i++ {
		if err := v.Send(map[string]any{"message": fmt.Sprint("m", i), "client_msg_id": fmt.Sprint("c", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var acks, limited int
	_, _, err := v.WaitFor(ctxT(t, 10*time.Second), 0, func(f wsclient.Frame) bool {
		switch {
		case f.Type() == "ack":
			acks++
		case f.Type() == "error" && f.String("code") == "rate_limited":
			limited++
			if f.String("client_msg_id") == "" {
				t.Errorf("rate_limited error without the refused post's client_msg_id: %s", f.Raw)
			}
		}
		return acks+limited == 5
	})
	if err != nil || acks != 3 || limited != 2 {
		t.Fatalf("acks %d, rate_limited %d (want 3 and 2): %v%s", acks, limited, err, dump(v))
	}
	// A token comes back within a second: the socket works again.
	var ack wsclient.Frame
	for deadline := time.Now().Add(5 * time.Second); ; {
		from := len(v.Frames())
		if err := v.Send(map[string]any{"message": "later", "client_msg_id": "later"}); err != nil {
			t.Fatal(err)
		}
		f, _, err := v.WaitFor(ctxT(t, 5*time.Second), from, func(f wsclient.Frame) bool { return f.Type() == "ack" || f.Type() == "error" })
		if err != nil {
			t.Fatal(err)
		}
		if f.Type() == "ack" {
			ack = f
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after 5s: %s", f.Raw)
		}
		time.Sleep(300 * time.Millisecond) // wait for the bucket to refill
	}
	if ack.Int("seq") != 4 {
		t.Fatalf("the next stored message has seq %d, want 4 (refused ones are not stored)", ack.Int("seq"))
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
