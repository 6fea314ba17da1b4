// Package anon serves anonymous visitors' identities (chatd
// --anonymous-visitors): POST /anonymous issues one (or renews the caller's),
// bounded per client address, and POST /anonymous/merge merges an anonymous
// conversation into a signed-in visitor's once the host site knows who they
// are. docs/API.md has the contract; SECURITY.md the review.
package anon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/grainchat/grainchat/actors"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/clientip"
)

// Defaults of Config.
const (
	DefaultNewPerHour = 10
	// maxBodyBytes bounds a merge request's body.
	maxBodyBytes = 16 << 10
	// maxLimiters bounds the per-address limiters kept; full (idle) ones
	// are dropped first.
	maxLimiters = 10000
	// timeout bounds one request's store and grain work.
	timeout = 30 * time.Second
)

// Merger merges an anonymous visitor's conversation into a signed-in
// visitor's (actors.Node).
type Merger interface {
	MergeAnonymous(ctx context.Context, anon, into storage.User) (actors.MergeResult, error)
}

// Config is the handlers' dependencies and bounds.
type Config struct {
	Logger    *slog.Logger
	Anonymous *auth.Anonymous
	// Verifier verifies the host site's tokens (for a merge).
	Verifier *auth.Verifier
	Origins  *auth.OriginPolicy
	Store    storage.Store
	Merger   Merger
	// NewPerHour bounds the identities one client address is issued per
	// hour (and so the conversations it starts). Zero means
	// DefaultNewPerHour.
	NewPerHour int
}

// Handler serves the endpoints.
type Handler struct {
	cfg Config

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// New returns a Handler.
func New(cfg Config) *Handler {
	if cfg.NewPerHour <= 0 {
		cfg.NewPerHour = DefaultNewPerHour
	}
	return &Handler{cfg: cfg, limiters: map[string]*rate.Limiter{}}
}

// Routes are the handler's patterns.
func (h *Handler) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST /anonymous":       http.HandlerFunc(h.issue),
		"POST /anonymous/merge": http.HandlerFunc(h.merge),
	}
}

// identityJSON is an issued identity.
type identityJSON struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
	New       bool   `json:"new"`
	User      struct {
		ExternalID string `json:"external_id"`
		Name       string `json:"name"`
	} `json:"user"`
}

// issue: POST /anonymous. With "Authorization: Bearer <anonymous token>"
// still valid, the same identity with a fresh token; otherwise a new one,
// within the client address's hourly bound.
func (h *Handler) issue(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Origins.Check(r); err != nil {
		writeError(w, http.StatusForbidden, "forbidden", "origin not allowed")
		return
	}
	var (
		token string
		id    auth.Identity
		err   error
		fresh bool
	)
	if bearer := bearerToken(r); bearer != "" {
		if cur, verr := h.cfg.Anonymous.Verify(bearer); verr == nil {
			token, id, err = h.cfg.Anonymous.Renew(cur)
		}
	}
	if token == "" && err == nil {
		addr := clientip.FromRequest(r).Addr
		if ok, wait := h.allow(addr); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			writeError(w, http.StatusTooManyRequests, "rate_limited", "too many new anonymous visitors from this address; retry later")
			h.cfg.Logger.Info("anonymous identity refused: hourly bound", "client_ip", addr)
			return
		}
		token, id, err = h.cfg.Anonymous.New()
		fresh = true
	}
	if err != nil {
		h.cfg.Logger.Error("anonymous identity", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	var out identityJSON
	out.Token, out.ExpiresAt, out.New = token, id.ExpiresAt.UTC().Format(time.RFC3339), fresh
	out.User.ExternalID, out.User.Name = id.Subject, id.Name
	writeJSON(w, http.StatusOK, out)
}

// allow takes one new identity of addr's hourly bound; when none is left it
// says how long until one is.
func (h *Handler) allow(addr string) (bool, time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.limiters[addr]
	if !ok {
		if len(h.limiters) >= maxLimiters {
			h.dropIdle()
		}
		l = rate.NewLimiter(rate.Limit(float64(h.cfg.NewPerHour)/3600), h.cfg.NewPerHour)
		h.limiters[addr] = l
	}
	res := l.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return false, d
	}
	return true, 0
}

