package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// CookieBearer hands the cookie's token to the API as a bearer token, and
// only for the page's own same-origin requests.
func TestCookieBearer(t *testing.T) {
	var seen *http.Request
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		w.WriteHeader(http.StatusTeapot)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /admin/conversations/{id}/transcript", CookieBearer(api))
	cases := []struct {
		name         string
		header, site string
		cookie       string
		status       int
		code         string
	}{
		{"no page header", "", "", "tok", http.StatusForbidden, "forbidden"},
		{"cross-site", "1", "cross-site", "tok", http.StatusForbidden, "forbidden"},
		{"same-site but another origin", "1", "same-site", "tok", http.StatusForbidden, "forbidden"},
		{"no cookie", "1", "same-origin", "", http.StatusUnauthorized, "invalid_token"},
		{"page request", "1", "same-origin", "tok", http.StatusTeapot, ""},
		{"page request without Sec-Fetch-Site", "1", "", "tok", http.StatusTeapot, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seen = nil
			req := httptest.NewRequest("GET", "/admin/conversations/42/transcript?format=json", nil)
			if c.header != "" {
				req.Header.Set(PageHeader, c.header)
			}
			if c.site != "" {
				req.Header.Set("Sec-Fetch-Site", c.site)
			}
			if c.cookie != "" {
				req.AddCookie(&http.Cookie{Name: "chat_token", Value: c.cookie})
			}
			req.Header.Set("Authorization", "Bearer other")
			res := do(mux, req)
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d", res.StatusCode, c.status)
			}
			if c.code != "" {
				if seen != nil {
					t.Fatal("the API was called")
				}
				var body struct {
					Error struct{ Code, Message string }
				}
				if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.Error.Code != c.code || body.Error.Message == "" {
					t.Fatalf("body %+v (%v), want code %s", body, err, c.code)
				}
				return
			}
			if seen == nil {
				t.Fatal("the API was not called")
			}
			if got := seen.Header.Get("Authorization"); got != "Bearer tok" {
				t.Errorf("Authorization %q, want the cookie's token", got)
			}
			if got := seen.Header.Get("Cookie"); got != "" {
				t.Errorf("the API got the cookie %q", got)
			}
			if id := seen.PathValue("id"); id != "42" || seen.URL.Query().Get("format") != "json" {
				t.Errorf("the API got id %q, query %q", id, seen.URL.RawQuery)
			}
		})
	}
}
