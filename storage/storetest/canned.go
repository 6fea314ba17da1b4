package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// cannedTests are the conformance tests of the desk's canned replies and
// staff list (Run runs them).
func cannedTests() []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"Canned/SaveAndList", testCannedSaveAndList},
		{"Canned/Names", testCannedNames},
		{"Canned/Bodies", testCannedBodies},
		{"Canned/NotFound", testCannedNotFound},
		{"Canned/UnknownActor", testCannedUnknownActor},
		{"Canned/Bound", testCannedBound},
		{"Canned/ConcurrentNames", testCannedConcurrentNames},
		{"Canned/ConcurrentBound", testCannedConcurrentBound},
		{"StaffUsers", testStaffUsers},
	}
}

// mustSave saves in and fails the test on an error.
func mustSave(t *testing.T, s storage.Store, in storage.CannedReplyInput) storage.CannedReply {
	t.Helper()
	r, err := s.SaveCannedReply(t.Context(), in)
	if err != nil {
		t.Fatalf("SaveCannedReply(%d, %q): %v", in.ID, in.Name, err)
	}
	return r
}

// mustCanned reads the canned replies.
func mustCanned(t *testing.T, s storage.Store) []storage.CannedReply {
	t.Helper()
	list, err := s.CannedReplies(t.Context())
	if err != nil {
		t.Fatalf("CannedReplies: %v", err)
	}
	return list
}

// cannedNames is the names of list, in order.
func cannedNames(list []storage.CannedReply) []string {
	out := make([]string, len(list))
	for i, r := range list {
		out[i] = r.Name
	}
	return out
}

// sameCanned compares two replies, times by instant.
func sameCanned(got, want storage.CannedReply) bool {
	g := got
	g.UpdatedAt = want.UpdatedAt
	return g == want && got.UpdatedAt.Equal(want.UpdatedAt)
}

// testCannedSaveAndList: a creation and a replacement are answered as
// stored, stamped with the actor (named as the user is now) and a time in
// whole microseconds; the list is sorted by byte order of the names.
func testCannedSaveAndList(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 0)
	if list := mustCanned(t, s); list == nil || len(list) != 0 {
		t.Fatalf("no replies: %#v, want an empty slice", list)
	}
	before := time.Now().Add(-time.Minute)
	hi := mustSave(t, s, storage.CannedReplyInput{Name: "Hi", Body: "  Hello!\nHow can I help?  ", ActorID: d.ann.ID})
	if hi.ID <= 0 || hi.Name != "hi" || hi.Body != "Hello!\nHow can I help?" || hi.UpdatedBy != d.annRef {
		t.Fatalf("created %+v", hi)
	}
	if hi.UpdatedAt.Before(before) || hi.UpdatedAt.Truncate(time.Microsecond) != hi.UpdatedAt {
		t.Fatalf("UpdatedAt %v: not now, or finer than a microsecond", hi.UpdatedAt)
	}
	// Byte order: '-' (0x2d) < digits < '_' (0x5f) < letters, whatever a
	// database's collation says.
	for _, n := range []string{"b_a", "b-a", "ba", "b0", "a"} {
		mustSave(t, s, storage.CannedReplyInput{Name: n, Body: "text " + n, ActorID: d.bob.ID})
	}
	list := mustCanned(t, s)
	if got, want := strings.Join(cannedNames(list), " "), "a b-a b0 b_a ba hi"; got != want {
		t.Fatalf("names %q, want %q", got, want)
	}
	if !sameCanned(list[5], hi) {
		t.Fatalf("listed %+v, saved %+v", list[5], hi)
	}

	// A replacement keeps the id and takes the new name, text and actor.
	re := mustSave(t, s, storage.CannedReplyInput{ID: hi.ID, Name: "greeting", Body: "Hi there", ActorID: d.bob.ID})
	if re.ID != hi.ID || re.Name != "greeting" || re.Body != "Hi there" || re.UpdatedBy != d.bobRef || re.UpdatedAt.Before(hi.UpdatedAt) {
		t.Fatalf("replaced %+v (was %+v)", re, hi)
	}
	// Saving under its own name again is no conflict.
	mustSave(t, s, storage.CannedReplyInput{ID: hi.ID, Name: "GREETING", Body: "Hi there!", ActorID: d.ann.ID})
	list = mustCanned(t, s)
	if got := strings.Join(cannedNames(list), " "); got != "a b-a b0 b_a ba greeting" {
		t.Fatalf("names after the rename %q", got)
	}
	// The actor is named as the user is now.
	mustUser(t, s, storage.UserInput{ExternalID: "ann", Name: "Ann Renamed", IsAdmin: true})
	if g := mustCanned(t, s)[5]; g.Body != "Hi there!" || g.UpdatedBy.Name != "Ann Renamed" {
		t.Fatalf("after renaming its actor: %+v", g)
	}

	if err := s.DeleteCannedReply(t.Context(), hi.ID); err != nil {
		t.Fatalf("DeleteCannedReply: %v", err)
	}
	if got := strings.Join(cannedNames(mustCanned(t, s)), " "); got != "a b-a b0 b_a ba" {
		t.Fatalf("names after the delete %q", got)
	}
	// The name is free again.
	mustSave(t, s, storage.CannedReplyInput{Name: "greeting", Body: "again", ActorID: d.ann.ID})
}

