package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef-grainchat")
	testNow    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func testConfig() Config {
	return Config{Secret: testSecret, Now: func() time.Time { return testNow }}
}

// mustVerifier returns a Verifier for cfg (testConfig() when cfg.Secret is nil).
func mustVerifier(tb testing.TB, cfg Config) *Verifier {
	tb.Helper()
	if cfg.Secret == nil {
		cfg.Secret = testSecret
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(tb testing.TB, v any) string {
	tb.Helper()
	if s, ok := v.(string); ok { // raw JSON text
		return b64([]byte(s))
	}
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b64(b)
}

// signRaw builds header.payload.signature by hand, the signature being an HMAC
// of the signing input under key with hash h (nil h: empty signature). header
// and payload are maps or raw JSON strings.
func signRaw(tb testing.TB, h func() hash.Hash, key []byte, header, payload any) string {
	tb.Helper()
	input := b64JSON(tb, header) + "." + b64JSON(tb, payload)
	if h == nil {
		return input + "."
	}
	mac := hmac.New(h, key)
	mac.Write([]byte(input))
	return input + "." + b64(mac.Sum(nil))
}

var hs256Header = map[string]any{"alg": "HS256", "typ": "JWT"}

// hs256 signs payload correctly with testSecret.
func hs256(tb testing.TB, payload any) string {
	tb.Helper()
	return signRaw(tb, sha256.New, testSecret, hs256Header, payload)
}

// validClaims returns a payload Verify accepts at testNow, with overrides
// applied (a nil value deletes the claim).
func validClaims(overrides map[string]any) map[string]any {
	c := map[string]any{
		"sub":   "user-42",
		"name":  "Ada",
		"admin": false,
		"iat":   testNow.Add(-time.Minute).Unix(),
		"exp":   testNow.Add(time.Hour).Unix(),
	}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func TestNewVerifierSecretLength(t *testing.T) {
	for _, n := range []int{0, 1, 31} {
		if _, err := NewVerifier(Config{Secret: make([]byte, n)}); err == nil {
			t.Errorf("NewVerifier with %d-byte secret: no error", n)
		}
		if _, err := NewIssuer(Config{Secret: make([]byte, n)}); err == nil {
			t.Errorf("NewIssuer with %d-byte secret: no error", n)
		}
	}
	if _, err := NewVerifier(Config{Secret: make([]byte, 32)}); err != nil {
		t.Errorf("NewVerifier with 32-byte secret: %v", err)
	}
	if _, err := NewIssuer(Config{Secret: make([]byte, 32)}); err != nil {
		t.Errorf("NewIssuer with 32-byte secret: %v", err)
	}
}

func TestVerifierCopiesSecret(t *testing.T) {
	secret := append([]byte(nil), testSecret...)
	v := mustVerifier(t, Config{Secret: secret})
	token := hs256(t, validClaims(nil))
	secret[0] ^= 0xff
	if _, err := v.Verify(token); err != nil {
		t.Fatalf("Verify after caller changed its secret slice: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	valid := hs256(t, validClaims(nil))
	parts := strings.Split(valid, ".")
	adminPayload := b64JSON(t, validClaims(map[string]any{"admin": true}))
	flipped := []byte(parts[2])
	flipped[3] ^= 0x01

	issAud := Config{Issuer: "https://shop.example.com", Audience: "grainchat"}

	tests := []struct {
		name   string
		cfg    Config
		token  string
		want   error
		reason string // in the error text: which check refused the token
	}{
		{"empty", Config{}, "", ErrInvalidToken, "empty"},
		{"garbage", Config{}, "not a token", ErrInvalidToken, "malformed"},
		{"garbage three segments", Config{}, "a.b.c", ErrInvalidToken, "malformed"},
		{"two segments", Config{}, parts[0] + "." + parts[1], ErrInvalidToken, "malformed"},
		{"four segments", Config{}, valid + ".x", ErrInvalidToken, "malformed"},
		{"too long", Config{}, valid + strings.Repeat("A", MaxTokenBytes), ErrInvalidToken, "too long"},
		{"alg none, empty signature", Config{},
			signRaw(t, nil, nil, map[string]any{"alg": "none", "typ": "JWT"}, validClaims(nil)), ErrInvalidToken, "algorithm not allowed"},
		{"alg None, empty signature", Config{},
			signRaw(t, nil, nil, map[string]any{"alg": "None"}, validClaims(nil)), ErrInvalidToken, "unknown or unspecified algorithm"},
		{"alg none, HMAC signature", Config{},
			signRaw(t, sha256.New, testSecret, map[string]any{"alg": "none"}, validClaims(nil)), ErrInvalidToken, "algorithm not allowed"},
		{"no alg", Config{},
			signRaw(t, sha256.New, testSecret, map[string]any{"typ": "JWT"}, validClaims(nil)), ErrInvalidToken, "unknown or unspecified algorithm"},
		{"alg hs256 lowercase", Config{},
			signRaw(t, sha256.New, testSecret, map[string]any{"alg": "hs256"}, validClaims(nil)), ErrInvalidToken, "unknown or unspecified algorithm"},
		{"RS256 header, HMAC-SHA256 signature keyed by the secret", Config{},
			signRaw(t, sha256.New, testSecret, map[string]any{"alg": "RS256", "typ": "JWT"}, validClaims(nil)), ErrInvalidToken, "algorithm not allowed"},
		{"HS384", Config{},
			signRaw(t, sha512.New384, testSecret, map[string]any{"alg": "HS384"}, validClaims(nil)), ErrInvalidToken, "algorithm not allowed"},
		{"HS512", Config{},
			signRaw(t, sha512.New, testSecret, map[string]any{"alg": "HS512"}, validClaims(nil)), ErrInvalidToken, "algorithm not allowed"},
		{"tampered payload", Config{}, parts[0] + "." + adminPayload + "." + parts[2], ErrInvalidToken, "bad signature"},
		{"tampered signature", Config{}, parts[0] + "." + parts[1] + "." + string(flipped), ErrInvalidToken, "bad signature"},
		{"empty signature", Config{}, parts[0] + "." + parts[1] + ".", ErrInvalidToken, "bad signature"},
		{"padded signature", Config{}, valid + "=", ErrInvalidToken, "malformed"},
		{"wrong secret", Config{},
			signRaw(t, sha256.New, []byte("another-secret-another-secret-xx"), hs256Header, validClaims(nil)), ErrInvalidToken, "bad signature"},
		{"header not JSON", Config{}, b64([]byte("{alg")) + "." + parts[1] + "." + parts[2], ErrInvalidToken, "malformed"},
		{"payload not JSON", Config{}, hs256(t, "not json"), ErrInvalidToken, "malformed"},
		{"payload JSON array", Config{}, hs256(t, "[1,2]"), ErrInvalidToken, "malformed"},
		{"expired", Config{},
			hs256(t, validClaims(map[string]any{"exp": testNow.Add(-time.Hour).Unix()})), ErrExpired, "expired"},
		{"expired beyond default leeway", Config{},
			hs256(t, validClaims(map[string]any{"exp": testNow.Add(-6 * time.Second).Unix()})), ErrExpired, "expired"},
		{"expired exactly now", Config{Leeway: -1},
			hs256(t, validClaims(map[string]any{"exp": testNow.Unix()})), ErrExpired, "expired"},
		{"expired, negative leeway means none", Config{Leeway: -1},
			hs256(t, validClaims(map[string]any{"exp": testNow.Add(-time.Second).Unix()})), ErrExpired, "expired"},
		{"expired beyond configured leeway", Config{Leeway: time.Minute},
			hs256(t, validClaims(map[string]any{"exp": testNow.Add(-61 * time.Second).Unix()})), ErrExpired, "expired"},
		{"expired and not yet valid is not just expired", Config{},
			hs256(t, validClaims(map[string]any{"exp": testNow.Add(-time.Hour).Unix(), "nbf": testNow.Add(time.Hour).Unix()})), ErrInvalidToken, "not valid yet"},
		{"expired with wrong issuer is not just expired", issAud,
			hs256(t, validClaims(map[string]any{"exp": testNow.Add(-time.Hour).Unix(), "iss": "evil", "aud": "grainchat"})), ErrInvalidToken, "wrong issuer"},
		{"expired without sub is not just expired", Config{},
			hs256(t, validClaims(map[string]any{"exp": testNow.Add(-time.Hour).Unix(), "sub": nil})), ErrInvalidToken, "missing sub"},
		{"nbf in the future", Config{},
			hs256(t, validClaims(map[string]any{"nbf": testNow.Add(time.Hour).Unix()})), ErrInvalidToken, "not valid yet"},
		{"nbf beyond leeway", Config{},
			hs256(t, validClaims(map[string]any{"nbf": testNow.Add(10 * time.Second).Unix()})), ErrInvalidToken, "not valid yet"},
		{"iat in the future", Config{},
			hs256(t, validClaims(map[string]any{"iat": testNow.Add(time.Hour).Unix()})), ErrInvalidToken, "issued in the future"},
		{"missing exp", Config{}, hs256(t, validClaims(map[string]any{"exp": nil})), ErrInvalidToken, "missing required claim"},
		{"exp null", Config{}, hs256(t, `{"sub":"u","exp":null}`), ErrInvalidToken, "missing required claim"},
		{"exp string", Config{}, hs256(t, validClaims(map[string]any{"exp": "tomorrow"})), ErrInvalidToken, "malformed"},
		{"missing sub", Config{}, hs256(t, validClaims(map[string]any{"sub": nil})), ErrInvalidToken, "missing sub"},
		{"empty sub", Config{}, hs256(t, validClaims(map[string]any{"sub": ""})), ErrInvalidToken, "missing sub"},
		{"sub of an API key's bot", Config{}, hs256(t, validClaims(map[string]any{"sub": "apikey:crm", "admin": true})), ErrInvalidToken, "sub reserved for API keys"},
		{"sub of an API key's bot, upper case", Config{}, hs256(t, validClaims(map[string]any{"sub": "APIKey:crm"})), ErrInvalidToken, "sub reserved for API keys"},
		{"sub too long", Config{},
			hs256(t, validClaims(map[string]any{"sub": strings.Repeat("x", MaxSubjectBytes+1)})), ErrInvalidToken, "sub too long"},
		{"sub number", Config{}, hs256(t, validClaims(map[string]any{"sub": 42})), ErrInvalidToken, "malformed"},
		{"admin string", Config{}, hs256(t, validClaims(map[string]any{"admin": "true"})), ErrInvalidToken, "malformed"},
		{"name object", Config{}, hs256(t, validClaims(map[string]any{"name": map[string]any{}})), ErrInvalidToken, "malformed"},
		{"wrong issuer", issAud,
			hs256(t, validClaims(map[string]any{"iss": "https://evil.example.com", "aud": "grainchat"})), ErrInvalidToken, "wrong issuer"},
		{"missing issuer", issAud, hs256(t, validClaims(map[string]any{"aud": "grainchat"})), ErrInvalidToken, "missing required claim"},
		{"wrong audience", issAud,
			hs256(t, validClaims(map[string]any{"iss": "https://shop.example.com", "aud": "other"})), ErrInvalidToken, "wrong audience"},
		{"wrong audience list", issAud,
			hs256(t, validClaims(map[string]any{"iss": "https://shop.example.com", "aud": []string{"a", "b"}})), ErrInvalidToken, "wrong audience"},
		{"missing audience", issAud,
			hs256(t, validClaims(map[string]any{"iss": "https://shop.example.com"})), ErrInvalidToken, "missing required claim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustVerifier(t, tt.cfg)
			id, err := v.Verify(tt.token)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", id)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want one wrapping %v", err, tt.want)
			}
			other := ErrExpired
			if tt.want == ErrExpired {
				other = ErrInvalidToken
			}
			if errors.Is(err, other) {
				t.Errorf("Verify error %v also wraps %v", err, other)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Verify error %q does not say %q", err, tt.reason)
			}
			if !reflect.DeepEqual(id, Identity{}) {
				t.Errorf("Verify returned identity %+v along with an error", id)
			}
			assertNoTokenText(t, err, tt.token)
		})
	}
}

// assertNoTokenText fails if err's text contains the token or any of its
// non-trivial segments.
func assertNoTokenText(t *testing.T, err error, token string) {
	t.Helper()
	msg := err.Error()
	if token != "" && strings.Contains(msg, token) {
		t.Errorf("error %q contains the token", msg)
	}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 8 && strings.Contains(msg, seg) {
			t.Errorf("error %q contains token segment %q", msg, seg)
		}
	}
}

func TestVerifyAccepts(t *testing.T) {
	issAud := Config{Issuer: "https://shop.example.com", Audience: "grainchat"}
	exp := testNow.Add(time.Hour)
	tests := []struct {
		name  string
		cfg   Config
		token string
		want  Identity
	}{
		{"full", Config{}, hs256(t, validClaims(nil)),
			Identity{Subject: "user-42", Name: "Ada", ExpiresAt: exp}},
		{"minimal: sub and exp", Config{}, hs256(t, map[string]any{"sub": "u", "exp": exp.Unix()}),
			Identity{Subject: "u", Name: "u", ExpiresAt: exp}},
		{"empty name means sub", Config{}, hs256(t, validClaims(map[string]any{"name": ""})),
			Identity{Subject: "user-42", Name: "user-42", ExpiresAt: exp}},
		{"admin", Config{}, hs256(t, validClaims(map[string]any{"admin": true})),
			Identity{Subject: "user-42", Name: "Ada", Admin: true, ExpiresAt: exp}},
		{"sub at the limit", Config{}, hs256(t, validClaims(map[string]any{"sub": strings.Repeat("x", MaxSubjectBytes), "name": nil})),
			Identity{Subject: strings.Repeat("x", MaxSubjectBytes), Name: strings.Repeat("x", MaxSubjectBytes), ExpiresAt: exp}},
		{"no typ header", Config{}, signRaw(t, sha256.New, testSecret, map[string]any{"alg": "HS256"}, validClaims(nil)),
			Identity{Subject: "user-42", Name: "Ada", ExpiresAt: exp}},
		{"unknown claims ignored", Config{}, hs256(t, validClaims(map[string]any{"role": "x", "jti": "1"})),
			Identity{Subject: "user-42", Name: "Ada", ExpiresAt: exp}},
		{"expired within default leeway", Config{},
			hs256(t, validClaims(map[string]any{"exp": testNow.Add(-4 * time.Second).Unix()})),
			Identity{Subject: "user-42", Name: "Ada", ExpiresAt: testNow.Add(-4 * time.Second)}},
		{"expired within configured leeway", Config{Leeway: time.Minute},
			hs256(t, validClaims(map[string]any{"exp": testNow.Add(-59 * time.Second).Unix()})),
			Identity{Subject: "user-42", Name: "Ada", ExpiresAt: testNow.Add(-59 * time.Second)}},
		{"nbf in the past", Config{}, hs256(t, validClaims(map[string]any{"nbf": testNow.Add(-time.Minute).Unix()})),
			Identity{Subject: "user-42", Name: "Ada", ExpiresAt: exp}},
		{"nbf within leeway", Config{}, hs256(t, validClaims(map[string]any{"nbf": testNow.Add(4 * time.Second).Unix()})),
			Identity{Subject: "user-42", Name: "Ada", ExpiresAt: exp}},
		{"iat within leeway", Config{}, hs256(t, validClaims(map[string]any{"iat": testNow.Add(4 * time.Second).Unix()})),
			Identity{Subject: "user-42", Name: "Ada", ExpiresAt: exp}},
		{"iss and aud ignored when not configured", Config{},
			hs256(t, validClaims(map[string]any{"iss": "anyone", "aud": "anything"})),
			Identity{Subject: "user-42", Name: "Ada", ExpiresAt: exp}},
		{"iss and aud configured", issAud,
			hs256(t, validClaims(map[string]any{"iss": "https://shop.example.com", "aud": "grainchat"})),
			Identity{Subject: "user-42", Name: "Ada", ExpiresAt: exp}},
		{"aud list containing ours", issAud,
			hs256(t, validClaims(map[string]any{"iss": "https://shop.example.com", "aud": []string{"x", "grainchat"}})),
			Identity{Subject: "user-42", Name: "Ada", ExpiresAt: exp}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustVerifier(t, tt.cfg).Verify(tt.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !got.ExpiresAt.Equal(tt.want.ExpiresAt) {
				t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, tt.want.ExpiresAt)
			}
			got.ExpiresAt, tt.want.ExpiresAt = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Verify = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestVerifyDefaultClock(t *testing.T) {
	v, err := NewVerifier(Config{Secret: testSecret}) // Now: nil means time.Now
	if err != nil {
		t.Fatal(err)
	}
	fresh := hs256(t, map[string]any{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()})
	if _, err := v.Verify(fresh); err != nil {
		t.Errorf("Verify(fresh token): %v", err)
	}
	stale := hs256(t, map[string]any{"sub": "u", "exp": time.Now().Add(-time.Hour).Unix()})
	if _, err := v.Verify(stale); !errors.Is(err, ErrExpired) {
		t.Errorf("Verify(stale token) = %v, want ErrExpired", err)
	}
}

func TestFromRequest(t *testing.T) {
	exp := testNow.Add(time.Hour).Unix()
	tok := func(sub string) string { return hs256(t, map[string]any{"sub": sub, "exp": exp}) }
	bad := hs256(t, map[string]any{"sub": "x", "exp": testNow.Add(-time.Hour).Unix()})

	type places struct{ cookie, query, header string }
	tests := []struct {
		name    string
		in      places
		rawAuth string // Authorization header verbatim, overrides in.header
		wantSub string
		wantErr error
	}{
		{name: "cookie", in: places{cookie: tok("c")}, wantSub: "c"},
		{name: "query", in: places{query: tok("q")}, wantSub: "q"},
		{name: "header", in: places{header: tok("h")}, wantSub: "h"},
		{name: "cookie before query and header", in: places{tok("c"), tok("q"), tok("h")}, wantSub: "c"},
		{name: "query before header", in: places{query: tok("q"), header: tok("h")}, wantSub: "q"},
		{name: "cookie before header", in: places{cookie: tok("c"), header: tok("h")}, wantSub: "c"},
		{name: "first place wins even when invalid", in: places{cookie: bad, header: tok("h")}, wantErr: ErrExpired},
		{name: "invalid query does not fall back", in: places{query: "garbage", header: tok("h")}, wantErr: ErrInvalidToken},
		{name: "bearer scheme is case-insensitive", rawAuth: "bearer " + tok("h"), wantSub: "h"},
		{name: "none", wantErr: ErrNoToken},
		{name: "basic auth is no token", rawAuth: "Basic dXNlcjpwYXNz", wantErr: ErrNoToken},
		{name: "bearer without token", rawAuth: "Bearer ", wantErr: ErrNoToken},
		{name: "bearer glued to token", rawAuth: "Bearer" + tok("h"), wantErr: ErrNoToken},
		{name: "invalid header token", rawAuth: "Bearer garbage", wantErr: ErrInvalidToken},
	}
	v := mustVerifier(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := "/ws"
			if tt.in.query != "" {
				target += "?token=" + tt.in.query
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			if tt.in.cookie != "" {
				r.AddCookie(&http.Cookie{Name: CookieName, Value: tt.in.cookie})
			}
			if tt.in.header != "" {
				r.Header.Set("Authorization", "Bearer "+tt.in.header)
			}
			if tt.rawAuth != "" {
				r.Header.Set("Authorization", tt.rawAuth)
			}
			id, err := v.FromRequest(r)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("FromRequest error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromRequest: %v", err)
			}
			if id.Subject != tt.wantSub {
				t.Errorf("Subject = %q, want %q", id.Subject, tt.wantSub)
			}
		})
	}
}

func TestMintVerifyRoundTrip(t *testing.T) {
	configs := map[string]Config{
		"plain":   testConfig(),
		"iss+aud": {Secret: testSecret, Issuer: "https://shop.example.com", Audience: "grainchat", Now: func() time.Time { return testNow }},
	}
	ids := []Identity{
		{Subject: "user-42", Name: "Ada Lovelace"},
		{Subject: "user-7", Admin: true},
		{Subject: "ユーザー", Name: "名前 \"quoted\" <b>"},
		{Subject: strings.Repeat("s", MaxSubjectBytes), Name: "long"},
	}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			iss, err := NewIssuer(cfg)
			if err != nil {
				t.Fatal(err)
			}
			v := mustVerifier(t, cfg)
			for _, id := range ids {
				token, err := iss.Mint(id, 15*time.Minute)
				if err != nil {
					t.Fatalf("Mint(%+v): %v", id, err)
				}
				assertHS256Header(t, token)
				got, err := v.Verify(token)
				if err != nil {
					t.Fatalf("Verify(Mint(%+v)): %v", id, err)
				}
				want := id
				if want.Name == "" {
					want.Name = want.Subject
				}
				want.ExpiresAt = testNow.Add(15 * time.Minute)
				if got.Subject != want.Subject || got.Name != want.Name || got.Admin != want.Admin || !got.ExpiresAt.Equal(want.ExpiresAt) {
					t.Errorf("Verify(Mint(%+v)) = %+v, want %+v", id, got, want)
				}
			}
		})
	}
}

