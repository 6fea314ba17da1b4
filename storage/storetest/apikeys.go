package storetest

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// apiKeyTests are the conformance tests of API keys (Run runs them).
func apiKeyTests() []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"APIKeys/CreateAndLookup", testAPIKeyCreateAndLookup},
		{"APIKeys/List", testAPIKeyList},
		{"APIKeys/Revoke", testAPIKeyRevoke},
		{"APIKeys/NameReuse", testAPIKeyNameReuse},
		{"APIKeys/BadInput", testAPIKeyBadInput},
		{"APIKeys/ReservedExternalIDs", testAPIKeyReservedExternalIDs},
		{"APIKeys/Touch", testAPIKeyTouch},
		{"APIKeys/Bound", testAPIKeyBound},
		{"APIKeys/ConcurrentNames", testAPIKeyConcurrentNames},
	}
}

// keyHash is a distinct 32-byte hash for each seed.
func keyHash(seed string) []byte {
	h := sha256.Sum256([]byte("test key " + seed))
	return h[:]
}

// mustCreateKey creates a key and fails the test on an error.
func mustCreateKey(t *testing.T, s storage.Store, in storage.NewAPIKey) storage.APIKey {
	t.Helper()
	k, err := s.CreateAPIKey(t.Context(), in)
	if err != nil {
		t.Fatalf("CreateAPIKey(%q): %v", in.Name, err)
	}
	return k
}

// mustKeys lists the keys.
func mustKeys(t *testing.T, s storage.Store, includeRevoked bool) []storage.APIKey {
	t.Helper()
	list, err := s.APIKeys(t.Context(), includeRevoked)
	if err != nil {
		t.Fatalf("APIKeys(%v): %v", includeRevoked, err)
	}
	return list
}

// keyNames is the names of list, in order.
func keyNames(list []storage.APIKey) []string {
	out := make([]string, len(list))
	for i, k := range list {
		out[i] = k.Name
	}
	return out
}

// sameKey compares two keys, times by instant.
func sameKey(got, want storage.APIKey) string {
	sameTime := func(a, b *time.Time) bool { return a == nil && b == nil || a != nil && b != nil && a.Equal(*b) }
	sameRef := func(a, b *storage.UserRef) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }
	switch {
	case got.ID != want.ID || got.Name != want.Name || got.Bot != want.Bot:
		return fmt.Sprintf("got %+v, want %+v", got, want)
	case !got.CreatedAt.Equal(want.CreatedAt) || !sameTime(got.LastUsedAt, want.LastUsedAt) || !sameTime(got.RevokedAt, want.RevokedAt):
		return fmt.Sprintf("times: got %v %v %v, want %v %v %v", got.CreatedAt, got.LastUsedAt, got.RevokedAt, want.CreatedAt, want.LastUsedAt, want.RevokedAt)
	case !sameRef(got.CreatedBy, want.CreatedBy):
		return fmt.Sprintf("created by %+v, want %+v", got.CreatedBy, want.CreatedBy)
	}
	return ""
}

