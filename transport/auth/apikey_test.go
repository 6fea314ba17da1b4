package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
)

func TestNewAPIKey(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k := NewAPIKey()
		if !IsAPIKey(k) || len(k) != len(APIKeyPrefix)+43 {
			t.Fatalf("NewAPIKey = %q, want %s and 43 characters", k, APIKeyPrefix)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(k, APIKeyPrefix))
		if err != nil || len(raw) != 32 {
			t.Fatalf("NewAPIKey = %q: %d bytes, %v; want 32 bytes of base64url", k, len(raw), err)
		}
		if seen[k] {
			t.Fatalf("NewAPIKey repeated %q", k)
		}
		seen[k] = true
		want := sha256.Sum256([]byte(k))
		if h := HashAPIKey(k); !bytes.Equal(h, want[:]) {
			t.Fatalf("HashAPIKey(%q) = %x, want its SHA-256", k, h)
		}
	}
	if IsAPIKey("eyJhbGciOiJIUzI1NiJ9.e30.x") || IsAPIKey("") {
		t.Fatal("IsAPIKey took a JWT or nothing for a key")
	}
}

// TestReservedSubject: auth reserves exactly the stores' bot prefix, and
// neither Mint nor Verify lets a token carry it.
func TestReservedSubject(t *testing.T) {
	if ReservedSubjectPrefix != storage.BotExternalIDPrefix {
		t.Fatalf("ReservedSubjectPrefix %q, storage.BotExternalIDPrefix %q: they must be equal", ReservedSubjectPrefix, storage.BotExternalIDPrefix)
	}
	for _, sub := range []string{"apikey:crm", "APIKEY:", "ApiKey:x"} {
		if !ReservedSubject(sub) || !storage.IsBotExternalID(sub) {
			t.Errorf("%q is not reserved", sub)
		}
	}
	for _, sub := range []string{"apikey", "x-apikey:crm", "api-key:crm", ""} {
		if ReservedSubject(sub) || storage.IsBotExternalID(sub) {
			t.Errorf("%q is reserved", sub)
		}
	}
	iss, err := NewIssuer(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Mint(Identity{Subject: "apikey:crm", Admin: true}, time.Hour); err == nil {
		t.Fatal("Mint(apikey:crm) succeeded")
	}
}
