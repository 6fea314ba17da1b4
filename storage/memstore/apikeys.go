package memstore

import (
	"cmp"
	"context"
	"crypto/subtle"
	"slices"
	"strings"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// This file owns API keys (storage.APIKeys).

// apiKey is a stored key: its bot and creator are kept by id and named as
// the users are now when read, as pgstore's join does.
type apiKey struct {
	storage.APIKey
	hash      []byte
	bot       int64
	createdBy int64 // 0: none
}

// apiKeyOut is k as the store answers it. The caller holds s.mu.
func (s *Store) apiKeyOut(k *apiKey) storage.APIKey {
	out := k.APIKey
	out.Bot = s.ref(k.bot)
	if k.createdBy != 0 {
		r := s.ref(k.createdBy)
		out.CreatedBy = &r
	}
	if k.LastUsedAt != nil {
		t := *k.LastUsedAt
		out.LastUsedAt = &t
	}
	if k.RevokedAt != nil {
		t := *k.RevokedAt
		out.RevokedAt = &t
	}
	return out
}

// CreateAPIKey implements storage.APIKeys, checking in pgstore's order:
// the name, the bound, the bot's external id, the hash, the creator.
func (s *Store) CreateAPIKey(ctx context.Context, in storage.NewAPIKey) (storage.APIKey, error) {
	in, err := in.Normalize()
	if err != nil {
		return storage.APIKey{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(ctx); err != nil {
		return storage.APIKey{}, err
	}
	active := 0
	for _, k := range s.apiKeys {
		if k.RevokedAt != nil {
			continue
		}
		active++
		if strings.EqualFold(k.Name, in.Name) {
			return storage.APIKey{}, storage.Errorf(storage.ECONFLICT, "another API key has that name")
		}
	}
	if active >= storage.MaxAPIKeys {
		return storage.APIKey{}, storage.Errorf(storage.EINVALID, "there are %d API keys already, the most there can be", storage.MaxAPIKeys)
	}
	ext := storage.BotExternalID(in.Name)
	botID, exists := s.userByExt[ext]
	if exists && !s.isBot(botID) {
		return storage.APIKey{}, storage.Errorf(storage.ECONFLICT, "a user who is not an API key's bot has the external id %s", ext)
	}
	for _, k := range s.apiKeys {
		if subtle.ConstantTimeCompare(k.hash, in.Hash) == 1 {
			return storage.APIKey{}, storage.Errorf(storage.ECONFLICT, "another API key has that hash")
		}
	}
	if _, ok := s.users[in.CreatedBy]; in.CreatedBy != 0 && !ok {
		return storage.APIKey{}, storage.Errorf(storage.EINVALID, "user %d not found", in.CreatedBy)
	}
	now := s.timestamp()
	if exists {
		u := s.users[botID]
		u.Name, u.IsAdmin = in.Name, true
		s.users[botID] = u
	} else {
		botID = nextID(&s.lastUserID)
		s.users[botID] = storage.User{ID: botID, ExternalID: ext, Name: in.Name, IsAdmin: true, CreatedAt: now}
		s.userByExt[ext] = botID
	}
	k := &apiKey{hash: slices.Clone(in.Hash), bot: botID, createdBy: in.CreatedBy}
	k.ID, k.Name, k.CreatedAt = nextID(&s.lastAPIKeyID), in.Name, now
	s.apiKeys[k.ID] = k
	return s.apiKeyOut(k), nil
}

// isBot reports whether a key names user id as its bot. The caller holds
// s.mu.
func (s *Store) isBot(id int64) bool {
	for _, k := range s.apiKeys {
		if k.bot == id {
			return true
		}
	}
	return false
}

// APIKeyByHash implements storage.APIKeys. It reads every key: there are
// few, and this is the development store.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (storage.APIKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return storage.APIKey{}, err
	}
	for _, k := range s.apiKeys {
		if k.RevokedAt == nil && subtle.ConstantTimeCompare(k.hash, hash) == 1 {
			return s.apiKeyOut(k), nil
		}
	}
	return storage.APIKey{}, storage.Errorf(storage.ENOTFOUND, "no such API key")
}

// APIKeys implements storage.APIKeys.
func (s *Store) APIKeys(ctx context.Context, includeRevoked bool) ([]storage.APIKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	out := []storage.APIKey{}
	for _, k := range s.apiKeys {
		if includeRevoked || k.RevokedAt == nil {
			out = append(out, s.apiKeyOut(k))
		}
	}
	slices.SortFunc(out, func(a, b storage.APIKey) int { return cmp.Compare(b.ID, a.ID) })
	return out[:min(len(out), storage.MaxAPIKeyList)], nil
}

// RevokeAPIKey implements storage.APIKeys.
func (s *Store) RevokeAPIKey(ctx context.Context, id int64) (storage.APIKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(ctx); err != nil {
		return storage.APIKey{}, err
	}
	k, ok := s.apiKeys[id]
	if !ok {
		return storage.APIKey{}, storage.Errorf(storage.ENOTFOUND, "API key %d not found", id)
	}
	if k.RevokedAt == nil {
		t := s.timestamp()
		k.RevokedAt = &t
	}
	return s.apiKeyOut(k), nil
}

// TouchAPIKey implements storage.APIKeys.
func (s *Store) TouchAPIKey(ctx context.Context, id int64, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(ctx); err != nil {
		return err
	}
	k, ok := s.apiKeys[id]
	if !ok {
		return nil
	}
	at = at.UTC().Truncate(time.Microsecond).Round(0)
	if k.LastUsedAt == nil || k.LastUsedAt.Before(at) {
		k.LastUsedAt = &at
	}
	return nil
}