// testAPIKeyCreateAndLookup: a key is stored with its bot (a staff user
// named as the key, with the reserved external id) and its creator, and is
// found by its hash only.
func testAPIKeyCreateAndLookup(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 0)
	before := time.Now().Add(-time.Minute)
	k := mustCreateKey(t, s, storage.NewAPIKey{Name: "  CRM sync  ", Hash: keyHash("a"), CreatedBy: d.ann.ID})
	if k.ID <= 0 || k.Name != "CRM sync" || k.CreatedAt.Before(before) || k.LastUsedAt != nil || k.RevokedAt != nil {
		t.Fatalf("CreateAPIKey = %+v, want id > 0, the trimmed name, created now, never used, not revoked", k)
	}
	if k.CreatedBy == nil || *k.CreatedBy != d.annRef {
		t.Fatalf("CreatedBy = %+v, want %+v", k.CreatedBy, d.annRef)
	}
	if k.Bot.ExternalID != "apikey:crm sync" || k.Bot.Name != "CRM sync" || k.Bot.ID == d.ann.ID {
		t.Fatalf("Bot = %+v, want a user apikey:crm sync named CRM sync", k.Bot)
	}
	bot, err := s.User(t.Context(), k.Bot.ID)
	if err != nil || !bot.IsAdmin || bot.ExternalID != k.Bot.ExternalID || bot.Name != "CRM sync" {
		t.Fatalf("User(bot) = %+v, %v; want the bot, staff", bot, err)
	}
	staff, err := s.StaffUsers(t.Context(), 0)
	if err != nil || !slices.Contains(staff, k.Bot) {
		t.Fatalf("StaffUsers = %+v, %v; want the bot among them", staff, err)
	}
	if got, err := s.StaffUser(t.Context(), k.Bot.ExternalID); err != nil || got.ID != k.Bot.ID {
		t.Fatalf("StaffUser(%q) = %+v, %v; want the bot (it can be assigned)", k.Bot.ExternalID, got, err)
	}

	got, err := s.APIKeyByHash(t.Context(), keyHash("a"))
	if err != nil {
		t.Fatalf("APIKeyByHash: %v", err)
	}
	if d := sameKey(got, k); d != "" {
		t.Fatalf("APIKeyByHash: %s", d)
	}
	for _, h := range [][]byte{keyHash("b"), nil, keyHash("a")[:31]} {
		if _, err := s.APIKeyByHash(t.Context(), h); storage.ErrorCode(err) != storage.ENOTFOUND {
			t.Fatalf("APIKeyByHash(%x) = %v, want %s", h, err, storage.ENOTFOUND)
		}
	}

	// From the command line: no creator.
	cli := mustCreateKey(t, s, storage.NewAPIKey{Name: "bot", Hash: keyHash("b")})
	if cli.CreatedBy != nil || cli.Bot.ExternalID != "apikey:bot" || cli.Bot.ID == k.Bot.ID {
		t.Fatalf("CreateAPIKey without creator = %+v, want no creator and a bot of its own", cli)
	}
	// The bot posts like any staff user.
	w := newWorld(t, s, 1)
	res := mustAppend(t, s, []storage.NewMessage{{ConversationID: w.convs[0].ID, SenderID: k.Bot.ID, SenderName: k.Bot.Name, SenderIsAdmin: true, Body: "from the CRM"}})
	if m := res[0].Message; m.SenderID != k.Bot.ID || m.SenderName != "CRM sync" || !m.SenderIsAdmin {
		t.Fatalf("the bot's message = %+v", m)
	}
}

// testAPIKeyList: newest first, revoked keys only when asked for, an empty
// slice when there are none.
func testAPIKeyList(t *testing.T, s storage.Store) {
	if list := mustKeys(t, s, true); list == nil || len(list) != 0 {
		t.Fatalf("no keys: %#v, want an empty slice", list)
	}
	a := mustCreateKey(t, s, storage.NewAPIKey{Name: "a", Hash: keyHash("a")})
	b := mustCreateKey(t, s, storage.NewAPIKey{Name: "b", Hash: keyHash("b")})
	c := mustCreateKey(t, s, storage.NewAPIKey{Name: "c", Hash: keyHash("c")})
	if _, err := s.RevokeAPIKey(t.Context(), b.ID); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	if got := keyNames(mustKeys(t, s, false)); !slices.Equal(got, []string{"c", "a"}) {
		t.Fatalf("APIKeys(false) = %q, want [c a]", got)
	}
	all := mustKeys(t, s, true)
	if got := keyNames(all); !slices.Equal(got, []string{"c", "b", "a"}) {
		t.Fatalf("APIKeys(true) = %q, want [c b a]", got)
	}
	if d := sameKey(all[0], c); d != "" {
		t.Fatalf("APIKeys: %s", d)
	}
	if d := sameKey(all[2], a); d != "" {
		t.Fatalf("APIKeys: %s", d)
	}
	if all[1].RevokedAt == nil {
		t.Fatalf("APIKeys: b = %+v, want revoked", all[1])
	}
}

