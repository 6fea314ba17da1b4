package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// This file holds Verify's fast path: the tokens host sites mint every day
// (the standard HS256 header, a flat object of the claims grainchat reads)
// are verified without encoding/json's reflection and with a pooled HMAC,
// which took a handshake's token from 49 allocations and 2.8 KB to a handful
// of small strings. The fast path only ever accepts: anything it does not
// recognise exactly — another header, an escaped or case-folded key, a
// duplicate, a fraction in a date, a bad signature, an expired token — goes
// to the jwt library's path, which decides (and names the error). Fuzzing
// checks that whatever the fast path accepts, the library accepts with the
// same identity (FuzzFastPathAgrees).

// fastHeaders are the base64url headers the fast path takes: what the jwt
// libraries of most languages write for HS256.
var fastHeaders = func() map[string]bool {
	m := map[string]bool{}
	for _, h := range []string{`{"alg":"HS256","typ":"JWT"}`, `{"typ":"JWT","alg":"HS256"}`, `{"alg":"HS256"}`} {
		m[base64.RawURLEncoding.EncodeToString([]byte(h))] = true
	}
	return m
}()

// fastMaxPayload bounds the payloads the fast path decodes (into a pooled
// buffer); longer ones take the library's path.
const fastMaxPayload = 2 << 10

// fastState is what one fast verification borrows.
type fastState struct {
	mac     hash.Hash
	token   []byte // the token's bytes (no conversion allocates)
	payload [fastMaxPayload]byte
	sum     [sha256.Size]byte
	sig     [sha256.Size + 3]byte
}

func newFastPool(secret []byte) *sync.Pool {
	return &sync.Pool{New: func() any { return &fastState{mac: hmac.New(sha256.New, secret)} }}
}

// fastClaims are the claims the fast path read. Dates are Unix seconds.
type fastClaims struct {
	sub, name, email, team, iss, aud, ctx string
	admin                                 bool
	exp, nbf, iat                         int64
	seen                                  uint16 // fastKey bits
}

// The keys the fast path knows, as bits of fastClaims.seen.
const (
	keySub uint16 = 1 << iota
	keyName
	keyAdmin
	keyEmail
	keyCtx
	keyExp
	keyNbf
	keyIat
	keyIss
	keyAud
	keyJti
	keyTeam
	keyTeams
)

var fastKeys = map[string]uint16{
	"sub": keySub, "name": keyName, "admin": keyAdmin, "email": keyEmail, "ctx": keyCtx,
	"exp": keyExp, "nbf": keyNbf, "iat": keyIat, "iss": keyIss, "aud": keyAud, "jti": keyJti,
	"team": keyTeam, "teams": keyTeams,
}

// verifyFast returns the identity of token and true if the fast path
// accepts it; false leaves the decision to the library's path.
func (v *Verifier) verifyFast(token string) (Identity, bool) {
	head, rest, ok := strings.Cut(token, ".")
	if !ok || !fastHeaders[head] {
		return Identity{}, false
	}
	body, sig, ok := strings.Cut(rest, ".")
	if !ok || len(body) > base64.RawURLEncoding.EncodedLen(fastMaxPayload) ||
		len(sig) != base64.RawURLEncoding.EncodedLen(sha256.Size) {
		return Identity{}, false
	}
	st := v.fast.Get().(*fastState)
	defer v.fast.Put(st)
	st.token = append(st.token[:0], token...)
	signed := st.token[:len(head)+1+len(body)]
	enc := base64.RawURLEncoding.Strict()
	if n, err := enc.Decode(st.sig[:], st.token[len(signed)+1:]); err != nil || n != sha256.Size {
		return Identity{}, false
	}
	st.mac.Reset()
	_, _ = st.mac.Write(signed)
	if !hmac.Equal(st.mac.Sum(st.sum[:0]), st.sig[:sha256.Size]) {
		return Identity{}, false // the library's path tries the anonymous key, then refuses
	}
	n, err := enc.Decode(st.payload[:], signed[len(head)+1:])
	if err != nil {
		return Identity{}, false
	}
	var c fastClaims
	if !c.parse(st.payload[:n]) {
		return Identity{}, false
	}
	return v.fastIdentity(&c)
}

