package storetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// deskTests are the conformance tests of storage.Desk (Run runs them).
func deskTests() []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"Desk/StatusDefaultsOpen", testDeskStatusDefaultsOpen},
		{"Desk/ChangeRecordsEvents", testDeskChangeRecordsEvents},
		{"Desk/ChangeInvalid", testDeskChangeInvalid},
		{"Desk/VisitorReopens", testDeskVisitorReopens},
		{"Desk/ReopenInBatch", testDeskReopenInBatch},
		{"Desk/ChangesOrderWithAppends", testDeskChangesOrderWithAppends},
		{"Desk/Events", testDeskEvents},
		{"Desk/ReadMarks", testDeskReadMarks},
		{"Desk/ReadReceipts", testDeskReadReceipts},
		{"Desk/ConversationState", testDeskConversationState},
		{"Presence/LastSeen", testPresenceLastSeen},
		{"Presence/VisitorPages", testPresenceVisitorPages},
		{"Desk/Notes", testDeskNotes},
		{"Desk/Unread", testDeskUnread},
		{"Desk/ViewFilters", testDeskViewFilters},
		{"Desk/ViewInvalid", testDeskViewInvalid},
		{"Desk/ViewWalk", testDeskViewWalk},
		{"Desk/Search", testDeskSearch},
		{"Desk/SearchNotes", testDeskSearchNotes},
		{"Desk/StaffUser", testDeskStaffUser},
		{"Desk/ConversationEntry", testDeskConversationEntry},
	}
}

// desk is a world with two staff users (the world's admin is a third).
type desk struct {
	*world
	s      storage.Store
	ann    storage.User // staff
	bob    storage.User // staff
	annRef storage.UserRef
	bobRef storage.UserRef
}

func newDesk(t *testing.T, s storage.Store, visitors int) *desk {
	t.Helper()
	d := &desk{world: newWorld(t, s, visitors), s: s}
	d.ann = mustUser(t, s, storage.UserInput{ExternalID: "ann", Name: "Ann Agent", IsAdmin: true})
	d.bob = mustUser(t, s, storage.UserInput{ExternalID: "bob", Name: "Bob Agent", IsAdmin: true})
	d.annRef, d.bobRef = refOf(d.ann), refOf(d.bob)
	return d
}

func refOf(u storage.User) storage.UserRef {
	return storage.UserRef{ID: u.ID, ExternalID: u.ExternalID, Name: u.Name}
}

func ptr[T any](v T) *T { return &v }

// change applies c and fails the test on an error.
func (d *desk) change(conv storage.Conversation, c storage.Change) storage.ChangeResult {
	d.t.Helper()
	res, err := d.s.ChangeConversation(d.t.Context(), conv.ID, c)
	if err != nil {
		d.t.Fatalf("ChangeConversation(%d, %+v): %v", conv.ID, c, err)
	}
	return res
}

// staffMsg is a message from u (staff) into conv.
func staffMsg(u storage.User, conv storage.Conversation, body string) storage.NewMessage {
	return storage.NewMessage{ConversationID: conv.ID, SenderID: u.ID, SenderName: u.Name, SenderIsAdmin: true, Body: body}
}

// mustEvents reads every event of a conversation.
func mustEvents(t *testing.T, s storage.Store, conversationID int64) []storage.Event {
	t.Helper()
	events, err := s.Events(t.Context(), conversationID, 0, math.MaxInt64)
	if err != nil {
		t.Fatalf("Events(%d): %v", conversationID, err)
	}
	return events
}

// diffEvent compares two events, times by instant.
func diffEvent(got, want storage.Event) string {
	g, w := got, want
	g.CreatedAt, w.CreatedAt = want.CreatedAt, want.CreatedAt
	g.Assignee, w.Assignee = nil, nil
	sameAssignee := (got.Assignee == nil) == (want.Assignee == nil) &&
		(got.Assignee == nil || *got.Assignee == *want.Assignee)
	if g != w || !sameAssignee || !got.CreatedAt.Equal(want.CreatedAt) {
		return fmt.Sprintf("got %+v (assignee %+v), want %+v (assignee %+v)", got, got.Assignee, want, want.Assignee)
	}
	return ""
}

func diffEvents(got, want []storage.Event) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d events %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range got {
		if d := diffEvent(got[i], want[i]); d != "" {
			return fmt.Sprintf("event %d: %s", i, d)
		}
	}
	return ""
}

func sameRef(got, want *storage.UserRef) bool {
	return (got == nil) == (want == nil) && (got == nil || *got == *want)
}

// --- status and assignee

// testDeskStatusDefaultsOpen: a new conversation is open and unassigned,
// as every read shows it.
func testDeskStatusDefaultsOpen(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 1)
	c := d.convs[0]
	if c.Status != storage.StatusOpen || c.AssigneeID != nil {
		t.Fatalf("EnsureConversation = %+v, want open and unassigned", c)
	}
	got, err := s.Conversation(t.Context(), c.ID)
	if err != nil || got.Status != storage.StatusOpen || got.AssigneeID != nil {
		t.Fatalf("Conversation = %+v, %v; want open and unassigned", got, err)
	}
	st, err := s.DeskState(t.Context(), c.ID)
	if err != nil || st != (storage.DeskState{ConversationID: c.ID, Status: storage.StatusOpen}) {
		t.Fatalf("DeskState = %+v, %v; want open, unassigned, last seq 0", st, err)
	}
	_, err = s.DeskState(t.Context(), c.ID+1000)
	wantCode(t, err, storage.ENOTFOUND)
	mustAppend(t, s, []storage.NewMessage{d.msg(c, "hello")})
	inbox, err := s.Inbox(t.Context(), 0)
	if err != nil || len(inbox) != 1 || inbox[0].Status != storage.StatusOpen || inbox[0].Assignee != nil {
		t.Fatalf("Inbox = %+v, %v; want one open unassigned entry", inbox, err)
	}
	if events := mustEvents(t, s, c.ID); len(events) != 0 {
		t.Fatalf("events of a new conversation: %+v", events)
	}
}

