// This file holds the visitor's page (grainchat.v1 only): the page frame a
// visitor's client sends (the host page's URL and title), its rules, the
// browser's User-Agent as the server keeps it, and the visitor object that
// staff see: in the visitor frame and in the REST API's Conversation.user.

package wire

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Visitor frame types.
const (
	// TypePage is a visitor's client reporting the page the visitor is on.
	TypePage = "page"
	// TypeVisitor tells staff who a conversation's visitor is and the page
	// they are on.
	TypeVisitor = "visitor"
)

// Bounds of a page frame and of the User-Agent kept (the same as storage's
// MaxPageURLBytes, MaxPageTitleBytes, MaxUserAgentBytes).
const (
	MaxPageURLBytes   = 2048
	MaxPageTitleBytes = 300
	MaxUserAgentBytes = 512
)

// decodePage reads a page frame's url and title (see PageURL, PageTitle).
func decodePage(req *Request, raw rawRequest) *Error {
	var err *Error
	if raw.URL == nil || string(raw.URL) == "null" {
		return errorf(CodeInvalidRequest, "a page frame needs a url")
	}
	if req.URL, err = optString(raw.URL, "url"); err != nil {
		return err
	}
	if req.URL, err = PageURL(req.URL); err != nil {
		return err
	}
	if req.Title, err = optString(raw.Title, "title"); err != nil {
		return err
	}
	req.Title, err = PageTitle(req.Title)
	return err
}

// PageURL checks a reported page URL: an absolute http or https URL with a
// host, at most MaxPageURLBytes bytes, without white space or control
// characters. A user name and password in it (https://user:pass@host/) are
// removed: they are nobody's business. It returns the URL as kept.
func PageURL(raw string) (string, *Error) {
	if raw == "" || len(raw) > MaxPageURLBytes {
		return "", errorf(CodeInvalidRequest, "url must have 1 to %d bytes", MaxPageURLBytes)
	}
	if strings.IndexFunc(raw, func(r rune) bool { return r <= ' ' || unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return "", errorf(CodeInvalidRequest, "url may not contain white space or control characters")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "", errorf(CodeInvalidRequest, "url must be an absolute http or https URL")
	}
	if u.User != nil {
		u.User = nil
		raw = u.String()
	}
	return raw, nil
}

// PageTitle cleans a reported page title: control characters (line
// breaks and tabs included) become spaces, runs of white space one space,
// and surrounding white space is removed; "" is allowed. Refused when the
// result is longer than MaxPageTitleBytes bytes.
func PageTitle(title string) (string, *Error) {
	title = strings.Join(strings.FieldsFunc(title, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if len(title) > MaxPageTitleBytes {
		return "", errorf(CodeInvalidRequest, "title is longer than %d bytes", MaxPageTitleBytes)
	}
	return title, nil
}

// UserAgent is a handshake's User-Agent header as the server keeps it:
// invalid UTF-8 replaced by U+FFFD, control characters by spaces, trimmed,
// and truncated to MaxUserAgentBytes bytes on a character boundary.
func UserAgent(header string) string {
	ua := strings.ToValidUTF8(header, "\uFFFD")
	ua = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, ua))
	if len(ua) <= MaxUserAgentBytes {
		return ua
	}
	n := MaxUserAgentBytes
	for n > 0 && !utf8.RuneStart(ua[n]) {
		n--
	}
	return ua[:n]
}

// VisitorPage is the page a visitor's browser last reported.
type VisitorPage struct {
	URL   string
	Title string
	// Browser is the User-Agent of the socket that reported it.
	Browser   string
	UpdatedAt time.Time
}

// Visitor is a conversation's visitor as staff see it: who they are, what
// their token says of them, and the page they are on.
type Visitor struct {
	DeskUser
	// Email is the token's email claim, "" for none; Context its ctx
	// claim's canonical JSON text, "" for none.
	Email   string
	Context string
	// Page is nil when the visitor's browser never reported one.
	Page *VisitorPage
}

// VisitorJSON is a Visitor as JSON shows it (docs/API.md, Conversation's
// user; docs/PROTOCOL.md, the visitor frame): email, context and page are
// null when there is none.
type VisitorJSON struct {
	DeskUser
	Email   *string          `json:"email"`
	Context json.RawMessage  `json:"context"`
	Page    *VisitorPageJSON `json:"page"`
}

// VisitorPageJSON is a VisitorPage as JSON shows it.
type VisitorPageJSON struct {
	URL       string `json:"url"`
	Title     string `json:"title"`
	Browser   string `json:"browser"`
	UpdatedAt string `json:"updated_at"`
}

// JSON returns v as JSON shows it.
func (v Visitor) JSON() VisitorJSON {
	out := VisitorJSON{DeskUser: v.DeskUser, Context: json.RawMessage("null")}
	if v.Email != "" {
		email := v.Email
		out.Email = &email
	}
	if v.Context != "" {
		out.Context = json.RawMessage(v.Context)
	}
	if p := v.Page; p != nil {
		out.Page = &VisitorPageJSON{URL: p.URL, Title: p.Title, Browser: p.Browser, UpdatedAt: formatTime(p.UpdatedAt)}
	}
	return out
}

// VisitorFrame tells staff who conversationID's visitor is and the page
// they are on: after an open, and when the visitor's browser reports
// another page.
func VisitorFrame(conversationID int64, v Visitor) []byte {
	return mustMarshal(struct {
		Type           string      `json:"type"`
		ConversationID int64       `json:"conversation_id"`
		User           VisitorJSON `json:"user"`
	}{TypeVisitor, conversationID, v.JSON()})
}