// fastIdentity applies the library's checks (with its options) and
// Validate to c; false for any failure, whose error the library's path
// names.
func (v *Verifier) fastIdentity(c *fastClaims) (Identity, bool) {
	if c.seen&keyExp == 0 || c.sub == "" || len(c.sub) > MaxSubjectBytes || ReservedSubject(c.sub) || AnonymousSubject(c.sub) {
		return Identity{}, false
	}
	if v.issuer != "" && (c.seen&keyIss == 0 || c.iss != v.issuer) {
		return Identity{}, false
	}
	if v.audience != "" && (c.seen&keyAud == 0 || c.aud != v.audience) {
		return Identity{}, false
	}
	now := v.now() // the comparisons are the library's
	exp := time.Unix(c.exp, 0)
	if !now.Before(exp.Add(v.leeway)) ||
		c.seen&keyNbf != 0 && now.Before(time.Unix(c.nbf, 0).Add(-v.leeway)) ||
		c.seen&keyIat != 0 && now.Before(time.Unix(c.iat, 0).Add(-v.leeway)) {
		return Identity{}, false
	}
	id := Identity{Subject: c.sub, Name: c.name, Admin: c.admin, ExpiresAt: exp, Email: c.email, Team: c.team}
	if c.ctx != "null" {
		id.Context = c.ctx
	}
	if id.Name == "" {
		id.Name = id.Subject
	}
	return id, true
}

// parse reads a claims object that encoding/json would decode into claims
// the same way, or returns false: the object must be valid JSON, its keys
// plain ASCII without escapes, each known key at most once and exactly
// spelled (encoding/json would also match "SUB" or "ſub"), strings without
// escapes and valid UTF-8, dates integers of at most 15 digits.
func (c *fastClaims) parse(b []byte) bool {
	if !json.Valid(b) {
		return false
	}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true
	}
	for i < len(b) {
		// A key: b[i] is '"' in valid JSON.
		end := bytes.IndexByte(b[i+1:], '"')
		if end < 0 {
			return false
		}
		key := b[i+1 : i+1+end]
		for _, ch := range key {
			if ch == '\\' || ch >= utf8.RuneSelf {
				return false
			}
		}
		i = skipSpace(b, i+end+2)
		i = skipSpace(b, i+1) // the colon
		start := i
		i = skipValue(b, i)
		if i < 0 {
			return false
		}
		if !c.set(key, b[start:i]) {
			return false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			return skipSpace(b, i+1) == len(b)
		}
		i = skipSpace(b, i+1) // the comma
	}
	return false
}

// set records one member. An unknown key is skipped unless encoding/json
// could take it for a known one.
func (c *fastClaims) set(key, val []byte) bool {
	bit, known := fastKeys[string(key)]
	if !known {
		for k := range fastKeys {
			if strings.EqualFold(k, string(key)) {
				return false
			}
		}
		return true
	}
	if c.seen&bit != 0 {
		return false // a duplicate: encoding/json keeps the last
	}
	c.seen |= bit
	switch bit {
	case keyTeams:
		return false // a list: the library's path (staff tokens)
	case keySub, keyName, keyEmail, keyTeam, keyIss, keyAud, keyJti:
		s, ok := plainString(val)
		if !ok {
			return false
		}
		switch bit {
		case keySub:
			c.sub = s
		case keyName:
			c.name = s
		case keyEmail:
			c.email = s
		case keyTeam:
			c.team = s
		case keyIss:
			c.iss = s
		case keyAud:
			c.aud = s
		}
	case keyAdmin:
		switch string(val) {
		case "true":
			c.admin = true
		case "false":
		default:
			return false
		}
	case keyCtx:
		c.ctx = string(val)
	case keyExp, keyNbf, keyIat:
		n, ok := plainInt(val)
		if !ok {
			return false
		}
		switch bit {
		case keyExp:
			c.exp = n
		case keyNbf:
			c.nbf = n
		case keyIat:
			c.iat = n
		}
	}
	return true
}

// plainString is a JSON string without escapes, of valid UTF-8.
func plainString(val []byte) (string, bool) {
	if len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
		return "", false
	}
	s := val[1 : len(val)-1]
	for _, ch := range s {
		if ch == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(s) {
		return "", false
	}
	return string(s), true
}

// plainInt is a JSON integer of at most 15 digits (exact as a float64,
// which is how the library reads dates).
func plainInt(val []byte) (int64, bool) {
	digits := val
	neg := len(digits) > 0 && digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 15 {
		return 0, false
	}
	var n int64
	for _, ch := range digits {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int64(ch-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value at b[i] (b is valid
// JSON), or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				if i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default: // a number, true, false or null
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		return i
	}
}

// skipString returns the index just past the string starting at b[i].
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}
