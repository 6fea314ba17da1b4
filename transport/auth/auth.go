// Package auth authenticates WebSocket handshakes: it verifies the HS256 JWT
// that the host site hands to its users (Verifier), mints such tokens for
// development and tests (Issuer), and decides which browser origins may open a
// connection (OriginPolicy). It also makes and recognizes the REST API's
// keys (NewAPIKey, IsAPIKey, HashAPIKey).
//
// # Token contract
//
// Tokens are JWS compact serializations signed with HS256 and a shared secret
// of at least MinSecretBytes bytes. Claims:
//
//   - sub (string, required): the user's stable id in the host site, non-empty,
//     at most MaxSubjectBytes bytes, not starting with ReservedSubjectPrefix
//     (in any case): those are API keys' bots (see apikey.go), nor with
//     AnonymousPrefix: those are anonymous visitors (see anonymous.go).
//   - name (string, optional): display name; empty means "use sub".
//   - admin (bool, optional).
//   - exp (required), nbf and iat (checked when present), all with Config.Leeway.
//   - iss and aud: checked only when Config.Issuer / Config.Audience are set.
//
// Every other algorithm, including "none" and RS256 (the HS256/RS256
// confusion), is refused. Errors never contain the token text.
package auth

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by this package; test them with errors.Is. They are
// disjoint: an expired but otherwise valid token yields ErrExpired only, every
// other verification failure ErrInvalidToken.
var (
	// ErrInvalidToken: the token is malformed, badly signed, uses another
	// algorithm than HS256, is not yet valid or fails a claim check.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrExpired: the token was validly signed but its exp has passed
	// (leeway included). The client should fetch a new token and reconnect.
	ErrExpired = errors.New("auth: token expired")
	// ErrNoToken: the request carries no token at all (see Verifier.FromRequest).
	ErrNoToken = errors.New("auth: no token")
	// ErrForbiddenOrigin: the request's Origin is neither its own host nor in
	// the OriginPolicy's allowed list.
	ErrForbiddenOrigin = errors.New("auth: forbidden origin")
)

// Limits.
const (
	// MinSecretBytes is the shortest HS256 secret NewVerifier and NewIssuer
	// accept (RFC 7518 §3.2: a key at least as long as the hash output).
	MinSecretBytes = 32
	// MaxSubjectBytes is the longest sub claim accepted; it matches
	// storage.MaxExternalIDBytes.
	MaxSubjectBytes = 200
	// MaxTokenBytes is the longest token Verify will parse; longer input is
	// refused with ErrInvalidToken before any decoding.
	MaxTokenBytes = 8 << 10
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat when
	// Config.Leeway is zero.
	DefaultLeeway = 5 * time.Second
)

// Identity is the authenticated user carried by a verified token.
type Identity struct {
	// Subject is the sub claim: the user's stable id in the host site.
	Subject string
	// Name is the display name; Verify sets it to Subject when the token has
	// none. It is not length-checked here (storage truncates names).
	Name string
	// Admin is the admin claim.
	Admin bool
	// Email is the email claim, as the token has it ("" when none): where
	// a visitor may be written to. Storage checks it (storage.UserInput).
	Email string
	// Context is the ctx claim's JSON text ("" when none or null): the host
	// site's attributes of the user (plan, account id…), which staff see.
	// Storage checks and normalizes it (storage.UserInput).
	Context string
	// Team is the team claim, as the token has it ("" when none): a
	// visitor's team, the staff team that serves their conversation.
	// Storage checks it (storage.UserInput.Team).
	Team string
	// Teams is the teams claim (nil when none or null): the teams a staff
	// member serves; they see those teams' conversations and those
	// without a team. nil: every team. The transport checks the names
	// (storage.CheckTeams).
	Teams []string
	// ExpiresAt is the exp claim; the connection should not outlive it.
	ExpiresAt time.Time
	// Anonymous: an anonymous visitor's identity, issued by chatd
	// (Anonymous), not the host site's.
	Anonymous bool
}

// Config configures a Verifier or an Issuer.
type Config struct {
	// Secret is the shared HS256 key, at least MinSecretBytes long. It is
	// copied by the constructors.
	Secret []byte
	// Issuer, when non-empty, must equal the token's iss claim; an Issuer
	// writes it into minted tokens. Empty means iss is neither checked nor set.
	Issuer string
	// Audience, when non-empty, must be one of the token's aud values; an
	// Issuer writes it into minted tokens. Empty means aud is neither checked
	// nor set.
	Audience string
	// Leeway is the clock skew tolerated on exp, nbf and iat. Zero means
	// DefaultLeeway (5s); a negative value means no leeway at all. Issuers
	// ignore it.
	Leeway time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Anonymous, when set, makes a Verifier accept anonymous visitors'
	// tokens too (chatd --anonymous-visitors). Issuers ignore it.
	Anonymous *Anonymous
}

func (c Config) secret() ([]byte, error) {
	if len(c.Secret) < MinSecretBytes {
		return nil, fmt.Errorf("auth: secret is %d bytes, need at least %d", len(c.Secret), MinSecretBytes)
	}
	return append([]byte(nil), c.Secret...), nil
}

func (c Config) now() func() time.Time {
	if c.Now == nil {
		return time.Now
	}
	return c.Now
}

func (c Config) leeway() time.Duration {
	switch {
	case c.Leeway == 0:
		return DefaultLeeway
	case c.Leeway < 0:
		return 0
	default:
		return c.Leeway
	}
}
