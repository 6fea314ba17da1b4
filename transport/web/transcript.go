package web

import (
	"encoding/json"
	"net/http"

	"github.com/grainchat/grainchat/transport/auth"
)

// PageHeader is the header the inbox page sends with its own requests to
// chatd's page routes that act for the signed-in person (CookieBearer): a
// page of another site cannot send it without a CORS preflight, which chatd
// never grants.
const PageHeader = "X-Grainchat-Page"

// CookieBearer serves a REST API route (api, which accepts only
// "Authorization: Bearer") to chatd's own pages, which hold their token in
// the HttpOnly chat_token cookie and cannot read it: the request must carry
// PageHeader (no other site can make a signed-in browser send it) and, when
// the browser says where it comes from (Sec-Fetch-Site), come from chatd's
// own origin; the cookie's token is then passed to api as the bearer token
// (and the cookie dropped). Everything else (the token's checks, staff only,
// the rate limit, the answer and its errors) is api's. The inbox page uses it
// for GET /admin/conversations/{id}/transcript.
func CookieBearer(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setCommonHeaders(w)
		if r.Header.Get(PageHeader) == "" {
			pageError(w, http.StatusForbidden, "forbidden", "this address answers the inbox page's own requests (header "+PageHeader+"); tools use /api/v1 with Authorization: Bearer")
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
			pageError(w, http.StatusForbidden, "forbidden", "cross-site requests are refused")
			return
		}
		c, err := r.Cookie(auth.CookieName)
		if err != nil || c.Value == "" {
			pageError(w, http.StatusUnauthorized, "invalid_token", "not signed in")
			return
		}
		r2 := r.Clone(r.Context()) // keeps the route's path values
		r2.Header.Del("Cookie")
		r2.Header.Set("Authorization", "Bearer "+c.Value)
		api.ServeHTTP(w, r2)
	})
}

// pageError answers an error as the REST API does: {"error":{"code","message"}}.
func pageError(w http.ResponseWriter, status int, code, message string) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}
