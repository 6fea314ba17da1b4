package memstore

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

// This file owns the desk's canned replies and the staff list
// (storage.Desk): CannedReplies, SaveCannedReply, DeleteCannedReply and
// StaffUsers.

// cannedReply is a stored canned reply: who saved it last is kept by id and
// named as the user is now when read, as pgstore's join does.
type cannedReply struct {
	storage.CannedReply
	updatedBy int64
}

// CannedReplies implements storage.Desk.
func (s *Store) CannedReplies(ctx context.Context) ([]storage.CannedReply, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	out := make([]storage.CannedReply, 0, len(s.canned))
	for _, r := range s.canned {
		out = append(out, s.cannedOut(r))
	}
	slices.SortFunc(out, func(a, b storage.CannedReply) int { return strings.Compare(a.Name, b.Name) })
	return out[:min(len(out), storage.MaxCannedReplies)], nil
}

// cannedOut is r as the store answers it. The caller holds s.mu.
func (s *Store) cannedOut(r cannedReply) storage.CannedReply {
	out := r.CannedReply
	out.UpdatedBy = s.ref(r.updatedBy)
	return out
}

// SaveCannedReply implements storage.Desk.
func (s *Store) SaveCannedReply(ctx context.Context, in storage.CannedReplyInput) (storage.CannedReply, error) {
	in, err := in.Normalize()
	if err != nil {
		return storage.CannedReply{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(ctx); err != nil {
		return storage.CannedReply{}, err
	}
	if err := s.checkCannedSave(in); err != nil {
		return storage.CannedReply{}, err
	}
	r := cannedReply{updatedBy: in.ActorID}
	r.ID, r.Name, r.Body, r.UpdatedAt = in.ID, in.Name, in.Body, s.timestamp()
	if r.ID == 0 {
		r.ID = nextID(&s.lastCannedID)
	}
	s.canned[r.ID] = r
	return s.cannedOut(r), nil
}

// checkCannedSave checks a normalized input against the stored replies, in
// the order pgstore's statements meet the problems: the reply saved, the
// bound, the name, the actor. The caller holds s.mu.
func (s *Store) checkCannedSave(in storage.CannedReplyInput) error {
	if _, ok := s.canned[in.ID]; in.ID != 0 && !ok {
		return storage.Errorf(storage.ENOTFOUND, "canned reply %d not found", in.ID)
	}
	if in.ID == 0 && len(s.canned) >= storage.MaxCannedReplies {
		return storage.Errorf(storage.EINVALID, "there are %d canned replies already, the most there can be", storage.MaxCannedReplies)
	}
	for _, r := range s.canned {
		if r.Name == in.Name && r.ID != in.ID {
			return storage.Errorf(storage.ECONFLICT, "another canned reply has that name")
		}
	}
	if _, ok := s.users[in.ActorID]; !ok {
		return storage.Errorf(storage.EINVALID, "user %d not found", in.ActorID)
	}
	return nil
}

// DeleteCannedReply implements storage.Desk.
func (s *Store) DeleteCannedReply(ctx context.Context, id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(ctx); err != nil {
		return err
	}
	if _, ok := s.canned[id]; !ok {
		return storage.Errorf(storage.ENOTFOUND, "canned reply %d not found", id)
	}
	delete(s.canned, id)
	return nil
}

// StaffUsers implements storage.Desk. It reads every user on each call:
// fine for the development store.
func (s *Store) StaffUsers(ctx context.Context, limit int) ([]storage.UserRef, error) {
	limit, err := rules.StaffLimit(limit)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	out := []storage.UserRef{}
	for _, u := range s.users {
		if u.IsAdmin {
			out = append(out, storage.UserRef{ID: u.ID, ExternalID: u.ExternalID, Name: u.Name})
		}
	}
	slices.SortFunc(out, func(a, b storage.UserRef) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out[:min(len(out), limit)], nil
}
