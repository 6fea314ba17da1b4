// Package memstore is an in-memory storage.Store.
//
// It persists nothing: everything is lost when the process exits. It serves
// one process only: two processes each have their own, unrelated data. Use it
// for development and for tests of packages above storage; use
// storage/pgstore in production. It passes the same conformance suite
// (storage/storetest) as pgstore, so the two behave alike.
package memstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"slices"
	"sync"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/internal/rules"
)

var _ storage.Store = (*Store)(nil)

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// Now returns the current time. Nil means time.Now. Times are stored in
	// UTC with microsecond precision, like PostgreSQL's timestamptz. Each
	// call that writes takes one timestamp, strictly later than the previous
	// one (1µs later if the clock did not advance), so activity order is
	// never a tie between calls.
	Now func() time.Time
}

// Store is an in-memory storage.Store guarded by one mutex. The zero value is
// not usable; call New.
type Store struct {
	now func() time.Time
	id  string // StoreID

	mu      sync.RWMutex
	closed  bool
	lastNow time.Time

	// The last id handed out in each sequence (see New).
	lastUserID int64
	lastConvID int64
	lastMsgID  int64

	users     map[int64]storage.User
	userByExt map[string]int64
	convs     map[int64]*conversation
	convByUsr map[int64]int64

	lastEventID int64             // the last event id handed out (see New)
	marks       map[markKey]int64 // read marks (desk.go)
	receipts    map[int64]storage.ReadReceipts
	lastSeen    map[int64]time.Time           // presence.go
	pages       map[int64]storage.VisitorPage // by user id (presence.go)

	lastCannedID int64                 // the last canned reply id handed out (see New)
	canned       map[int64]cannedReply // canned replies by id (canned.go)

	lastAPIKeyID int64             // the last API key id handed out (see New)
	apiKeys      map[int64]*apiKey // API keys by id (apikeys.go)
}

// conversation is one conversation and its messages; messages[i].Seq == i+1.
type conversation struct {
	storage.Conversation
	messages []storage.Message
	// byClientID maps a (sender, client message id) to its message's index.
	byClientID map[clientKey]int
	// events are the recorded desk changes, in recorded (and after_seq)
	// order.
	events []storage.Event
}

type clientKey struct {
	senderID    int64
	clientMsgID string
}

// MaxIDOrigin caps the origin of a Store's id sequences (see New): 2^52,
// which leaves 2^52 ids per sequence below 2^53, the largest integer a
// JavaScript number holds exactly. The clock reaches it in 2112.
const MaxIDOrigin = 1 << 52

// New returns an empty Store.
//
// Users, conversations, messages, desk events, canned replies and API keys
// are numbered by six independent sequences, each starting after the same origin: the time of New in
// microseconds since 1970 (Options.Now; clamped to 0..MaxIDOrigin). So the
// ids of a Store never meet those of a Store created earlier (by this
// process or by an earlier run of the program) as long as that earlier Store
// handed out fewer ids of each kind than microseconds passed between the two
// calls of New, that is fewer than one per microsecond of its life, and the
// clock did not step back across the restart. A restarted development server
// thus never gives a new visitor an old visitor's conversation id, which a
// page or a staff member may still hold. Ids stay below 2^53 (JavaScript's
// safe integers) until 2112.
func New(opts Options) *Store {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	origin := min(max(now().UnixMicro(), 0), MaxIDOrigin)
	return &Store{
		now:          now,
		id:           "mem-" + rand.Text(),
		lastUserID:   origin,
		lastConvID:   origin,
		lastMsgID:    origin,
		lastEventID:  origin,
		lastCannedID: origin,
		lastAPIKeyID: origin,
		users:        make(map[int64]storage.User),
		userByExt:    make(map[string]int64),
		convs:        make(map[int64]*conversation),
		convByUsr:    make(map[int64]int64),
		marks:        make(map[markKey]int64),
		receipts:     make(map[int64]storage.ReadReceipts),
		lastSeen:     make(map[int64]time.Time),
		pages:        make(map[int64]storage.VisitorPage),
		canned:       make(map[int64]cannedReply),
		apiKeys:      make(map[int64]*apiKey),
	}
}