// testAPIKeyRevoke: a revoked key is no longer found; revoking again
// changes nothing; an unknown id is ENOTFOUND.
func testAPIKeyRevoke(t *testing.T, s storage.Store) {
	k := mustCreateKey(t, s, storage.NewAPIKey{Name: "crm", Hash: keyHash("a")})
	other := mustCreateKey(t, s, storage.NewAPIKey{Name: "other", Hash: keyHash("b")})
	r, err := s.RevokeAPIKey(t.Context(), k.ID)
	if err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	if r.RevokedAt == nil || r.RevokedAt.Before(k.CreatedAt) || r.ID != k.ID || r.Bot != k.Bot {
		t.Fatalf("RevokeAPIKey = %+v, want %+v revoked", r, k)
	}
	if _, err := s.APIKeyByHash(t.Context(), keyHash("a")); storage.ErrorCode(err) != storage.ENOTFOUND {
		t.Fatalf("APIKeyByHash(revoked) = %v, want %s", err, storage.ENOTFOUND)
	}
	if got, err := s.APIKeyByHash(t.Context(), keyHash("b")); err != nil || got.ID != other.ID {
		t.Fatalf("APIKeyByHash(other) = %+v, %v; want the other key, still valid", got, err)
	}
	again, err := s.RevokeAPIKey(t.Context(), k.ID)
	if err != nil || again.RevokedAt == nil || !again.RevokedAt.Equal(*r.RevokedAt) {
		t.Fatalf("RevokeAPIKey again = %+v, %v; want the first revocation's time %v", again, err, r.RevokedAt)
	}
	for _, id := range []int64{other.ID + 1000, 0, -1} {
		if _, err := s.RevokeAPIKey(t.Context(), id); storage.ErrorCode(err) != storage.ENOTFOUND {
			t.Fatalf("RevokeAPIKey(%d) = %v, want %s", id, err, storage.ENOTFOUND)
		}
	}
	// The revoked key's hash stays taken.
	if _, err := s.CreateAPIKey(t.Context(), storage.NewAPIKey{Name: "new", Hash: keyHash("a")}); storage.ErrorCode(err) != storage.ECONFLICT {
		t.Fatalf("CreateAPIKey with a revoked key's hash = %v, want %s", err, storage.ECONFLICT)
	}
}

// testAPIKeyNameReuse: names are unique in lower case among the keys not
// revoked; a revoked key's name can be reused, and the new key gets the
// same bot, renamed.
func testAPIKeyNameReuse(t *testing.T, s storage.Store) {
	k := mustCreateKey(t, s, storage.NewAPIKey{Name: "crm", Hash: keyHash("a")})
	for _, name := range []string{"crm", "CRM", " Crm "} {
		if _, err := s.CreateAPIKey(t.Context(), storage.NewAPIKey{Name: name, Hash: keyHash("b")}); storage.ErrorCode(err) != storage.ECONFLICT {
			t.Fatalf("CreateAPIKey(%q) while crm is valid = %v, want %s", name, err, storage.ECONFLICT)
		}
	}
	if _, err := s.RevokeAPIKey(t.Context(), k.ID); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	n := mustCreateKey(t, s, storage.NewAPIKey{Name: "CRM", Hash: keyHash("b")})
	if n.ID == k.ID || n.Bot.ID != k.Bot.ID || n.Bot.Name != "CRM" || n.Bot.ExternalID != "apikey:crm" {
		t.Fatalf("CreateAPIKey(CRM) after revoking crm = %+v, want a new key with crm's bot, renamed CRM", n)
	}
	if got, err := s.APIKeyByHash(t.Context(), keyHash("b")); err != nil || got.ID != n.ID {
		t.Fatalf("APIKeyByHash(new) = %+v, %v", got, err)
	}
	all := mustKeys(t, s, true)
	if len(all) != 2 || all[1].Bot.Name != "CRM" {
		t.Fatalf("APIKeys = %+v, want both keys, the old one's bot named as it is now", all)
	}
}

