package main

// Read receipts (docs/PROTOCOL.md, "Live signals"): each side learns how far
// the other read, live across nodes, again after a reconnect, never in the
// seed dialect.

import (
	"fmt"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// isReceipt matches a read receipt of conv by who at seq.
func isReceipt(conv, seq int64, by string) func(wsclient.Frame) bool {
	return func(f wsclient.Frame) bool {
		return f.Type() == "read" && f.Int("conversation_id") == conv && f.String("by") == by && f.Int("seq") == seq
	}
}

// receiptsIn returns the read receipts of conv by who among c's frames.
func receiptsIn(c *wsclient.Client, conv int64, by string) []int64 {
	var seqs []int64
	for _, f := range c.Frames() {
		if f.Type() == "read" && f.Int("conversation_id") == conv && f.String("by") == by {
			seqs = append(seqs, f.Int("seq"))
		}
	}
	return seqs
}

// Visitor on node 1, Ann on node 2: Ann's read reaches the visitor, the
// visitor's read reaches Ann; both again after reconnecting elsewhere.
func TestClusterReadReceipts(t *testing.T) {
	c := startEtcdCluster(t, newDatabase(t), 3)
	carl := dialURL(t, c.nodes[0].URL(), "carl", "Carl", false)
	conv := convOf(t, carl)
	post(t, carl, conv, "one", "c1")
	post(t, carl, conv, "two", "c2")
	carlSeed, err := wsclient.Dial(ctxT(t, 10*time.Second), c.nodes[2].URL(), wsclient.Options{Token: mint(t, "carl", "Carl", false)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(carlSeed.Close)
	ann := dialURL(t, c.nodes[1].URL(), "ann", "Ann", true)
	openConv(t, ann, conv)

	// Staff read → the visitor's socket.
	send(t, ann, map[string]any{"type": "read", "conversation_id": conv, "seq": 2})
	waitFrame(t, carl, 0, "staff read 2", isReceipt(conv, 2, "staff"))

	// Visitor read → its own answer, and Ann.
	post(t, ann, conv, "three", "a1")
	waitMessage(t, carl, "three")
	carlAt := len(carl.Frames())
	send(t, carl, map[string]any{"type": "read", "conversation_id": conv, "seq": 3})
	if f, _ := waitType(t, carl, carlAt, "read"); f.Int("read_seq") != 3 || f.String("by") != "" {
		t.Errorf("the visitor's read answer: %s", f.Raw)
	}
	waitFrame(t, ann, 0, "visitor read 3", isReceipt(conv, 3, "visitor"))
	// Not backwards, not again.
	send(t, carl, map[string]any{"type": "read", "conversation_id": conv, "seq": 1})
	send(t, ann, map[string]any{"type": "read", "conversation_id": conv, "seq": 1})
	// A visitor has no mark in another conversation.
	carlAt = len(carl.Frames())
	send(t, carl, map[string]any{"type": "read", "conversation_id": conv + 1000, "seq": 1})
	if f, _ := waitType(t, carl, carlAt, "error"); f.String("code") != "forbidden" {
		t.Errorf("a visitor's read of another conversation: %s", f.Raw)
	}

	// Both reconnect on node 3: each gets the other side's receipt again.
	carl2 := dialURL(t, c.nodes[2].URL(), "carl", "Carl", false)
	waitFrame(t, carl2, 0, "staff read 2 after reconnecting", isReceipt(conv, 2, "staff"))
	ann2 := dialURL(t, c.nodes[2].URL(), "ann", "Ann", true)
	openConv(t, ann2, conv)
	waitFrame(t, ann2, 0, "visitor read 3 after reconnecting", isReceipt(conv, 3, "visitor"))

	// Exactly one receipt each way on the first sockets, checked after a
	// marker; none on the seed socket.
	post(t, ann, conv, "marker", "a2")
	for _, cl := range []*wsclient.Client{carl, ann, carlSeed} {
		waitMessage(t, cl, "marker")
	}
	if got := receiptsIn(carl, conv, "staff"); len(got) != 1 || got[0] != 2 {
		t.Errorf("carl's staff receipts %v, want [2]", got)
	}
	if got := receiptsIn(ann, conv, "visitor"); len(got) != 1 || got[0] != 3 {
		t.Errorf("ann's visitor receipts %v, want [3]", got)
	}
	for _, f := range carlSeed.Frames() {
		if f.Type() != "" {
			t.Errorf("the seed socket got %s", f.Raw)
		}
	}
}

// A staff read through the REST API reaches the visitor's socket too; the
// API's conversation shows the visitor's mark.
func TestReadReceiptsREST(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	api := newAPIClient(t, s)
	carl := dial(t, s, "carl", "Carl", false, true)
	conv := convOf(t, carl)
	post(t, carl, conv, "one", "c1")
	post(t, carl, conv, "two", "c2")
	ann := mint(t, "ann", "Ann", true)
	if a := api.call("POST", fmt.Sprintf("/conversations/%d/read", conv), ann, map[string]any{"seq": 2}); a.status != 204 {
		t.Fatalf("read: %d %s", a.status, a.raw)
	}
	waitFrame(t, carl, 0, "staff read 2", isReceipt(conv, 2, "staff"))
}
