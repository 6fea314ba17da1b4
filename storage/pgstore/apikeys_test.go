package pgstore_test

import (
	"crypto/sha256"
	"testing"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/pgtest"
)

// TestAPIKeyNeverTakesOverAPerson: a user with a bot's external id that no
// key made (a token's user from before such ids were reserved) keeps it: the
// key is refused with ECONFLICT, and nothing is stored.
func TestAPIKeyNeverTakesOverAPerson(t *testing.T) {
	s := pgtest.NewStore(t)
	if _, err := s.DB().ExecContext(t.Context(),
		`INSERT INTO users (external_id, name, is_admin) VALUES ('apikey:crm', 'Carol', false)`); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("k"))
	if _, err := s.CreateAPIKey(t.Context(), storage.NewAPIKey{Name: "CRM", Hash: h[:]}); storage.ErrorCode(err) != storage.ECONFLICT {
		t.Fatalf("CreateAPIKey(CRM) = %v, want %s", err, storage.ECONFLICT)
	}
	var name string
	var admin bool
	if err := s.DB().QueryRowContext(t.Context(), `SELECT name, is_admin FROM users WHERE external_id = 'apikey:crm'`).Scan(&name, &admin); err != nil || name != "Carol" || admin {
		t.Fatalf("the user after the refusal: %q, admin %v, %v; want Carol, not staff", name, admin, err)
	}
	if list, err := s.APIKeys(t.Context(), true); err != nil || len(list) != 0 {
		t.Fatalf("APIKeys = %+v, %v; want none", list, err)
	}
}
