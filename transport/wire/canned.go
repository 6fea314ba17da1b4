// This file holds the support desk's canned replies and staff list
// (grainchat.v1, staff only; seed-dialect clients never see them): the
// canned, canned_save, canned_delete and staff requests, the canned frame
// that answers the first three with the whole list, and the staff frame.

package wire

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds of a canned reply: the store's (storage.CannedReplyInput), checked
// here too so that a refusal names the rule before anything is asked of
// the store.
const (
	// MaxCannedNameBytes bounds a canned reply's name: ASCII letters,
	// digits, '-' and '_', so bytes are characters.
	MaxCannedNameBytes = 32
	// MaxCannedBodyRunes bounds a canned reply's text; a server whose
	// messages are shorter (Decoder.MaxMessageChars) bounds it to that, so
	// that every canned reply can be sent.
	MaxCannedBodyRunes = 4000
)

// decodeCanned reads a canned, canned_save, canned_delete or staff request.
func (d Decoder) decodeCanned(req *Request, raw rawRequest) *Error {
	var err *Error
	switch req.Type {
	case TypeCannedSave:
		if req.ID, err = optID(raw.ID, "id"); err != nil {
			return err
		}
		if req.Name, err = cannedName(raw.Name); err != nil {
			return err
		}
		if req.Body, err = d.cannedBody(raw.Body); err != nil {
			return err
		}
	case TypeCannedDelete:
		if req.ID, err = optID(raw.ID, "id"); err != nil {
			return err
		}
		if req.ID == 0 {
			return errorf(CodeInvalidRequest, "canned_delete needs the id of a canned reply")
		}
	}
	return nil
}

// cannedName reads a canned reply's name: 1 to MaxCannedNameBytes of
// [A-Za-z0-9_-], surrounding white space ignored, returned in lower case
// (names are unique whatever their case).
func cannedName(raw json.RawMessage) (string, *Error) {
	name, err := optString(raw, "name")
	if err != nil {
		return "", err
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > MaxCannedNameBytes {
		return "", errorf(CodeInvalidRequest, "a canned reply's name is 1 to %d characters", MaxCannedNameBytes)
	}
	for i := range len(name) {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", errorf(CodeInvalidRequest, "a canned reply's name has only letters a-z, digits, - and _")
		}
	}
	return strings.ToLower(name), nil
}

// cannedBody reads a canned reply's text: trimmed, not empty, without NUL,
// at most cannedBodyRunes characters.
func (d Decoder) cannedBody(raw json.RawMessage) (string, *Error) {
	body, err := optString(raw, "body")
	if err != nil {
		return "", err
	}
	if strings.IndexByte(body, 0) >= 0 || !utf8.ValidString(body) {
		return "", errorf(CodeInvalidRequest, "a canned reply's text contains a NUL character or invalid UTF-8")
	}
	body = strings.TrimSpace(body)
	if body == "" {
		return "", errorf(CodeInvalidRequest, "a canned reply's text is empty")
	}
	if limit := d.cannedBodyRunes(); utf8.RuneCountInString(body) > limit {
		return "", errorf(CodeInvalidRequest, "a canned reply's text is longer than %d characters", limit)
	}
	return body, nil
}

// cannedBodyRunes is the longest canned reply text this decoder accepts.
func (d Decoder) cannedBodyRunes() int {
	if d.MaxMessageChars > 0 && d.MaxMessageChars < MaxCannedBodyRunes {
		return d.MaxMessageChars
	}
	return MaxCannedBodyRunes
}

// CannedReply is one saved reply of the staff team.
type CannedReply struct {
	ID        int64
	Name      string
	Body      string
	UpdatedBy DeskUser
	UpdatedAt time.Time
}

// CannedReplyJSON is a canned reply as frames (and the REST API) show it.
type CannedReplyJSON struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Body      string   `json:"body"`
	UpdatedAt string   `json:"updated_at"`
	UpdatedBy DeskUser `json:"updated_by"`
}

// ToJSON returns r as frames show it.
func (r CannedReply) ToJSON() CannedReplyJSON {
	return CannedReplyJSON{ID: r.ID, Name: r.Name, Body: r.Body, UpdatedAt: formatTime(r.UpdatedAt), UpdatedBy: r.UpdatedBy}
}

// CannedFrame answers canned, canned_save and canned_delete with the whole
// list, sorted by name, so that a page just shows it again; saved, when not
// nil, is the reply a canned_save stored.
func CannedFrame(replies []CannedReply, saved *CannedReply) []byte {
	out := make([]CannedReplyJSON, len(replies))
	for i, r := range replies {
		out[i] = r.ToJSON()
	}
	var s *CannedReplyJSON
	if saved != nil {
		j := saved.ToJSON()
		s = &j
	}
	return mustMarshal(struct {
		Type    string            `json:"type"`
		Replies []CannedReplyJSON `json:"replies"`
		Saved   *CannedReplyJSON  `json:"saved,omitempty"`
	}{TypeCanned, out, s})
}

// StaffFrame answers a staff request: the staff users, sorted by name.
func StaffFrame(staff []DeskUser) []byte {
	if staff == nil {
		staff = []DeskUser{}
	}
	return mustMarshal(struct {
		Type  string     `json:"type"`
		Staff []DeskUser `json:"staff"`
	}{TypeStaff, staff})
}
