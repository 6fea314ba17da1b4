package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/grainchat/grainchat/transport/auth"
)

// sessionInfo is the body of GET /session.
type sessionInfo struct {
	SignedIn bool `json:"signed_in"`
	// Reason is set when SignedIn is false: "no_token", "expired" or "invalid".
	Reason string       `json:"reason,omitempty"`
	User   *sessionUser `json:"user,omitempty"`
	// ExpiresAt is the token's exp (RFC 3339).
	ExpiresAt string `json:"expires_at,omitempty"`
	// Dev is true in development mode, where LoginURL signs people in.
	Dev      bool   `json:"dev"`
	LoginURL string `json:"login_url,omitempty"`
	// Anonymous is true when visitors without a token may get an identity
	// from POST /anonymous (chatd --anonymous-visitors).
	Anonymous bool `json:"anonymous"`
}

type sessionUser struct {
	Subject   string `json:"sub"`
	Name      string `json:"name"`
	Admin     bool   `json:"admin"`
	Anonymous bool   `json:"anonymous,omitempty"`
}

// serveSession tells a page whether the token it would present on the
// WebSocket (cookie chat_token, query parameter token or Authorization:
// Bearer — the handshake's own order) is valid, and whom it names: 200 when
// it is, 401 otherwise. A page calls it when its socket fails to open, to
// tell "not signed in" from "unavailable". The answer holds nothing the
// token's bearer does not already know; it is not readable cross-origin (no
// CORS headers).
func (h *Handler) serveSession(w http.ResponseWriter, r *http.Request) {
	setCommonHeaders(w)
	if h.cfg.Verifier == nil {
		http.NotFound(w, r)
		return
	}
	info := sessionInfo{Dev: h.dev(), Anonymous: h.cfg.Anonymous}
	if info.Dev {
		info.LoginURL = "/login"
	}
	status := http.StatusOK
	id, err := h.cfg.Verifier.FromRequest(r)
	switch {
	case err == nil:
		info.SignedIn = true
		info.User = &sessionUser{Subject: id.Subject, Name: id.Name, Admin: id.Admin, Anonymous: id.Anonymous}
		info.ExpiresAt = id.ExpiresAt.UTC().Format(time.RFC3339)
	case errors.Is(err, auth.ErrNoToken):
		status, info.Reason = http.StatusUnauthorized, "no_token"
	case errors.Is(err, auth.ErrExpired):
		status, info.Reason = http.StatusUnauthorized, "expired"
	default:
		status, info.Reason = http.StatusUnauthorized, "invalid"
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(info)
}
