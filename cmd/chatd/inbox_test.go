package main

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// inboxEntry is one conversation of an inbox or inbox_update frame.
type inboxEntry struct {
	conv, userID, lastSeq int64
	externalID, name      string
	lastMessage           string
}

// checkEntry compares a decoded inbox entry with want.
func checkEntry(t testing.TB, raw any, want inboxEntry) {
	t.Helper()
	e, _ := raw.(map[string]any)
	user, _ := e["user"].(map[string]any)
	lm, _ := e["last_message"].(map[string]any)
	got := inboxEntry{
		conv: num(e["conversation_id"]), userID: num(user["id"]), lastSeq: num(e["last_seq"]),
		externalID: str(user["external_id"]), name: str(user["name"]), lastMessage: str(lm["message"]),
	}
	if got != want {
		t.Errorf("inbox entry %v,\n  got  %+v\n  want %+v", e, got, want)
	}
	if num(lm["seq"]) != want.lastSeq || num(lm["conversation_id"]) != want.conv {
		t.Errorf("inbox entry %v: last_message has seq %d conversation %d, want %d and %d", e, num(lm["seq"]), num(lm["conversation_id"]), want.lastSeq, want.conv)
	}
	if at := str(e["last_message_at"]); !wireTime.MatchString(at) || at != str(lm["created_at"]) {
		t.Errorf("inbox entry %v: last_message_at %q must be the last message's created_at %q", e, at, str(lm["created_at"]))
	}
}

func num(v any) int64  { f, _ := v.(float64); return int64(f) }
func str(v any) string { s, _ := v.(string); return s }
func list(v any) []any { l, _ := v.([]any); return l }

// The admin inbox: a newly connected admin gets every conversation, most
// recent activity first, with its user, last_seq and last message; each new
// message sends an inbox_update to every admin; {"type":"inbox"} answers the
// inbox again.
func TestV1AdminInbox(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	alice := dial(t, s, "ext-alice", "Alice", false, true)
	bruno := dial(t, s, "ext-bruno", "Bruno", false, true)
	convA, convB := convOf(t, alice), convOf(t, bruno)
	aliceID, brunoID := userID(t, alice), userID(t, bruno)
	if convA >= convB {
		t.Fatalf("conversations %d, %d: want Alice's created first", convA, convB)
	}
	// Alice is the most recent, though her conversation is the older one.
	post(t, alice, 0, "a1", "a1")
	post(t, bruno, 0, "b1", "b1")
	post(t, bruno, 0, "b2", "b2")
	post(t, alice, 0, "a2", "a2")

	ann := dial(t, s, "staff-1", "Ann", true, true)
	bob := dial(t, s, "staff-2", "Bob", true, true)
	wantA := inboxEntry{conv: convA, userID: aliceID, lastSeq: 2, externalID: "ext-alice", name: "Alice", lastMessage: "a2"}
	wantB := inboxEntry{conv: convB, userID: brunoID, lastSeq: 2, externalID: "ext-bruno", name: "Bruno", lastMessage: "b2"}
	for name, c := range map[string]*wsclient.Client{"ann": ann, "bob": bob} {
		if f := c.Frames(); len(f) < 2 || f[0].Type() != "welcome" || f[1].Type() != "inbox" {
			t.Fatalf("%s: want welcome then inbox first:%s", name, dump(c))
		}
		inbox := c.Frames()[1]
		convs := list(inbox.Fields["conversations"])
		if len(convs) != 2 {
			t.Fatalf("%s: inbox %s, want 2 conversations", name, inbox.Raw)
		}
		checkEntry(t, convs[0], wantA)
		checkEntry(t, convs[1], wantB)
	}

	// New messages: one inbox_update each, to every admin, the sender included.
	annAt, bobAt := len(ann.Frames()), len(bob.Frames())
	post(t, bruno, 0, "b3", "b3")
	post(t, ann, convA, "reply", "r1")
	wantB.lastSeq, wantB.lastMessage = 3, "b3"
	wantA.lastSeq, wantA.lastMessage = 3, "reply"
	// The updates come through the inbox grain, after the acks: wait for
	// them (an inbox asked before they arrive is answered with what the
	// session delivered, last_seq 2, and they follow it).
	for c, from := range map[*wsclient.Client]int{ann: annAt, bob: bobAt} {
		waitFor(t, 10*time.Second, "two inbox_update frames", func() bool {
			n := 0
			for _, f := range c.Frames()[from:] {
				if f.Type() == "inbox_update" {
					n++
				}
			}
			return n >= 2
		})
	}

	// Asked again, the inbox is in the new order.
	for name, c := range map[string]*wsclient.Client{"ann": ann, "bob": bob} {
		inbox, updates := askInbox(t, c)
		if len(updates) != 2 {
			t.Errorf("%s got %d inbox_update frames, want 2:%s", name, len(updates), dump(c))
		} else {
			checkEntry(t, updates[0].Fields["conversation"], wantB)
			checkEntry(t, updates[1].Fields["conversation"], wantA)
		}
		convs := list(inbox.Fields["conversations"])
		if len(convs) != 2 {
			t.Fatalf("%s: inbox %s, want 2 conversations", name, inbox.Raw)
		}
		checkEntry(t, convs[0], wantA)
		checkEntry(t, convs[1], wantB)
		// And the messages themselves arrived once each.
		if got := seqsOf(messagesIn(c, 0, convB)); !reflect.DeepEqual(got, []int64{3}) {
			t.Errorf("%s received seqs %v of Bruno's conversation, want [3]", name, got)
		}
		if got := seqsOf(messagesIn(c, 0, convA)); !reflect.DeepEqual(got, []int64{3}) {
			t.Errorf("%s received seqs %v of Alice's conversation, want [3]", name, got)
		}
	}

	// Visitors never get inbox frames.
	for name, c := range map[string]*wsclient.Client{"alice": alice, "bruno": bruno} {
		for _, typ := range []string{"inbox", "inbox_update"} {
			if n := len(framesOfType(c, 0, typ)); n != 0 {
				t.Errorf("visitor %s got %d %s frames", name, n, typ)
			}
		}
	}
}

