// Package api serves grainchat's REST API under /api/v1: the support desk
// (conversations, their status and assignee, messages, read marks, canned
// replies, the staff list, API keys) for staff tools. It authenticates every
// request by "Authorization: Bearer <credential>" only (a cookie alone is
// refused, which rules out cross-site requests): the WebSocket's tokens, or
// an API key, which acts as its bot (a staff user of its own; see
// storage.APIKeys). It answers errors as
// {"error":{"code":"…","message":"…"}} with the WebSocket's error codes.
// docs/API.md and docs/openapi.yaml describe it.
package api

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/grainchat/grainchat/transport/wire"
)

// Desk is what the API asks of the actors (implemented by *actors.Node):
// changes and posts go through the conversation's grain, which stores them
// and delivers them live; read marks reach the user's other sockets.
type Desk interface {
	Change(ctx context.Context, conv int64, c storage.Change) (actors.ChangeOutcome, error)
	Post(ctx context.Context, conv int64, in actors.PostInput) (storage.Message, bool, error)
	MarkRead(ctx context.Context, userID, conv, seq int64) (int64, error)
	// VisitorPresence tells whether conversations' visitors are connected,
	// or when they were last.
	VisitorPresence(ctx context.Context, ids []int64) (map[int64]actors.VisitorPresence, error)
}

// Config is the API's dependencies and bounds.
type Config struct {
	Logger   *slog.Logger
	Verifier *auth.Verifier
	Store    storage.Store
	Desk     Desk
	// MaxMessageChars bounds a posted message (characters).
	MaxMessageChars int
	// Rate and Burst bound each user's requests (per node); Rate < 0 means
	// unlimited, 0 means the defaults.
	Rate  float64
	Burst int
	// Timeout bounds one request's work (store and grain).
	Timeout time.Duration
	// Now returns the current time (when a key was last used); nil means
	// time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultRate    = 30
	DefaultBurst   = 120
	DefaultTimeout = 10 * time.Second
	// maxBodyBytes bounds a request body.
	maxBodyBytes = 64 << 10
	// maxLimiters bounds the per-user limiters kept; idle ones go first.
	maxLimiters = 10000
	// touchEvery is how often, at most, a node records that a key was used
	// (storage.APIKey.LastUsedAt is to the minute).
	touchEvery = time.Minute
	// maxTouching bounds the recordings of key use in flight; beyond, a
	// recording is skipped (the next minute's request makes it).
	maxTouching = 4
	// touchTimeout bounds one recording.
	touchTimeout = 5 * time.Second
	// maxTouched bounds the keys whose last recording a node remembers.
	maxTouched = 1000
)

// API is the REST API's handler set.
type API struct {
	cfg     Config
	decoder wire.Decoder

	mu       sync.Mutex
	limiters map[string]*limiter
	touched  map[int64]time.Time // key id → when this node last recorded its use

	// Recordings of key use run off the request's path, in goroutines
	// that Close ends (cancel) and waits for (touching).
	ctx      context.Context
	cancel   context.CancelFunc
	touching sync.WaitGroup
	slots    chan struct{} // maxTouching
}

type limiter struct {
	*rate.Limiter
	used time.Time
}