// dropIdle forgets the limiters that are full again (their addresses have
// their whole bound), or, if none is, all of them.
func (h *Handler) dropIdle() {
	now := time.Now()
	for a, l := range h.limiters {
		if l.TokensAt(now) >= float64(l.Burst()) {
			delete(h.limiters, a)
		}
	}
	if len(h.limiters) >= maxLimiters {
		clear(h.limiters)
	}
}

// mergeRequest is POST /anonymous/merge's body.
type mergeRequest struct {
	AnonymousToken string `json:"anonymous_token"`
}

// merge: POST /anonymous/merge with "Authorization: Bearer <the host site's
// token of a visitor>" (or, without it, the chat_token cookie) and
// {"anonymous_token": "…"}: the anonymous conversation's messages move into
// the visitor's.
func (h *Handler) merge(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Origins.Check(r); err != nil {
		writeError(w, http.StatusForbidden, "forbidden", "origin not allowed")
		return
	}
	tok := bearerToken(r)
	if tok == "" {
		// chatd's own chat page signs in with the HttpOnly cookie, which
		// its script cannot read; Origin is checked above, and the cookie
		// is SameSite=Lax (not sent with another site's POST).
		if c, err := r.Cookie(auth.CookieName); err == nil {
			tok = c.Value
		}
	}
	ident, err := h.cfg.Verifier.Verify(tok)
	if err != nil || ident.Anonymous {
		writeError(w, http.StatusUnauthorized, "invalid_token", "a merge needs the host site's token of a signed-in visitor")
		return
	}
	if ident.Admin {
		writeError(w, http.StatusForbidden, "forbidden", "staff have no conversation to merge into")
		return
	}
	var req mergeRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", `the body must be {"anonymous_token": "…"}`)
		return
	}
	anon, err := h.cfg.Anonymous.Verify(req.AnonymousToken)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "invalid_token", "anonymous_token is not a valid anonymous visitor's token")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	into, _, err := h.cfg.Store.Connect(ctx, storage.UserInput{ExternalID: ident.Subject, Name: ident.Name, Email: ident.Email, Context: ident.Context, Team: ident.Team})
	if err != nil {
		h.storeError(w, err)
		return
	}
	from, _, err := h.cfg.Store.Connect(ctx, storage.UserInput{ExternalID: anon.Subject, Name: anon.Name})
	if err != nil {
		h.storeError(w, err)
		return
	}
	res, err := h.cfg.Merger.MergeAnonymous(ctx, from, into)
	if err != nil {
		if storage.ErrorCode(err) == storage.ECONFLICT {
			writeError(w, http.StatusConflict, "conflict", "this anonymous visitor was merged into another user already")
			return
		}
		h.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"conversation_id": res.ConversationID, "merged_messages": res.Merged})
}

// storeError answers a store or grain failure.
func (h *Handler) storeError(w http.ResponseWriter, err error) {
	var desk *actors.ErrDesk
	switch {
	case storage.ErrorCode(err) == storage.EINVALID:
		writeError(w, http.StatusBadRequest, "invalid_request", "the token's identity is not acceptable")
	case storage.ErrorCode(err) == storage.EUNAVAILABLE, errors.As(err, &desk):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the chat is temporarily unavailable; retry (a merge is safe to repeat)")
	default:
		h.cfg.Logger.Error("anonymous merge", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
	}
}

// bearerToken is the request's "Authorization: Bearer" token ("" if none).
func bearerToken(r *http.Request) string {
	v := r.Header.Get("Authorization")
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": message}})
}
