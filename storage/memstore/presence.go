package memstore

import (
	"context"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

// SaveLastSeen implements storage.Presence.
func (s *Store) SaveLastSeen(ctx context.Context, seen []storage.LastSeen) error {
	if len(seen) > storage.MaxLastSeenBatch {
		return storage.Errorf(storage.EINVALID, "at most %d last-seen times at once", storage.MaxLastSeenBatch)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(ctx); err != nil {
		return err
	}
	for _, l := range seen {
		if _, ok := s.convs[l.ConversationID]; !ok {
			continue
		}
		if at, ok := s.lastSeen[l.ConversationID]; !ok || l.At.After(at) {
			s.lastSeen[l.ConversationID] = l.At.UTC().Truncate(time.Microsecond)
		}
	}
	return nil
}

// LastSeen implements storage.Presence.
func (s *Store) LastSeen(ctx context.Context, ids []int64) (map[int64]time.Time, error) {
	if len(ids) > storage.MaxLastSeenBatch {
		return nil, storage.Errorf(storage.EINVALID, "at most %d conversations at once", storage.MaxLastSeenBatch)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	out := make(map[int64]time.Time)
	for _, id := range ids {
		if at, ok := s.lastSeen[id]; ok {
			out[id] = at
		}
	}
	return out, nil
}

// SaveVisitorPages implements storage.Presence.
func (s *Store) SaveVisitorPages(ctx context.Context, pages []storage.VisitorPage) error {
	latest, err := rules.VisitorPages(pages)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(ctx); err != nil {
		return err
	}
	for _, p := range latest {
		if _, ok := s.users[p.UserID]; !ok {
			continue
		}
		if old, ok := s.pages[p.UserID]; ok && old.At.After(p.At) {
			continue
		}
		s.pages[p.UserID] = p
	}
	return nil
}
