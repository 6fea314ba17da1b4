package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Where FromRequest looks for a token, in this order.
const (
	// CookieName is the cookie that carries the token (checked first).
	CookieName = "chat_token"
	// QueryParam is the query parameter that carries the token (checked
	// second). Query strings end up in access logs: prefer the cookie.
	QueryParam = "token"
	// The third place is the header "Authorization: Bearer <token>".
)

// claims is the token payload. Validate is called by the jwt parser after the
// signature has been verified, next to its own exp/nbf/iat/iss/aud checks.
// Decoding is encoding/json's: claim names match case-insensitively and the
// last duplicate wins. Only the secret's holder can sign, so this is a matter
// of leniency towards the host site, not of forgery.
type claims struct {
	Name  string `json:"name"`
	Admin bool   `json:"admin"`
	// Email and Ctx describe the user to staff (Identity.Email, Context).
	Email string          `json:"email,omitempty"`
	Ctx   json.RawMessage `json:"ctx,omitempty"`
	// Team and Teams route conversations to staff teams (Identity.Team,
	// Teams). Teams is a pointer so that [] (only the conversations
	// without a team) is minted, and told from null or absent (every team).
	Team  string    `json:"team,omitempty"`
	Teams *[]string `json:"teams,omitempty"`
	jwt.RegisteredClaims
}

var (
	errNoSubject       = errors.New("missing sub")
	errLongSubject     = errors.New("sub too long")
	errReservedSubject = errors.New("sub reserved for API keys or anonymous visitors")
)

// Validate implements jwt.ClaimsValidator.
func (c *claims) Validate() error {
	switch {
	case c.Subject == "":
		return errNoSubject
	case len(c.Subject) > MaxSubjectBytes:
		return errLongSubject
	case ReservedSubject(c.Subject), AnonymousSubject(c.Subject):
		return errReservedSubject
	}
	return nil
}

// Verifier checks tokens minted by the host site (or by an Issuer sharing its
// Config). It is safe for concurrent use.
type Verifier struct {
	secret []byte
	parser *jwt.Parser
	anon   *Anonymous // nil: anonymous tokens are refused

	// The fast path's (fast.go) copy of the parser's options.
	fast             *sync.Pool
	issuer, audience string
	leeway           time.Duration
	now              func() time.Time
}

// NewVerifier returns a Verifier for cfg. It fails if cfg.Secret is shorter
// than MinSecretBytes.
func NewVerifier(cfg Config) (*Verifier, error) {
	secret, err := cfg.secret()
	if err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.leeway()),
		jwt.WithTimeFunc(cfg.now()),
		jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &Verifier{secret: secret, parser: jwt.NewParser(opts...), anon: cfg.Anonymous,
		fast: newFastPool(secret), issuer: cfg.Issuer, audience: cfg.Audience, leeway: cfg.leeway(), now: cfg.now()}, nil
}

// Verify checks token and returns the identity it carries. Errors wrap
// ErrExpired when a validly signed token has expired, and ErrInvalidToken for
// every other failure; they never contain the token text.
func (v *Verifier) Verify(token string) (Identity, error) {
	switch {
	case token == "":
		return Identity{}, invalid("empty")
	case len(token) > MaxTokenBytes:
		return Identity{}, invalid("too long")
	}
	if id, ok := v.verifyFast(token); ok {
		return id, nil
	}
	return v.verifyJWT(token)
}

// verifyJWT is Verify through the jwt library: every token the fast path
// does not accept.
func (v *Verifier) verifyJWT(token string) (Identity, error) {
	var c claims
	if _, err := v.parser.ParseWithClaims(token, &c, v.key); err != nil {
		if v.anon != nil && errors.Is(err, jwt.ErrSignatureInvalid) {
			// Not the host site's key: maybe an anonymous visitor's.
			if id, aerr := v.anon.Verify(token); aerr == nil || errors.Is(aerr, ErrExpired) {
				return id, aerr
			}
		}
		return Identity{}, classify(err)
	}
	if c.ExpiresAt == nil { // guarded by WithExpirationRequired; belt and braces
		return Identity{}, invalid("missing exp")
	}
	id := Identity{Subject: c.Subject, Name: c.Name, Admin: c.Admin, ExpiresAt: c.ExpiresAt.Time, Email: c.Email,
		Team: c.Team}
	if c.Teams != nil {
		id.Teams = *c.Teams
		if id.Teams == nil {
			id.Teams = []string{}
		}
	}
	if ctx := string(c.Ctx); ctx != "" && ctx != "null" {
		id.Context = ctx
	}
	if id.Name == "" {
		id.Name = id.Subject
	}
	return id, nil
}

