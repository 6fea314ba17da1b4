// Package rules holds the input rules that every storage.Store enforces, so
// that storage/pgstore and storage/memstore apply exactly the same ones.
//
// Error messages never contain message bodies: they name the field and the
// rule that was broken, nothing else.
package rules

import (
	"bytes"
	"encoding/json"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/grainchat/grainchat/storage"
)

// ExternalID checks a user's external id: not empty, at most
// storage.MaxExternalIDBytes bytes, valid UTF-8 without NUL bytes. It
// returns an EINVALID *storage.Error otherwise.
func ExternalID(id string) error {
	switch {
	case id == "":
		return storage.Errorf(storage.EINVALID, "external id is empty")
	case len(id) > storage.MaxExternalIDBytes:
		return storage.Errorf(storage.EINVALID, "external id is longer than %d bytes", storage.MaxExternalIDBytes)
	case !utf8.ValidString(id):
		return storage.Errorf(storage.EINVALID, "external id is not valid UTF-8")
	case strings.IndexByte(id, 0) >= 0:
		return storage.Errorf(storage.EINVALID, "external id contains a NUL byte")
	}
	return nil
}

// UserExternalID checks the external id of a user a token names
// (UpsertUser, Connect): ExternalID's rules, and not one reserved for API
// keys' bots (storage.IsBotExternalID), which only CreateAPIKey writes.
func UserExternalID(id string) error {
	if err := ExternalID(id); err != nil {
		return err
	}
	if storage.IsBotExternalID(id) {
		return storage.Errorf(storage.EINVALID, "external ids starting with %q are reserved for API keys", storage.BotExternalIDPrefix)
	}
	return nil
}

// Name returns name cleaned for storage: invalid UTF-8 sequences are replaced
// by U+FFFD, NUL bytes are removed, an empty result becomes fallback, and the
// result is truncated to storage.MaxNameBytes bytes on a rune boundary.
// Display names come from tokens and are never refused.
func Name(name, fallback string) string {
	name = strings.ToValidUTF8(name, "\uFFFD")
	name = strings.ReplaceAll(name, "\x00", "")
	if name == "" {
		name = fallback
	}
	return TruncateUTF8(name, storage.MaxNameBytes)
}

// TruncateUTF8 returns the longest prefix of s that is at most n bytes long
// and does not cut a rune in two. s must be valid UTF-8.
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// NewMessage checks m and returns it normalized (SenderName cleaned as by
// Name, with no fallback). The body must be non-empty valid UTF-8 without NUL
// bytes; the client message id, when set, at most storage.MaxClientMsgIDBytes
// bytes of valid UTF-8 without NUL bytes. Otherwise it returns an EINVALID
// *storage.Error. It does not check that the conversation or sender exist.
func NewMessage(m storage.NewMessage) (storage.NewMessage, error) {
	switch {
	case m.Body == "":
		return m, storage.Errorf(storage.EINVALID, "message body is empty")
	case !utf8.ValidString(m.Body):
		return m, storage.Errorf(storage.EINVALID, "message body is not valid UTF-8")
	case strings.IndexByte(m.Body, 0) >= 0:
		return m, storage.Errorf(storage.EINVALID, "message body contains a NUL byte")
	case len(m.ClientMsgID) > storage.MaxClientMsgIDBytes:
		return m, storage.Errorf(storage.EINVALID, "client message id is longer than %d bytes", storage.MaxClientMsgIDBytes)
	case !utf8.ValidString(m.ClientMsgID):
		return m, storage.Errorf(storage.EINVALID, "client message id is not valid UTF-8")
	case strings.IndexByte(m.ClientMsgID, 0) >= 0:
		return m, storage.Errorf(storage.EINVALID, "client message id contains a NUL byte")
	}
	m.SenderName = Name(m.SenderName, "")
	return m, nil
}

// Bounds is a storage.Page resolved into explicit limits.
type Bounds struct {
	// AfterSeq is the exclusive lower bound (0: from the first message).
	AfterSeq int64
	// BeforeSeq is the exclusive upper bound (0: no upper bound).
	BeforeSeq int64
	// Limit is the page size, 1..storage.MaxPageSize.
	Limit int
	// Newest is true when the page holds the newest Limit messages before
	// BeforeSeq rather than the oldest after AfterSeq.
	Newest bool
}