// timestamp returns the current time as the store keeps it (UTC, µs),
// strictly after the previous one. The caller holds s.mu for writing.
func (s *Store) timestamp() time.Time {
	t := s.now().UTC().Truncate(time.Microsecond).Round(0)
	if !t.After(s.lastNow) {
		t = s.lastNow.Add(time.Microsecond)
	}
	s.lastNow = t
	return t
}

// nextID advances the sequence *last and returns its new value. The caller
// holds s.mu for writing.
func nextID(last *int64) int64 {
	*last++
	return *last
}

var errClosed = storage.Errorf(storage.EUNAVAILABLE, "memstore: store is closed")

// checkOpen returns an EUNAVAILABLE error once the store is closed or when
// ctx is done. The caller holds s.mu.
func (s *Store) checkOpen(ctx context.Context) error {
	if s.closed {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return storage.Unavailable("memstore", err)
	}
	return nil
}

// UpsertUser implements storage.Store.
func (s *Store) UpsertUser(ctx context.Context, in storage.UserInput) (storage.User, error) {
	if err := rules.UserExternalID(in.ExternalID); err != nil {
		return storage.User{}, err
	}
	name := rules.Name(in.Name, in.ExternalID)
	email, details, err := rules.UserDetails(in.Email, in.Context)
	if err != nil {
		return storage.User{}, err
	}
	if err := rules.Team(in.Team); err != nil {
		return storage.User{}, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(ctx); err != nil {
		return storage.User{}, err
	}
	if id, ok := s.userByExt[in.ExternalID]; ok {
		u := s.users[id]
		u.Name, u.IsAdmin, u.Email, u.Context, u.Team = name, in.IsAdmin, email, details, in.Team
		s.users[id] = u
		return u, nil
	}
	u := storage.User{
		ID:         nextID(&s.lastUserID),
		ExternalID: in.ExternalID,
		Name:       name,
		IsAdmin:    in.IsAdmin,
		CreatedAt:  s.timestamp(),
		Email:      email,
		Context:    details,
		Team:       in.Team,
	}
	s.users[u.ID] = u
	s.userByExt[u.ExternalID] = u.ID
	return u, nil
}

// User implements storage.Store.
func (s *Store) User(ctx context.Context, id int64) (storage.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return storage.User{}, err
	}
	u, ok := s.users[id]
	if !ok {
		return storage.User{}, storage.Errorf(storage.ENOTFOUND, "user %d not found", id)
	}
	return u, nil
}

// Connect implements storage.Store.
func (s *Store) Connect(ctx context.Context, in storage.UserInput) (storage.User, storage.Conversation, error) {
	u, err := s.UpsertUser(ctx, in)
	if err != nil || u.IsAdmin {
		return u, storage.Conversation{}, err
	}
	c, err := s.EnsureConversation(ctx, u.ID)
	if err != nil {
		return u, c, err
	}
	r, err := s.ReadReceipts(ctx, c.ID)
	c.Receipts = &r
	return u, c, err
}

// MergeUser implements storage.Store.
func (s *Store) MergeUser(ctx context.Context, from, into int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(ctx); err != nil {
		return err
	}
	u, ok := s.users[from]
	if !ok {
		return storage.Errorf(storage.ENOTFOUND, "user %d not found", from)
	}
	if _, ok := s.users[into]; !ok || from == into {
		return storage.Errorf(storage.ENOTFOUND, "user %d not found", into)
	}
	if u.MergedInto != 0 && u.MergedInto != into {
		return storage.Errorf(storage.ECONFLICT, "user %d was merged into user %d already", from, u.MergedInto)
	}
	u.MergedInto = into
	s.users[from] = u
	return nil
}