// testCannedNames: names are 1 to 32 of [A-Za-z0-9_-], trimmed, stored in
// lower case and unique in lower case.
func testCannedNames(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 0)
	save := func(id int64, name string) (storage.CannedReply, error) {
		return s.SaveCannedReply(t.Context(), storage.CannedReplyInput{ID: id, Name: name, Body: "x", ActorID: d.ann.ID})
	}
	for _, n := range []string{"", " ", strings.Repeat("a", storage.MaxCannedNameBytes+1), "two words", "a.b", "a/b",
		"café", "\u212a", "\u0130", "a\x00", "\xff", "a\tb"} {
		if _, err := save(0, n); storage.ErrorCode(err) != storage.EINVALID {
			t.Errorf("name %q: %v, want EINVALID", n, err)
		}
	}
	long := strings.Repeat("Z", storage.MaxCannedNameBytes)
	if r, err := save(0, " "+long+"\n"); err != nil || r.Name != strings.ToLower(long) {
		t.Fatalf("a name of %d characters: %+v, %v", storage.MaxCannedNameBytes, r, err)
	}
	thanks, err := save(0, "Thanks_2-u")
	if err != nil || thanks.Name != "thanks_2-u" {
		t.Fatalf("mixed case: %+v, %v", thanks, err)
	}
	for _, n := range []string{"thanks_2-u", "THANKS_2-U"} {
		if _, err := save(0, n); storage.ErrorCode(err) != storage.ECONFLICT {
			t.Errorf("creating %q again: %v, want ECONFLICT", n, err)
		}
	}
	other, _ := save(0, "other")
	if _, err := save(other.ID, "Thanks_2-U"); storage.ErrorCode(err) != storage.ECONFLICT {
		t.Errorf("renaming to a taken name: %v, want ECONFLICT", err)
	}
	if _, err := save(other.ID, "bad name"); storage.ErrorCode(err) != storage.EINVALID {
		t.Errorf("renaming to a bad name: %v, want EINVALID", err)
	}
	if got := strings.Join(cannedNames(mustCanned(t, s)), " "); got != "other thanks_2-u "+strings.ToLower(long) {
		t.Errorf("refusals changed the list: %q", got)
	}
}

// testCannedBodies: a body is trimmed valid UTF-8 without NUL, 1 to 4000
// runes; errors never quote it.
func testCannedBodies(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 0)
	save := func(body string) (storage.CannedReply, error) {
		return s.SaveCannedReply(t.Context(), storage.CannedReplyInput{Name: "n", Body: body, ActorID: d.ann.ID})
	}
	for _, b := range []string{"", " \n\t ", "secret\x00word", "secret\xffword", strings.Repeat("é", storage.MaxCannedBodyRunes+1)} {
		_, err := save(b)
		if storage.ErrorCode(err) != storage.EINVALID {
			t.Errorf("body %.20q: %v, want EINVALID", b, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error quotes the body: %v", err)
		}
	}
	longest := strings.Repeat("😀", storage.MaxCannedBodyRunes)
	if r, err := save("\n" + longest + " "); err != nil || r.Body != longest {
		t.Fatalf("a body of %d runes: %v", storage.MaxCannedBodyRunes, err)
	}
	if list := mustCanned(t, s); len(list) != 1 || list[0].Body != longest {
		t.Fatalf("stored %d replies", len(list))
	}
}