// testDeskChangeRecordsEvents: each changed field records one event (who,
// when, after which seq); setting the current value records nothing.
func testDeskChangeRecordsEvents(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 1)
	c := d.convs[0]
	res := mustAppend(t, s, []storage.NewMessage{d.msg(c, "one"), d.msg(c, "two")})
	msgAt := res[1].Message.CreatedAt

	r1 := d.change(c, storage.Change{Status: ptr(storage.StatusPending), ActorID: d.ann.ID})
	want1 := storage.Event{ID: r1.Events[0].ID, ConversationID: c.ID, AfterSeq: 2, Kind: storage.EventStatus,
		Status: storage.StatusPending, Actor: d.annRef, CreatedAt: r1.Events[0].CreatedAt}
	if d := diffEvents(r1.Events, []storage.Event{want1}); d != "" {
		t.Fatalf("status change: %s", d)
	}
	if r1.Events[0].CreatedAt.Before(msgAt) {
		t.Fatalf("event at %v, before the message it follows (%v)", r1.Events[0].CreatedAt, msgAt)
	}
	if r1.State != (storage.DeskState{ConversationID: c.ID, Status: storage.StatusPending, LastSeq: 2}) {
		t.Fatalf("state after the status change: %+v", r1.State)
	}

	// Both fields at once: two events, status first, both after seq 2.
	r2 := d.change(c, storage.Change{Status: ptr(storage.StatusResolved), Assignee: ptr(d.bob.ID), ActorID: d.ann.ID})
	if len(r2.Events) != 2 {
		t.Fatalf("change of both fields: %d events, want 2: %+v", len(r2.Events), r2.Events)
	}
	want2 := []storage.Event{
		{ID: r2.Events[0].ID, ConversationID: c.ID, AfterSeq: 2, Kind: storage.EventStatus,
			Status: storage.StatusResolved, Actor: d.annRef, CreatedAt: r2.Events[0].CreatedAt},
		{ID: r2.Events[1].ID, ConversationID: c.ID, AfterSeq: 2, Kind: storage.EventAssignee,
			Assignee: &d.bobRef, Actor: d.annRef, CreatedAt: r2.Events[1].CreatedAt},
	}
	if d := diffEvents(r2.Events, want2); d != "" {
		t.Fatalf("change of both fields: %s", d)
	}
	if r2.Events[0].ID <= want1.ID || r2.Events[1].ID <= r2.Events[0].ID {
		t.Fatalf("event ids %d, %d, %d do not increase", want1.ID, r2.Events[0].ID, r2.Events[1].ID)
	}
	if r2.State.Status != storage.StatusResolved || !sameRef(r2.State.Assignee, &d.bobRef) {
		t.Fatalf("state after both: %+v", r2.State)
	}

	// The same values again: nothing recorded, state unchanged.
	r3 := d.change(c, storage.Change{Status: ptr(storage.StatusResolved), Assignee: ptr(d.bob.ID), ActorID: d.bob.ID})
	if len(r3.Events) != 0 || r3.State.Status != storage.StatusResolved || !sameRef(r3.State.Assignee, &d.bobRef) {
		t.Fatalf("repeated change: %+v (assignee %+v), want no events, same state", r3, r3.State.Assignee)
	}
	r4 := d.change(c, storage.Change{ActorID: d.bob.ID})
	if len(r4.Events) != 0 {
		t.Fatalf("empty change recorded %+v", r4.Events)
	}

	// Another message, then unassign (by Bob): after seq 3, no assignee.
	mustAppend(t, s, []storage.NewMessage{staffMsg(d.ann, c, "three")})
	r5 := d.change(c, storage.Change{Assignee: ptr(int64(0)), ActorID: d.bob.ID})
	want5 := storage.Event{ID: r5.Events[0].ID, ConversationID: c.ID, AfterSeq: 3, Kind: storage.EventAssignee,
		Actor: d.bobRef, CreatedAt: r5.Events[0].CreatedAt}
	if d := diffEvents(r5.Events, []storage.Event{want5}); d != "" {
		t.Fatalf("unassign: %s", d)
	}
	if r5.State.Assignee != nil || r5.State.LastSeq != 3 {
		t.Fatalf("state after unassign: %+v", r5.State)
	}
	// Unassigning again records nothing.
	if r := d.change(c, storage.Change{Assignee: ptr(int64(0)), ActorID: d.bob.ID}); len(r.Events) != 0 {
		t.Fatalf("unassigning an unassigned conversation recorded %+v", r.Events)
	}

	// Events returns them all, in order; every read shows the state.
	all := slices.Concat(r1.Events, r2.Events, r5.Events)
	if d := diffEvents(mustEvents(t, s, c.ID), all); d != "" {
		t.Fatalf("Events: %s", d)
	}
	d.change(c, storage.Change{Assignee: ptr(d.ann.ID), ActorID: d.ann.ID})
	got, err := s.Conversation(t.Context(), c.ID)
	if err != nil || got.Status != storage.StatusResolved || got.AssigneeID == nil || *got.AssigneeID != d.ann.ID {
		t.Fatalf("Conversation = %+v, %v; want resolved, assigned to %d", got, err, d.ann.ID)
	}
	st, err := s.DeskState(t.Context(), c.ID)
	if err != nil || st.Status != storage.StatusResolved || !sameRef(st.Assignee, &d.annRef) || st.LastSeq != 3 {
		t.Fatalf("DeskState = %+v, %v", st, err)
	}
	page, err := s.InboxPage(t.Context(), storage.InboxCursor{}, 0)
	if err != nil || len(page) != 1 || page[0].Status != storage.StatusResolved || !sameRef(page[0].Assignee, &d.annRef) {
		t.Fatalf("InboxPage = %+v, %v; want the resolved conversation assigned to Ann", page, err)
	}
}

// testDeskChangeInvalid: bad changes are refused with their codes and
// record nothing.
func testDeskChangeInvalid(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 2)
	c := d.convs[0]
	visitor := d.users[1]
	tests := []struct {
		name string
		conv int64
		c    storage.Change
		code string
	}{
		{"unknown status", c.ID, storage.Change{Status: ptr("closed"), ActorID: d.ann.ID}, storage.EINVALID},
		{"empty status", c.ID, storage.Change{Status: ptr(""), ActorID: d.ann.ID}, storage.EINVALID},
		{"visitor as assignee", c.ID, storage.Change{Assignee: ptr(visitor.ID), ActorID: d.ann.ID}, storage.EINVALID},
		{"unknown assignee", c.ID, storage.Change{Assignee: ptr(d.bob.ID + 1000), ActorID: d.ann.ID}, storage.EINVALID},
		{"negative assignee", c.ID, storage.Change{Assignee: ptr(int64(-1)), ActorID: d.ann.ID}, storage.EINVALID},
		{"unknown conversation", c.ID + 1000, storage.Change{Status: ptr(storage.StatusResolved), ActorID: d.ann.ID}, storage.ENOTFOUND},
		{"unknown actor", c.ID, storage.Change{Status: ptr(storage.StatusResolved), ActorID: d.bob.ID + 1000}, storage.ENOTFOUND},
		{"valid status, bad assignee", c.ID, storage.Change{Status: ptr(storage.StatusResolved), Assignee: ptr(visitor.ID), ActorID: d.ann.ID}, storage.EINVALID},
	}
	for _, tt := range tests {
		_, err := s.ChangeConversation(t.Context(), tt.conv, tt.c)
		if errCode(err) != tt.code {
			t.Errorf("%s: error %v, want code %q", tt.name, err, tt.code)
		}
	}
	st, err := s.DeskState(t.Context(), c.ID)
	if err != nil || st.Status != storage.StatusOpen || st.Assignee != nil {
		t.Fatalf("state after refused changes: %+v, %v", st, err)
	}
	if events := mustEvents(t, s, c.ID); len(events) != 0 {
		t.Fatalf("refused changes recorded %+v", events)
	}
}