// Page resolves p: Limit 0 becomes storage.DefaultPageSize, more than
// storage.MaxPageSize is capped. Negative bounds or limit are EINVALID.
func Page(p storage.Page) (Bounds, error) {
	if p.AfterSeq < 0 || p.BeforeSeq < 0 {
		return Bounds{}, storage.Errorf(storage.EINVALID, "page bounds must not be negative")
	}
	if p.Limit < 0 {
		return Bounds{}, storage.Errorf(storage.EINVALID, "page limit must not be negative")
	}
	limit := p.Limit
	switch {
	case limit == 0:
		limit = storage.DefaultPageSize
	case limit > storage.MaxPageSize:
		limit = storage.MaxPageSize
	}
	return Bounds{
		AfterSeq:  p.AfterSeq,
		BeforeSeq: p.BeforeSeq,
		Limit:     limit,
		Newest:    p.BeforeSeq > 0 && p.AfterSeq == 0,
	}, nil
}

// InboxLimit resolves Inbox's limit: <= 0 or > storage.MaxInboxSize means
// storage.MaxInboxSize.
func InboxLimit(limit int) int {
	if limit <= 0 || limit > storage.MaxInboxSize {
		return storage.MaxInboxSize
	}
	return limit
}

// InboxPageLimit resolves InboxPage's limit: 0 means
// storage.DefaultInboxPage, more than storage.MaxInboxPage is capped, and a
// negative limit is EINVALID.
func InboxPageLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, storage.Errorf(storage.EINVALID, "inbox page limit must not be negative")
	case limit == 0:
		return storage.DefaultInboxPage, nil
	case limit > storage.MaxInboxPage:
		return storage.MaxInboxPage, nil
	}
	return limit, nil
}

// StaffLimit resolves StaffUsers' limit: 0 means storage.MaxStaffUsers,
// more than storage.MaxStaffUsers is capped, and a negative limit is
// EINVALID.
func StaffLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, storage.Errorf(storage.EINVALID, "staff list limit must not be negative")
	case limit == 0 || limit > storage.MaxStaffUsers:
		return storage.MaxStaffUsers, nil
	}
	return limit, nil
}

// Cursor times must lie within what both stores keep exactly: PostgreSQL's
// timestamptz reaches further, but these years are more than any activity
// time needs, and Go formats them without surprises.
var (
	minCursorTime = time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC)
	maxCursorTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// InboxCursor checks an InboxPage cursor: the zero cursor, or a
// ConversationID > 0 with a LastMessageAt in whole microseconds between the
// years 1 and 9999. It returns an EINVALID *storage.Error otherwise.
func InboxCursor(c storage.InboxCursor) error {
	switch {
	case c.IsZero():
		return nil
	case c.ConversationID <= 0:
		return storage.Errorf(storage.EINVALID, "inbox cursor: conversation id must be positive")
	case c.LastMessageAt.IsZero():
		return storage.Errorf(storage.EINVALID, "inbox cursor: time is missing")
	case c.LastMessageAt.Nanosecond()%1000 != 0:
		return storage.Errorf(storage.EINVALID, "inbox cursor: time must be in whole microseconds")
	case c.LastMessageAt.Before(minCursorTime) || c.LastMessageAt.After(maxCursorTime):
		return storage.Errorf(storage.EINVALID, "inbox cursor: time out of range")
	}
	return nil
}

