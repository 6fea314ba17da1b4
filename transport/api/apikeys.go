// This file holds the API's key management (list, create, revoke): staff
// with a token only, never a key (a leaked key cannot mint itself a
// successor nor revoke the others).

package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/wire"
)

// codeAPIKeyNotFound answers a key id that no key has.
const codeAPIKeyNotFound = "api_key_not_found"

// apiKeyJSON is an API key as the API shows it (never its secret).
type apiKeyJSON struct {
	ID         int64          `json:"id"`
	Name       string         `json:"name"`
	Bot        wire.DeskUser  `json:"bot"`
	CreatedAt  string         `json:"created_at"`
	CreatedBy  *wire.DeskUser `json:"created_by"`
	LastUsedAt *string        `json:"last_used_at"`
	RevokedAt  *string        `json:"revoked_at"`
}

// apiKeyOut is k as the API shows it.
func apiKeyOut(k storage.APIKey) apiKeyJSON {
	at := func(t *time.Time) *string {
		if t == nil {
			return nil
		}
		s := t.UTC().Format(wire.TimeFormat)
		return &s
	}
	out := apiKeyJSON{ID: k.ID, Name: k.Name, Bot: wire.DeskUser(k.Bot), CreatedAt: *at(&k.CreatedAt),
		LastUsedAt: at(k.LastUsedAt), RevokedAt: at(k.RevokedAt)}
	if k.CreatedBy != nil {
		by := wire.DeskUser(*k.CreatedBy)
		out.CreatedBy = &by
	}
	return out
}

// person refuses requests authenticated by an API key: h is for staff with
// a token.
func (a *API) person(h func(req *request) (int, any, error)) func(req *request) (int, any, error) {
	return func(req *request) (int, any, error) {
		if req.key != nil {
			return 0, nil, errorf(http.StatusForbidden, wire.CodeForbidden, "API keys are managed with a staff member's token, not with a key")
		}
		return h(req)
	}
}

// listAPIKeys: GET /api/v1/api_keys?revoked=true
func (a *API) listAPIKeys(req *request) (int, any, error) {
	revoked := false
	if v := req.r.URL.Query().Get("revoked"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "revoked must be true or false")
		}
		revoked = b
	}
	list, err := a.cfg.Store.APIKeys(req.ctx, revoked)
	if err != nil {
		return 0, nil, fromAPIKeys(err)
	}
	out := make([]apiKeyJSON, len(list))
	for i, k := range list {
		out[i] = apiKeyOut(k)
	}
	return http.StatusOK, map[string]any{"api_keys": out}, nil
}

// createAPIKey: POST /api/v1/api_keys with {"name"}: 201 with the key and,
// this once, its secret.
func (a *API) createAPIKey(req *request) (int, any, error) {
	var fields map[string]json.RawMessage
	if err := readBody(req.r, &fields); err != nil {
		return 0, nil, err
	}
	if fields == nil {
		return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidJSON, "the body is not a JSON object")
	}
	for k := range fields {
		if k != "name" {
			return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "unknown field "+strconv.Quote(k))
		}
	}
	var name string
	if raw, ok := fields["name"]; !ok || json.Unmarshal(raw, &name) != nil {
		return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "name is required: a string")
	}
	secret := auth.NewAPIKey()
	k, err := a.cfg.Store.CreateAPIKey(req.ctx, storage.NewAPIKey{Name: name, Hash: auth.HashAPIKey(secret), CreatedBy: req.user.ID})
	if err != nil {
		return 0, nil, fromAPIKeys(err)
	}
	a.cfg.Logger.Info("api: API key created", "api_key_id", k.ID, "user_id", req.user.ID)
	return http.StatusCreated, struct {
		apiKeyJSON
		Key string `json:"key"`
	}{apiKeyOut(k), secret}, nil
}

// revokeAPIKey: DELETE /api/v1/api_keys/{id}: 204, also for a key revoked
// already.
func (a *API) revokeAPIKey(req *request) (int, any, error) {
	id, err := strconv.ParseInt(req.r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, nil, errorf(http.StatusNotFound, codeAPIKeyNotFound, "no such API key")
	}
	if _, err := a.cfg.Store.RevokeAPIKey(req.ctx, id); err != nil {
		return 0, nil, fromAPIKeys(err)
	}
	a.cfg.Logger.Info("api: API key revoked", "api_key_id", id, "user_id", req.user.ID)
	return http.StatusNoContent, nil, nil
}

// fromAPIKeys translates a store error of the API keys.
func fromAPIKeys(err error) *apiError {
	var se *storage.Error
	switch storage.ErrorCode(err) {
	case storage.ENOTFOUND:
		return errorf(http.StatusNotFound, codeAPIKeyNotFound, "no such API key")
	case storage.ECONFLICT:
		msg := "a valid API key has that name (revoke it first, or choose another)"
		if errors.As(err, &se) && !strings.HasPrefix(se.Message, "another API key has that name") {
			msg = se.Message
		}
		return errorf(http.StatusConflict, wire.CodeNameTaken, msg)
	}
	return fromStorage(err)
}