// testDeskVisitorReopens: a visitor's message reopens a resolved and a
// pending conversation, with exactly one event each time; a staff message
// and a duplicate do not.
func testDeskVisitorReopens(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 1)
	c := d.convs[0]
	visitor := refOf(d.users[0])
	mustAppend(t, s, []storage.NewMessage{d.msgID(c, "first", "k1")})
	var want []storage.Event
	for i, status := range []string{storage.StatusResolved, storage.StatusPending} {
		want = append(want, d.change(c, storage.Change{Status: ptr(status), ActorID: d.ann.ID}).Events...)

		// Staff write: still status.
		staff := mustAppend(t, s, []storage.NewMessage{staffMsg(d.ann, c, fmt.Sprintf("staff %d", i))})
		if staff[0].Reopened != nil {
			t.Fatalf("%s: a staff message reopened: %+v", status, staff[0].Reopened)
		}
		// A duplicate of the visitor's earlier message: nothing happens.
		dup := mustAppend(t, s, []storage.NewMessage{d.msgID(c, "first", "k1")})
		if !dup[0].Duplicate || dup[0].Reopened != nil {
			t.Fatalf("%s: duplicate result %+v", status, dup[0])
		}
		if st, _ := s.DeskState(t.Context(), c.ID); st.Status != status {
			t.Fatalf("%s: after staff and duplicate messages the status is %q", status, st.Status)
		}
		// The visitor writes: open again, one event.
		res := mustAppend(t, s, []storage.NewMessage{d.msgID(c, "again", fmt.Sprintf("again-%d", i))})
		m := res[0].Message
		ev := res[0].Reopened
		if ev == nil {
			t.Fatalf("%s: the visitor's message did not report reopening", status)
		}
		wantEv := storage.Event{ID: ev.ID, ConversationID: c.ID, AfterSeq: m.Seq - 1, Kind: storage.EventStatus,
			Status: storage.StatusOpen, Actor: visitor, CreatedAt: m.CreatedAt}
		if d := diffEvent(*ev, wantEv); d != "" {
			t.Fatalf("%s: Reopened: %s", status, d)
		}
		want = append(want, wantEv)
		st, err := s.DeskState(t.Context(), c.ID)
		if err != nil || st.Status != storage.StatusOpen {
			t.Fatalf("%s: after the visitor's message: %+v, %v", status, st, err)
		}
		if d := diffEvents(mustEvents(t, s, c.ID), want); d != "" {
			t.Fatalf("%s: Events: %s", status, d)
		}
		// A further visitor message to the open conversation: no event.
		if res := mustAppend(t, s, []storage.NewMessage{d.msg(c, "more")}); res[0].Reopened != nil {
			t.Fatalf("%s: a message to an open conversation reopened it: %+v", status, res[0].Reopened)
		}
	}
	if d := diffEvents(mustEvents(t, s, c.ID), want); d != "" {
		t.Fatalf("Events: %s", d)
	}
}

// testDeskReopenInBatch: in one call, only the first fresh visitor message
// of a conversation reopens it (after a staff message of the same call, it
// comes after that message), and a retry of it does not.
func testDeskReopenInBatch(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 3)
	a, b, c := d.convs[0], d.convs[1], d.convs[2]
	mustAppend(t, s, []storage.NewMessage{d.msg(a, "a"), d.msg(b, "b"), d.msg(c, "c")})
	for _, conv := range []storage.Conversation{a, b} {
		d.change(conv, storage.Change{Status: ptr(storage.StatusResolved), ActorID: d.ann.ID})
	}
	res := mustAppend(t, s, []storage.NewMessage{
		staffMsg(d.ann, a, "staff to a"), // a: seq 2
		d.msgID(a, "visitor to a", "x"),  // a: seq 3, reopens after 2
		d.msgID(a, "visitor to a", "x"),  // its repeat: duplicate
		d.msg(a, "visitor again"),        // a: seq 4, already open
		d.msg(b, "visitor to b"),         // b: seq 2, reopens after 1
		d.msg(c, "visitor to c"),         // c: open already
	})
	wantReopen := []bool{false, true, false, false, true, false}
	for i, r := range res {
		if (r.Reopened != nil) != wantReopen[i] {
			t.Fatalf("result %d: Reopened %+v, want %v", i, r.Reopened, wantReopen[i])
		}
	}
	if ev := res[1].Reopened; ev.AfterSeq != 2 || ev.ConversationID != a.ID || !ev.CreatedAt.Equal(res[1].Message.CreatedAt) {
		t.Fatalf("reopening of a: %+v", ev)
	}
	if ev := res[4].Reopened; ev.AfterSeq != 1 || ev.ConversationID != b.ID {
		t.Fatalf("reopening of b: %+v", ev)
	}
	for _, conv := range []storage.Conversation{a, b, c} {
		if st, _ := s.DeskState(t.Context(), conv.ID); st.Status != storage.StatusOpen {
			t.Fatalf("conversation %d is %q after the batch", conv.ID, st.Status)
		}
	}
	if events := mustEvents(t, s, a.ID); len(events) != 2 || events[1].ID != res[1].Reopened.ID {
		t.Fatalf("events of a: %+v, want the resolve and one reopening", events)
	}
	if events := mustEvents(t, s, c.ID); len(events) != 0 {
		t.Fatalf("events of c: %+v", events)
	}
}

