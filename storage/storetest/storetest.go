// Package storetest is the conformance suite of storage.Store: every
// implementation runs it from its own tests,
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storage.Store { return memstore.New(memstore.Options{}) })
//	}
//
// and so behaves like the others. Each subtest asks newStore for a store of
// its own, empty, and runs in parallel with the others.
//
// A store whose search lags behind its appends (pgstore indexes search in
// the background) has a method IndexSearch(ctx) (int, error) that indexes
// one batch and returns how many messages it took, 0 when none were left:
// before searching, the suite calls it until it returns 0 (see
// SearchIndexer).
package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/grainchat/grainchat/storage"
)

// Run runs the conformance suite. newStore must return an empty store that
// is released when t ends (with t.Cleanup).
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"UpsertUser/Create", testUpsertUserCreate},
		{"UpsertUser/Update", testUpsertUserUpdate},
		{"UpsertUser/Names", testUpsertUserNames},
		{"UpsertUser/InvalidExternalID", testUpsertUserInvalidExternalID},
		{"User/NotFound", testUserNotFound},
		{"EnsureConversation/CreatesOnce", testEnsureConversationCreatesOnce},
		{"EnsureConversation/Concurrent", testEnsureConversationConcurrent},
		{"EnsureConversation/UnknownUser", testEnsureConversationUnknownUser},
		{"Conversation/NotFound", testConversationNotFound},
		{"Connect/Visitor", testConnectVisitor},
		{"Connect/Staff", testConnectStaff},
		{"Connect/InvalidExternalID", testConnectInvalidExternalID},
		{"Connect/UserDetails", testConnectUserDetails},
		{"MergeUser", testMergeUser},
		{"AppendMessages/Empty", testAppendEmpty},
		{"AppendMessages/SeqAcrossConversations", testAppendSeqAcrossConversations},
		{"AppendMessages/StoredFields", testAppendStoredFields},
		{"AppendMessages/IdempotentAcrossCalls", testAppendIdempotentAcrossCalls},
		{"AppendMessages/IdempotentWithinBatch", testAppendIdempotentWithinBatch},
		{"AppendMessages/IdempotencyScope", testAppendIdempotencyScope},
		{"AppendMessages/PerMessageErrors", testAppendPerMessageErrors},
		{"AppendMessages/AllInvalid", testAppendAllInvalid},
		{"AppendMessages/NULRefused", testAppendNULRefused},
		{"AppendMessages/ErrorsHideBody", testAppendErrorsHideBody},
		{"AppendMessages/RoundTrip", testAppendRoundTrip},
		{"AppendMessages/Concurrent", testAppendConcurrent},
		{"AppendMessages/ConcurrentSameClientID", testAppendConcurrentSameClientID},
		{"AppendMessages/TimesNeverGoBack", testAppendTimesNeverGoBack},
		{"Messages/Pages", testMessagesPages},
		{"Messages/Caps", testMessagesCaps},
		{"Messages/Invalid", testMessagesInvalid},
		{"Messages/NotFoundAndEmpty", testMessagesNotFoundAndEmpty},
		{"Inbox/OrderAndContent", testInboxOrderAndContent},
		{"Inbox/Empty", testInboxEmpty},
		{"InboxPage/Walk", testInboxPageWalk},
		{"InboxPage/Ties", testInboxPageTies},
		{"InboxPage/Invalid", testInboxPageInvalid},
		{"InboxPage/MovesDuringWalk", testInboxPageMovesDuringWalk},
		{"StoreID", testStoreID},
		{"IDs/SafeIntegers", testIDsSafeIntegers},
		{"Ping", testPing},
	}
	tests = append(tests, deskTests()...)
	tests = append(tests, cannedTests()...)
	tests = append(tests, apiKeyTests()...)
	tests = append(tests, teamTests()...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// --- users

func testUpsertUserCreate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, err := s.UpsertUser(ctx, storage.UserInput{ExternalID: "ext-1", Name: "Ann", IsAdmin: true})
	if err != nil {
		t.Fatalf("UpsertUser: %v", err)
	}
	if u.ID <= 0 || u.ExternalID != "ext-1" || u.Name != "Ann" || !u.IsAdmin || u.CreatedAt.IsZero() {
		t.Fatalf("UpsertUser = %+v, want id > 0, ext-1, Ann, admin, created_at set", u)
	}
	got, err := s.User(ctx, u.ID)
	if err != nil {
		t.Fatalf("User(%d): %v", u.ID, err)
	}
	if d := diffUser(got, u); d != "" {
		t.Fatalf("User(%d): %s", u.ID, d)
	}
}

func testUpsertUserUpdate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	first := mustUser(t, s, storage.UserInput{ExternalID: "ext-1", Name: "Ann"})
	other := mustUser(t, s, storage.UserInput{ExternalID: "ext-2", Name: "Bob"})
	if other.ID == first.ID {
		t.Fatalf("two external ids got the same id %d", first.ID)
	}

	updated := mustUser(t, s, storage.UserInput{ExternalID: "ext-1", Name: "Annie", IsAdmin: true})
	want := first
	want.Name, want.IsAdmin = "Annie", true
	if d := diffUser(updated, want); d != "" {
		t.Fatalf("UpsertUser (update): %s", d)
	}
	got, err := s.User(ctx, first.ID)
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	if d := diffUser(got, want); d != "" {
		t.Fatalf("User after update: %s", d)
	}

	// And back: the admin flag follows the latest token.
	again := mustUser(t, s, storage.UserInput{ExternalID: "ext-1", Name: "Ann"})
	want.Name, want.IsAdmin = "Ann", false
	if d := diffUser(again, want); d != "" {
		t.Fatalf("UpsertUser (second update): %s", d)
	}
	// The other user is untouched.
	got, err = s.User(ctx, other.ID)
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	if d := diffUser(got, other); d != "" {
		t.Fatalf("other user changed: %s", d)
	}
}

