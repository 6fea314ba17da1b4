package web

import (
	"net/http"
	"regexp"
	"strings"
)

// framing says who may frame a page.
type framing int

const (
	// frameNone: nobody (frame-ancestors 'none', X-Frame-Options: DENY).
	// Every page but the widget's frame: they have buttons worth
	// clickjacking (send, reply, sign in as staff).
	frameNone framing = iota
	// frameEmbed: chatd's own pages and Config.EmbedOrigins. Only /embed/.
	frameEmbed
	// frameNoneHostsWidget: like frameNone, and the page itself frames
	// chatd's /embed/ (frame-src 'self'). Only the development widget demo.
	frameNoneHostsWidget
)

// safeHost is what a Host header must look like to be named in a CSP
// connect-src source (host, host:port, [v6]:port). Anything else gets
// 'self' only, which current browsers also match against ws: and wss:.
var safeHost = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// policy is the Content-Security-Policy of a page served to r.
//
//   - Scripts, styles, images and fonts come from chatd itself; no inline
//     script or style, no eval.
//   - connect-src: the same host's ws:/wss: (the WebSocket) and 'self'
//     (GET /session). The ws sources are spelled out because 'self' matches
//     ws: and wss: only in CSP Level 3 browsers.
//   - Trusted Types are required for every DOM XSS sink, and no policy may
//     be created: the pages never assign HTML strings (innerHTML and the
//     like throw), they build nodes and set textContent.
//   - Forms post to chatd only, <base> is refused, plugins are off.
func (h *Handler) policy(r *http.Request, frame framing) string {
	connect := "'self'"
	if safeHost.MatchString(r.Host) {
		host := strings.ToLower(r.Host)
		connect += " ws://" + host + " wss://" + host
	}
	ancestors := "'none'"
	if frame == frameEmbed {
		ancestors = h.frameAncestors
	}
	frames := "frame-src 'none'"
	if frame == frameNoneHostsWidget {
		frames = "frame-src 'self'"
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"font-src 'self'",
		"connect-src " + connect,
		"manifest-src 'self'",
		"form-action 'self'",
		"base-uri 'none'",
		"object-src 'none'",
		frames,
		"frame-ancestors " + ancestors,
		"require-trusted-types-for 'script'",
		"trusted-types 'none'",
	}, "; ")
}

// setCommonHeaders sets the headers every response of this package carries.
func setCommonHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
}

// setPageHeaders sets the headers of an HTML page.
func (h *Handler) setPageHeaders(w http.ResponseWriter, r *http.Request, frame framing) {
	setCommonHeaders(w)
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.policy(r, frame))
	if frame != frameEmbed {
		hd.Set("X-Frame-Options", "DENY") // for browsers without frame-ancestors
	}
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
}