// testDeskChangesOrderWithAppends: changes and appends to one conversation
// at once; each event comes after the seq the conversation had at that
// moment, so events come in after_seq order and none is after a seq that
// did not exist.
func testDeskChangesOrderWithAppends(t *testing.T, s storage.Store) {
	const rounds = 40
	d := newDesk(t, s, 1)
	c := d.convs[0]
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() {
		for i := range rounds {
			if _, err := s.AppendMessages(t.Context(), []storage.NewMessage{staffMsg(d.bob, c, fmt.Sprintf("m%d", i))}); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() {
		statuses := []string{storage.StatusPending, storage.StatusResolved}
		for i := range rounds {
			if _, err := s.ChangeConversation(t.Context(), c.ID, storage.Change{Status: &statuses[i%2], ActorID: d.ann.ID}); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	events := mustEvents(t, s, c.ID)
	if len(events) != rounds {
		t.Fatalf("%d events, want %d", len(events), rounds)
	}
	for i, e := range events {
		if e.AfterSeq < 0 || e.AfterSeq > rounds || (i > 0 && (e.AfterSeq < events[i-1].AfterSeq || e.ID <= events[i-1].ID)) {
			t.Fatalf("event %d: %+v after %+v: out of order", i, e, events[max(i-1, 0)])
		}
	}
}

// testDeskEvents: Events selects by after_seq, inclusive bounds.
func testDeskEvents(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 1)
	c := d.convs[0]
	var all []storage.Event
	step := func(status string) {
		all = append(all, d.change(c, storage.Change{Status: &status, ActorID: d.ann.ID}).Events...)
	}
	step(storage.StatusPending) // after 0
	appendN(t, s, d.world, c, 2)
	step(storage.StatusResolved) // after 2
	step(storage.StatusPending)  // after 2
	appendN(t, s, d.world, c, 3)
	d.change(c, storage.Change{Assignee: &d.bob.ID, ActorID: d.bob.ID})
	all = mustEvents(t, s, c.ID)
	afters := make([]int64, len(all))
	for i, e := range all {
		afters[i] = e.AfterSeq
	}
	// pending, reopened by the visitor's first message, resolved, pending,
	// reopened by the visitor's third message, assigned.
	if !slices.Equal(afters, []int64{0, 0, 2, 2, 2, 5}) {
		t.Fatalf("after_seqs %v, want [0 0 2 2 2 5]", afters)
	}
	for _, tt := range []struct {
		from, to int64
		want     []storage.Event
	}{
		{0, 0, all[:2]},
		{1, 1, nil},
		{1, 2, all[2:5]},
		{2, 2, all[2:5]},
		{3, 5, all[5:]},
		{0, math.MaxInt64, all},
		{6, 100, nil},
		{5, 2, nil},
	} {
		got, err := s.Events(t.Context(), c.ID, tt.from, tt.to)
		if err != nil {
			t.Fatalf("Events(%d, %d): %v", tt.from, tt.to, err)
		}
		if got == nil || diffEvents(got, tt.want) != "" {
			t.Fatalf("Events(%d, %d) = %+v, want %+v (empty, not nil)", tt.from, tt.to, got, tt.want)
		}
	}
	_, err := s.Events(t.Context(), c.ID, -1, 3)
	wantCode(t, err, storage.EINVALID)
	_, err = s.Events(t.Context(), c.ID+1000, 0, 3)
	wantCode(t, err, storage.ENOTFOUND)
}

// --- read marks

// testDeskReadMarks: a mark moves forward only, is capped at the last seq,
// and is each user's own.
func testDeskReadMarks(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 2)
	c, other := d.convs[0], d.convs[1]
	appendN(t, s, d.world, c, 5)
	mark := func(u storage.User, conv storage.Conversation, seq, want int64) {
		t.Helper()
		got, err := s.MarkRead(t.Context(), u.ID, conv.ID, seq)
		if err != nil || got != want {
			t.Fatalf("MarkRead(%s, %d, %d) = %d, %v; want %d", u.ExternalID, conv.ID, seq, got, err, want)
		}
	}
	mark(d.ann, c, 0, 0)
	mark(d.ann, c, 3, 3)
	mark(d.ann, c, 2, 3)  // never backwards
	mark(d.ann, c, 99, 5) // capped at last seq
	mark(d.ann, c, 4, 5)
	mark(d.bob, c, 1, 1) // Bob's own
	mark(d.bob, other, 7, 0)
	appendN(t, s, d.world, c, 2)
	mark(d.bob, c, 7, 7)
	mark(d.ann, c, 6, 6)

	views := func(u storage.User) map[int64]storage.InboxEntry {
		out := map[int64]storage.InboxEntry{}
		for _, e := range mustView(t, s, storage.InboxQuery{ViewerID: u.ID}) {
			out[e.ConversationID] = e
		}
		return out
	}
	if e := views(d.ann)[c.ID]; e.ReadSeq != 6 || e.Unread != 1 {
		t.Fatalf("Ann's entry: read %d unread %d, want 6 and 1", e.ReadSeq, e.Unread)
	}
	if e := views(d.bob)[c.ID]; e.ReadSeq != 7 || e.Unread != 0 {
		t.Fatalf("Bob's entry: read %d unread %d, want 7 and 0", e.ReadSeq, e.Unread)
	}

	_, err := s.MarkRead(t.Context(), d.ann.ID, c.ID, -1)
	wantCode(t, err, storage.EINVALID)
	_, err = s.MarkRead(t.Context(), d.ann.ID, c.ID+1000, 1)
	wantCode(t, err, storage.ENOTFOUND)
	_, err = s.MarkRead(t.Context(), d.bob.ID+1000, c.ID, 1)
	wantCode(t, err, storage.ENOTFOUND)
}

// testDeskReadReceipts: staff's receipt is the furthest staff mark, the
// visitor's their own mark; another visitor's mark moves neither; neither
// moves backwards; Connect reads the same.
func testDeskReadReceipts(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 2)
	c, other := d.convs[0], d.convs[1]
	visitor, stranger := d.owner[c.ID], d.owner[other.ID]
	appendN(t, s, d.world, c, 6)
	receipts := func(want storage.ReadReceipts) {
		t.Helper()
		got, err := s.ReadReceipts(t.Context(), c.ID)
		if err != nil || got != want {
			t.Fatalf("ReadReceipts(%d) = %+v, %v; want %+v", c.ID, got, err, want)
		}
		// A returning visitor's Connect reads them with the user.
		_, conv := mustConnect(t, s, storage.UserInput{ExternalID: visitor.ExternalID, Name: visitor.Name})
		if conv.ID != c.ID || conv.Receipts == nil || *conv.Receipts != want {
			t.Fatalf("Connect(%s): conversation %d, receipts %+v; want %d, %+v", visitor.ExternalID, conv.ID, conv.Receipts, c.ID, want)
		}
	}
	mark := func(u storage.User, seq int64) {
		t.Helper()
		if _, err := s.MarkRead(t.Context(), u.ID, c.ID, seq); err != nil {
			t.Fatalf("MarkRead(%s, %d): %v", u.ExternalID, seq, err)
		}
	}
	receipts(storage.ReadReceipts{})
	mark(d.ann, 2)
	receipts(storage.ReadReceipts{Staff: 2})
	mark(d.bob, 4)
	mark(d.ann, 3) // Bob's is further
	receipts(storage.ReadReceipts{Staff: 4})
	mark(visitor, 5)
	receipts(storage.ReadReceipts{Staff: 4, Visitor: 5})
	mark(visitor, 1) // never backwards
	mark(stranger, 6)
	receipts(storage.ReadReceipts{Staff: 4, Visitor: 5})
	mark(d.ann, 99) // capped at the last seq
	receipts(storage.ReadReceipts{Staff: 6, Visitor: 5})

	if got, err := s.ReadReceipts(t.Context(), other.ID); err != nil || got != (storage.ReadReceipts{}) {
		t.Fatalf("ReadReceipts of an unread conversation = %+v, %v", got, err)
	}
	if got, err := s.ReadReceipts(t.Context(), c.ID+1000); err != nil || got != (storage.ReadReceipts{}) {
		t.Fatalf("ReadReceipts of an unknown conversation = %+v, %v", got, err)
	}
}

// testDeskConversationState: a grain's read has the conversation as
// Conversation reads it, with its receipts, its visitor and its assignee;
// many are read at once, an unknown id left out.
func testDeskConversationState(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 2)
	c, other := d.convs[0], d.convs[1]
	appendN(t, s, d.world, c, 3)
	// check asserts got is conv's state: lastSeq, its assignee and receipts.
	check := func(got storage.ConversationState, conv storage.Conversation, lastSeq int64, assignee *storage.User, receipts storage.ReadReceipts) {
		t.Helper()
		want, err := s.Conversation(t.Context(), conv.ID)
		if err != nil {
			t.Fatalf("Conversation(%d): %v", conv.ID, err)
		}
		if dc := diffConversation(got.Conversation, want); dc != "" || got.Conversation.LastSeq != lastSeq {
			t.Fatalf("conversation: %s (last seq %d, want %d)", dc, got.Conversation.LastSeq, lastSeq)
		}
		if r := got.Conversation.Receipts; r == nil || *r != receipts {
			t.Fatalf("receipts %+v, want %+v", r, receipts)
		}
		if du := diffUser(got.Visitor, d.owner[conv.ID]); du != "" {
			t.Fatalf("visitor: %s", du)
		}
		switch {
		case assignee == nil && got.Assignee != nil:
			t.Fatalf("assignee %+v, want none", got.Assignee)
		case assignee != nil && (got.Assignee == nil || diffUser(*got.Assignee, *assignee) != ""):
			t.Fatalf("assignee %+v, want %+v", got.Assignee, assignee)
		}
	}
	read := func(ids ...int64) map[int64]storage.ConversationState {
		t.Helper()
		states, err := s.ConversationStates(t.Context(), ids)
		if err != nil {
			t.Fatalf("ConversationStates(%v): %v", ids, err)
		}
		out := map[int64]storage.ConversationState{}
		for _, st := range states {
			if _, dup := out[st.Conversation.ID]; dup {
				t.Fatalf("ConversationStates(%v) gave conversation %d twice", ids, st.Conversation.ID)
			}
			out[st.Conversation.ID] = st
		}
		return out
	}
	one := read(c.ID)
	if len(one) != 1 {
		t.Fatalf("ConversationStates(%d) = %d states, want 1", c.ID, len(one))
	}
	check(one[c.ID], c, 3, nil, storage.ReadReceipts{})

	d.change(c, storage.Change{Assignee: ptr(d.bob.ID), ActorID: d.ann.ID})
	visitor := d.owner[c.ID]
	for _, m := range []struct {
		u   storage.User
		seq int64
	}{{d.ann, 2}, {visitor, 3}} {
		if _, err := s.MarkRead(t.Context(), m.u.ID, c.ID, m.seq); err != nil {
			t.Fatalf("MarkRead: %v", err)
		}
	}
	// Many at once, an unknown id among them: left out.
	many := read(other.ID, other.ID+1000, c.ID)
	if len(many) != 2 {
		t.Fatalf("ConversationStates = %d states, want 2 (the unknown id left out)", len(many))
	}
	check(many[c.ID], c, 3, &d.bob, storage.ReadReceipts{Staff: 2, Visitor: 3})
	check(many[other.ID], other, 0, nil, storage.ReadReceipts{})
	if unknown := read(other.ID + 1000); len(unknown) != 0 {
		t.Fatalf("ConversationStates of an unknown id = %+v, want none", unknown)
	}
	if none := read(); len(none) != 0 {
		t.Fatalf("ConversationStates(none) = %+v", none)
	}
	_, err := s.ConversationStates(t.Context(), make([]int64, storage.MaxStateBatch+1))
	wantCode(t, err, storage.EINVALID)
}