// New returns the API for cfg.
func New(cfg Config) *API {
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxMessageChars <= 0 {
		cfg.MaxMessageChars = wire.DefaultMaxMessageChars
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &API{cfg: cfg, decoder: wire.Decoder{MaxMessageChars: cfg.MaxMessageChars},
		limiters: make(map[string]*limiter), touched: make(map[int64]time.Time),
		ctx: ctx, cancel: cancel, slots: make(chan struct{}, maxTouching)}
}

// Close stops the recordings of key use in flight and waits for them. The
// API must not serve requests after it.
func (a *API) Close() {
	a.cancel()
	a.touching.Wait()
}

// Routes returns the API's routes for an http.ServeMux.
func (a *API) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /api/v1/conversations":                 a.staff(a.listConversations),
		"GET /api/v1/conversations/{id}":            a.staff(a.getConversation),
		"PATCH /api/v1/conversations/{id}":          a.staff(a.patchConversation),
		"GET /api/v1/conversations/{id}/messages":   a.staff(a.listMessages),
		"GET /api/v1/conversations/{id}/transcript": a.staff(a.transcript),
		"POST /api/v1/conversations/{id}/messages":  a.staff(a.postMessage),
		"POST /api/v1/conversations/{id}/read":      a.staff(a.markRead),
		"POST /api/v1/conversations/{id}/notes":     a.staff(a.postNote),
		"GET /api/v1/canned_replies":                a.staff(a.listCanned),
		"POST /api/v1/canned_replies":               a.staff(a.createCanned),
		"PATCH /api/v1/canned_replies/{id}":         a.staff(a.patchCanned),
		"DELETE /api/v1/canned_replies/{id}":        a.staff(a.deleteCanned),
		"GET /api/v1/staff":                         a.staff(a.listStaff),
		"GET /api/v1/api_keys":                      a.staff(a.person(a.listAPIKeys)),
		"POST /api/v1/api_keys":                     a.staff(a.person(a.createAPIKey)),
		"DELETE /api/v1/api_keys/{id}":              a.staff(a.person(a.revokeAPIKey)),
		// Other methods on the API's paths, and other paths.
		"/api/v1/conversations":                 methodNotAllowed("GET"),
		"/api/v1/conversations/{id}":            methodNotAllowed("GET, PATCH"),
		"/api/v1/conversations/{id}/messages":   methodNotAllowed("GET, POST"),
		"/api/v1/conversations/{id}/transcript": methodNotAllowed("GET"),
		"/api/v1/conversations/{id}/read":       methodNotAllowed("POST"),
		"/api/v1/conversations/{id}/notes":      methodNotAllowed("POST"),
		"/api/v1/canned_replies":                methodNotAllowed("GET, POST"),
		"/api/v1/canned_replies/{id}":           methodNotAllowed("PATCH, DELETE"),
		"/api/v1/staff":                         methodNotAllowed("GET"),
		"/api/v1/api_keys":                      methodNotAllowed("GET, POST"),
		"/api/v1/api_keys/{id}":                 methodNotAllowed("DELETE"),
		"/api/v1/":                              http.HandlerFunc(notFound),
	}
}

// methodNotAllowed answers 405 with the methods a path allows.
func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": map[string]any{
			"code": "method_not_allowed", "message": r.Method + " is not allowed here; use " + allow}})
	})
}