func assertHS256Header(t *testing.T, token string) {
	t.Helper()
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("header: %v", err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("header: %v", err)
	}
	if h["alg"] != "HS256" {
		t.Errorf("header alg = %v, want HS256", h["alg"])
	}
}

func TestMintedClaims(t *testing.T) {
	cfg := Config{Secret: testSecret, Issuer: "shop", Audience: "chat", Now: func() time.Time { return testNow }}
	iss, err := NewIssuer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	token, err := iss.Mint(Identity{Subject: "u", Name: "", Admin: false}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"sub": "u", "name": "", "admin": false, "iss": "shop", "aud": []any{"chat"},
		"iat": float64(testNow.Unix()), "exp": float64(testNow.Add(time.Hour).Unix()),
	}
	for k, w := range want {
		if !reflect.DeepEqual(c[k], w) {
			t.Errorf("claim %s = %#v, want %#v", k, c[k], w)
		}
	}
	if len(c) != len(want) {
		t.Errorf("claims = %v, want exactly %v", c, want)
	}
}

func TestMintRejects(t *testing.T) {
	iss, err := NewIssuer(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   Identity
		ttl  time.Duration
	}{
		{"empty subject", Identity{Name: "x"}, time.Hour},
		{"subject too long", Identity{Subject: strings.Repeat("x", MaxSubjectBytes+1)}, time.Hour},
		{"zero ttl", Identity{Subject: "u"}, 0},
		{"negative ttl", Identity{Subject: "u"}, -time.Hour},
		{"sub-second ttl", Identity{Subject: "u"}, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if token, err := iss.Mint(tt.id, tt.ttl); err == nil {
				t.Errorf("Mint = %q, want an error", token)
			}
		})
	}
}