// testAPIKeyBadInput: names, hashes and creators that break a rule.
func testAPIKeyBadInput(t *testing.T, s storage.Store) {
	d := newDesk(t, s, 0)
	long := strings.Repeat("n", storage.MaxAPIKeyNameRunes)
	if k := mustCreateKey(t, s, storage.NewAPIKey{Name: long, Hash: keyHash("long")}); k.Name != long {
		t.Fatalf("a %d-character name = %q", len(long), k.Name)
	}
	if k := mustCreateKey(t, s, storage.NewAPIKey{Name: "Zz_0-9 x", Hash: keyHash("chars")}); k.Name != "Zz_0-9 x" {
		t.Fatalf("every allowed character: %q", k.Name)
	}
	for _, name := range []string{"", "   ", long + "n", "crm!", "crm/1", "caf\u00e9", "\u212a", "a\tb", "a\nb", "a\x00b", "apikey:x", "\xff"} {
		_, err := s.CreateAPIKey(t.Context(), storage.NewAPIKey{Name: name, Hash: keyHash("x" + name)})
		if storage.ErrorCode(err) != storage.EINVALID {
			t.Errorf("CreateAPIKey(name %q) = %v, want %s", name, err, storage.EINVALID)
		}
		if err != nil && strings.Contains(err.Error(), name) && strings.TrimSpace(name) != "" {
			t.Errorf("CreateAPIKey(name %q): the error quotes the name: %v", name, err)
		}
	}
	for _, h := range [][]byte{nil, keyHash("y")[:31], append(keyHash("y"), 0)} {
		if _, err := s.CreateAPIKey(t.Context(), storage.NewAPIKey{Name: "h", Hash: h}); storage.ErrorCode(err) != storage.EINVALID {
			t.Errorf("CreateAPIKey(hash of %d bytes) = %v, want %s", len(h), err, storage.EINVALID)
		}
	}
	for _, by := range []int64{d.ann.ID + 1_000_000, -1} {
		if _, err := s.CreateAPIKey(t.Context(), storage.NewAPIKey{Name: "by2", Hash: keyHash(fmt.Sprint("by", by)), CreatedBy: by}); storage.ErrorCode(err) != storage.EINVALID {
			t.Errorf("CreateAPIKey(created by %d) = %v, want %s", by, err, storage.EINVALID)
		}
	}
	if got := keyNames(mustKeys(t, s, true)); !slices.Equal(got, []string{"Zz_0-9 x", long}) {
		t.Fatalf("APIKeys = %q: a refused creation stored something", got)
	}
}

// testAPIKeyReservedExternalIDs: no token's user can take a bot's external
// id, in any case, before or after the bot exists.
func testAPIKeyReservedExternalIDs(t *testing.T, s storage.Store) {
	k := mustCreateKey(t, s, storage.NewAPIKey{Name: "crm", Hash: keyHash("a")})
	for _, ext := range []string{"apikey:crm", "APIKEY:crm", "ApiKey:other", "apikey:"} {
		if _, err := s.UpsertUser(t.Context(), storage.UserInput{ExternalID: ext, Name: "Mallory", IsAdmin: true}); storage.ErrorCode(err) != storage.EINVALID {
			t.Errorf("UpsertUser(%q) = %v, want %s", ext, err, storage.EINVALID)
		}
		for _, admin := range []bool{false, true} {
			if _, _, err := s.Connect(t.Context(), storage.UserInput{ExternalID: ext, Name: "Mallory", IsAdmin: admin}); storage.ErrorCode(err) != storage.EINVALID {
				t.Errorf("Connect(%q, admin %v) = %v, want %s", ext, admin, err, storage.EINVALID)
			}
		}
	}
	bot, err := s.User(t.Context(), k.Bot.ID)
	if err != nil || bot.Name != "crm" || !bot.IsAdmin {
		t.Fatalf("the bot after the attempts = %+v, %v; want it unchanged", bot, err)
	}
	// Ids that merely contain the prefix are a person's.
	mustUser(t, s, storage.UserInput{ExternalID: "x-apikey:crm", Name: "X"})
	mustUser(t, s, storage.UserInput{ExternalID: "apikey", Name: "Y"})
}