// testCannedNotFound: replacing or deleting a reply that is not there.
func testCannedNotFound(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 0)
	r := mustSave(t, s, storage.CannedReplyInput{Name: "a", Body: "x", ActorID: d.ann.ID})
	if _, err := s.SaveCannedReply(t.Context(), storage.CannedReplyInput{ID: r.ID + 1000, Name: "b", Body: "y", ActorID: d.ann.ID}); storage.ErrorCode(err) != storage.ENOTFOUND {
		t.Errorf("replacing an unknown id: %v, want ENOTFOUND", err)
	}
	if _, err := s.SaveCannedReply(t.Context(), storage.CannedReplyInput{ID: -1, Name: "b", Body: "y", ActorID: d.ann.ID}); storage.ErrorCode(err) != storage.EINVALID {
		t.Errorf("a negative id: %v, want EINVALID", err)
	}
	for _, id := range []int64{r.ID + 1000, 0, -1} {
		if err := s.DeleteCannedReply(t.Context(), id); storage.ErrorCode(err) != storage.ENOTFOUND {
			t.Errorf("deleting %d: %v, want ENOTFOUND", id, err)
		}
	}
	if err := s.DeleteCannedReply(t.Context(), r.ID); err != nil {
		t.Fatalf("DeleteCannedReply: %v", err)
	}
	if err := s.DeleteCannedReply(t.Context(), r.ID); storage.ErrorCode(err) != storage.ENOTFOUND {
		t.Errorf("deleting twice: %v, want ENOTFOUND", err)
	}
	if _, err := s.SaveCannedReply(t.Context(), storage.CannedReplyInput{ID: r.ID, Name: "a", Body: "x", ActorID: d.ann.ID}); storage.ErrorCode(err) != storage.ENOTFOUND {
		t.Errorf("replacing a deleted reply: %v, want ENOTFOUND", err)
	}
}

// testCannedUnknownActor: a save by a user the store does not know is
// EINVALID (the edges always pass the authenticated user: it is a bug).
func testCannedUnknownActor(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 0)
	unknown := d.ann.ID + d.bob.ID + 1000
	if _, err := s.SaveCannedReply(t.Context(), storage.CannedReplyInput{Name: "a", Body: "x", ActorID: unknown}); storage.ErrorCode(err) != storage.EINVALID {
		t.Errorf("creating: %v, want EINVALID", err)
	}
	r := mustSave(t, s, storage.CannedReplyInput{Name: "a", Body: "x", ActorID: d.ann.ID})
	if _, err := s.SaveCannedReply(t.Context(), storage.CannedReplyInput{ID: r.ID, Name: "a", Body: "y", ActorID: unknown}); storage.ErrorCode(err) != storage.EINVALID {
		t.Errorf("replacing: %v, want EINVALID", err)
	}
	if list := mustCanned(t, s); len(list) != 1 || list[0].Body != "x" {
		t.Errorf("after the refusals: %+v", list)
	}
}

// testCannedBound: at most MaxCannedReplies; replacing one at the bound
// works, and deleting one makes room.
func testCannedBound(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 0)
	var first storage.CannedReply
	for i := range storage.MaxCannedReplies {
		r := mustSave(t, s, storage.CannedReplyInput{Name: fmt.Sprintf("r%03d", i), Body: "x", ActorID: d.ann.ID})
		if i == 0 {
			first = r
		}
	}
	_, err := s.SaveCannedReply(t.Context(), storage.CannedReplyInput{Name: "one-more", Body: "x", ActorID: d.ann.ID})
	if storage.ErrorCode(err) != storage.EINVALID {
		t.Fatalf("creating reply %d: %v, want EINVALID", storage.MaxCannedReplies+1, err)
	}
	mustSave(t, s, storage.CannedReplyInput{ID: first.ID, Name: "first", Body: "y", ActorID: d.bob.ID})
	if n := len(mustCanned(t, s)); n != storage.MaxCannedReplies {
		t.Fatalf("%d replies listed, want %d", n, storage.MaxCannedReplies)
	}
	if err := s.DeleteCannedReply(t.Context(), first.ID); err != nil {
		t.Fatal(err)
	}
	mustSave(t, s, storage.CannedReplyInput{Name: "one-more", Body: "x", ActorID: d.ann.ID})
}