// testDeskUnread: unread counts the messages after the viewer's mark that
// the viewer did not send, at most MaxUnread.
func testDeskUnread(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 2)
	c, big := d.convs[0], d.convs[1]
	mustAppend(t, s, []storage.NewMessage{
		d.msg(c, "1"), staffMsg(d.ann, c, "2"), d.msg(c, "3"), staffMsg(d.bob, c, "4"), staffMsg(d.ann, c, "5"),
	})
	var batch []storage.NewMessage
	for i := range storage.MaxUnread + 5 {
		batch = append(batch, d.msg(big, fmt.Sprintf("b%d", i)))
	}
	mustAppend(t, s, batch)
	unread := func(u storage.User) (int64, int64) {
		t.Helper()
		var a, b int64 = -1, -1
		for _, e := range mustView(t, s, storage.InboxQuery{ViewerID: u.ID}) {
			switch e.ConversationID {
			case c.ID:
				a = e.Unread
			case big.ID:
				b = e.Unread
			}
		}
		return a, b
	}
	if a, b := unread(d.ann); a != 3 || b != storage.MaxUnread {
		t.Fatalf("Ann's unread: %d and %d, want 3 (not her own 2) and %d (capped)", a, b, storage.MaxUnread)
	}
	if a, _ := unread(d.bob); a != 4 {
		t.Fatalf("Bob's unread: %d, want 4 (not his own)", a)
	}
	if _, err := s.MarkRead(t.Context(), d.ann.ID, c.ID, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkRead(t.Context(), d.ann.ID, big.ID, 10); err != nil {
		t.Fatal(err)
	}
	if a, b := unread(d.ann); a != 1 || b != storage.MaxUnread+5-10 {
		t.Fatalf("Ann's unread after reading to 3 and 10: %d and %d, want 1 and %d", a, b, storage.MaxUnread+5-10)
	}
	if _, err := s.MarkRead(t.Context(), d.ann.ID, big.ID, 100); err != nil {
		t.Fatal(err)
	}
	if _, b := unread(d.ann); b != storage.MaxUnread+5-100 {
		t.Fatalf("Ann's unread of the big one after 100: %d, want %d", b, storage.MaxUnread+5-100)
	}
	// The inbox, without viewer, has no read state.
	inbox, err := s.Inbox(t.Context(), 0)
	if err != nil || len(inbox) != 2 || inbox[0].Unread != 0 || inbox[0].ReadSeq != 0 {
		t.Fatalf("Inbox = %+v, %v; want two entries without read state", inbox, err)
	}
}

// --- views

// mustView reads one view page and checks its order and entries.
func mustView(t *testing.T, s storage.Store, q storage.InboxQuery) []storage.InboxEntry {
	t.Helper()
	page, err := s.InboxView(t.Context(), q)
	if err != nil {
		t.Fatalf("InboxView(%+v): %v", q, err)
	}
	prev := q.After
	for i, e := range page {
		if e.LastMessageAt == nil || e.LastMessage == nil || e.LastMessage.Seq != e.LastSeq ||
			e.LastMessage.ConversationID != e.ConversationID || !storage.ValidStatus(e.Status) {
			t.Fatalf("InboxView(%+v)[%d] = %+v: inconsistent entry", q, i, e)
		}
		if !prev.IsZero() && !inboxBefore(prev, e.Cursor()) {
			t.Fatalf("InboxView(%+v)[%d] at %+v does not come after %+v", q, i, e.Cursor(), prev)
		}
		prev = e.Cursor()
	}
	return page
}

// deskModel is what a test set: each conversation's status and assignee.
type deskModel struct {
	status   map[int64]string
	assignee map[int64]int64 // 0: none
}

// viewWant is the ids a view must show, in inbox order (order: all the
// conversations with messages in inbox order).
func (m deskModel) viewWant(order []int64, q storage.InboxQuery) []int64 {
	var out []int64
	for _, id := range order {
		if q.Status != "" && m.status[id] != q.Status {
			continue
		}
		a := m.assignee[id]
		switch q.Assignee {
		case storage.AssigneeNone:
			if a != 0 {
				continue
			}
		case storage.AssigneeMe:
			if a != q.ViewerID {
				continue
			}
		case storage.AssigneeUser:
			if a != q.AssigneeID {
				continue
			}
		}
		out = append(out, id)
	}
	return out
}