// testAPIKeyTouch: LastUsedAt moves forward only, in whole microseconds;
// an unknown id changes nothing.
func testAPIKeyTouch(t *testing.T, s storage.Store) {
	k := mustCreateKey(t, s, storage.NewAPIKey{Name: "crm", Hash: keyHash("a")})
	at := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	if err := s.TouchAPIKey(t.Context(), k.ID, at.Add(123*time.Nanosecond)); err != nil {
		t.Fatalf("TouchAPIKey: %v", err)
	}
	if err := s.TouchAPIKey(t.Context(), k.ID, at.Add(-time.Minute)); err != nil {
		t.Fatalf("TouchAPIKey (earlier): %v", err)
	}
	if err := s.TouchAPIKey(t.Context(), k.ID+1000, at); err != nil {
		t.Fatalf("TouchAPIKey (unknown): %v", err)
	}
	got, err := s.APIKeyByHash(t.Context(), keyHash("a"))
	if err != nil || got.LastUsedAt == nil || !got.LastUsedAt.Equal(at) {
		t.Fatalf("APIKeyByHash after touches = %+v, %v; want LastUsedAt %v", got, err, at)
	}
	if list := mustKeys(t, s, false); len(list) != 1 || list[0].LastUsedAt == nil || !list[0].LastUsedAt.Equal(at) {
		t.Fatalf("APIKeys after touches = %+v", list)
	}
}

// testAPIKeyBound: at most MaxAPIKeys keys not revoked.
func testAPIKeyBound(t *testing.T, s storage.Store) {
	var first storage.APIKey
	for i := range storage.MaxAPIKeys {
		k := mustCreateKey(t, s, storage.NewAPIKey{Name: fmt.Sprintf("k%d", i), Hash: keyHash(fmt.Sprint(i))})
		if i == 0 {
			first = k
		}
	}
	if _, err := s.CreateAPIKey(t.Context(), storage.NewAPIKey{Name: "one-more", Hash: keyHash("more")}); storage.ErrorCode(err) != storage.EINVALID {
		t.Fatalf("CreateAPIKey beyond %d = %v, want %s", storage.MaxAPIKeys, err, storage.EINVALID)
	}
	if _, err := s.RevokeAPIKey(t.Context(), first.ID); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	mustCreateKey(t, s, storage.NewAPIKey{Name: "one-more", Hash: keyHash("more")})
	if n := len(mustKeys(t, s, false)); n != storage.MaxAPIKeys {
		t.Fatalf("%d keys not revoked, want %d", n, storage.MaxAPIKeys)
	}
}

// testAPIKeyConcurrentNames: concurrent creations of one name: one wins,
// the others are ECONFLICT.
func testAPIKeyConcurrentNames(t *testing.T, s storage.Store) {
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.CreateAPIKey(t.Context(), storage.NewAPIKey{Name: "CRM", Hash: keyHash(fmt.Sprint(i))})
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch storage.ErrorCode(err) {
		case "":
			won++
		case storage.ECONFLICT:
		default:
			t.Errorf("creation %d: %v", i, err)
		}
	}
	if list := mustKeys(t, s, true); won != 1 || len(list) != 1 {
		t.Fatalf("%d creations succeeded, %d keys stored; want 1 and 1", won, len(list))
	}
}