func TestMintedTokenRejectedElsewhere(t *testing.T) {
	other, err := NewIssuer(Config{Secret: []byte("another-secret-another-secret-xx"), Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	token, err := other.Mint(Identity{Subject: "u"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mustVerifier(t, Config{}).Verify(token); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Verify(token of another secret) = %v, want ErrInvalidToken", err)
	}

	iss, err := NewIssuer(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	token, err = iss.Mint(Identity{Subject: "u"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v := mustVerifier(t, Config{Issuer: "shop", Audience: "chat"})
	if _, err := v.Verify(token); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Verify(token without iss/aud) by a verifier requiring them = %v, want ErrInvalidToken", err)
	}
	later := mustVerifier(t, Config{Now: func() time.Time { return testNow.Add(2 * time.Hour) }})
	if _, err := later.Verify(token); !errors.Is(err, ErrExpired) {
		t.Errorf("Verify(token) two hours later = %v, want ErrExpired", err)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	v := mustVerifier(t, Config{})
	good := hs256(t, validClaims(nil))
	bad := hs256(t, validClaims(map[string]any{"sub": nil}))
	done := make(chan error)
	for range 8 {
		go func() {
			for range 50 {
				if _, err := v.Verify(good); err != nil {
					done <- err
					return
				}
				if _, err := v.Verify(bad); err == nil {
					done <- errors.New("accepted a token without sub")
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestTeamClaims: a visitor's team claim takes the fast path; a staff
// member's teams claim the library's, nil when absent or null and empty when
// [] (they then see only conversations without a team); Mint writes both.
func TestTeamClaims(t *testing.T) {
	v := mustVerifier(t, Config{})
	exp := testNow.Add(time.Hour).Unix()
	for _, tt := range []struct {
		name    string
		payload map[string]any
		fast    bool
		team    string
		teams   []string
	}{
		{"visitor's team", map[string]any{"sub": "v1", "exp": exp, "team": "billing"}, true, "billing", nil},
		{"no team", map[string]any{"sub": "v1", "exp": exp}, true, "", nil},
		{"staff teams", map[string]any{"sub": "s1", "exp": exp, "admin": true, "teams": []string{"billing", "sales"}}, false, "", []string{"billing", "sales"}},
		{"teams null", map[string]any{"sub": "s1", "exp": exp, "admin": true, "teams": nil}, false, "", nil},
		{"teams empty", map[string]any{"sub": "s1", "exp": exp, "admin": true, "teams": []string{}}, false, "", []string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			token := hs256(t, tt.payload)
			if fast := checkFastAgrees(t, v, token); fast != tt.fast {
				t.Errorf("fast path taken: %t, want %t", fast, tt.fast)
			}
			id, err := v.Verify(token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.Team != tt.team || (id.Teams == nil) != (tt.teams == nil) || !slices.Equal(id.Teams, tt.teams) {
				t.Errorf("Verify: team %q teams %#v, want %q %#v", id.Team, id.Teams, tt.team, tt.teams)
			}
		})
	}
	iss, err := NewIssuer(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	token, err := iss.Mint(Identity{Subject: "s1", Admin: true, Teams: []string{"billing"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.Verify(token); err != nil || !slices.Equal(id.Teams, []string{"billing"}) {
		t.Errorf("a minted staff token: teams %#v, %v", id.Teams, err)
	}
	for _, teams := range [][]string{{}, nil} {
		token, err := iss.Mint(Identity{Subject: "s1", Admin: true, Teams: teams}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if id, err := v.Verify(token); err != nil || (id.Teams == nil) != (teams == nil) || len(id.Teams) != 0 {
			t.Errorf("a minted staff token with teams %#v: teams %#v, %v", teams, id.Teams, err)
		}
	}
	token, err = iss.Mint(Identity{Subject: "v1", Team: "sales"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.Verify(token); err != nil || id.Team != "sales" {
		t.Errorf("a minted visitor token: team %q, %v", id.Team, err)
	}
}
