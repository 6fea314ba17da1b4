// This file holds API keys: secrets that servers (a bot, a CRM) present to
// the REST API instead of a token. Each key authenticates as its bot: a
// staff user that exists for keys only (external id BotExternalIDPrefix +
// the key's name in lower case), named as the key, so that what a key does
// (a reply, an assignment) shows under that name. The store keeps a key's
// SHA-256 hash only, never the key.

package storage

import (
	"context"
	"crypto/sha256"
	"strings"
	"time"
)

// Limits and forms of API keys.
const (
	// BotExternalIDPrefix starts the external id of every key's bot user.
	// No token may carry a sub with it (the stores refuse it in UpsertUser
	// and Connect, auth.Verifier refuses the token), so a token never
	// becomes a bot, nor a bot a token's user.
	BotExternalIDPrefix = "apikey:"
	// MaxAPIKeyNameRunes bounds a key's name (its characters are ASCII).
	MaxAPIKeyNameRunes = 64
	// MaxAPIKeys bounds the keys not revoked: creating one more is refused
	// with EINVALID.
	MaxAPIKeys = 100
	// MaxAPIKeyList bounds APIKeys' answer.
	MaxAPIKeyList = 500
)

// APIKey is a stored API key, without its secret.
type APIKey struct {
	ID int64
	// Name says whose key it is ("crm"): 1 to MaxAPIKeyNameRunes letters,
	// digits, '-', '_' or spaces, unique (in lower case) among the keys not
	// revoked. It is the bot's display name.
	Name string
	// Bot is the staff user the key authenticates as.
	Bot       UserRef
	CreatedAt time.Time
	// CreatedBy is the staff user who created it over the REST API; nil
	// when it was created from the command line.
	CreatedBy *UserRef
	// LastUsedAt is when it last authenticated a request, to the minute
	// (see TouchAPIKey); nil when never.
	LastUsedAt *time.Time
	// RevokedAt is when it was revoked; nil while it is valid.
	RevokedAt *time.Time
}

// NewAPIKey is a key to store.
type NewAPIKey struct {
	Name string
	// Hash is the key's SHA-256 (auth.HashAPIKey): the stores never see
	// the key itself.
	Hash []byte
	// CreatedBy is the staff user creating it; 0 for none (the command line).
	CreatedBy int64
}

// BotExternalID is the external id of the bot of the keys named name
// (normalized): keys that share a name in turn (one revoked, then a new one)
// share their bot.
func BotExternalID(name string) string {
	return BotExternalIDPrefix + strings.ToLower(name)
}

// IsBotExternalID reports whether id is reserved for keys' bots: whether it
// starts with BotExternalIDPrefix, in any case.
func IsBotExternalID(id string) bool {
	return len(id) >= len(BotExternalIDPrefix) && strings.EqualFold(id[:len(BotExternalIDPrefix)], BotExternalIDPrefix)
}

// NormalizeAPIKeyName checks a key's name and returns it trimmed of
// surrounding white space: 1 to MaxAPIKeyNameRunes ASCII letters, digits,
// '-', '_' or spaces. EINVALID otherwise, with a message that names the rule
// and quotes nothing.
func NormalizeAPIKeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > MaxAPIKeyNameRunes {
		return "", Errorf(EINVALID, "an API key's name is 1 to %d characters", MaxAPIKeyNameRunes)
	}
	for i := range len(name) {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ' ') {
			return "", Errorf(EINVALID, "an API key's name has only letters a-z, digits, -, _ and spaces")
		}
	}
	return name, nil
}

// Normalize checks in (see NormalizeAPIKeyName; Hash is sha256.Size
// bytes; CreatedBy is not negative) and returns it with its name trimmed.
func (in NewAPIKey) Normalize() (NewAPIKey, error) {
	name, err := NormalizeAPIKeyName(in.Name)
	if err != nil {
		return in, err
	}
	if len(in.Hash) != sha256.Size {
		return in, Errorf(EINVALID, "an API key's hash is %d bytes", sha256.Size)
	}
	if in.CreatedBy < 0 {
		return in, Errorf(EINVALID, "creator id must not be negative")
	}
	in.Name = name
	return in, nil
}

// APIKeys stores API keys.
type APIKeys interface {
	// CreateAPIKey stores a key and, in the same transaction, creates its
	// bot (a staff user with external id BotExternalID(name), named as the
	// key) or renames the existing one, and returns the key as stored.
	// EINVALID for a name or hash that NewAPIKey.Normalize refuses, an
	// unknown creator, or a creation beyond MaxAPIKeys keys not revoked;
	// ECONFLICT when a key not revoked has the name (compared in lower
	// case), a key has the hash, or a user who is no key's bot has the
	// bot's external id. Concurrent creations never exceed MaxAPIKeys nor
	// share a name.
	CreateAPIKey(ctx context.Context, in NewAPIKey) (APIKey, error)

	// APIKeyByHash returns the key whose hash is hash, if it is not
	// revoked; ENOTFOUND otherwise (unknown or revoked).
	APIKeyByHash(ctx context.Context, hash []byte) (APIKey, error)

	// APIKeys returns the keys, newest first (by id), at most
	// MaxAPIKeyList: those not revoked, and the revoked ones too when
	// includeRevoked. An empty slice, not nil, when there are none.
	APIKeys(ctx context.Context, includeRevoked bool) ([]APIKey, error)

	// RevokeAPIKey revokes a key (from now on APIKeyByHash does not find
	// it) and returns it as revoked. Revoking a revoked key changes nothing.
	// ENOTFOUND if there is no key with that id. Its bot stays (its
	// messages keep their sender), and a new key with the same name gets
	// the same bot.
	RevokeAPIKey(ctx context.Context, id int64) (APIKey, error)

	// TouchAPIKey records that a key was used at `at`: its LastUsedAt
	// becomes at unless it is later already. An unknown id changes nothing.
	TouchAPIKey(ctx context.Context, id int64, at time.Time) error
}