func testUpsertUserNames(t *testing.T, s storage.Store) {
	a := strings.Repeat
	tests := []struct {
		name, in, want string
	}{
		{"empty uses external id", "", "EXT"},
		{"plain", "Ann Smith", "Ann Smith"},
		{"exactly max bytes", a("a", 200), a("a", 200)},
		{"one byte over", a("a", 201), a("a", 200)},
		{"2-byte rune across the limit", a("a", 199) + "é", a("a", 199)},
		{"4-byte rune across the limit", a("a", 198) + "😀", a("a", 198)},
		{"4-byte rune one byte over", a("a", 197) + "😀", a("a", 197)},
		{"4-byte rune ending at the limit", a("a", 196) + "😀", a("a", 196) + "😀"},
		{"invalid UTF-8 replaced", "bad\xffname", "bad\uFFFDname"},
		{"NUL removed", "nul\x00name", "nulname"},
		{"only NUL uses external id", "\x00", "EXT"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ext := fmt.Sprintf("name-%d", i)
			want := strings.ReplaceAll(tt.want, "EXT", ext)
			u := mustUser(t, s, storage.UserInput{ExternalID: ext, Name: tt.in})
			if u.Name != want {
				t.Fatalf("UpsertUser name %q = %q, want %q", tt.in, u.Name, want)
			}
			got, err := s.User(t.Context(), u.ID)
			if err != nil {
				t.Fatalf("User: %v", err)
			}
			if got.Name != want {
				t.Fatalf("User name = %q, want %q", got.Name, want)
			}
		})
	}
}

func testUpsertUserInvalidExternalID(t *testing.T, s storage.Store) {
	tests := []struct {
		name, ext string
	}{
		{"empty", ""},
		{"too long", strings.Repeat("x", storage.MaxExternalIDBytes+1)},
		{"NUL byte", "a\x00b"},
		{"invalid UTF-8", "a\xffb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.UpsertUser(t.Context(), storage.UserInput{ExternalID: tt.ext, Name: "x"})
			wantCode(t, err, storage.EINVALID)
		})
	}
	t.Run("max length accepted", func(t *testing.T) {
		ext := strings.Repeat("x", storage.MaxExternalIDBytes)
		u := mustUser(t, s, storage.UserInput{ExternalID: ext})
		if u.ExternalID != ext {
			t.Fatalf("external id = %q, want %q", u.ExternalID, ext)
		}
	})
}

func testUserNotFound(t *testing.T, s storage.Store) {
	u := mustUser(t, s, storage.UserInput{ExternalID: "ext-1"})
	for _, id := range []int64{0, -1, u.ID + 1000} {
		_, err := s.User(t.Context(), id)
		wantCode(t, err, storage.ENOTFOUND)
	}
}

// --- conversations

func testEnsureConversationCreatesOnce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u1 := mustUser(t, s, storage.UserInput{ExternalID: "u1"})
	u2 := mustUser(t, s, storage.UserInput{ExternalID: "u2"})
	c1 := mustConversation(t, s, u1.ID)
	if c1.ID <= 0 || c1.UserID != u1.ID || c1.LastSeq != 0 || c1.LastMessageAt != nil || c1.CreatedAt.IsZero() {
		t.Fatalf("new conversation = %+v", c1)
	}
	again := mustConversation(t, s, u1.ID)
	if d := diffConversation(again, c1); d != "" {
		t.Fatalf("second EnsureConversation: %s", d)
	}
	c2 := mustConversation(t, s, u2.ID)
	if c2.ID == c1.ID || c2.UserID != u2.ID {
		t.Fatalf("conversation of u2 = %+v, conversation of u1 = %+v", c2, c1)
	}
	got, err := s.Conversation(ctx, c1.ID)
	if err != nil {
		t.Fatalf("Conversation: %v", err)
	}
	if d := diffConversation(got, c1); d != "" {
		t.Fatalf("Conversation: %s", d)
	}
}

func testEnsureConversationConcurrent(t *testing.T, s storage.Store) {
	u := mustUser(t, s, storage.UserInput{ExternalID: "u1"})
	const n = 8
	ids := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := s.EnsureConversation(t.Context(), u.ID)
			ids[i], errs[i] = c.ID, err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("EnsureConversation #%d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("concurrent EnsureConversation returned ids %v, want one id", ids)
		}
	}
}

func testEnsureConversationUnknownUser(t *testing.T, s storage.Store) {
	u := mustUser(t, s, storage.UserInput{ExternalID: "u1"})
	for _, id := range []int64{0, -1, u.ID + 1000} {
		_, err := s.EnsureConversation(t.Context(), id)
		wantCode(t, err, storage.ENOTFOUND)
	}
}

func testConversationNotFound(t *testing.T, s storage.Store) {
	u := mustUser(t, s, storage.UserInput{ExternalID: "u1"})
	c := mustConversation(t, s, u.ID)
	for _, id := range []int64{0, -1, c.ID + 1000} {
		_, err := s.Conversation(t.Context(), id)
		wantCode(t, err, storage.ENOTFOUND)
	}
}

// --- appending

func testAppendEmpty(t *testing.T, s storage.Store) {
	for _, msgs := range [][]storage.NewMessage{nil, {}} {
		res, err := s.AppendMessages(t.Context(), msgs)
		if err != nil || len(res) != 0 {
			t.Fatalf("AppendMessages(%v) = %v, %v; want no results, nil", msgs, res, err)
		}
	}
}

func testAppendSeqAcrossConversations(t *testing.T, s storage.Store) {
	ctx := t.Context()
	w := newWorld(t, s, 3)
	a, b, c := w.convs[0], w.convs[1], w.convs[2]

	// Interleaved: a b a c b a c.
	order := []storage.Conversation{a, b, a, c, b, a, c}
	var batch []storage.NewMessage
	for i, conv := range order {
		batch = append(batch, w.msg(conv, fmt.Sprintf("first-%d", i)))
	}
	res := mustAppend(t, s, batch)
	wantSeqs := []int64{1, 1, 2, 1, 2, 3, 2}
	for i, r := range res {
		if r.Message.ConversationID != order[i].ID || r.Message.Seq != wantSeqs[i] || r.Message.Body != batch[i].Body || r.Duplicate {
			t.Fatalf("result %d = %+v, want conversation %d seq %d body %q", i, r, order[i].ID, wantSeqs[i], batch[i].Body)
		}
	}

	// A second call continues each conversation where it stopped.
	res = mustAppend(t, s, []storage.NewMessage{w.msg(c, "second-0"), w.msg(a, "second-1"), w.msg(c, "second-2")})
	for i, want := range []int64{3, 4, 4} {
		if res[i].Message.Seq != want {
			t.Fatalf("second call: result %d seq = %d, want %d", i, res[i].Message.Seq, want)
		}
	}

	// Stored: 1..n, gap-free, in input order.
	wantBodies := map[int64][]string{
		a.ID: {"first-0", "first-2", "first-5", "second-1"},
		b.ID: {"first-1", "first-4"},
		c.ID: {"first-3", "first-6", "second-0", "second-2"},
	}
	for _, conv := range []storage.Conversation{a, b, c} {
		msgs := allMessages(t, s, conv.ID)
		if got := bodies(msgs); !slices.Equal(got, wantBodies[conv.ID]) {
			t.Fatalf("conversation %d bodies = %q, want %q", conv.ID, got, wantBodies[conv.ID])
		}
		checkSeqs(t, msgs, len(wantBodies[conv.ID]))
		got, err := s.Conversation(ctx, conv.ID)
		if err != nil {
			t.Fatalf("Conversation: %v", err)
		}
		last := msgs[len(msgs)-1]
		if got.LastSeq != last.Seq || got.LastMessageAt == nil || !got.LastMessageAt.Equal(last.CreatedAt) {
			t.Fatalf("conversation %d = %+v, want last_seq %d, last_message_at %v", conv.ID, got, last.Seq, last.CreatedAt)
		}
	}
}