// An admin that opens a conversation follows it through its grain as well as
// through the inbox, yet receives each of its messages exactly once, with one
// inbox_update per message; leave stops the extra subscription only.
func TestV1AdminOpenDeliversOnce(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	v := dial(t, s, "user-1", "Alice", false, true)
	conv := convOf(t, v)
	post(t, v, 0, "s1", "s1")

	admin := dial(t, s, "staff-1", "Ann", true, true)
	control := dial(t, s, "staff-2", "Bob", true, true) // never opens

	t.Run("open", func(t *testing.T) {
		from := len(admin.Frames())
		send(t, admin, map[string]any{"type": "open", "conversation_id": conv})
		opened, _ := waitType(t, admin, from, "opened")
		if opened.Int("conversation_id") != conv || opened.Int("last_seq") != 1 {
			t.Fatalf("opened %s, want conversation_id %d last_seq 1", opened.Raw, conv)
		}
		// Opening twice is harmless.
		from = len(admin.Frames())
		send(t, admin, map[string]any{"type": "open", "conversation_id": conv})
		if again, _ := waitType(t, admin, from, "opened"); again.Int("last_seq") != 1 {
			t.Errorf("second opened %s, want last_seq 1", again.Raw)
		}
	})

	t.Run("each message once", func(t *testing.T) {
		for i, by := range []*wsclient.Client{v, admin, v, control, v} {
			target := conv
			if by == v {
				target = 0
			}
			post(t, by, target, fmt.Sprintf("s%d", i+2), fmt.Sprintf("s%d", i+2))
		}
		for name, c := range map[string]*wsclient.Client{"opener": admin, "control": control, "visitor": v} {
			waitMsg(t, c, conv, "s6")
			want := seqRange(2, 6)
			if name == "visitor" {
				want = seqRange(1, 6)
			}
			if got := seqsOf(messagesIn(c, 0, conv)); !reflect.DeepEqual(got, want) {
				t.Errorf("%s received seqs %v, want %v:%s", name, got, want, dump(c))
			}
			if name == "visitor" {
				continue
			}
			if got := inboxUpdateSeqs(t, c, conv); !reflect.DeepEqual(got, seqRange(2, 6)) {
				t.Errorf("%s got inbox_update last_seqs %v, want %v", name, got, seqRange(2, 6))
			}
		}
	})

	t.Run("leave", func(t *testing.T) {
		from := len(admin.Frames())
		send(t, admin, map[string]any{"type": "leave", "conversation_id": conv})
		left, _ := waitType(t, admin, from, "left")
		if left.Int("conversation_id") != conv {
			t.Errorf("left %s, want conversation_id %d", left.Raw, conv)
		}
		post(t, v, 0, "s7", "s7")
		waitMsg(t, admin, conv, "s7")
		send(t, admin, map[string]any{"type": "open", "conversation_id": conv})
		opened, _ := waitType(t, admin, from, "opened")
		if opened.Int("last_seq") != 7 {
			t.Errorf("opened after leave %s, want last_seq 7", opened.Raw)
		}
		post(t, v, 0, "s8", "s8")
		waitMsg(t, admin, conv, "s8")
		if got := seqsOf(messagesIn(admin, 0, conv)); !reflect.DeepEqual(got, seqRange(2, 8)) {
			t.Errorf("opener received seqs %v, want 2..8", got)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			req  map[string]any
			code string
		}{
			{map[string]any{"type": "open", "conversation_id": 999999}, "conversation_not_found"},
			{map[string]any{"type": "open"}, "conversation_required"},
			{map[string]any{"type": "leave"}, "conversation_required"},
		} {
			from := len(admin.Frames())
			send(t, admin, tc.req)
			e, _ := waitType(t, admin, from, "error")
			if e.String("code") != tc.code {
				t.Errorf("%v: got %s, want %s", tc.req, e.Raw, tc.code)
			}
		}
		// Still usable, and still following conv once.
		post(t, v, 0, "s9", "s9")
		waitMsg(t, admin, conv, "s9")
		if got := seqsOf(messagesIn(admin, 0, conv)); !reflect.DeepEqual(got, seqRange(2, 9)) {
			t.Errorf("opener received seqs %v, want 2..9", got)
		}
	})

	// An admin follows at most 50 conversations: the 51st open is refused
	// with too_many_open until it leaves one.
	t.Run("too_many_open", func(t *testing.T) {
		var convs []int64 // conv is open already: 49 more reach the bound
		for i := 0; i < 50; i++ {
			c := dial(t, s, fmt.Sprintf("many-%d", i), "Many", false, true)
			convs = append(convs, convOf(t, c))
		}
		for _, c := range convs[:49] {
			from := len(admin.Frames())
			send(t, admin, map[string]any{"type": "open", "conversation_id": c})
			f, _ := waitFrame(t, admin, from, "answer to open", func(f wsclient.Frame) bool {
				return f.Type() == "opened" || f.Type() == "error"
			})
			if f.Type() != "opened" || f.Int("conversation_id") != c {
				t.Fatalf("open %d: got %s, want opened", c, f.Raw)
			}
		}
		from := len(admin.Frames())
		send(t, admin, map[string]any{"type": "open", "conversation_id": convs[49]})
		e, _ := waitFrame(t, admin, from, "answer to the 51st open", func(f wsclient.Frame) bool {
			return f.Type() == "opened" || f.Type() == "error"
		})
		if e.Type() != "error" || e.String("code") != "too_many_open" {
			t.Fatalf("51st open: got %s, want error too_many_open", e.Raw)
		}
		from = len(admin.Frames())
		send(t, admin, map[string]any{"type": "leave", "conversation_id": convs[0]})
		waitType(t, admin, from, "left")
		send(t, admin, map[string]any{"type": "open", "conversation_id": convs[49]})
		if f, _ := waitFrame(t, admin, from, "answer to open after leave", func(f wsclient.Frame) bool {
			return f.Type() == "opened" || f.Type() == "error"
		}); f.Type() != "opened" {
			t.Errorf("open after leave: got %s, want opened", f.Raw)
		}
	})
}
