package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// API keys authenticate servers (a bot, a CRM) to the REST API. A key is
// APIKeyPrefix followed by 32 random bytes in unpadded base64url (43
// characters); the server keeps only its SHA-256 (HashAPIKey) and shows the
// key once, when it is made.
const (
	// APIKeyPrefix starts every key: a key is recognizable in a
	// configuration file or a leak report, and never taken for a JWT (which
	// starts with "eyJ").
	APIKeyPrefix = "gck_"
	// apiKeyRandomBytes is a key's entropy: 256 bits.
	apiKeyRandomBytes = 32
	// ReservedSubjectPrefix starts the external ids of API keys' bots
	// (storage.BotExternalIDPrefix): a token whose sub starts with it, in
	// any case, is refused, so that no token acts as a bot.
	ReservedSubjectPrefix = "apikey:"
)

// NewAPIKey returns a new random key.
func NewAPIKey() string {
	b := make([]byte, apiKeyRandomBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// IsAPIKey reports whether a bearer credential is meant as an API key (it
// starts with APIKeyPrefix), not as a JWT. It says nothing of its validity.
func IsAPIKey(credential string) bool {
	return strings.HasPrefix(credential, APIKeyPrefix)
}

// HashAPIKey is what the server stores and looks keys up by: the key's
// SHA-256. A key holds 256 random bits, so a fast hash is enough: unlike a
// password, it cannot be found from its hash by trying likely keys.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// ReservedSubject reports whether a token's sub is reserved for API keys'
// bots: whether it starts with ReservedSubjectPrefix, in any case.
func ReservedSubject(sub string) bool {
	return len(sub) >= len(ReservedSubjectPrefix) && strings.EqualFold(sub[:len(ReservedSubjectPrefix)], ReservedSubjectPrefix)
}