func testAppendStoredFields(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 1)
	conv := w.convs[0]
	visitor := w.users[0]
	in := []storage.NewMessage{
		{ConversationID: conv.ID, SenderID: visitor.ID, SenderName: "Visitor V", Body: "hello", ClientMsgID: "cm-1"},
		{ConversationID: conv.ID, SenderID: w.admin.ID, SenderName: "Staff S", SenderIsAdmin: true, Body: "hi, how can I help?"},
		{ConversationID: conv.ID, SenderID: w.admin.ID, SenderName: strings.Repeat("n", storage.MaxNameBytes+5), SenderIsAdmin: true, Body: "long name"},
	}
	res := mustAppend(t, s, in)
	ids := map[int64]bool{}
	for i, r := range res {
		m := r.Message
		wantName := in[i].SenderName
		if len(wantName) > storage.MaxNameBytes {
			wantName = wantName[:storage.MaxNameBytes]
		}
		if m.ID <= 0 || ids[m.ID] || m.ConversationID != conv.ID || m.Seq != int64(i+1) ||
			m.SenderID != in[i].SenderID || m.SenderName != wantName || m.SenderIsAdmin != in[i].SenderIsAdmin ||
			m.Body != in[i].Body || m.ClientMsgID != in[i].ClientMsgID || m.CreatedAt.IsZero() {
			t.Fatalf("result %d = %+v, input %+v", i, m, in[i])
		}
		ids[m.ID] = true
	}
	stored := allMessages(t, s, conv.ID)
	if len(stored) != len(res) {
		t.Fatalf("stored %d messages, want %d", len(stored), len(res))
	}
	for i := range stored {
		if d := diffMessage(stored[i], res[i].Message); d != "" {
			t.Fatalf("stored message %d differs from the result: %s", i, d)
		}
	}
}

func testAppendIdempotentAcrossCalls(t *testing.T, s storage.Store) {
	ctx := t.Context()
	w := newWorld(t, s, 1)
	conv := w.convs[0]
	first := mustAppend(t, s, []storage.NewMessage{w.msgID(conv, "original", "cm-1")})[0]

	again := mustAppend(t, s, []storage.NewMessage{w.msgID(conv, "resent with other text", "cm-1")})[0]
	if !again.Duplicate {
		t.Fatalf("resent message: Duplicate = false, result %+v", again)
	}
	if d := diffMessage(again.Message, first.Message); d != "" {
		t.Fatalf("resent message must return the stored one: %s", d)
	}
	c, err := s.Conversation(ctx, conv.ID)
	if err != nil {
		t.Fatalf("Conversation: %v", err)
	}
	if c.LastSeq != 1 {
		t.Fatalf("last_seq after a duplicate = %d, want 1", c.LastSeq)
	}
	next := mustAppend(t, s, []storage.NewMessage{w.msgID(conv, "next", "cm-2")})[0]
	if next.Duplicate || next.Message.Seq != 2 {
		t.Fatalf("next message = %+v, want seq 2, not duplicate", next)
	}
	if got := bodies(allMessages(t, s, conv.ID)); !slices.Equal(got, []string{"original", "next"}) {
		t.Fatalf("stored bodies = %q", got)
	}
}

func testAppendIdempotentWithinBatch(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 1)
	conv := w.convs[0]
	res := mustAppend(t, s, []storage.NewMessage{
		w.msgID(conv, "one", "x"),
		w.msgID(conv, "two", "y"),
		w.msgID(conv, "three", "x"),
		w.msg(conv, "four"),
		w.msgID(conv, "five", "y"),
	})
	want := []struct {
		seq  int64
		body string
		dup  bool
	}{{1, "one", false}, {2, "two", false}, {1, "one", true}, {3, "four", false}, {2, "two", true}}
	for i, wt := range want {
		r := res[i]
		if r.Message.Seq != wt.seq || r.Message.Body != wt.body || r.Duplicate != wt.dup {
			t.Fatalf("result %d = seq %d body %q duplicate %v, want seq %d body %q duplicate %v",
				i, r.Message.Seq, r.Message.Body, r.Duplicate, wt.seq, wt.body, wt.dup)
		}
	}
	if d := diffMessage(res[2].Message, res[0].Message); d != "" {
		t.Fatalf("duplicate within the batch must return the first: %s", d)
	}
	msgs := allMessages(t, s, conv.ID)
	if got := bodies(msgs); !slices.Equal(got, []string{"one", "two", "four"}) {
		t.Fatalf("stored bodies = %q", got)
	}
	checkSeqs(t, msgs, 3)
}

func testAppendIdempotencyScope(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 2)
	a, b := w.convs[0], w.convs[1]
	visitorA := w.users[0]
	res := mustAppend(t, s, []storage.NewMessage{
		{ConversationID: a.ID, SenderID: visitorA.ID, Body: "from visitor", ClientMsgID: "same"},
		// Same id from another sender in the same conversation: not a duplicate.
		{ConversationID: a.ID, SenderID: w.admin.ID, SenderIsAdmin: true, Body: "from admin", ClientMsgID: "same"},
		// Same sender and id in another conversation: not a duplicate.
		{ConversationID: b.ID, SenderID: w.admin.ID, SenderIsAdmin: true, Body: "admin elsewhere", ClientMsgID: "same"},
		// No client id: never a duplicate, even with the same text.
		{ConversationID: a.ID, SenderID: visitorA.ID, Body: "no id"},
		{ConversationID: a.ID, SenderID: visitorA.ID, Body: "no id"},
	})
	for i, r := range res {
		if r.Duplicate {
			t.Fatalf("result %d is a duplicate: %+v", i, r)
		}
	}
	res2 := mustAppend(t, s, []storage.NewMessage{{ConversationID: a.ID, SenderID: visitorA.ID, Body: "no id"}})
	if res2[0].Duplicate || res2[0].Message.Seq != 5 {
		t.Fatalf("message without client id = %+v, want seq 5", res2[0])
	}
	if got := bodies(allMessages(t, s, a.ID)); !slices.Equal(got, []string{"from visitor", "from admin", "no id", "no id", "no id"}) {
		t.Fatalf("conversation a bodies = %q", got)
	}
	if got := bodies(allMessages(t, s, b.ID)); !slices.Equal(got, []string{"admin elsewhere"}) {
		t.Fatalf("conversation b bodies = %q", got)
	}
}

