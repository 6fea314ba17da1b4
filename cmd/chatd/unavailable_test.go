package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage/pgtest"
	"github.com/grainchat/grainchat/transport/wsclient"
)

// With the database cut, posts are retried by their grain until
// --post-timeout, then refused with "unavailable" and never acknowledged, /readyz fails and handshakes get 503; when it is back,
// everything works again without restarting chatd, and the retried message is
// stored exactly once.
func TestStoreUnavailableThenBack(t *testing.T) {
	proxy, dsn := pgtest.ProxyDSN(t, newDatabase(t))
	s := startServer(t, "--database-url", dsn, "--post-timeout", "3s")
	v := dial(t, s, "user-1", "Alice", false, true)
	if err := v.Send(map[string]any{"message": "before", "client_msg_id": "c1"}); err != nil {
		t.Fatal(err)
	}
	waitType(t, v, 0, "ack")

	proxy.SetDown(true)
	if err := v.Send(map[string]any{"message": "during", "client_msg_id": "c2"}); err != nil {
		t.Fatal(err)
	}
	f, i := waitType(t, v, 0, "error")
	if f.String("code") != "unavailable" || f.String("client_msg_id") != "c2" {
		t.Fatalf("error frame = %s, want code unavailable for c2", f.Raw)
	}
	for _, fr := range v.Frames()[:i] {
		if fr.Type() == "ack" && fr.String("client_msg_id") == "c2" {
			t.Fatalf("c2 was acknowledged while the database was down: %s", fr.Raw)
		}
	}
	pollStatus(t, "http://"+s.Addr+"/readyz", 503)
	c, err := wsclient.Dial(ctxT(t, 15*time.Second), s.URL(), wsclient.Options{Token: mint(t, "user-2", "Bob", false)})
	if err == nil {
		c.Close()
		t.Fatal("handshake succeeded while the database was down")
	}
	if c.Resp == nil || c.Resp.StatusCode != 503 {
		t.Fatalf("handshake while down: %v (response %v), want 503", err, c.Resp)
	}

	proxy.SetDown(false)
	pollStatus(t, "http://"+s.Addr+"/readyz", 200)
	// The client retries c2 until it is acknowledged (the first attempt on
	// a pooled connection broken by the cut may still fail).
	ackOf := func(id string) wsclient.Frame {
		for from := len(v.Frames()); ; {
			text := "during"
			if id != "c2" {
				text = "marker"
			}
			if err := v.Send(map[string]any{"message": text, "client_msg_id": id}); err != nil {
				t.Fatal(err)
			}
			f, j, err := v.WaitFor(ctxT(t, 15*time.Second), from, func(f wsclient.Frame) bool {
				return (f.Type() == "ack" || f.Type() == "error") && f.String("client_msg_id") == id
			})
			if err != nil {
				t.Fatalf("no answer to %s: %v", id, err)
			}
			if f.Type() == "ack" {
				return f
			}
			if f.String("code") != "unavailable" {
				t.Fatalf("retry of %s refused: %s", id, f.Raw)
			}
			from = j + 1
		}
	}
	if a := ackOf("c2"); a.Int("seq") != 2 {
		t.Fatalf("c2 acked with seq %d, want 2: %s", a.Int("seq"), a.Raw)
	}
	if err := v.Send(map[string]any{"type": "history"}); err != nil {
		t.Fatal(err)
	}
	h, _ := waitType(t, v, 0, "history")
	msgs, _ := h.Fields["messages"].([]any)
	var got []string
	for _, m := range msgs {
		mm := m.(map[string]any)
		got = append(got, fmt.Sprintf("%v:%v", mm["seq"], mm["message"]))
	}
	if fmt.Sprint(got) != "[1:before 2:during]" {
		t.Fatalf("history = %v, want [1:before 2:during]", got)
	}
	// The client sees seq 2 live exactly once (checked after a later marker).
	ackOf("c3-marker-id")
	waitMessage(t, v, "marker")
	n := 0
	for _, fr := range v.Frames() {
		if fr.Type() == "message" && fr.String("message") == "during" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("message 'during' delivered %d times, want 1:%s", n, dump(v))
	}
}

func pollStatus(t *testing.T, url string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if httpStatus(t, url, nil) == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never answered %d", url, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
