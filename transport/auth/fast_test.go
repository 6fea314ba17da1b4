package auth

import (
	"crypto/sha256"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sameIdentity compares identities, ExpiresAt as an instant, Teams as
// lists (nil and empty apart).
func sameIdentity(a, b Identity) bool {
	ea, eb := a.ExpiresAt, b.ExpiresAt
	a.ExpiresAt, b.ExpiresAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b) && ea.Equal(eb)
}

// checkFastAgrees fails if the fast path accepts token and the library's
// path does not, or reads another identity.
func checkFastAgrees(t *testing.T, v *Verifier, token string) (fast bool) {
	t.Helper()
	fid, ok := v.verifyFast(token)
	if !ok {
		return false
	}
	sid, err := v.verifyJWT(token)
	if err != nil {
		t.Fatalf("the fast path accepted %q, the library refuses it: %v", token, err)
	}
	if !sameIdentity(fid, sid) {
		t.Fatalf("token %q: fast path %+v, library %+v", token, fid, sid)
	}
	return true
}

// TestFastPathTakesCommonTokens: tokens as host sites and Mint write them
// take the fast path, with the library's identity, at a few allocations.
func TestFastPathTakesCommonTokens(t *testing.T) {
	v := mustVerifier(t, Config{})
	scoped := mustVerifier(t, Config{Issuer: "https://shop.example", Audience: "grainchat"})
	exp := testNow.Add(time.Hour).Unix()
	iss, err := NewIssuer(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	minted, err := iss.Mint(Identity{Subject: "u-1", Name: "Zoë Ünal", Admin: true, Email: "z@example.com",
		Context: `{"plan":"pro","orders":[1,2,{"id":"a\"b"}]}`}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		v     *Verifier
		token string
	}{
		{"minted", v, minted},
		{"plain", v, hs256(t, validClaims(nil))},
		{"no name", v, hs256(t, validClaims(map[string]any{"name": nil}))},
		{"alg only", v, signRaw(t, sha256.New, testSecret, `{"alg":"HS256"}`, validClaims(nil))},
		{"typ first", v, signRaw(t, sha256.New, testSecret, `{"typ":"JWT","alg":"HS256"}`, validClaims(nil))},
		{"unknown claims and spaces", v, hs256(t, ` { "sub" : "u" , "exp" : `+itoa(exp)+` , "x" : [ {"y": "}"} ], "plan" : null } `)},
		{"ctx null", v, hs256(t, validClaims(map[string]any{"ctx": "null-is-a-string-here"}))},
		{"issuer and audience", scoped, hs256(t, validClaims(map[string]any{"iss": "https://shop.example", "aud": "grainchat", "jti": "j1"}))},
		{"nbf now", v, hs256(t, validClaims(map[string]any{"nbf": testNow.Unix()}))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !checkFastAgrees(t, tt.v, tt.token) {
				_, err := tt.v.verifyJWT(tt.token)
				t.Fatalf("the fast path declined a common token (library: %v)", err)
			}
		})
	}
	if id, ok := v.verifyFast(minted); !ok || id.Context != `{"plan":"pro","orders":[1,2,{"id":"a\"b"}]}` || id.Name != "Zoë Ünal" {
		t.Fatalf("minted: %+v", id)
	}
	plain := hs256(t, validClaims(nil))
	if raceEnabled {
		return // make test runs it without -race too
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = v.Verify(plain) }); n > 4 {
		t.Fatalf("Verify of a plain token allocates %.0f times, want at most 4 (sub and name)", n)
	}
}