func testAppendPerMessageErrors(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 2)
	a, b := w.convs[0], w.convs[1]
	unknownSender := w.admin
	unknownSender.ID += 1000
	id100 := strings.Repeat("i", storage.MaxClientMsgIDBytes)
	in := []storage.NewMessage{
		w.msgID(a, "ok 1", "cm-1"),
		{ConversationID: a.ID + 1000, SenderID: w.admin.ID, Body: "unknown conversation"},
		w.msg(a, ""),
		w.msg(a, "nul \x00 byte"),
		w.msg(a, "invalid \xff\xfe utf-8"),
		w.msgID(a, "client id too long", id100+"i"),
		w.msgID(a, "client id at the limit", id100),
		{ConversationID: a.ID, SenderID: unknownSender.ID, Body: "unknown sender"},
		w.msgID(a, "NUL in client id", "a\x00b"),
		w.msg(b, "ok in b"),
		{ConversationID: 0, SenderID: w.admin.ID, Body: "conversation 0"},
		w.msgID(a, "invalid client id", "\xff"),
	}
	wantErr := []string{"", storage.ENOTFOUND, storage.EINVALID, storage.EINVALID, storage.EINVALID, storage.EINVALID,
		"", storage.ENOTFOUND, storage.EINVALID, "", storage.ENOTFOUND, storage.EINVALID}
	res, err := s.AppendMessages(t.Context(), in)
	if err != nil {
		t.Fatalf("AppendMessages: %v", err)
	}
	if len(res) != len(in) {
		t.Fatalf("got %d results for %d messages", len(res), len(in))
	}
	for i, r := range res {
		if code := errCode(r.Err); code != wantErr[i] {
			t.Fatalf("result %d (%q): error %v, want code %q", i, in[i].Body, r.Err, wantErr[i])
		}
		if r.Err != nil && (r.Message != (storage.Message{}) || r.Duplicate) {
			t.Fatalf("result %d failed but carries a message: %+v", i, r)
		}
	}
	if res[0].Message.Seq != 1 || res[6].Message.Seq != 2 || res[9].Message.Seq != 1 {
		t.Fatalf("seqs of the stored messages = %d, %d, %d; want 1, 2, 1",
			res[0].Message.Seq, res[6].Message.Seq, res[9].Message.Seq)
	}
	msgs := allMessages(t, s, a.ID)
	if got := bodies(msgs); !slices.Equal(got, []string{"ok 1", "client id at the limit"}) {
		t.Fatalf("conversation a bodies = %q", got)
	}
	checkSeqs(t, msgs, 2)
	if msgs[1].ClientMsgID != id100 {
		t.Fatalf("client id = %q, want %q", msgs[1].ClientMsgID, id100)
	}
	if got := bodies(allMessages(t, s, b.ID)); !slices.Equal(got, []string{"ok in b"}) {
		t.Fatalf("conversation b bodies = %q", got)
	}
}

func testAppendAllInvalid(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 1)
	a := w.convs[0]
	res, err := s.AppendMessages(t.Context(), []storage.NewMessage{
		w.msg(a, ""),
		{ConversationID: a.ID + 1000, SenderID: w.admin.ID, Body: "unknown conversation"},
	})
	if err != nil {
		t.Fatalf("AppendMessages: %v", err)
	}
	wantCode(t, res[0].Err, storage.EINVALID)
	wantCode(t, res[1].Err, storage.ENOTFOUND)
	if msgs := allMessages(t, s, a.ID); len(msgs) != 0 {
		t.Fatalf("stored %d messages, want none", len(msgs))
	}
}

func testAppendNULRefused(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 1)
	a := w.convs[0]
	for _, body := range []string{"\x00", "before\x00", "\x00after", "mid\x00dle"} {
		res, err := s.AppendMessages(t.Context(), []storage.NewMessage{w.msg(a, body)})
		if err != nil {
			t.Fatalf("AppendMessages(%q): %v", body, err)
		}
		wantCode(t, res[0].Err, storage.EINVALID)
	}
	if msgs := allMessages(t, s, a.ID); len(msgs) != 0 {
		t.Fatalf("stored %d messages, want none", len(msgs))
	}
}

func testAppendErrorsHideBody(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 1)
	a := w.convs[0]
	const secret = "s3cr3t-body-text"
	res, err := s.AppendMessages(t.Context(), []storage.NewMessage{
		w.msg(a, secret+"\x00"),
		w.msg(a, secret+"\xff"),
		{ConversationID: a.ID + 1000, SenderID: w.admin.ID, Body: secret},
		{ConversationID: a.ID, SenderID: w.admin.ID + 1000, Body: secret},
	})
	if err != nil {
		t.Fatalf("AppendMessages: %v", err)
	}
	for i, r := range res {
		if r.Err == nil {
			t.Fatalf("result %d: no error", i)
		}
		if strings.Contains(r.Err.Error(), secret) {
			t.Fatalf("result %d: error %q contains the message body", i, r.Err)
		}
	}
}