// testCannedConcurrentNames: of concurrent creations under one name (in
// different cases), exactly one is stored; the others are ECONFLICT.
func testCannedConcurrentNames(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 0)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			name := "same"
			if i%2 == 1 {
				name = "SAME"
			}
			_, errs[i] = s.SaveCannedReply(t.Context(), storage.CannedReplyInput{Name: name, Body: fmt.Sprint(i), ActorID: d.ann.ID})
		})
	}
	wg.Wait()
	stored := 0
	for i, err := range errs {
		switch storage.ErrorCode(err) {
		case "":
			stored++
		case storage.ECONFLICT:
		default:
			t.Errorf("creation %d: %v", i, err)
		}
	}
	if list := mustCanned(t, s); stored != 1 || len(list) != 1 {
		t.Fatalf("%d creations succeeded, %d replies stored; want 1 and 1", stored, len(list))
	}
}

// testCannedConcurrentBound: concurrent creations near the bound never
// pass it together.
func testCannedConcurrentBound(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 0)
	for i := range storage.MaxCannedReplies - 2 {
		mustSave(t, s, storage.CannedReplyInput{Name: fmt.Sprintf("r%03d", i), Body: "x", ActorID: d.ann.ID})
	}
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.SaveCannedReply(t.Context(), storage.CannedReplyInput{Name: fmt.Sprintf("new%d", i), Body: "x", ActorID: d.ann.ID})
		})
	}
	wg.Wait()
	stored := 0
	for i, err := range errs {
		switch storage.ErrorCode(err) {
		case "":
			stored++
		case storage.EINVALID:
		default:
			t.Errorf("creation %d: %v", i, err)
		}
	}
	if list := mustCanned(t, s); stored != 2 || len(list) != storage.MaxCannedReplies {
		t.Fatalf("%d of %d creations succeeded, %d replies stored; want 2 and %d", stored, n, len(list), storage.MaxCannedReplies)
	}
}

// testStaffUsers: only staff, sorted by name (byte order) then id, bounded
// by the limit; a user who is no longer staff leaves the list.
func testStaffUsers(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 2) // admin "Admin", ann "Ann Agent", bob "Bob Agent"; two visitors
	zed := mustUser(t, s, storage.UserInput{ExternalID: "zed", Name: "Ann Agent", IsAdmin: true})
	low := mustUser(t, s, storage.UserInput{ExternalID: "low", Name: "ann", IsAdmin: true})
	want := []storage.UserRef{refOf(d.admin), d.annRef, refOf(zed), d.bobRef, refOf(low)} // 'A' < 'B' < 'a'
	got, err := s.StaffUsers(t.Context(), 0)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("StaffUsers(0) = %v, %v; want %v", got, err, want)
	}
	if got, err := s.StaffUsers(t.Context(), 2); err != nil || fmt.Sprint(got) != fmt.Sprint(want[:2]) {
		t.Errorf("StaffUsers(2) = %v, %v", got, err)
	}
	if got, err := s.StaffUsers(t.Context(), storage.MaxStaffUsers+1); err != nil || len(got) != len(want) {
		t.Errorf("StaffUsers(max+1) = %v, %v", got, err)
	}
	if _, err := s.StaffUsers(t.Context(), -1); storage.ErrorCode(err) != storage.EINVALID {
		t.Errorf("StaffUsers(-1): %v, want EINVALID", err)
	}
	mustUser(t, s, storage.UserInput{ExternalID: "bob", Name: "Bob Agent", IsAdmin: false})
	got, err = s.StaffUsers(t.Context(), 0)
	if err != nil || len(got) != 4 || got[3] != refOf(low) {
		t.Errorf("after bob left the staff: %v, %v", got, err)
	}
}
