// This file holds the desk's canned replies: short saved replies that the
// staff team shares, inserted in the composer by name. Both stores check
// their input with CannedReplyInput.Normalize, so they refuse the same
// names and bodies with the same messages.

package storage

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of canned replies and of the staff list.
const (
	// MaxCannedReplies bounds the team's canned replies: creating one more
	// is refused with EINVALID, and CannedReplies returns at most this many.
	// A composer menu of more would be of no use, and the whole list
	// travels in one frame.
	MaxCannedReplies = 500
	// MaxCannedNameBytes bounds a canned reply's name (its characters are
	// ASCII: bytes are characters).
	MaxCannedNameBytes = 32
	// MaxCannedBodyRunes bounds a canned reply's text: the longest message
	// a server accepts by default, so that the reply can be sent.
	MaxCannedBodyRunes = 4000
	// MaxStaffUsers bounds StaffUsers' answer.
	MaxStaffUsers = 500
)

// CannedReply is one saved reply of the staff team.
type CannedReply struct {
	ID int64
	// Name is what staff type after "/" to insert it: 1 to
	// MaxCannedNameBytes characters of [a-z0-9_-], unique.
	Name string
	// Body is the text inserted: trimmed, 1 to MaxCannedBodyRunes runes.
	Body string
	// UpdatedBy is who created or last saved it, named as the user is now.
	UpdatedBy UserRef
	UpdatedAt time.Time
}

// CannedReplyInput creates (ID 0) or replaces (ID > 0) a canned reply.
type CannedReplyInput struct {
	ID   int64
	Name string
	Body string
	// ActorID is the staff user saving it: the reply's UpdatedBy.
	ActorID int64
}

// Normalize checks in's name and body and returns in with the name in
// lower case and the body trimmed of white space. A name is 1 to
// MaxCannedNameBytes ASCII letters, digits, '-' or '_', surrounding white
// space ignored; it is stored in lower case, so names are unique whatever
// their case. Only ASCII letters are lowered: a non-ASCII letter whose lower
// case is ASCII (the Kelvin sign) is refused, not taken for another name.
// A body is valid UTF-8 without NUL bytes, 1 to MaxCannedBodyRunes runes
// once trimmed. EINVALID otherwise (and for a negative ID), with a message
// that names the rule and quotes nothing.
func (in CannedReplyInput) Normalize() (CannedReplyInput, error) {
	if in.ID < 0 {
		return in, Errorf(EINVALID, "canned reply id must not be negative")
	}
	name, err := cannedName(in.Name)
	if err != nil {
		return in, err
	}
	body, err := cannedBody(in.Body)
	if err != nil {
		return in, err
	}
	in.Name, in.Body = name, body
	return in, nil
}

// cannedName checks and lowers a canned reply's name (see Normalize).
func cannedName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > MaxCannedNameBytes {
		return "", Errorf(EINVALID, "a canned reply's name is 1 to %d characters", MaxCannedNameBytes)
	}
	for i := range len(name) {
		if !cannedNameByte(name[i]) {
			return "", Errorf(EINVALID, "a canned reply's name has only letters a-z, digits, - and _")
		}
	}
	return strings.ToLower(name), nil
}

// cannedNameByte reports whether c may appear in a canned reply's name
// (before lowering).
func cannedNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// cannedBody checks and trims a canned reply's text (see Normalize).
func cannedBody(body string) (string, error) {
	switch {
	case !utf8.ValidString(body):
		return "", Errorf(EINVALID, "a canned reply's text is not valid UTF-8")
	case strings.IndexByte(body, 0) >= 0:
		return "", Errorf(EINVALID, "a canned reply's text contains a NUL character")
	}
	body = strings.TrimSpace(body)
	if body == "" {
		return "", Errorf(EINVALID, "a canned reply's text is empty")
	}
	if utf8.RuneCountInString(body) > MaxCannedBodyRunes {
		return "", Errorf(EINVALID, "a canned reply's text is longer than %d characters", MaxCannedBodyRunes)
	}
	return body, nil
}