// testDeskViewFilters: every status × assignee filter gives exactly its
// conversations, in inbox order, and ViewCounts counts them.
func testDeskViewFilters(t *testing.T, s storage.Store) {
	const n = 24
	d := newDesk(t, s, n+1)
	m := deskModel{status: map[int64]string{}, assignee: map[int64]int64{}}
	statuses := []string{storage.StatusOpen, storage.StatusPending, storage.StatusResolved}
	assignees := []int64{0, d.ann.ID, d.bob.ID, d.admin.ID}
	for i := range n {
		c := d.convs[i]
		mustAppend(t, s, []storage.NewMessage{d.msg(c, "hi")})
		st, as := statuses[i%3], assignees[(i/3)%4]
		d.change(c, storage.Change{Status: &st, Assignee: &as, ActorID: d.ann.ID})
		m.status[c.ID], m.assignee[c.ID] = st, as
	}
	// The last conversation has no message: in no view.
	top := mustInboxPage(t, s, storage.InboxCursor{}, 0)
	order := inboxIDs(top)
	if len(order) != n {
		t.Fatalf("inbox has %d conversations, want %d", len(order), n)
	}
	for _, e := range top {
		if e.Status != m.status[e.ConversationID] || assigneeID(e.Assignee) != m.assignee[e.ConversationID] {
			t.Fatalf("inbox entry %d: status %q assignee %+v, want %q and %d",
				e.ConversationID, e.Status, e.Assignee, m.status[e.ConversationID], m.assignee[e.ConversationID])
		}
	}
	for _, status := range []string{"", storage.StatusOpen, storage.StatusPending, storage.StatusResolved} {
		for _, q := range []storage.InboxQuery{
			{Assignee: ""}, {Assignee: storage.AssigneeAny}, {Assignee: storage.AssigneeNone},
			{Assignee: storage.AssigneeMe}, {Assignee: storage.AssigneeUser, AssigneeID: d.bob.ID},
		} {
			for _, viewer := range []storage.User{d.ann, d.bob} {
				q.ViewerID, q.Status, q.After, q.Limit = viewer.ID, status, storage.InboxCursor{}, 0
				want := m.viewWant(order, q)
				got := mustView(t, s, q)
				if !slices.Equal(inboxIDs(got), want) {
					t.Fatalf("InboxView(%+v) = %v, want %v", q, inboxIDs(got), want)
				}
				for _, e := range got {
					if e.Status != m.status[e.ConversationID] || assigneeID(e.Assignee) != m.assignee[e.ConversationID] ||
						(e.Assignee != nil && e.Assignee.ExternalID == "") {
						t.Fatalf("InboxView(%+v): entry %+v does not show its state", q, e)
					}
				}
				// Paged by 2: the same.
				var paged []int64
				q.Limit = 2
				for q.After = (storage.InboxCursor{}); ; {
					page := mustView(t, s, q)
					paged = append(paged, inboxIDs(page)...)
					if len(page) < 2 {
						break
					}
					q.After = page[len(page)-1].Cursor()
				}
				if !slices.Equal(paged, want) {
					t.Fatalf("InboxView(%+v) paged by 2 = %v, want %v", q, paged, want)
				}
			}
		}
	}
	for _, viewer := range []storage.User{d.ann, d.bob, d.users[0]} {
		counts, err := s.ViewCounts(t.Context(), viewer.ID, nil)
		if err != nil {
			t.Fatalf("ViewCounts: %v", err)
		}
		var want []storage.ViewCounts
		for _, st := range statuses {
			v := storage.ViewCounts{Status: st}
			for id, s := range m.status {
				if s != st {
					continue
				}
				v.All++
				switch m.assignee[id] {
				case 0:
					v.Unassigned++
				case viewer.ID:
					v.Mine++
				}
			}
			want = append(want, v)
		}
		if !slices.Equal(counts, want) {
			t.Fatalf("ViewCounts(%s) = %+v, want %+v", viewer.ExternalID, counts, want)
		}
	}
}

func assigneeID(r *storage.UserRef) int64 {
	if r == nil {
		return 0
	}
	return r.ID
}

// testDeskViewInvalid: bad queries are EINVALID.
func testDeskViewInvalid(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 1)
	at := storage.InboxCursor{LastMessageAt: d.convs[0].CreatedAt.Truncate(1e3).Add(500), ConversationID: 1}
	for _, q := range []storage.InboxQuery{
		{Status: "closed"},
		{Assignee: "someone"},
		{Assignee: storage.AssigneeUser},
		{Search: strings.Repeat("é", storage.MaxSearchRunes+1)},
		{Search: "a\x00b"},
		{Search: "bad\xff"},
		{Limit: -1},
		{After: at},
		{After: storage.InboxCursor{ConversationID: 1}},
	} {
		q.ViewerID = d.ann.ID
		_, err := s.InboxView(t.Context(), q)
		if errCode(err) != storage.EINVALID {
			t.Errorf("InboxView(%+v): error %v, want %q", q, err, storage.EINVALID)
		}
	}
	// The longest search is accepted; so is one padded with spaces.
	for _, search := range []string{strings.Repeat("é", storage.MaxSearchRunes), "  x" + strings.Repeat("y", storage.MaxSearchRunes-1) + "  "} {
		if _, err := s.InboxView(t.Context(), storage.InboxQuery{ViewerID: d.ann.ID, Search: search}); err != nil {
			t.Errorf("InboxView(search of %d runes): %v", len([]rune(search)), err)
		}
	}
}

// testDeskViewWalk pages through one view of 2,500 conversations while
// messages arrive (mirroring InboxPage/MovesDuringWalk): no conversation
// twice, every conversation of the view that got no message during the walk
// returned, none outside the view.
func testDeskViewWalk(t *testing.T, s storage.Store) {
	const (
		n     = 2500
		limit = 50
		batch = 250
	)
	w := newWorldFast(t, s, n)
	ann := mustUser(t, s, storage.UserInput{ExternalID: "ann", Name: "Ann", IsAdmin: true})
	for start := 0; start < n; start += batch { // runs of equal times across pages
		var msgs []storage.NewMessage
		for i := start; i < min(start+batch, n); i++ {
			msgs = append(msgs, w.msg(w.convs[i], "hello"))
		}
		mustAppend(t, s, msgs)
	}
	// Every 5th conversation resolved, every 3rd assigned to Ann: the view
	// "open, unassigned" holds the others.
	inView := make(map[int64]bool)
	var changes []func() error
	for i, c := range w.convs {
		var ch storage.Change
		if i%5 == 0 {
			ch.Status = ptr(storage.StatusResolved)
		}
		if i%3 == 0 {
			ch.Assignee = &ann.ID
		}
		if ch.Status == nil && ch.Assignee == nil {
			inView[c.ID] = true
			continue
		}
		ch.ActorID = ann.ID
		changes = append(changes, func() error {
			_, err := s.ChangeConversation(t.Context(), c.ID, ch)
			return err
		})
	}
	runParallel(t, 4, changes)

	var (
		mu      sync.Mutex
		touched = make(map[int64]bool)
	)
	touch := func(id int64) {
		mu.Lock()
		touched[id] = true
		mu.Unlock()
	}
	stop := make(chan struct{})
	writerErr := make(chan error, 1)
	go func() { // the concurrent writer: staff messages (no reopening)
		defer close(writerErr)
		rng := rand.New(rand.NewPCG(5, 6))
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			c := w.convs[rng.IntN(n)]
			touch(c.ID)
			if _, err := s.AppendMessages(t.Context(), []storage.NewMessage{staffMsg(ann, c, fmt.Sprintf("writer %d", k))}); err != nil {
				writerErr <- err
				return
			}
			time.Sleep(time.Millisecond) // a steady trickle, not a flood
		}
	}()

	q := storage.InboxQuery{ViewerID: ann.ID, Status: storage.StatusOpen, Assignee: storage.AssigneeNone, Limit: limit}
	returned := make(map[int64]int)
	pages := 0
	for ; ; pages++ {
		if pages > 4*n/limit {
			t.Fatalf("still paging after %d pages", pages)
		}
		page := mustView(t, s, q)
		for _, e := range page {
			if p, dup := returned[e.ConversationID]; dup {
				t.Fatalf("conversation %d returned on page %d and again on page %d", e.ConversationID, p, pages)
			}
			if !inView[e.ConversationID] || e.Status != storage.StatusOpen || e.Assignee != nil {
				t.Fatalf("conversation %d (%+v) returned but is not in the view", e.ConversationID, e)
			}
			returned[e.ConversationID] = pages
		}
		if len(page) < limit {
			break
		}
		q.After = page[len(page)-1].Cursor()
		// Move one conversation of this page to the top.
		done := page[pages%len(page)]
		touch(done.ConversationID)
		mustAppend(t, s, []storage.NewMessage{staffMsg(ann, storage.Conversation{ID: done.ConversationID}, "moved")})
	}
	close(stop)
	if err := <-writerErr; err != nil {
		t.Fatalf("concurrent writer: %v", err)
	}
	missing := 0
	for id := range inView {
		if _, ok := returned[id]; !ok && !touched[id] {
			missing++
		}
	}
	t.Logf("%d pages, %d of %d in view returned, %d touched", pages+1, len(returned), len(inView), len(touched))
	if missing > 0 {
		t.Fatalf("%d conversations of the view got no message during the walk but were not returned", missing)
	}
}

