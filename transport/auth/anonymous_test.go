package auth

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"
)

// Anonymous identities verify only where anonymous visitors are accepted,
// never pass for a host token or the other way round, and keep their
// subject across renewals.
func TestAnonymousTokens(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	anon, err := NewAnonymous(Config{Secret: secret, Now: clock}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, id, err := anon.New()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id.Subject, AnonymousPrefix) || len(id.Subject) != len(AnonymousPrefix)+24 ||
		!strings.HasPrefix(id.Name, "Visitor ") || !id.Anonymous || !id.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("identity %+v", id)
	}
	_, other, _ := anon.New()
	if other.Subject == id.Subject {
		t.Fatal("two identities share a subject")
	}

	with, _ := NewVerifier(Config{Secret: secret, Now: clock, Anonymous: anon})
	without, _ := NewVerifier(Config{Secret: secret, Now: clock})
	got, err := with.Verify(tok)
	if err != nil || got.Subject != id.Subject || got.Name != id.Name || !got.Anonymous || got.Admin {
		t.Fatalf("verify with anonymous visitors: %+v %v", got, err)
	}
	if _, err := without.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("verify without anonymous visitors: %v, want invalid", err)
	}

	// A host token cannot claim an anonymous subject, even with the host's
	// key; a host token is never taken as anonymous.
	hostTok := signRaw(t, sha256.New, secret, hs256Header, map[string]any{"sub": id.Subject, "exp": now.Add(time.Hour).Unix()})
	if _, err := with.Verify(hostTok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("host token with an anonymous sub: %v, want invalid", err)
	}
	iss, _ := NewIssuer(Config{Secret: secret, Now: clock})
	if _, err := iss.Mint(Identity{Subject: "ANON:x"}, time.Hour); err == nil {
		t.Error("minted a host token with an anonymous sub")
	}
	host, _ := iss.Mint(Identity{Subject: "carl", Name: "Carl"}, time.Hour)
	if got, err := with.Verify(host); err != nil || got.Anonymous || got.Subject != "carl" {
		t.Errorf("host token: %+v %v", got, err)
	}
	if _, err := anon.Verify(host); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("host token verified as anonymous: %v", err)
	}

	// Renewal keeps the identity; expiry is ErrExpired.
	now = now.Add(30 * time.Minute)
	renewed, rid, err := anon.Renew(got2(t, with, tok))
	if err != nil || rid.Subject != id.Subject || !rid.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("renew: %+v %v", rid, err)
	}
	now = now.Add(31 * time.Minute)
	if _, err := with.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Errorf("expired anonymous token: %v, want ErrExpired", err)
	}
	if got, err := with.Verify(renewed); err != nil || got.Subject != id.Subject {
		t.Errorf("renewed token: %+v %v", got, err)
	}
}

func got2(t *testing.T, v *Verifier, tok string) Identity {
	t.Helper()
	id, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