// TestFastPathDeclines: what the fast path does not recognise exactly goes
// to the library, which decides as before.
func TestFastPathDeclines(t *testing.T) {
	v := mustVerifier(t, Config{})
	scoped := mustVerifier(t, Config{Issuer: "https://shop.example", Audience: "grainchat"})
	exp := itoa(testNow.Add(time.Hour).Unix())
	raw := func(payload string) string { return hs256(t, payload) }
	for _, tt := range []struct {
		name   string
		v      *Verifier
		token  string
		accept bool // what Verify decides
	}{
		{"upper-case key", v, raw(`{"sub":"u","SUB":"w","exp":` + exp + `}`), true},
		{"long s key", v, raw(`{"ſub":"w","sub":"u","exp":` + exp + `}`), true},
		{"escaped key", v, raw(`{"\u0073ub":"u","exp":` + exp + `}`), true},
		{"duplicate", v, raw(`{"sub":"u","sub":"w","exp":` + exp + `}`), true},
		{"escaped name", v, raw(`{"sub":"u","name":"Zo\u00eb","exp":` + exp + `}`), true},
		{"null name", v, raw(`{"sub":"u","name":null,"exp":` + exp + `}`), true},
		{"fractional exp", v, raw(`{"sub":"u","exp":` + exp + `.5}`), true},
		{"exponent exp", v, raw(`{"sub":"u","exp":1.8e9}`), true},
		{"audience list", scoped, raw(`{"sub":"u","iss":"https://shop.example","aud":["x","grainchat"],"exp":` + exp + `}`), true},
		{"spaced header", v, signRaw(t, sha256.New, testSecret, `{"alg": "HS256"}`, validClaims(nil)), true},
		{"expired", v, hs256(t, validClaims(map[string]any{"exp": testNow.Add(-time.Hour).Unix()})), false},
		{"not yet", v, hs256(t, validClaims(map[string]any{"nbf": testNow.Add(time.Hour).Unix()})), false},
		{"issued later", v, hs256(t, validClaims(map[string]any{"iat": testNow.Add(time.Hour).Unix()})), false},
		{"no exp", v, hs256(t, validClaims(map[string]any{"exp": nil})), false},
		{"empty sub", v, hs256(t, validClaims(map[string]any{"sub": ""})), false},
		{"reserved sub", v, hs256(t, validClaims(map[string]any{"sub": ReservedSubjectPrefix + "x"})), false},
		{"numeric sub", v, raw(`{"sub":42,"exp":` + exp + `}`), false},
		{"admin as string", v, raw(`{"sub":"u","admin":"yes","exp":` + exp + `}`), false},
		{"wrong issuer", scoped, hs256(t, validClaims(map[string]any{"iss": "https://evil.example", "aud": "grainchat"})), false},
		{"no audience", scoped, hs256(t, validClaims(map[string]any{"iss": "https://shop.example"})), false},
		{"bad signature", v, hs256(t, validClaims(nil))[:40] + "x" + hs256(t, validClaims(nil))[41:], false},
		{"other key", v, signRaw(t, sha256.New, []byte("another-secret-of-32-bytes-or-more!!"), hs256Header, validClaims(nil)), false},
		{"not an object", v, raw(`["sub","u"]`), false},
		{"trailing data", v, raw(`{"sub":"u","exp":` + exp + `} {}`), false},
		{"huge payload", v, hs256(t, validClaims(map[string]any{"pad": strings.Repeat("p", 3000)})), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := tt.v.verifyFast(tt.token); ok {
				t.Fatal("the fast path accepted it")
			}
			id, err := tt.v.Verify(tt.token)
			if (err == nil) != tt.accept {
				t.Fatalf("Verify = %+v, %v; want accepted %v", id, err, tt.accept)
			}
			sid, serr := tt.v.verifyJWT(tt.token)
			if !sameIdentity(id, sid) || (err == nil) != (serr == nil) || err != nil && err.Error() != serr.Error() {
				t.Fatalf("Verify = %+v, %v; the library's path %+v, %v", id, err, sid, serr)
			}
		})
	}
}

// FuzzFastPathAgrees signs arbitrary payloads: whatever the fast path
// accepts, the library accepts with the same identity.
func FuzzFastPathAgrees(f *testing.F) {
	exp := itoa(testNow.Add(time.Hour).Unix())
	for _, seed := range []string{
		`{"sub":"u","name":"n","admin":true,"exp":` + exp + `}`,
		`{"sub":"u","exp":` + exp + `,"ctx":{"a":[1,"]"]},"email":"e@x"}`,
		`{"sub":"u","exp":` + exp + `,"iss":"https://shop.example","aud":"grainchat","iat":1,"nbf":2}`,
		`{"sub":"u","Exp":1,"exp":` + exp + `}`,
		`{"sub":"u","exp":-0}`,
		`{"sub":"u","exp":` + exp + `,"name":"\ud83d"}`,
		`{"sub":"u\u0000","exp":` + exp + `}`,
		`{"sub":"ü","exp":` + exp + `}`,
		"{\"sub\":\"u\",\"exp\":" + exp + ",\"name\":\"\xff\"}",
		`{"sub":"u","exp":` + exp + `,"ctx":null}`,
		`{}`,
	} {
		f.Add(seed)
	}
	plain := mustVerifier(f, Config{})
	scoped := mustVerifier(f, Config{Issuer: "https://shop.example", Audience: "grainchat"})
	f.Fuzz(func(t *testing.T, payload string) {
		token := signRaw(t, sha256.New, testSecret, hs256Header, payload)
		checkFastAgrees(t, plain, token)
		checkFastAgrees(t, scoped, token)
	})
}