// key is the jwt.Keyfunc. The parser has already refused any alg but HS256;
// checking again keeps the secret from ever being handed to another method.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	if t.Method != jwt.SigningMethodHS256 {
		return nil, errors.New("unexpected signing method")
	}
	return v.secret, nil
}

// FromRequest finds the token of a handshake request and verifies it. It looks,
// in order, at the cookie CookieName, the query parameter QueryParam and the
// header "Authorization: Bearer <token>"; the first non-empty one is used and
// the others are ignored, even when it fails to verify. It returns ErrNoToken
// when there is none, otherwise Verify's result.
func (v *Verifier) FromRequest(r *http.Request) (Identity, error) {
	token, from := tokenFrom(r)
	if token == "" {
		return Identity{}, ErrNoToken
	}
	id, err := v.Verify(token)
	if err != nil {
		return Identity{}, fmt.Errorf("token from %s: %w", from, err)
	}
	return id, nil
}

func tokenFrom(r *http.Request) (token, from string) {
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		return c.Value, "cookie"
	}
	if r.URL != nil {
		if t := r.URL.Query().Get(QueryParam); t != "" {
			return t, "query"
		}
	}
	scheme, t, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		if t = strings.TrimSpace(t); t != "" {
			return t, "header"
		}
	}
	return "", ""
}

// reasons maps the parser's errors to fixed texts, most specific first. The
// parser's own messages are dropped: some quote decoded token bytes. Expiry
// comes last so that ErrExpired is reported only for tokens whose sole fault
// is their age.
var reasons = []struct {
	err    error
	reason string
}{
	{jwt.ErrTokenMalformed, "malformed"},
	{jwt.ErrTokenUnverifiable, "unknown or unspecified algorithm"},
	{jwt.ErrSignatureInvalid, "bad signature"},              // HMAC mismatch
	{jwt.ErrTokenSignatureInvalid, "algorithm not allowed"}, // alg other than HS256
	{errNoSubject, "missing sub"},
	{errLongSubject, "sub too long"},
	{errReservedSubject, "sub reserved for API keys or anonymous visitors"},
	{jwt.ErrTokenRequiredClaimMissing, "missing required claim"},
	{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
	{jwt.ErrTokenInvalidAudience, "wrong audience"},
	{jwt.ErrTokenNotValidYet, "not valid yet"},
	{jwt.ErrTokenUsedBeforeIssued, "issued in the future"},
	{jwt.ErrInvalidType, "claim of wrong type"},
}

func classify(err error) error {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return invalid(r.reason)
		}
	}
	if errors.Is(err, jwt.ErrTokenExpired) {
		return ErrExpired
	}
	return invalid("rejected")
}

func invalid(reason string) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, reason)
}

// Issuer mints tokens that a Verifier with the same Config accepts. grainchat
// uses it in development mode and in tests; in production the host site mints
// tokens. It is safe for concurrent use.
type Issuer struct {
	secret   []byte
	issuer   string
	audience string
	now      func() time.Time
}

// NewIssuer returns an Issuer for cfg (Leeway is ignored). It fails if
// cfg.Secret is shorter than MinSecretBytes.
func NewIssuer(cfg Config) (*Issuer, error) {
	secret, err := cfg.secret()
	if err != nil {
		return nil, err
	}
	return &Issuer{secret: secret, issuer: cfg.Issuer, audience: cfg.Audience, now: cfg.now()}, nil
}

// Mint returns an HS256 token for id valid for ttl from now. It sets sub, name,
// admin, iat and exp, plus iss and aud when configured; id.ExpiresAt is
// ignored. The subject must be non-empty and at most MaxSubjectBytes, and ttl
// at least one second (exp has second precision).
func (i *Issuer) Mint(id Identity, ttl time.Duration) (string, error) {
	switch {
	case id.Subject == "":
		return "", errors.New("auth: mint: empty subject")
	case len(id.Subject) > MaxSubjectBytes:
		return "", fmt.Errorf("auth: mint: subject longer than %d bytes", MaxSubjectBytes)
	case ReservedSubject(id.Subject), AnonymousSubject(id.Subject):
		return "", fmt.Errorf("auth: mint: subjects starting with %q or %q are reserved", ReservedSubjectPrefix, AnonymousPrefix)
	case ttl < time.Second:
		return "", fmt.Errorf("auth: mint: ttl %v is under one second", ttl)
	}
	now := i.now()
	c := claims{
		Name:  id.Name,
		Admin: id.Admin,
		Email: id.Email,
		Ctx:   json.RawMessage(id.Context),
		Team:  id.Team,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   id.Subject,
			Issuer:    i.issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	if id.Teams != nil {
		c.Teams = &id.Teams
	}
	if i.audience != "" {
		c.Audience = jwt.ClaimStrings{i.audience}
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, &c).SignedString(i.secret)
	if err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	return token, nil
}