// runParallel runs fns on workers goroutines and fails on the first error.
func runParallel(t *testing.T, workers int, fns []func() error) {
	t.Helper()
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for k := range workers {
		wg.Go(func() {
			for i := k; i < len(fns); i += workers {
				if err := fns[i](); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// --- search

// testDeskSearch: every word must be in one message (in any case), or the
// text in the visitor's name; combined with the filters.
func testDeskSearch(t *testing.T, s storage.Store) {
	const n = 40
	d := newDesk(t, s, n)
	named := mustUser(t, s, storage.UserInput{ExternalID: "zoe", Name: "Zoë Quintessa 100%_off"})
	namedConv := mustConversation(t, s, named.ID)
	d.owner[namedConv.ID] = named
	// 2,000 messages of filler in n conversations, a few with the words.
	var batch []storage.NewMessage
	for i := range 2000 {
		batch = append(batch, d.msg(d.convs[i%n], fmt.Sprintf("hello, I have a question about order %d", i)))
	}
	mustAppend(t, s, batch)
	mustAppend(t, s, []storage.NewMessage{
		d.msg(d.convs[3], "My parcel contains a Platypus, not a kettle!"),
		d.msg(d.convs[7], "the kettle is broken"),
		d.msg(d.convs[9], "a PLATYPUS-shaped teapot"),
		d.msg(namedConv, "nothing special"),
	})
	mustAppend(t, s, []storage.NewMessage{d.msg(d.convs[20], "later filler")})
	indexSearch(t, s)
	search := func(q storage.InboxQuery) []int64 {
		t.Helper()
		q.ViewerID = d.ann.ID
		return inboxIDs(mustView(t, s, q))
	}
	ids := func(cs ...storage.Conversation) []int64 { // in inbox order: these all got one call's time
		out := make([]int64, 0, len(cs))
		for _, c := range cs {
			out = append(out, c.ID)
		}
		slices.Sort(out)
		slices.Reverse(out)
		return out
	}
	c3, c7, c9 := d.convs[3], d.convs[7], d.convs[9]
	for _, tt := range []struct {
		search string
		want   []int64
	}{
		{"platypus", ids(c3, c9)},
		{"  Platypus  ", ids(c3, c9)},
		{"KETTLE", ids(c3, c7)},
		{"platypus kettle", ids(c3)},            // every word, in one message
		{"kettle teapot", nil},                  // in two messages: no
		{"wombat", nil},                         // absent
		{"quint", ids(namedConv)},               // the visitor's name contains it
		{"zoë quintessa", ids(namedConv)},       // the whole text in the name
		{"ZOË", ids(namedConv)},                 // any case
		{"100%_off", ids(namedConv)},            // wildcards are plain characters
		{"%", ids(namedConv)},                   //
		{"_", ids(namedConv)},                   //
		{"o%f", nil},                            // not a pattern
		{"question 1999", ids(d.convs[1999%n])}, // words of a filler message
	} {
		if got := search(storage.InboxQuery{Search: tt.search}); !slices.Equal(got, tt.want) {
			t.Errorf("search %q: %v, want %v", tt.search, got, tt.want)
		}
	}
	// With filters: resolve c3, assign c9 to Bob.
	d.change(c3, storage.Change{Status: ptr(storage.StatusResolved), ActorID: d.ann.ID})
	d.change(c9, storage.Change{Assignee: &d.bob.ID, ActorID: d.ann.ID})
	for _, tt := range []struct {
		q    storage.InboxQuery
		want []int64
	}{
		{storage.InboxQuery{Search: "platypus", Status: storage.StatusResolved}, ids(c3)},
		{storage.InboxQuery{Search: "platypus", Status: storage.StatusOpen}, ids(c9)},
		{storage.InboxQuery{Search: "platypus", Assignee: storage.AssigneeUser, AssigneeID: d.bob.ID}, ids(c9)},
		{storage.InboxQuery{Search: "platypus", Assignee: storage.AssigneeNone}, ids(c3)},
		{storage.InboxQuery{Search: "platypus", Limit: 1}, ids(c9)},
	} {
		if got := search(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("search %+v: %v, want %v", tt.q, got, tt.want)
		}
	}
	// Paging a search: the second page after the first.
	first := mustView(t, s, storage.InboxQuery{ViewerID: d.ann.ID, Search: "platypus", Limit: 1})
	if got := search(storage.InboxQuery{Search: "platypus", After: first[0].Cursor()}); !slices.Equal(got, ids(c3)) {
		t.Errorf("second page of the search: %v, want %v", got, ids(c3))
	}
}

// testDeskSearchNotes: a search finds a conversation by the words of one
// of its internal notes as it finds one by a message's (every word in one
// note), as soon as the note is written, with the view's filters; a note
// and a message do not add up to a match.
func testDeskSearchNotes(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 4)
	c0, c1, c2, c3 := d.convs[0], d.convs[1], d.convs[2], d.convs[3]
	mustAppend(t, s, []storage.NewMessage{
		d.msg(c0, "where is my parcel?"),
		d.msg(c1, "the kettle leaks"),
		d.msg(c2, "hello"),
		d.msg(c3, "hello again"),
	})
	indexSearch(t, s)
	d.change(c1, storage.Change{ActorID: d.ann.ID, Note: ptr("Called Mallory in Billing: refund on Monday")})
	d.change(c2, storage.Change{ActorID: d.bob.ID, Note: ptr("VIP customer, see the kettle ticket")})
	d.change(c3, storage.Change{ActorID: d.ann.ID, Status: ptr(storage.StatusResolved), Note: ptr("billing sorted")})
	search := func(q storage.InboxQuery) []int64 {
		t.Helper()
		q.ViewerID = d.ann.ID
		return inboxIDs(mustView(t, s, q))
	}
	// Newest first: c3, c2, c1, c0 got their messages in that order's reverse.
	for _, tt := range []struct {
		q    storage.InboxQuery
		want []int64
	}{
		{storage.InboxQuery{Search: "mallory"}, []int64{c1.ID}},
		{storage.InboxQuery{Search: "BILLING refund"}, []int64{c1.ID}}, // every word, in one note
		{storage.InboxQuery{Search: "billing"}, []int64{c3.ID, c1.ID}}, // two notes
		{storage.InboxQuery{Search: "kettle"}, []int64{c2.ID, c1.ID}},  // a note (c2) and a message (c1)
		{storage.InboxQuery{Search: "kettle leaks vip"}, nil},          // message and note do not add up
		{storage.InboxQuery{Search: "hello vip"}, nil},                 // nor on one conversation
		{storage.InboxQuery{Search: "billing", Status: storage.StatusOpen}, []int64{c1.ID}},
		{storage.InboxQuery{Search: "billing", Status: storage.StatusResolved}, []int64{c3.ID}},
		{storage.InboxQuery{Search: "parcel"}, []int64{c0.ID}},
	} {
		if got := search(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("search %+v: %v, want %v", tt.q, got, tt.want)
		}
	}
}

// testDeskStaffUser: StaffUser finds staff by external id, and only staff.
func testDeskStaffUser(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 1)
	u, err := s.StaffUser(t.Context(), "ann")
	if err != nil || diffUser(u, d.ann) != "" {
		t.Fatalf("StaffUser(ann) = %+v, %v; want %+v", u, err, d.ann)
	}
	for _, ext := range []string{d.users[0].ExternalID, "nobody", "", "bad\xff", strings.Repeat("x", 300)} {
		_, err := s.StaffUser(t.Context(), ext)
		wantCode(t, err, storage.ENOTFOUND)
	}
}

// testDeskConversationEntry: one conversation as a view shows it to the
// viewer, with or without messages.
func testDeskConversationEntry(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 2)
	c, empty := d.convs[0], d.convs[1]
	mustAppend(t, s, []storage.NewMessage{d.msg(c, "one"), staffMsg(d.ann, c, "two"), d.msg(c, "three")})
	d.change(c, storage.Change{Status: ptr(storage.StatusPending), Assignee: &d.bob.ID, ActorID: d.ann.ID})
	if _, err := s.MarkRead(t.Context(), d.ann.ID, c.ID, 1); err != nil {
		t.Fatal(err)
	}
	e, err := s.ConversationEntry(t.Context(), d.ann.ID, c.ID)
	if err != nil {
		t.Fatalf("ConversationEntry: %v", err)
	}
	view := mustView(t, s, storage.InboxQuery{ViewerID: d.ann.ID})
	if len(view) != 1 || view[0].ConversationID != c.ID {
		t.Fatalf("view: %+v", view)
	}
	v := view[0]
	if e.ConversationID != c.ID || e.UserID != d.users[0].ID || e.UserExternalID != d.users[0].ExternalID ||
		e.UserName != d.users[0].Name || e.LastSeq != 3 || !e.LastMessageAt.Equal(*v.LastMessageAt) ||
		e.Status != storage.StatusPending || !sameRef(e.Assignee, &d.bobRef) || e.ReadSeq != 1 || e.Unread != 1 ||
		e.LastMessage == nil || diffMessage(*e.LastMessage, *v.LastMessage) != "" || e.LastMessage.Body != "three" {
		t.Fatalf("ConversationEntry = %+v (last %+v), want %+v (last %+v), read 1, unread 1", e, e.LastMessage, v, v.LastMessage)
	}
	if e, _ := s.ConversationEntry(t.Context(), d.bob.ID, c.ID); e.ReadSeq != 0 || e.Unread != 3 {
		t.Fatalf("Bob's entry: read %d unread %d, want 0 and 3", e.ReadSeq, e.Unread)
	}
	e, err = s.ConversationEntry(t.Context(), d.ann.ID, empty.ID)
	if err != nil || e.ConversationID != empty.ID || e.LastMessage != nil || e.LastMessageAt != nil || e.LastSeq != 0 ||
		e.Status != storage.StatusOpen || e.Assignee != nil || e.Unread != 0 || e.UserID != d.users[1].ID {
		t.Fatalf("ConversationEntry(without messages) = %+v, %v", e, err)
	}
	_, err = s.ConversationEntry(t.Context(), d.ann.ID, empty.ID+1000)
	wantCode(t, err, storage.ENOTFOUND)
}

// testDeskNotes: a note is an event of its own kind with its text, after
// the change's other events, at the conversation's last seq; only staff
// write notes, and only valid text.
func testDeskNotes(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 1)
	c := d.convs[0]
	appendN(t, s, d.world, c, 2)
	res := d.change(c, storage.Change{ActorID: d.ann.ID, Status: ptr(storage.StatusPending), Note: ptr("called him: <b>refund</b> agreed")})
	if len(res.Events) != 2 || res.Events[0].Kind != storage.EventStatus || res.Events[1].Kind != storage.EventNote {
		t.Fatalf("events %+v, want a status event then a note", res.Events)
	}
	note := res.Events[1]
	if note.Body != "called him: <b>refund</b> agreed" || note.AfterSeq != 2 || note.Actor.ID != d.ann.ID || note.Status != "" || note.Assignee != nil {
		t.Fatalf("note %+v", note)
	}
	// A note alone changes nothing else.
	res = d.change(c, storage.Change{ActorID: d.bob.ID, Note: ptr("second")})
	if len(res.Events) != 1 || res.Events[0].Body != "second" || res.State.Status != storage.StatusPending {
		t.Fatalf("a note alone: %+v", res)
	}
	events, err := s.Events(t.Context(), c.ID, 0, 2)
	if err != nil || len(events) != 3 {
		t.Fatalf("Events = %+v, %v", events, err)
	}
	if events[1].Kind != storage.EventNote || events[1].Body != note.Body || events[1].ID != note.ID || events[2].Body != "second" {
		t.Fatalf("Events = %+v", events)
	}
	for name, ch := range map[string]storage.Change{
		"empty":        {ActorID: d.ann.ID, Note: ptr("")},
		"NUL":          {ActorID: d.ann.ID, Note: ptr("a\x00b")},
		"too long":     {ActorID: d.ann.ID, Note: ptr(strings.Repeat("é", storage.MaxNoteRunes+1))},
		"by a visitor": {ActorID: d.owner[c.ID].ID, Note: ptr("sneaky")},
	} {
		if _, err := s.ChangeConversation(t.Context(), c.ID, ch); storage.ErrorCode(err) != storage.EINVALID {
			t.Errorf("%s note: %v, want EINVALID", name, err)
		}
	}
	_, err = s.ChangeConversation(t.Context(), c.ID+1000, storage.Change{ActorID: d.ann.ID, Note: ptr("x")})
	wantCode(t, err, storage.ENOTFOUND)
	if events, _ := s.Events(t.Context(), c.ID, 0, 2); len(events) != 3 {
		t.Fatalf("a refused note was recorded: %+v", events)
	}
}
