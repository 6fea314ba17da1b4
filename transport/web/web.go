// Package web serves grainchat's browser pages, embedded in the binary: the
// visitor chat (/ and /chat/), the embeddable widget (/widget.js, which frames
// /embed/), the staff inbox (/admin/) and, in development mode only, a login
// page that sets the chat_token cookie.
//
// The pages are plain HTML, CSS and JavaScript modules (assets/), with no build
// step. They speak the grainchat.v1 WebSocket protocol (docs/PROTOCOL.md) and
// render message text with textContent only. Every response carries a strict
// Content-Security-Policy (no inline script or style, Trusted Types required),
// X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer; only the
// widget's frame (/embed/) may be framed, by chatd's own pages and by
// Config.EmbedOrigins. See docs/BROWSER.md.
package web

import (
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/grainchat/grainchat/transport/auth"
)

// DefaultDevTokenTTL is how long a development login lasts when
// Config.DevTokenTTL is zero.
const DefaultDevTokenTTL = 24 * time.Hour

// Config configures the pages. The zero value serves the pages of a
// production deployment that cannot be framed by other sites and cannot tell
// a page who its token names.
type Config struct {
	// DevIssuer, when set, enables the development login page (/login), which
	// mints tokens with it. Nil in production: the host site issues tokens,
	// and /login answers 404.
	DevIssuer *auth.Issuer
	// Verifier, when set, serves GET /session, which tells a page whether its
	// token is valid and whom it names, so that a page whose WebSocket cannot
	// connect can say why ("not signed in" rather than "unavailable"). Nil:
	// /session answers 404 and pages fall back to a generic message.
	Verifier *auth.Verifier
	// EmbedOrigins are the origins (scheme://host[:port], as normalized by
	// auth.NewOriginPolicy) of the host sites allowed to frame the widget's
	// chat page /embed/, besides chatd's own pages. Empty means chatd's own
	// pages only. chatd passes its --allowed-origins. Entries that are not a
	// plain origin are ignored (and logged).
	EmbedOrigins []string
	// DevTokenTTL is the lifetime of the tokens (and cookie) the development
	// login issues. Zero means DefaultDevTokenTTL.
	DevTokenTTL time.Duration
	// Anonymous tells the pages (GET /session's "anonymous") that visitors
	// without a token may get an identity from POST /anonymous.
	Anonymous bool
}

// Handler serves the pages. It is safe for concurrent use.
type Handler struct {
	logger         *slog.Logger
	cfg            Config
	assets         *assetSet
	frameAncestors string // the CSP frame-ancestors sources of /embed/
}

// cspOrigin is what New accepts as a frame-ancestors source: a normalized
// origin, nothing that could end the directive or add another.
var cspOrigin = regexp.MustCompile(`^[a-z][a-z0-9+.-]*://[a-z0-9._~\-\[\]:]+$`)

// New builds the pages' handler.
func New(logger *slog.Logger, cfg Config) *Handler {
	if cfg.DevTokenTTL <= 0 {
		cfg.DevTokenTTL = DefaultDevTokenTTL
	}
	h := &Handler{logger: logger.With("component", "web"), cfg: cfg, assets: loadAssets()}
	h.frameAncestors = "'self'"
	for _, o := range cfg.EmbedOrigins {
		if !cspOrigin.MatchString(o) {
			h.logger.Warn("embed origin ignored: not a plain origin", "origin", o)
			continue
		}
		h.frameAncestors += " " + o
	}
	return h
}

// Routes returns the pages' routes (ServeMux patterns) for transport.Routes.
func (h *Handler) Routes() map[string]http.Handler {
	page := func(name string, frame framing) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.servePage(w, r, name, frame)
		})
	}
	routes := map[string]http.Handler{
		"GET /{$}":         page("chat.html", frameNone),
		"GET /chat/{$}":    page("chat.html", frameNone),
		"GET /chat":        redirect("/chat/"),
		"GET /embed/{$}":   page("chat.html", frameEmbed),
		"GET /admin/{$}":   page("admin.html", frameNone),
		"GET /admin":       redirect("/admin/"),
		"GET /static/":     http.HandlerFunc(h.serveStatic),
		"GET /widget.js":   http.HandlerFunc(h.serveWidget),
		"GET /session":     http.HandlerFunc(h.serveSession),
		"GET /login":       http.HandlerFunc(h.serveLogin),
		"POST /login":      http.HandlerFunc(h.login),
		"POST /logout":     http.HandlerFunc(h.logout),
		"GET /widget-demo": http.HandlerFunc(h.serveWidgetDemo),
	}
	return routes
}

func redirect(to string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setCommonHeaders(w)
		http.Redirect(w, r, to, http.StatusMovedPermanently)
	})
}

// dev reports whether the development login is on.
func (h *Handler) dev() bool { return h.cfg.DevIssuer != nil }
