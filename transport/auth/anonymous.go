package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// This file owns anonymous visitors' identities (chatd --anonymous-visitors):
// chatd issues them itself, as HS256 tokens under a key of their own derived
// from the host site's secret, so that a token of one kind can never pass for
// the other. Their subjects start with AnonymousPrefix, which host tokens may
// not use.

// AnonymousPrefix starts every anonymous visitor's sub (and external id).
const AnonymousPrefix = "anon:"

// anonymousIssuer is the iss of anonymous tokens.
const anonymousIssuer = "grainchat/anonymous"

// anonymousKeyLabel derives the anonymous tokens' key from the secret.
const anonymousKeyLabel = "grainchat anonymous visitor tokens v1"

// DefaultAnonymousTTL is how long an anonymous token is valid when
// NewAnonymous is given no TTL: the page renews it while it is in use.
const DefaultAnonymousTTL = 30 * 24 * time.Hour

// AnonymousSubject reports whether sub is an anonymous visitor's (in any
// case).
func AnonymousSubject(sub string) bool {
	return len(sub) >= len(AnonymousPrefix) && strings.EqualFold(sub[:len(AnonymousPrefix)], AnonymousPrefix)
}

// Anonymous issues and verifies anonymous visitors' tokens. It is safe for
// concurrent use.
type Anonymous struct {
	key    []byte
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser
}

// NewAnonymous returns an Anonymous whose key is derived from cfg.Secret
// (HMAC-SHA256 of a fixed label): the host site's tokens and anonymous
// ones never verify as each other. ttl zero means DefaultAnonymousTTL.
func NewAnonymous(cfg Config, ttl time.Duration) (*Anonymous, error) {
	secret, err := cfg.secret()
	if err != nil {
		return nil, err
	}
	if ttl <= 0 {
		ttl = DefaultAnonymousTTL
	}
	if ttl < time.Minute {
		return nil, fmt.Errorf("auth: anonymous ttl %v is under a minute", ttl)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(anonymousKeyLabel))
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(anonymousIssuer),
		jwt.WithLeeway(cfg.leeway()),
		jwt.WithTimeFunc(cfg.now()),
		jwt.WithStrictDecoding(),
	)
	return &Anonymous{key: mac.Sum(nil), ttl: ttl, now: cfg.now(), parser: parser}, nil
}

// anonymousClaims are an anonymous token's: sub and name only.
type anonymousClaims struct {
	Name string `json:"name"`
	jwt.RegisteredClaims
}

// Validate implements jwt.ClaimsValidator.
func (c *anonymousClaims) Validate() error {
	if !strings.HasPrefix(c.Subject, AnonymousPrefix) || len(c.Subject) > MaxSubjectBytes || len(c.Subject) == len(AnonymousPrefix) {
		return errNoSubject
	}
	return nil
}

// encoding is the subjects' alphabet: no padding, upper case, no look-alikes
// issue for the short display code.
var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// New issues a new identity: a random subject (120 bits) and a display name
// ("Visitor 7KQ2") from it.
func (a *Anonymous) New() (string, Identity, error) {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Identity{}, fmt.Errorf("auth: anonymous identity: %w", err)
	}
	code := encoding.EncodeToString(b[:])
	return a.Renew(Identity{Subject: AnonymousPrefix + strings.ToLower(code), Name: "Visitor " + code[:4]})
}

// Renew issues a fresh token for the anonymous identity id (a verified one),
// valid for the TTL from now.
func (a *Anonymous) Renew(id Identity) (string, Identity, error) {
	if !strings.HasPrefix(id.Subject, AnonymousPrefix) {
		return "", Identity{}, errors.New("auth: renew: not an anonymous identity")
	}
	now := a.now()
	exp := now.Add(a.ttl)
	c := anonymousClaims{Name: id.Name, RegisteredClaims: jwt.RegisteredClaims{
		Subject: id.Subject, Issuer: anonymousIssuer,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
	}}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, &c).SignedString(a.key)
	if err != nil {
		return "", Identity{}, fmt.Errorf("auth: anonymous token: %w", err)
	}
	return token, Identity{Subject: id.Subject, Name: id.Name, Anonymous: true, ExpiresAt: exp.Truncate(time.Second)}, nil
}

// Verify checks an anonymous token. Errors are ErrExpired or wrap
// ErrInvalidToken, as Verifier.Verify's.
func (a *Anonymous) Verify(token string) (Identity, error) {
	switch {
	case token == "":
		return Identity{}, invalid("empty")
	case len(token) > MaxTokenBytes:
		return Identity{}, invalid("too long")
	}
	var c anonymousClaims
	if _, err := a.parser.ParseWithClaims(token, &c, a.keyFunc); err != nil {
		return Identity{}, classify(err)
	}
	name := c.Name
	if name == "" {
		name = "Visitor"
	}
	return Identity{Subject: c.Subject, Name: name, Anonymous: true, ExpiresAt: c.ExpiresAt.Time}, nil
}

func (a *Anonymous) keyFunc(t *jwt.Token) (any, error) {
	if t.Method != jwt.SigningMethodHS256 {
		return nil, errors.New("unexpected signing method")
	}
	return a.key, nil
}