// TrickyTexts are bodies that a store must return byte for byte.
var TrickyTexts = []string{
	"'; DROP TABLE messages; --",
	"Robert'); DELETE FROM users WHERE ('1'='1",
	`$1 $2 ? %s %d %v {{.}}`,
	`<script>alert("x")</script> &amp; <b>bold</b> <!-- c -->`,
	"emoji 😀👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷",
	"\u200F\u202Eמימין לשמאל\u202C and العربية \u200E",
	"4-byte: 𝄞 𠜎 𐍈 🀄",
	"tab\tnewline\nCRLF\r\nbackslash \\ quote \" apostrophe '",
	`{"a":[1,2],"b":null}`,
	"{a,b}", "{}", "NULL", "null", `"`, `\`, `\\`, `\x00`, `E'\\x41'`,
	"  leading and trailing spaces  ",
	" ", "\n",
	"zero width\u200Bspace, BOM \uFEFF, replacement \uFFFD",
	"combining e\u0301 vs é",
	strings.Repeat("long ✓ ", 10000),
}

func testAppendRoundTrip(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 1)
	a := w.convs[0]
	var in []storage.NewMessage
	for i, text := range TrickyTexts {
		m := storage.NewMessage{
			ConversationID: a.ID,
			SenderID:       w.admin.ID,
			SenderName:     text,
			SenderIsAdmin:  true,
			Body:           text,
			ClientMsgID:    fmt.Sprintf("%d:%s", i, text),
		}
		if len(m.SenderName) > storage.MaxNameBytes {
			m.SenderName = "long"
		}
		if len(m.ClientMsgID) > storage.MaxClientMsgIDBytes {
			m.ClientMsgID = fmt.Sprintf("%d:long", i)
		}
		in = append(in, m)
	}
	res := mustAppend(t, s, in)
	stored := allMessages(t, s, a.ID)
	if len(stored) != len(in) {
		t.Fatalf("stored %d messages, want %d", len(stored), len(in))
	}
	for i, m := range stored {
		for _, got := range []storage.Message{res[i].Message, m} {
			if got.Body != in[i].Body || got.SenderName != in[i].SenderName || got.ClientMsgID != in[i].ClientMsgID {
				t.Fatalf("message %d: body %q name %q client id %q; want %q %q %q",
					i, got.Body, got.SenderName, got.ClientMsgID, in[i].Body, in[i].SenderName, in[i].ClientMsgID)
			}
		}
	}
	// Resending finds them all by client id, tricky ids included.
	again := mustAppend(t, s, in)
	for i, r := range again {
		if !r.Duplicate || r.Message.ID != res[i].Message.ID {
			t.Fatalf("resent message %d: %+v, want duplicate of id %d", i, r, res[i].Message.ID)
		}
	}
	// The inbox shows the last one intact.
	inbox, err := s.Inbox(t.Context(), 0)
	if err != nil {
		t.Fatalf("Inbox: %v", err)
	}
	last := in[len(in)-1]
	if len(inbox) != 1 || inbox[0].LastMessage == nil || inbox[0].LastMessage.Body != last.Body {
		t.Fatalf("inbox does not show the last message intact: %d entries", len(inbox))
	}
}

// testAppendConcurrent appends from several goroutines at once, each sending
// several batches that touch two shared conversations in alternating order.
// Invariant: each conversation's seqs are exactly 1..N, and each message got
// exactly one seq.
func testAppendConcurrent(t *testing.T, s storage.Store) {
	const (
		writers  = 8
		batches  = 10
		perBatch = 4 // messages per conversation per batch
	)
	w := newWorld(t, s, 2)
	a, b := w.convs[0], w.convs[1]

	type sent struct {
		body string
		conv int64
		seq  int64
	}
	perWriter := make([][]sent, writers)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for n := range batches {
				first, second := a, b
				if (g+n)%2 == 1 {
					first, second = b, a
				}
				var batch []storage.NewMessage
				for k := range perBatch {
					batch = append(batch,
						w.msg(first, fmt.Sprintf("w%d-b%d-m%d-first", g, n, k)),
						w.msg(second, fmt.Sprintf("w%d-b%d-m%d-second", g, n, k)))
				}
				res, err := s.AppendMessages(t.Context(), batch)
				if err != nil {
					errs <- fmt.Errorf("writer %d batch %d: %w", g, n, err)
					return
				}
				for i, r := range res {
					if r.Err != nil || r.Duplicate {
						errs <- fmt.Errorf("writer %d batch %d message %d: %+v", g, n, i, r)
						return
					}
					perWriter[g] = append(perWriter[g], sent{batch[i].Body, r.Message.ConversationID, r.Message.Seq})
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	const perConv = writers * batches * perBatch
	seqOf := map[string]int64{}
	for _, conv := range []storage.Conversation{a, b} {
		msgs := allMessages(t, s, conv.ID)
		checkSeqs(t, msgs, perConv)
		for _, m := range msgs {
			if _, ok := seqOf[m.Body]; ok {
				t.Fatalf("body %q stored twice", m.Body)
			}
			seqOf[m.Body] = m.Seq
		}
		c, err := s.Conversation(t.Context(), conv.ID)
		if err != nil {
			t.Fatalf("Conversation: %v", err)
		}
		if c.LastSeq != perConv {
			t.Fatalf("conversation %d last_seq = %d, want %d", conv.ID, c.LastSeq, perConv)
		}
	}
	if len(seqOf) != 2*perConv {
		t.Fatalf("stored %d distinct bodies, want %d", len(seqOf), 2*perConv)
	}
	// Each result matches what was stored, and one writer's messages keep
	// their order within each conversation.
	for g, list := range perWriter {
		last := map[int64]int64{}
		for _, m := range list {
			if seqOf[m.body] != m.seq {
				t.Fatalf("writer %d: %q got seq %d but is stored with seq %d", g, m.body, m.seq, seqOf[m.body])
			}
			if m.seq <= last[m.conv] {
				t.Fatalf("writer %d: seq %d after %d in conversation %d", g, m.seq, last[m.conv], m.conv)
			}
			last[m.conv] = m.seq
		}
	}
}

// testAppendConcurrentSameClientID sends one client message id from many
// goroutines at once: exactly one is stored.
func testAppendConcurrentSameClientID(t *testing.T, s storage.Store) {
	const n = 8
	w := newWorld(t, s, 1)
	a := w.convs[0]
	res := make([]storage.AppendResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			r, err := s.AppendMessages(t.Context(), []storage.NewMessage{w.msgID(a, fmt.Sprintf("attempt %d", g), "retry-me")})
			if err == nil {
				res[g], err = r[0], r[0].Err
			}
			errs[g] = err
		})
	}
	wg.Wait()
	stored := 0
	for g := range n {
		if errs[g] != nil {
			t.Fatalf("goroutine %d: %v", g, errs[g])
		}
		if !res[g].Duplicate {
			stored++
		}
		if res[g].Message.ID != res[0].Message.ID || res[g].Message.Seq != 1 {
			t.Fatalf("goroutine %d got message %+v, goroutine 0 got %+v", g, res[g].Message, res[0].Message)
		}
	}
	if stored != 1 {
		t.Fatalf("%d results not marked duplicate, want 1", stored)
	}
	if msgs := allMessages(t, s, a.ID); len(msgs) != 1 {
		t.Fatalf("stored %d messages, want 1", len(msgs))
	}
}

// --- pages

func testMessagesPages(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 1)
	a := w.convs[0]
	appendN(t, s, w, a, 10)
	tests := []struct {
		page storage.Page
		want []int64 // seqs
	}{
		{storage.Page{}, seqRange(1, 10)},
		{storage.Page{Limit: 1}, []int64{1}},
		{storage.Page{AfterSeq: 3, Limit: 4}, seqRange(4, 7)},
		{storage.Page{AfterSeq: 8}, []int64{9, 10}},
		{storage.Page{AfterSeq: 10}, nil},
		{storage.Page{AfterSeq: 50}, nil},
		{storage.Page{BeforeSeq: 8, Limit: 3}, []int64{5, 6, 7}},
		{storage.Page{BeforeSeq: 2}, []int64{1}},
		{storage.Page{BeforeSeq: 1}, nil},
		{storage.Page{BeforeSeq: 100, Limit: 2}, []int64{9, 10}},
		{storage.Page{BeforeSeq: 11}, seqRange(1, 10)},
		{storage.Page{AfterSeq: 2, BeforeSeq: 6}, []int64{3, 4, 5}},
		{storage.Page{AfterSeq: 2, BeforeSeq: 9, Limit: 2}, []int64{3, 4}},
		{storage.Page{AfterSeq: 5, BeforeSeq: 6}, nil},
		{storage.Page{AfterSeq: 7, BeforeSeq: 3}, nil},
	}
	for _, tt := range tests {
		got, err := s.Messages(t.Context(), a.ID, tt.page)
		if err != nil {
			t.Fatalf("Messages(%+v): %v", tt.page, err)
		}
		if s := seqsOf(got); !slices.Equal(s, tt.want) {
			t.Fatalf("Messages(%+v) seqs = %v, want %v", tt.page, s, tt.want)
		}
		for _, m := range got {
			if m.ConversationID != a.ID || m.Body != fmt.Sprintf("m%d", m.Seq) {
				t.Fatalf("Messages(%+v): message %+v", tt.page, m)
			}
		}
	}
}

func testMessagesCaps(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 1)
	a := w.convs[0]
	const n = storage.MaxPageSize + 50
	appendN(t, s, w, a, n)
	tests := []struct {
		page storage.Page
		want []int64
	}{
		{storage.Page{}, seqRange(1, storage.DefaultPageSize)},
		{storage.Page{Limit: storage.MaxPageSize + 1}, seqRange(1, storage.MaxPageSize)},
		{storage.Page{Limit: 1 << 30}, seqRange(1, storage.MaxPageSize)},
		{storage.Page{BeforeSeq: n + 1, Limit: 1 << 30}, seqRange(n-storage.MaxPageSize+1, n)},
		{storage.Page{BeforeSeq: n + 1}, seqRange(n-storage.DefaultPageSize+1, n)},
		{storage.Page{AfterSeq: n - 10}, seqRange(n-9, n)},
	}
	for _, tt := range tests {
		got, err := s.Messages(t.Context(), a.ID, tt.page)
		if err != nil {
			t.Fatalf("Messages(%+v): %v", tt.page, err)
		}
		if s := seqsOf(got); !slices.Equal(s, tt.want) {
			t.Fatalf("Messages(%+v) seqs = %v, want %v", tt.page, s, tt.want)
		}
	}
}

func testMessagesInvalid(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 1)
	a := w.convs[0]
	for _, p := range []storage.Page{{Limit: -1}, {AfterSeq: -1}, {BeforeSeq: -1}} {
		_, err := s.Messages(t.Context(), a.ID, p)
		wantCode(t, err, storage.EINVALID)
	}
}

func testMessagesNotFoundAndEmpty(t *testing.T, s storage.Store) {
	w := newWorld(t, s, 1)
	a := w.convs[0]
	msgs, err := s.Messages(t.Context(), a.ID, storage.Page{})
	if err != nil || len(msgs) != 0 {
		t.Fatalf("Messages of an empty conversation = %v, %v; want none, nil", msgs, err)
	}
	for _, id := range []int64{0, -1, a.ID + 1000} {
		_, err := s.Messages(t.Context(), id, storage.Page{})
		wantCode(t, err, storage.ENOTFOUND)
	}
}

// --- inbox

func testInboxOrderAndContent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	w := newWorld(t, s, 5)
	c := w.convs // c[4] never gets a message
	mustAppend(t, s, []storage.NewMessage{w.msg(c[0], "c0 first")})
	mustAppend(t, s, []storage.NewMessage{w.msg(c[1], "c1 first")})
	mustAppend(t, s, []storage.NewMessage{w.msg(c[2], "c2 first")})
	mustAppend(t, s, []storage.NewMessage{w.msgID(c[0], "c0 second", "c0-2")})
	// One call, so one activity time: ties go to the higher conversation id.
	mustAppend(t, s, []storage.NewMessage{w.msg(c[1], "c1 second"), w.msg(c[3], "c3 first")})
	// A duplicate is no new activity.
	mustAppend(t, s, []storage.NewMessage{w.msgID(c[0], "c0 second again", "c0-2")})
	// The inbox shows the user's current name.
	renamed := mustUser(t, s, storage.UserInput{ExternalID: w.users[2].ExternalID, Name: "Renamed"})

	want := []struct {
		conv     storage.Conversation
		user     storage.User
		lastSeq  int64
		lastBody string
	}{
		{c[3], w.users[3], 1, "c3 first"},
		{c[1], w.users[1], 2, "c1 second"},
		{c[0], w.users[0], 2, "c0 second"},
		{c[2], renamed, 1, "c2 first"},
	}
	for _, limit := range []int{0, -1, storage.MaxInboxSize + 1, 4, 10, 2} {
		entries, err := s.Inbox(ctx, limit)
		if err != nil {
			t.Fatalf("Inbox(%d): %v", limit, err)
		}
		n := len(want)
		if limit == 2 {
			n = 2
		}
		if len(entries) != n {
			t.Fatalf("Inbox(%d) has %d entries, want %d", limit, len(entries), n)
		}
		for i, e := range entries {
			wt := want[i]
			m := e.LastMessage
			if e.ConversationID != wt.conv.ID || e.UserID != wt.user.ID || e.UserExternalID != wt.user.ExternalID ||
				e.UserName != wt.user.Name || e.LastSeq != wt.lastSeq {
				t.Fatalf("Inbox(%d)[%d] = %+v, want conversation %d of user %+v, last_seq %d", limit, i, e, wt.conv.ID, wt.user, wt.lastSeq)
			}
			if m == nil || m.Body != wt.lastBody || m.Seq != wt.lastSeq || m.ConversationID != wt.conv.ID {
				t.Fatalf("Inbox(%d)[%d].LastMessage = %+v, want seq %d %q", limit, i, m, wt.lastSeq, wt.lastBody)
			}
			if e.LastMessageAt == nil || !e.LastMessageAt.Equal(m.CreatedAt) {
				t.Fatalf("Inbox(%d)[%d].LastMessageAt = %v, want the last message's time %v", limit, i, e.LastMessageAt, m.CreatedAt)
			}
			stored := allMessages(t, s, e.ConversationID)
			if d := diffMessage(*m, stored[len(stored)-1]); d != "" {
				t.Fatalf("Inbox(%d)[%d].LastMessage differs from the stored one: %s", limit, i, d)
			}
		}
		if !entries[0].LastMessageAt.Equal(*entries[1].LastMessageAt) {
			t.Fatalf("messages of one call got different times: %v, %v", entries[0].LastMessageAt, entries[1].LastMessageAt)
		}
		if n > 2 && !entries[1].LastMessageAt.After(*entries[2].LastMessageAt) {
			t.Fatalf("later call's time %v is not after %v", entries[1].LastMessageAt, entries[2].LastMessageAt)
		}
	}
}

func testInboxEmpty(t *testing.T, s storage.Store) {
	newWorld(t, s, 2) // conversations without messages do not show
	entries, err := s.Inbox(t.Context(), 0)
	if err != nil || len(entries) != 0 {
		t.Fatalf("Inbox = %v, %v; want none, nil", entries, err)
	}
}

func testPing(t *testing.T, s storage.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func mustConnect(t *testing.T, s storage.Store, in storage.UserInput) (storage.User, storage.Conversation) {
	t.Helper()
	u, c, err := s.Connect(t.Context(), in)
	if err != nil {
		t.Fatalf("Connect(%+v): %v", in, err)
	}
	return u, c
}

// Connect gives a visitor what UpsertUser and EnsureConversation give,
// whether the user and their conversation are new, returning, changed, or
// the user exists without a conversation.
func testConnectVisitor(t *testing.T, s storage.Store) {
	ctx := t.Context()
	in := storage.UserInput{ExternalID: "visitor-1", Name: "Marie"}
	u, c := mustConnect(t, s, in)
	if u.ID <= 0 || u.Name != "Marie" || u.IsAdmin || c.ID <= 0 || c.UserID != u.ID || c.LastSeq != 0 || c.LastMessageAt != nil {
		t.Fatalf("new visitor: user %+v, conversation %+v", u, c)
	}
	// Returning before any message: no last message time.
	u1, c1 := mustConnect(t, s, in)
	if d := diffUser(u1, u); d != "" || c1.ID != c.ID || c1.LastSeq != 0 || c1.LastMessageAt != nil {
		t.Fatalf("returning visitor without messages: %s, conversation %+v", d, c1)
	}
	// Returning, after messages: the conversation as Conversation reads it.
	w := &world{t: t, users: []storage.User{u}, convs: []storage.Conversation{c}, owner: map[int64]storage.User{c.ID: u}}
	mustAppend(t, s, []storage.NewMessage{w.msg(c, "one"), w.msg(c, "two")})
	u2, c2 := mustConnect(t, s, in)
	if d := diffUser(u2, u); d != "" {
		t.Fatalf("returning visitor: %s", d)
	}
	want, err := s.Conversation(ctx, c.ID)
	if err != nil {
		t.Fatalf("Conversation: %v", err)
	}
	if d := diffConversation(c2, want); d != "" || c2.LastSeq != 2 || c2.LastMessageAt == nil {
		t.Fatalf("returning visitor's conversation %+v: %s (want last_seq 2)", c2, d)
	}
	// A new name is stored and returned.
	u3, c3 := mustConnect(t, s, storage.UserInput{ExternalID: "visitor-1", Name: "Marie D."})
	if u3.ID != u.ID || u3.Name != "Marie D." || c3.ID != c.ID {
		t.Fatalf("renamed visitor: user %+v, conversation %+v", u3, c3)
	}
	if again := mustUser(t, s, storage.UserInput{ExternalID: "visitor-1", Name: "Marie D."}); again.Name != "Marie D." {
		t.Fatalf("the new name was not stored: %+v", again)
	}
	// A user without a conversation gets one.
	bare := mustUser(t, s, storage.UserInput{ExternalID: "visitor-2"})
	u4, c4 := mustConnect(t, s, storage.UserInput{ExternalID: "visitor-2"})
	if u4.ID != bare.ID || c4.ID <= 0 || c4.UserID != bare.ID {
		t.Fatalf("user without a conversation: user %+v, conversation %+v", u4, c4)
	}
	if d := diffConversation(mustConversation(t, s, bare.ID), c4); d != "" {
		t.Fatalf("EnsureConversation after Connect: %s", d)
	}
}

func testConnectStaff(t *testing.T, s storage.Store) {
	u, c := mustConnect(t, s, storage.UserInput{ExternalID: "staff-1", Name: "Bob", IsAdmin: true})
	if u.ID <= 0 || !u.IsAdmin || c != (storage.Conversation{}) {
		t.Fatalf("staff: user %+v, conversation %+v (want none)", u, c)
	}
	u2, c2 := mustConnect(t, s, storage.UserInput{ExternalID: "staff-1", Name: "Bob", IsAdmin: true})
	if d := diffUser(u2, u); d != "" || c2 != (storage.Conversation{}) {
		t.Fatalf("returning staff: %s, conversation %+v", d, c2)
	}
	// Demoted: now a visitor, with a conversation.
	u3, c3 := mustConnect(t, s, storage.UserInput{ExternalID: "staff-1", Name: "Bob"})
	if u3.ID != u.ID || u3.IsAdmin || c3.ID <= 0 || c3.UserID != u.ID {
		t.Fatalf("demoted staff: user %+v, conversation %+v", u3, c3)
	}
	// Promoted again: staff, and no conversation in the answer although
	// one exists.
	u4, c4 := mustConnect(t, s, storage.UserInput{ExternalID: "staff-1", Name: "Bob", IsAdmin: true})
	if u4.ID != u.ID || !u4.IsAdmin || c4 != (storage.Conversation{}) {
		t.Fatalf("promoted visitor: user %+v, conversation %+v (want none)", u4, c4)
	}
}

func testConnectInvalidExternalID(t *testing.T, s storage.Store) {
	for _, ext := range []string{"", strings.Repeat("x", storage.MaxExternalIDBytes+1), "a\x00b", "\xff"} {
		_, _, err := s.Connect(t.Context(), storage.UserInput{ExternalID: ext})
		if storage.ErrorCode(err) != storage.EINVALID {
			t.Errorf("Connect(%q): %v, want EINVALID", ext, err)
		}
	}
}

// testConnectUserDetails: a token's email and ctx are stored with the user
// (ctx in canonical form), replaced by the next connect's (none clears
// them), shown in the visitor's inbox view entry; bad ones are refused.
func testConnectUserDetails(t *testing.T, s storage.Store) {
	ctx := t.Context()
	in := storage.UserInput{ExternalID: "ctx-visitor", Name: "Vera", Email: "vera@example.com",
		Context: ` { "plan" : "pro", "account_id": 42, "vip": true, "note": null, "tag": "<b>&</b>" } `}
	u, c := mustConnect(t, s, in)
	const canon = `{"account_id":42,"note":null,"plan":"pro","tag":"<b>&</b>","vip":true}`
	if u.Email != "vera@example.com" || u.Context != canon {
		t.Fatalf("connect: email %q context %q, want vera@example.com and %s", u.Email, u.Context, canon)
	}
	if got, err := s.User(ctx, u.ID); err != nil || diffUser(got, u) != "" {
		t.Fatalf("User = %+v, %v; want %+v", got, err, u)
	}
	u2, _ := mustConnect(t, s, in) // unchanged
	if d := diffUser(u2, u); d != "" {
		t.Fatalf("returning: %s", d)
	}
	staff := mustUser(t, s, storage.UserInput{ExternalID: "ctx-staff", Name: "Sam", IsAdmin: true})
	w := &world{t: t, users: []storage.User{u}, convs: []storage.Conversation{c}, owner: map[int64]storage.User{c.ID: u}}
	mustAppend(t, s, []storage.NewMessage{w.msg(c, "hi")})
	e, err := s.ConversationEntry(ctx, staff.ID, c.ID)
	if err != nil || e.UserEmail != u.Email || e.UserContext != canon {
		t.Fatalf("ConversationEntry: %+v, %v", e, err)
	}
	view := mustView(t, s, storage.InboxQuery{ViewerID: staff.ID})
	if len(view) != 1 || view[0].UserEmail != u.Email || view[0].UserContext != canon {
		t.Fatalf("InboxView: %+v", view)
	}
	// A new token's details replace them; a token without clears them.
	u3, _ := mustConnect(t, s, storage.UserInput{ExternalID: "ctx-visitor", Name: "Vera", Email: "v@example.org", Context: `{"plan":"free"}`})
	if u3.ID != u.ID || u3.Email != "v@example.org" || u3.Context != `{"plan":"free"}` {
		t.Fatalf("changed details: %+v", u3)
	}
	u4, _ := mustConnect(t, s, storage.UserInput{ExternalID: "ctx-visitor", Name: "Vera"})
	if u4.Email != "" || u4.Context != "" {
		t.Fatalf("cleared details: %+v", u4)
	}
	if got, _ := s.User(ctx, u.ID); got.Email != "" || got.Context != "" {
		t.Fatalf("cleared details, read again: %+v", got)
	}
	// Refused, by Connect and UpsertUser alike, and nothing changes.
	many := map[string]int{}
	for i := range storage.MaxContextKeys + 1 {
		many[fmt.Sprintf("k%d", i)] = i
	}
	manyJSON, _ := json.Marshal(many)
	for _, bad := range []storage.UserInput{
		{Email: "not an address"},
		{Email: "Vera <vera@example.com>"},
		{Email: strings.Repeat("a", 250) + "@example.com"},
		{Context: `[1,2]`},
		{Context: `"text"`},
		{Context: `{"a":1} {"b":2}`},
		{Context: `{"a":{"nested":1}}`},
		{Context: `{"a":[1]}`},
		{Context: `{"":1}`},
		{Context: `{"` + strings.Repeat("k", storage.MaxContextKeyRunes+1) + `":1}`},
		{Context: `{"a":"` + strings.Repeat("é", storage.MaxContextValueRunes+1) + `"}`},
		{Context: string(manyJSON)},
		{Context: `{not json}`},
	} {
		bad.ExternalID, bad.Name = "ctx-visitor", "Vera"
		_, _, err := s.Connect(ctx, bad)
		wantCode(t, err, storage.EINVALID)
		_, err = s.UpsertUser(ctx, bad)
		wantCode(t, err, storage.EINVALID)
	}
	if got, _ := s.User(ctx, u.ID); got.Email != "" || got.Context != "" || got.Name != "Vera" {
		t.Fatalf("after refusals: %+v", got)
	}
}

// A merged user says so on every read (Connect included); merging again
// into the same user is a no-op, into another one a conflict.
func testMergeUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	anon, err := s.UpsertUser(ctx, storage.UserInput{ExternalID: "anon:abc", Name: "Visitor ABC"})
	if err != nil {
		t.Fatal(err)
	}
	carl, _ := s.UpsertUser(ctx, storage.UserInput{ExternalID: "carl", Name: "Carl"})
	olga, _ := s.UpsertUser(ctx, storage.UserInput{ExternalID: "olga", Name: "Olga"})
	if anon.MergedInto != 0 {
		t.Fatalf("new user merged into %d", anon.MergedInto)
	}
	for range 2 {
		if err := s.MergeUser(ctx, anon.ID, carl.ID); err != nil {
			t.Fatalf("merge: %v", err)
		}
	}
	if err := s.MergeUser(ctx, anon.ID, olga.ID); storage.ErrorCode(err) != storage.ECONFLICT {
		t.Errorf("merge into another user: %v, want conflict", err)
	}
	if err := s.MergeUser(ctx, anon.ID, 1<<40); storage.ErrorCode(err) != storage.ENOTFOUND {
		t.Errorf("merge into an unknown user: %v, want not found", err)
	}
	if err := s.MergeUser(ctx, 1<<40, carl.ID); storage.ErrorCode(err) != storage.ENOTFOUND {
		t.Errorf("merge of an unknown user: %v, want not found", err)
	}
	u, err := s.User(ctx, anon.ID)
	if err != nil || u.MergedInto != carl.ID {
		t.Errorf("User: %+v %v", u, err)
	}
	u, _, err = s.Connect(ctx, storage.UserInput{ExternalID: "anon:abc", Name: "Visitor ABC"})
	if err != nil || u.MergedInto != carl.ID {
		t.Errorf("Connect: %+v %v", u, err)
	}
	if u, _ := s.User(ctx, carl.ID); u.MergedInto != 0 {
		t.Errorf("the user merged into says merged: %+v", u)
	}
}
