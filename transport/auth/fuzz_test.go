package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// knownErrors is every error text Verify may return: fixed strings only, so
// that no part of a token can leak into logs.
func knownErrors() map[string]bool {
	m := map[string]bool{ErrExpired.Error(): true}
	for _, r := range []string{"empty", "too long", "missing exp", "rejected"} {
		m[invalid(r).Error()] = true
	}
	for _, r := range reasons {
		m[invalid(r.reason).Error()] = true
	}
	return m
}

// checkVerifyResult asserts what must hold for any input: errors are fixed
// texts wrapping exactly one sentinel, and an accepted token is an HS256
// token signed with testSecret (checked independently of the jwt library)
// whose identity satisfies the contract at testNow.
func checkVerifyResult(t *testing.T, known map[string]bool, token string, id Identity, err error) {
	t.Helper()
	if err != nil {
		if !known[err.Error()] {
			t.Fatalf("unexpected error text %q", err)
		}
		if errors.Is(err, ErrInvalidToken) == errors.Is(err, ErrExpired) {
			t.Fatalf("error %v must wrap exactly one of ErrInvalidToken and ErrExpired", err)
		}
		if !reflect.DeepEqual(id, Identity{}) {
			t.Fatalf("identity %+v returned with error %v", id, err)
		}
		return
	}
	if !signedHS256(token, testSecret) {
		t.Fatalf("accepted a token not HS256-signed with the secret: %q", token)
	}
	if id.Subject == "" || len(id.Subject) > MaxSubjectBytes {
		t.Fatalf("accepted subject of %d bytes", len(id.Subject))
	}
	if id.Name == "" {
		t.Fatal("accepted identity with empty Name")
	}
	if !testNow.Before(id.ExpiresAt.Add(DefaultLeeway)) {
		t.Fatalf("accepted token expired at %v (now %v)", id.ExpiresAt, testNow)
	}
}

// signedHS256 is the reference check: three canonical base64url segments, a
// JSON header whose alg is exactly "HS256" and a matching HMAC-SHA256.
func signedHS256(token string, secret []byte) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	enc := base64.RawURLEncoding.Strict()
	rawHeader, err := enc.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var header map[string]any
	if json.Unmarshal(rawHeader, &header) != nil || header["alg"] != "HS256" {
		return false
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	return hmac.Equal(sig, mac.Sum(nil))
}

// FuzzVerify feeds arbitrary strings to Verify: it must never panic and never
// accept anything that is not validly signed.
func FuzzVerify(f *testing.F) {
	valid := hs256(f, validClaims(nil))
	parts := strings.Split(valid, ".")
	iss, err := NewIssuer(testConfig())
	if err != nil {
		f.Fatal(err)
	}
	minted, err := iss.Mint(Identity{Subject: "u", Name: "n", Admin: true}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		valid,
		minted,
		"",
		".",
		"..",
		"...",
		"a.b.c",
		"not a token",
		valid + "=",
		valid + ".x",
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + b64JSON(f, validClaims(map[string]any{"admin": true})) + "." + parts[2],
		signRaw(f, nil, nil, map[string]any{"alg": "none"}, validClaims(nil)),
		signRaw(f, sha256.New, testSecret, map[string]any{"alg": "RS256"}, validClaims(nil)),
		signRaw(f, sha512.New, testSecret, map[string]any{"alg": "HS512"}, validClaims(nil)),
		hs256(f, validClaims(map[string]any{"exp": testNow.Add(-time.Hour).Unix()})),
		hs256(f, validClaims(map[string]any{"nbf": testNow.Add(time.Hour).Unix()})),
		hs256(f, validClaims(map[string]any{"exp": nil})),
		hs256(f, validClaims(map[string]any{"sub": nil})),
		hs256(f, `{"sub":"u","exp":1e300}`),
		hs256(f, `{"sub":"u","exp":-1e300}`),
		hs256(f, `{"sub":"u","exp":[1]}`),
	} {
		f.Add(seed)
	}
	v := mustVerifier(f, Config{})
	known := knownErrors()
	f.Fuzz(func(t *testing.T, token string) {
		id, err := v.Verify(token)
		checkVerifyResult(t, known, token, id, err)
	})
}

// FuzzClaims signs arbitrary header and payload bytes with the secret, so that
// the fuzzer reaches the claim checks that random tokens never get past the
// signature to exercise.
func FuzzClaims(f *testing.F) {
	exp := testNow.Add(time.Hour).Unix()
	for _, seed := range [][2]string{
		{`{"alg":"HS256","typ":"JWT"}`, `{"sub":"u","name":"n","admin":true,"exp":` + itoa(exp) + `}`},
		{`{"alg":"HS256"}`, `{"sub":"u","exp":` + itoa(exp) + `,"nbf":` + itoa(exp) + `}`},
		{`{"alg":"HS256"}`, `{"sub":"u","exp":` + itoa(exp) + `,"iat":1e300}`},
		{`{"alg":"HS256"}`, `{"sub":"","exp":` + itoa(exp) + `}`},
		{`{"alg":"HS256"}`, `{"sub":"u"}`},
		{`{"alg":"HS256"}`, `{"sub":"u","exp":"soon"}`},
		{`{"alg":"HS256"}`, `{"sub":"u","exp":` + itoa(exp) + `,"aud":[1,2]}`},
		{`{"alg":"HS256"}`, `{"sub":"u","SUB":"","exp":` + itoa(exp) + `}`},
		{`{"alg":"none"}`, `{"sub":"u","exp":` + itoa(exp) + `}`},
		{`{"alg":"RS256"}`, `{"sub":"u","exp":` + itoa(exp) + `}`},
		{`{"alg":["HS256"]}`, `{"sub":"u","exp":` + itoa(exp) + `}`},
		{`{"alg":"HS256"}`, `null`},
		{`[]`, `null`},
	} {
		f.Add(seed[0], seed[1])
	}
	v := mustVerifier(f, Config{})
	known := knownErrors()
	f.Fuzz(func(t *testing.T, header, payload string) {
		token := signRaw(t, sha256.New, testSecret, header, payload)
		id, err := v.Verify(token)
		checkVerifyResult(t, known, token, id, err)
		if err == nil {
			var c map[string]any
			if json.Unmarshal([]byte(payload), &c) != nil {
				t.Fatalf("accepted a payload that is not a JSON object: %q", payload)
			}
		}
	})
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