// apiError is an error answer.
type apiError struct {
	status  int
	code    string
	message string
	lastSeq int64
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

// request is one authenticated staff request.
type request struct {
	ctx  context.Context
	r    *http.Request
	user storage.User
	// key is the API key that authenticated it (user is its bot); nil for
	// a token.
	key *storage.APIKey
}

// staff authenticates a request as a staff user, bounds its rate and time,
// and writes the handler's answer or error.
func (a *API) staff(h func(req *request) (int, any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		user, key, err := a.authenticate(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if !a.allow(user.ExternalID) {
			w.Header().Set("Retry-After", "1")
			a.writeError(w, r, errorf(http.StatusTooManyRequests, wire.CodeRateLimited, "too many requests; retry after a second"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.cfg.Timeout)
		defer cancel()
		status, body, err := h(&request{ctx: ctx, r: r, user: user, key: key})
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if body == nil {
			w.WriteHeader(status)
			return
		}
		if s, ok := body.(*streamed); ok {
			a.stream(w, r, status, s)
			return
		}
		writeJSON(w, status, body)
	})
}

// stream writes a streamed answer. The request's own context bounds it (the
// writer bounds each store read): a long transcript may take longer than
// one request's Timeout. A failure once the status is sent aborts the
// connection, so that the client sees the answer fail.
func (a *API) stream(w http.ResponseWriter, r *http.Request, status int, s *streamed) {
	w.Header().Set("Content-Type", s.contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", `attachment; filename="`+s.filename+`"`)
	w.WriteHeader(status)
	if err := s.write(r.Context(), w); err != nil {
		a.cfg.Logger.Warn("api: streamed answer failed", "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// authenticate verifies the request's bearer credential and returns its
// staff user: a token's (created or updated from the token, as a WebSocket
// connect does), or an API key's bot, with the key.
func (a *API) authenticate(r *http.Request) (storage.User, *storage.APIKey, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return storage.User{}, nil, errorf(http.StatusUnauthorized, wire.CodeInvalidToken,
			"send the token as Authorization: Bearer <token> (cookies are not accepted here)")
	}
	if auth.IsAPIKey(token) {
		return a.authenticateKey(r, token)
	}
	id, err := a.cfg.Verifier.Verify(token)
	if err != nil {
		code := wire.CodeInvalidToken
		if errors.Is(err, auth.ErrExpired) {
			code = wire.CodeTokenExpired
		}
		return storage.User{}, nil, errorf(http.StatusUnauthorized, code, "the token is not valid")
	}
	if !id.Admin {
		return storage.User{}, nil, errorf(http.StatusForbidden, wire.CodeForbidden, "the REST API is for staff")
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.Timeout)
	defer cancel()
	user, err := a.cfg.Store.UpsertUser(ctx, storage.UserInput{ExternalID: id.Subject, Name: id.Name, IsAdmin: true,
		Email: id.Email, Context: id.Context})
	if err != nil {
		return storage.User{}, nil, fromStorage(err)
	}
	return user, nil, nil
}

// authenticateKey looks an API key up by its hash, on every request (so a
// revocation takes effect at once, on every node), and returns its bot.
// Its use is recorded off the request's path (touch).
func (a *API) authenticateKey(r *http.Request, key string) (storage.User, *storage.APIKey, error) {
	if len(key) > auth.MaxTokenBytes {
		return storage.User{}, nil, errorf(http.StatusUnauthorized, wire.CodeInvalidToken, "the API key is not valid")
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.Timeout)
	defer cancel()
	k, err := a.cfg.Store.APIKeyByHash(ctx, auth.HashAPIKey(key))
	switch {
	case storage.ErrorCode(err) == storage.ENOTFOUND:
		return storage.User{}, nil, errorf(http.StatusUnauthorized, wire.CodeInvalidToken, "the API key is not valid (unknown or revoked)")
	case err != nil:
		return storage.User{}, nil, fromStorage(err)
	}
	a.touch(k)
	bot := storage.User{ID: k.Bot.ID, ExternalID: k.Bot.ExternalID, Name: k.Bot.Name, IsAdmin: true}
	return bot, &k, nil
}

// touch records that key k was used, at most once per touchEvery per node
// (and not when the store's time is that recent already), in a goroutine:
// the request does not wait for the write.
func (a *API) touch(k storage.APIKey) {
	now := a.cfg.Now()
	if k.LastUsedAt != nil && now.Sub(*k.LastUsedAt) < touchEvery {
		return
	}
	a.mu.Lock()
	if t, ok := a.touched[k.ID]; ok && now.Sub(t) < touchEvery {
		a.mu.Unlock()
		return
	}
	if len(a.touched) >= maxTouched {
		for id, t := range a.touched {
			if now.Sub(t) >= touchEvery {
				delete(a.touched, id)
			}
		}
		if len(a.touched) >= maxTouched {
			clear(a.touched)
		}
	}
	a.touched[k.ID] = now
	a.mu.Unlock()
	select {
	case a.slots <- struct{}{}:
	default:
		return // enough in flight: a later request records it
	}
	a.touching.Go(func() {
		defer func() { <-a.slots }()
		ctx, cancel := context.WithTimeout(a.ctx, touchTimeout)
		defer cancel()
		if err := a.cfg.Store.TouchAPIKey(ctx, k.ID, now); err != nil && a.ctx.Err() == nil {
			a.cfg.Logger.Warn("api: could not record an API key's use", "api_key_id", k.ID, "err", err)
		}
	})
}

// allow takes one token of the user's bucket.
func (a *API) allow(user string) bool {
	if a.cfg.Rate < 0 {
		return true
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.limiters[user]
	if l == nil {
		if len(a.limiters) >= maxLimiters {
			a.pruneLocked(now)
		}
		l = &limiter{Limiter: rate.NewLimiter(rate.Limit(a.cfg.Rate), a.cfg.Burst)}
		a.limiters[user] = l
	}
	l.used = now
	return l.AllowN(now, 1)
}

// pruneLocked forgets the limiters of users idle long enough to have a full
// bucket again (forgetting them changes nothing), or half of them.
func (a *API) pruneLocked(now time.Time) {
	full := time.Duration(float64(a.cfg.Burst)/a.cfg.Rate*float64(time.Second)) + time.Second
	for k, l := range a.limiters {
		if now.Sub(l.used) > full {
			delete(a.limiters, k)
		}
	}
	for k := range a.limiters {
		if len(a.limiters) < maxLimiters/2 {
			break
		}
		delete(a.limiters, k)
	}
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		a.cfg.Logger.Error("api: unexpected error", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = errorf(http.StatusInternalServerError, wire.CodeInternal, "internal error")
	}
	if ae.status >= 500 {
		a.cfg.Logger.Warn("api: request failed", "method", r.Method, "path", r.URL.Path, "code", ae.code)
	}
	body := map[string]any{"code": ae.code, "message": ae.message}
	if ae.lastSeq > 0 {
		body["last_seq"] = ae.lastSeq
	}
	writeJSON(w, ae.status, map[string]any{"error": body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"code": "not_found", "message": "no such endpoint"}})
}

// fromStorage translates a store error.
func fromStorage(err error) *apiError {
	var se *storage.Error
	msg := ""
	if errors.As(err, &se) {
		msg = se.Message
	}
	switch storage.ErrorCode(err) {
	case storage.ENOTFOUND:
		return errorf(http.StatusNotFound, wire.CodeConversationNotFound, "no such conversation")
	case storage.EINVALID:
		return errorf(http.StatusBadRequest, wire.CodeInvalidRequest, msg)
	case storage.EUNAVAILABLE:
		return errorf(http.StatusServiceUnavailable, wire.CodeUnavailable, "the chat is temporarily unavailable; retry")
	default:
		return errorf(http.StatusInternalServerError, wire.CodeInternal, "internal error")
	}
}

// fromDesk translates an actors.ErrDesk (or a store error).
func fromDesk(err error) *apiError {
	var de *actors.ErrDesk
	if !errors.As(err, &de) {
		return fromStorage(err)
	}
	status := http.StatusInternalServerError
	switch de.Code {
	case wire.CodeConversationNotFound:
		status = http.StatusNotFound
	case wire.CodeForbidden:
		status = http.StatusForbidden
	case wire.CodeStaleReply:
		status = http.StatusConflict
	case wire.CodeUnavailable:
		status = http.StatusServiceUnavailable
	case wire.CodeInvalidRequest, wire.CodeInvalidText, wire.CodeEmptyMessage, wire.CodeMessageTooLong:
		status = http.StatusBadRequest
	}
	return &apiError{status: status, code: de.Code, message: de.Message, lastSeq: de.LastSeq}
}

// pathID reads the conversation id of the path.
func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errorf(http.StatusNotFound, wire.CodeConversationNotFound, "no such conversation")
	}
	return id, nil
}

// queryInt reads an optional non-negative integer query parameter.
func queryInt(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, name+" must be a non-negative integer")
	}
	return n, nil
}

// readBody decodes a JSON object body into v.
func readBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(http.StatusRequestEntityTooLarge, wire.CodeInvalidRequest, "the body is too large")
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "a field has the wrong type")
		}
		return errorf(http.StatusBadRequest, wire.CodeInvalidJSON, "the body is not a JSON object")
	}
	return nil
}
