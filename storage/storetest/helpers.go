package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/grainchat/grainchat/storage"
)

// world is a store's fixture: one admin and n visitors, each visitor with
// their conversation.
type world struct {
	t     *testing.T
	admin storage.User
	users []storage.User         // visitors; users[i] owns convs[i]
	convs []storage.Conversation // convs[i] belongs to users[i]
	owner map[int64]storage.User // conversation id → visitor
}

// newWorld creates the admin first, so that user ids and conversation ids
// differ and a mix-up between them shows.
func newWorld(t *testing.T, s storage.Store, n int) *world {
	t.Helper()
	w := &world{
		t:     t,
		admin: mustUser(t, s, storage.UserInput{ExternalID: "admin", Name: "Admin", IsAdmin: true}),
		owner: make(map[int64]storage.User),
	}
	for i := range n {
		u := mustUser(t, s, storage.UserInput{ExternalID: fmt.Sprintf("visitor-%d", i), Name: fmt.Sprintf("Visitor %d", i)})
		c := mustConversation(t, s, u.ID)
		w.users = append(w.users, u)
		w.convs = append(w.convs, c)
		w.owner[c.ID] = u
	}
	return w
}

// msg is a message from conv's visitor, without client message id.
func (w *world) msg(conv storage.Conversation, body string) storage.NewMessage {
	return w.msgID(conv, body, "")
}

// msgID is a message from conv's visitor with a client message id.
func (w *world) msgID(conv storage.Conversation, body, clientMsgID string) storage.NewMessage {
	u, ok := w.owner[conv.ID]
	if !ok {
		w.t.Fatalf("conversation %d is not part of the fixture", conv.ID)
	}
	return storage.NewMessage{
		ConversationID: conv.ID,
		SenderID:       u.ID,
		SenderName:     u.Name,
		Body:           body,
		ClientMsgID:    clientMsgID,
	}
}

func mustUser(t *testing.T, s storage.Store, in storage.UserInput) storage.User {
	t.Helper()
	u, err := s.UpsertUser(t.Context(), in)
	if err != nil {
		t.Fatalf("UpsertUser(%q): %v", in.ExternalID, err)
	}
	return u
}

func mustConversation(t *testing.T, s storage.Store, userID int64) storage.Conversation {
	t.Helper()
	c, err := s.EnsureConversation(t.Context(), userID)
	if err != nil {
		t.Fatalf("EnsureConversation(%d): %v", userID, err)
	}
	return c
}

// mustAppend appends msgs and fails the test unless every one succeeded.
func mustAppend(t *testing.T, s storage.Store, msgs []storage.NewMessage) []storage.AppendResult {
	t.Helper()
	res, err := s.AppendMessages(t.Context(), msgs)
	if err != nil {
		t.Fatalf("AppendMessages: %v", err)
	}
	if len(res) != len(msgs) {
		t.Fatalf("AppendMessages: %d results for %d messages", len(res), len(msgs))
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("AppendMessages: message %d: %v", i, r.Err)
		}
	}
	return res
}

// appendN appends messages "m1".."mn" to conv in one call.
func appendN(t *testing.T, s storage.Store, w *world, conv storage.Conversation, n int) {
	t.Helper()
	var batch []storage.NewMessage
	for i := 1; i <= n; i++ {
		batch = append(batch, w.msg(conv, fmt.Sprintf("m%d", i)))
	}
	mustAppend(t, s, batch)
}

// allMessages reads a conversation page by page, checking that pages come
// in ascending seq.
func allMessages(t *testing.T, s storage.Store, conversationID int64) []storage.Message {
	t.Helper()
	var all []storage.Message
	var after int64
	for {
		page, err := s.Messages(t.Context(), conversationID, storage.Page{AfterSeq: after, Limit: storage.MaxPageSize})
		if err != nil {
			t.Fatalf("Messages(%d, after %d): %v", conversationID, after, err)
		}
		if len(page) == 0 {
			return all
		}
		for _, m := range page {
			if m.Seq <= after {
				t.Fatalf("Messages(%d): seq %d after %d: pages are not ascending", conversationID, m.Seq, after)
			}
			after = m.Seq
		}
		all = append(all, page...)
	}
}

// checkSeqs fails unless msgs' seqs are exactly 1..n in order.
func checkSeqs(t *testing.T, msgs []storage.Message, n int) {
	t.Helper()
	if len(msgs) != n {
		t.Fatalf("%d messages, want %d", len(msgs), n)
	}
	for i, m := range msgs {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d has seq %d, want %d (seqs %v)", i, m.Seq, i+1, seqsOf(msgs))
		}
	}
}

func bodies(msgs []storage.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Body
	}
	return out
}

func seqsOf(msgs []storage.Message) []int64 {
	var out []int64
	for _, m := range msgs {
		out = append(out, m.Seq)
	}
	return out
}

// seqRange returns first..last inclusive.
func seqRange(first, last int64) []int64 {
	var out []int64
	for s := first; s <= last; s++ {
		out = append(out, s)
	}
	return out
}

func errCode(err error) string { return storage.ErrorCode(err) }

// wantCode fails unless err is a *storage.Error with the given code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want code %q", code)
	}
	if _, ok := err.(*storage.Error); !ok {
		t.Fatalf("error %v is a %T, want a *storage.Error", err, err)
	}
	if got := storage.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

func diffUser(got, want storage.User) string {
	if got.ID != want.ID || got.ExternalID != want.ExternalID || got.Name != want.Name ||
		got.IsAdmin != want.IsAdmin || !got.CreatedAt.Equal(want.CreatedAt) ||
		got.Email != want.Email || got.Context != want.Context || got.Team != want.Team {
		return fmt.Sprintf("got %+v, want %+v", got, want)
	}
	return ""
}

func diffConversation(got, want storage.Conversation) string {
	sameTime := (got.LastMessageAt == nil) == (want.LastMessageAt == nil) &&
		(got.LastMessageAt == nil || got.LastMessageAt.Equal(*want.LastMessageAt))
	if got.ID != want.ID || got.UserID != want.UserID || got.LastSeq != want.LastSeq || !sameTime ||
		!got.CreatedAt.Equal(want.CreatedAt) || got.Status != want.Status ||
		(got.AssigneeID == nil) != (want.AssigneeID == nil) ||
		(got.AssigneeID != nil && *got.AssigneeID != *want.AssigneeID) {
		return fmt.Sprintf("got %+v, want %+v", got, want)
	}
	return ""
}

func diffMessage(got, want storage.Message) string {
	g, w := got, want
	g.CreatedAt, w.CreatedAt = want.CreatedAt, want.CreatedAt
	if g != w || !got.CreatedAt.Equal(want.CreatedAt) {
		return fmt.Sprintf("got %+v, want %+v", got, want)
	}
	return ""
}

// SearchIndexer is a store whose InboxView search sees a message only once
// it has been indexed: IndexSearch indexes one batch and returns how many
// messages it took, 0 when none were left (pgstore.Store).
type SearchIndexer interface {
	IndexSearch(ctx context.Context) (int, error)
}

// indexSearch makes everything appended so far searchable: it calls s's
// IndexSearch until it returns 0, when s is a SearchIndexer. Other stores
// search what they store at once.
func indexSearch(t *testing.T, s storage.Store) {
	t.Helper()
	ix, ok := s.(SearchIndexer)
	if !ok {
		return
	}
	for range 100_000 {
		n, err := ix.IndexSearch(t.Context())
		if err != nil {
			t.Fatalf("IndexSearch: %v", err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatalf("IndexSearch never returned 0")
}