// EnsureConversation implements storage.Store.
func (s *Store) EnsureConversation(ctx context.Context, userID int64) (storage.Conversation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(ctx); err != nil {
		return storage.Conversation{}, err
	}
	if id, ok := s.convByUsr[userID]; ok {
		return s.convs[id].snapshot(), nil
	}
	if _, ok := s.users[userID]; !ok {
		return storage.Conversation{}, storage.Errorf(storage.ENOTFOUND, "user %d not found", userID)
	}
	c := &conversation{
		Conversation: storage.Conversation{
			ID:        nextID(&s.lastConvID),
			UserID:    userID,
			CreatedAt: s.timestamp(),
			Status:    storage.StatusOpen,
		},
		byClientID: make(map[clientKey]int),
	}
	s.convs[c.ID] = c
	s.convByUsr[userID] = c.ID
	return c.snapshot(), nil
}

// Conversation implements storage.Store.
func (s *Store) Conversation(ctx context.Context, id int64) (storage.Conversation, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return storage.Conversation{}, err
	}
	c, ok := s.convs[id]
	if !ok {
		return storage.Conversation{}, storage.Errorf(storage.ENOTFOUND, "conversation %d not found", id)
	}
	return c.snapshot(), nil
}

// ConversationStates implements storage.Store.
func (s *Store) ConversationStates(ctx context.Context, ids []int64) ([]storage.ConversationState, error) {
	if len(ids) > storage.MaxStateBatch {
		return nil, storage.Errorf(storage.EINVALID, "%d conversations asked at once, at most %d", len(ids), storage.MaxStateBatch)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	var out []storage.ConversationState
	for _, id := range ids {
		c, ok := s.convs[id]
		if !ok {
			continue
		}
		st := storage.ConversationState{Conversation: c.snapshot(), Visitor: s.users[c.UserID]}
		r := s.receipts[id]
		st.Conversation.Receipts = &r
		if a := c.AssigneeID; a != nil {
			u := s.users[*a]
			st.Assignee = &u
		}
		out = append(out, st)
	}
	return out, nil
}

// snapshot returns a copy of the conversation that shares no memory with it.
func (c *conversation) snapshot() storage.Conversation {
	out := c.Conversation
	if out.LastMessageAt != nil {
		t := *out.LastMessageAt
		out.LastMessageAt = &t
	}
	if out.AssigneeID != nil {
		id := *out.AssigneeID
		out.AssigneeID = &id
	}
	return out
}

// AppendMessages implements storage.Store. All messages of one call share one
// CreatedAt, as they share one transaction timestamp in pgstore. A visitor's
// new message reopens its pending or resolved conversation (reopen).
func (s *Store) AppendMessages(ctx context.Context, msgs []storage.NewMessage) ([]storage.AppendResult, error) {
	results := make([]storage.AppendResult, len(msgs))
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	now := s.timestamp()
	for i, in := range msgs {
		m, err := rules.NewMessage(in)
		if err != nil {
			results[i].Err = err
			continue
		}
		c, ok := s.convs[m.ConversationID]
		if !ok {
			results[i].Err = storage.Errorf(storage.ENOTFOUND, "conversation %d not found", m.ConversationID)
			continue
		}
		if _, ok := s.users[m.SenderID]; !ok {
			results[i].Err = storage.Errorf(storage.ENOTFOUND, "sender %d not found", m.SenderID)
			continue
		}
		key := clientKey{senderID: m.SenderID, clientMsgID: m.ClientMsgID}
		if m.ClientMsgID != "" {
			if idx, ok := c.byClientID[key]; ok {
				results[i] = storage.AppendResult{Message: c.messages[idx], Duplicate: true}
				continue
			}
		}
		stored := storage.Message{
			ID:             nextID(&s.lastMsgID),
			ConversationID: c.ID,
			Seq:            c.LastSeq + 1,
			SenderID:       m.SenderID,
			SenderName:     m.SenderName,
			SenderIsAdmin:  m.SenderIsAdmin,
			Body:           m.Body,
			ClientMsgID:    m.ClientMsgID,
			CreatedAt:      now,
		}
		c.messages = append(c.messages, stored)
		if m.ClientMsgID != "" {
			c.byClientID[key] = len(c.messages) - 1
		}
		c.LastSeq = stored.Seq
		at := now
		c.LastMessageAt = &at
		results[i].Message = stored
		if !m.SenderIsAdmin && c.Status != storage.StatusOpen {
			results[i].Reopened = s.reopen(c, stored)
		}
	}
	return results, nil
}

// Messages implements storage.Store. ENOTFOUND if the conversation does not
// exist, EINVALID for negative page fields.
func (s *Store) Messages(ctx context.Context, conversationID int64, p storage.Page) ([]storage.Message, error) {
	b, err := rules.Page(p)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	c, ok := s.convs[conversationID]
	if !ok {
		return nil, storage.Errorf(storage.ENOTFOUND, "conversation %d not found", conversationID)
	}
	// Seqs in (lo, hi) exclusive; messages[seq-1] holds seq.
	lo, hi := b.AfterSeq, c.LastSeq+1
	if b.BeforeSeq > 0 && b.BeforeSeq < hi {
		hi = b.BeforeSeq
	}
	if hi-lo <= 1 {
		return []storage.Message{}, nil
	}
	first, last := lo+1, hi-1 // inclusive seq range
	if last-first+1 > int64(b.Limit) {
		if b.Newest {
			first = last - int64(b.Limit) + 1
		} else {
			last = first + int64(b.Limit) - 1
		}
	}
	return slices.Clone(c.messages[first-1 : last]), nil
}

// Inbox implements storage.Store.
func (s *Store) Inbox(ctx context.Context, limit int) ([]storage.InboxEntry, error) {
	return s.inboxPage(ctx, storage.InboxCursor{}, rules.InboxLimit(limit))
}

// InboxPage implements storage.Store. It sorts the conversations after the
// cursor on each call: fine for the development store.
func (s *Store) InboxPage(ctx context.Context, after storage.InboxCursor, limit int) ([]storage.InboxEntry, error) {
	limit, err := rules.InboxPageLimit(limit)
	if err != nil {
		return nil, err
	}
	if err := rules.InboxCursor(after); err != nil {
		return nil, err
	}
	return s.inboxPage(ctx, after, limit)
}

// inboxPage returns up to limit (resolved) conversations with messages
// after the (valid) cursor, in inbox order: the view without filters or
// viewer.
func (s *Store) inboxPage(ctx context.Context, after storage.InboxCursor, limit int) ([]storage.InboxEntry, error) {
	return s.view(ctx, storage.InboxQuery{Assignee: storage.AssigneeAny, After: after, Limit: limit}, false)
}

// Cursor is the conversation's position in the inbox; it has a message.
func (c *conversation) Cursor() storage.InboxCursor {
	return storage.InboxCursor{LastMessageAt: *c.LastMessageAt, ConversationID: c.ID}
}

// inboxCompare compares the inbox positions of c (which has a message) and
// p: negative when c comes first (more recent activity, or the same and a
// higher id), positive when it comes after p.
func inboxCompare(c *conversation, p storage.InboxCursor) int {
	if d := p.LastMessageAt.Compare(*c.LastMessageAt); d != 0 {
		return d
	}
	return cmp.Compare(p.ConversationID, c.ID)
}

// StoreID implements storage.Store: "mem-" and 26 random characters, new
// for each Store.
func (s *Store) StoreID() string { return s.id }

// Ping implements storage.Store: nil until the store is closed.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.checkOpen(ctx)
}

// Close implements storage.Store. Afterwards every method returns
// EUNAVAILABLE. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