// UserDetails checks a token's email and ctx claims (storage.UserInput's
// Email and Context) and returns them as stored: the email unchanged, the
// context as canonical JSON (keys sorted, no spaces; "" for none). EINVALID
// for an email that is not one plain address (local@domain, no name, no
// spaces) or longer than storage.MaxEmailBytes, or a context that is not a
// JSON object of at most storage.MaxContextKeys keys (each 1 to
// storage.MaxContextKeyRunes characters) whose values are strings (at most
// storage.MaxContextValueRunes characters), numbers, booleans or null, or
// whose canonical form is longer than storage.MaxContextBytes.
func UserDetails(email, ctx string) (string, string, error) {
	if email != "" {
		a, err := mail.ParseAddress(email)
		switch {
		case len(email) > storage.MaxEmailBytes:
			return "", "", storage.Errorf(storage.EINVALID, "email is longer than %d bytes", storage.MaxEmailBytes)
		case err != nil || a.Name != "" || a.Address != email:
			return "", "", storage.Errorf(storage.EINVALID, "email is not one plain address")
		}
	}
	if ctx == "" {
		return email, "", nil
	}
	dec := json.NewDecoder(strings.NewReader(ctx))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil || dec.More() {
		return "", "", storage.Errorf(storage.EINVALID, "context is not a JSON object")
	}
	if len(obj) > storage.MaxContextKeys {
		return "", "", storage.Errorf(storage.EINVALID, "context has more than %d keys", storage.MaxContextKeys)
	}
	for k, v := range obj {
		if n := utf8.RuneCountInString(k); n == 0 || n > storage.MaxContextKeyRunes {
			return "", "", storage.Errorf(storage.EINVALID, "context keys must have 1 to %d characters", storage.MaxContextKeyRunes)
		}
		switch v := v.(type) {
		case string:
			if utf8.RuneCountInString(v) > storage.MaxContextValueRunes {
				return "", "", storage.Errorf(storage.EINVALID, "context value of %q is longer than %d characters", k, storage.MaxContextValueRunes)
			}
		case json.Number, bool, nil:
		default:
			return "", "", storage.Errorf(storage.EINVALID, "context value of %q is not a string, number, boolean or null", k)
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return "", "", storage.Errorf(storage.EINVALID, "context: %v", err)
	}
	canon := strings.TrimSuffix(b.String(), "\n")
	if len(canon) > storage.MaxContextBytes {
		return "", "", storage.Errorf(storage.EINVALID, "context is longer than %d bytes", storage.MaxContextBytes)
	}
	return email, canon, nil
}

// VisitorPages checks a SaveVisitorPages batch against storage's bounds
// (storage.VisitorPage) and returns each user's latest page (by At, which it
// truncates to the microsecond), in no particular order. EINVALID for more
// than storage.MaxVisitorPageBatch pages, or a page whose URL is empty or
// longer than storage.MaxPageURLBytes, whose Title or UserAgent is longer
// than its bound, or whose text is not valid UTF-8 or holds a NUL byte.
func VisitorPages(pages []storage.VisitorPage) ([]storage.VisitorPage, error) {
	if len(pages) > storage.MaxVisitorPageBatch {
		return nil, storage.Errorf(storage.EINVALID, "at most %d visitor pages at once", storage.MaxVisitorPageBatch)
	}
	latest := make(map[int64]int, len(pages))
	out := make([]storage.VisitorPage, 0, len(pages))
	for _, p := range pages {
		switch {
		case p.URL == "" || len(p.URL) > storage.MaxPageURLBytes:
			return nil, storage.Errorf(storage.EINVALID, "a page URL must have 1 to %d bytes", storage.MaxPageURLBytes)
		case len(p.Title) > storage.MaxPageTitleBytes:
			return nil, storage.Errorf(storage.EINVALID, "a page title must have at most %d bytes", storage.MaxPageTitleBytes)
		case len(p.UserAgent) > storage.MaxUserAgentBytes:
			return nil, storage.Errorf(storage.EINVALID, "a user agent must have at most %d bytes", storage.MaxUserAgentBytes)
		}
		for _, text := range []string{p.URL, p.Title, p.UserAgent} {
			if !utf8.ValidString(text) || strings.IndexByte(text, 0) >= 0 {
				return nil, storage.Errorf(storage.EINVALID, "a visitor page holds invalid UTF-8 or a NUL byte")
			}
		}
		p.At = p.At.UTC().Truncate(time.Microsecond)
		if i, ok := latest[p.UserID]; ok {
			if !p.At.Before(out[i].At) {
				out[i] = p
			}
			continue
		}
		latest[p.UserID] = len(out)
		out = append(out, p)
	}
	return out, nil
}

// Team checks a visitor's team (storage.UserInput.Team): "" or a valid
// name (storage.ValidTeam). EINVALID otherwise.
func Team(team string) error {
	if team != "" && !storage.ValidTeam(team) {
		return storage.Errorf(storage.EINVALID, "team is not a team name (1 to %d of a-z, 0-9, '-', '_', '.')", storage.MaxTeamBytes)
	}
	return nil
}
