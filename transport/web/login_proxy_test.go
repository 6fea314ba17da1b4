package web

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/grainchat/grainchat/transport/clientip"
)

// The login cookie is Secure when a trusted proxy says the client came over
// https, and only then: from any other peer X-Forwarded-Proto is ignored.
func TestDevLoginCookieBehindProxy(t *testing.T) {
	trusting, err := clientip.New([]string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		what     string
		resolver *clientip.Resolver
		peer     string
		proto    string
		secure   bool
	}{
		{"trusted proxy says https", trusting, "127.0.0.1:41000", "https", true},
		{"trusted proxy says http", trusting, "127.0.0.1:41000", "http", false},
		{"trusted proxy, no header", trusting, "127.0.0.1:41000", "", false},
		{"untrusted peer says https", trusting, "192.0.2.10:41000", "https", false},
		{"no trusted proxies", nil, "127.0.0.1:41000", "https", false},
	} {
		h := tt.resolver.Handler(server(t, true))
		for _, path := range []string{"/login", "/logout"} {
			form := url.Values{"name": {"Ann"}, "role": {"visitor"}}
			resp := postLogin(h, form, func(r *http.Request) {
				r.URL.Path = path
				r.RemoteAddr = tt.peer
				if tt.proto != "" {
					r.Header.Set("X-Forwarded-Proto", tt.proto)
				}
			})
			cookies := resp.Cookies()
			if resp.StatusCode != http.StatusSeeOther || len(cookies) != 1 {
				t.Fatalf("%s %s: %d with %d cookies", tt.what, path, resp.StatusCode, len(cookies))
			}
			if c := cookies[0]; c.Secure != tt.secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("%s %s: cookie Secure=%v HttpOnly=%v SameSite=%v; want Secure=%v, HttpOnly, Lax",
					tt.what, path, c.Secure, c.HttpOnly, c.SameSite, tt.secure)
			}
		}
	}
}
