package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestNewOriginPolicy(t *testing.T) {
	valid := []struct{ in, want string }{
		{"https://shop.example.com", "https://shop.example.com"},
		{"HTTPS://Shop.Example.COM/", "https://shop.example.com"},
		{" https://shop.example.com ", "https://shop.example.com"},
		{"https://shop.example.com:443", "https://shop.example.com"},
		{"http://shop.example.com:80", "http://shop.example.com"},
		{"http://localhost:3000", "http://localhost:3000"},
		{"https://shop.example.com:80", "https://shop.example.com:80"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"https://[::1]:8443", "https://[::1]:8443"},
		{"https://[2001:DB8::1]", "https://[2001:db8::1]"},
		{"app://local_host", "app://local_host"},
	}
	for _, tt := range valid {
		p, err := NewOriginPolicy([]string{tt.in})
		if err != nil {
			t.Errorf("NewOriginPolicy(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(p.Allowed, []string{tt.want}) {
			t.Errorf("NewOriginPolicy(%q).Allowed = %q, want [%q]", tt.in, p.Allowed, tt.want)
		}
	}

	invalid := []string{
		"*", "null", "NULL", "", "/", "shop.example.com", "//shop.example.com", "https://",
		"https://shop.example.com/path", "https://shop.example.com//", "https://shop.example.com?x=1",
		"https://shop.example.com#f", "https://user@shop.example.com", "https://user:pw@shop.example.com",
		"https://*.example.com", "https://shop.*", "https://shop.example.com:", "https://shop.example.com:0",
		"https://shop.example.com:99999", "https://shop.example.com:08080", "https://shop.example.com:x",
		"https://shop example.com", "https://shop%2eexample.com", "https://.example.com", "https://a..b",
		"https://[::1", "https://[nothost]", "https://[127.0.0.1]", "mailto:a@b.c", "https:shop.example.com",
	}
	for _, in := range invalid {
		if p, err := NewOriginPolicy([]string{in}); err == nil {
			t.Errorf("NewOriginPolicy(%q) = %q, want an error", in, p.Allowed)
		}
	}

	// Every bad entry is reported, not only the first.
	_, err := NewOriginPolicy([]string{"https://ok.example.com", "*", "null"})
	if err == nil {
		t.Fatal("NewOriginPolicy with two bad entries: no error")
	}
	for _, s := range []string{`"*"`, `"null"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name entry %s", err, s)
		}
	}

	if p, err := NewOriginPolicy(nil); err != nil || len(p.Allowed) != 0 {
		t.Errorf("NewOriginPolicy(nil) = %v, %v; want an empty policy", p, err)
	}
}

func TestOriginPolicyCheck(t *testing.T) {
	p, err := NewOriginPolicy([]string{"https://shop.example.com", "http://localhost:3000", "https://[::1]:8443"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		host    string
		origins []string // Origin header values; nil: none
		headers map[string]string
		ok      bool
	}{
		{name: "no Origin: non-browser client", host: "chat.example.com", ok: true},
		{name: "same host, https", host: "chat.example.com", origins: []string{"https://chat.example.com"}, ok: true},
		{name: "same host, http", host: "chat.example.com", origins: []string{"http://chat.example.com"}, ok: true},
		{name: "same host, case-insensitive", host: "Chat.Example.com", origins: []string{"HTTPS://CHAT.example.COM"}, ok: true},
		{name: "same host and port", host: "chat.example.com:8080", origins: []string{"http://chat.example.com:8080"}, ok: true},
		{name: "same host, explicit default port in Host", host: "chat.example.com:443", origins: []string{"https://chat.example.com"}, ok: true},
		{name: "same host, explicit default port in Origin", host: "chat.example.com", origins: []string{"https://chat.example.com:443"}, ok: true},
		{name: "same IPv6 host", host: "[::1]:8080", origins: []string{"http://[::1]:8080"}, ok: true},
		{name: "X-Forwarded-Proto is not consulted", host: "chat.example.com", origins: []string{"http://chat.example.com"},
			headers: map[string]string{"X-Forwarded-Proto": "https"}, ok: true},
		{name: "same host, different port", host: "chat.example.com:8080", origins: []string{"http://chat.example.com:3000"}},
		{name: "same host, Origin on default port, Host on another", host: "chat.example.com:8080", origins: []string{"https://chat.example.com"}},
		{name: "same host, Origin on a port, Host without", host: "chat.example.com", origins: []string{"https://chat.example.com:8443"}},
		{name: "http origin, Host on 443", host: "chat.example.com:443", origins: []string{"http://chat.example.com"}},
		{name: "same host, non-http scheme", host: "chat.example.com", origins: []string{"ws://chat.example.com"}},
		{name: "allowed", host: "chat.example.com", origins: []string{"https://shop.example.com"}, ok: true},
		{name: "allowed, case-insensitive", host: "chat.example.com", origins: []string{"HTTPS://SHOP.EXAMPLE.COM"}, ok: true},
		{name: "allowed, trailing slash", host: "chat.example.com", origins: []string{"https://shop.example.com/"}, ok: true},
		{name: "allowed, explicit default port", host: "chat.example.com", origins: []string{"https://shop.example.com:443"}, ok: true},
		{name: "allowed with port", host: "chat.example.com", origins: []string{"http://localhost:3000"}, ok: true},
		{name: "allowed IPv6", host: "chat.example.com", origins: []string{"https://[::1]:8443"}, ok: true},
		{name: "allowed host, other scheme", host: "chat.example.com", origins: []string{"http://shop.example.com"}},
		{name: "allowed host, other port", host: "chat.example.com", origins: []string{"http://localhost:3001"}},
		{name: "subdomain of allowed", host: "chat.example.com", origins: []string{"https://evil.shop.example.com"}},
		{name: "allowed as prefix", host: "chat.example.com", origins: []string{"https://shop.example.com.evil.net"}},
		{name: "parent domain of own host", host: "chat.example.com", origins: []string{"https://example.com"}},
		{name: "foreign", host: "chat.example.com", origins: []string{"https://evil.net"}},
		{name: "null", host: "chat.example.com", origins: []string{"null"}},
		{name: "empty", host: "chat.example.com", origins: []string{""}},
		{name: "wildcard", host: "chat.example.com", origins: []string{"*"}},
		{name: "with path", host: "chat.example.com", origins: []string{"https://chat.example.com/page"}},
		{name: "with user info", host: "chat.example.com", origins: []string{"https://chat.example.com@evil.net"}},
		{name: "several Origin headers", host: "chat.example.com", origins: []string{"https://chat.example.com", "https://evil.net"}},
		{name: "no Host", host: "", origins: []string{"https://chat.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/ws", nil)
			r.Host = tt.host
			for _, o := range tt.origins {
				r.Header.Add("Origin", o)
			}
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			err := p.Check(r)
			switch {
			case tt.ok && err != nil:
				t.Errorf("Check: %v, want ok", err)
			case !tt.ok && !errors.Is(err, ErrForbiddenOrigin):
				t.Errorf("Check = %v, want ErrForbiddenOrigin", err)
			}
		})
	}
}

func TestOriginPolicyNilAndLiteral(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/ws", nil)
	r.Host = "chat.example.com"

	var nilPolicy *OriginPolicy
	r.Header.Set("Origin", "https://chat.example.com")
	if err := nilPolicy.Check(r); err != nil {
		t.Errorf("nil policy, same host: %v", err)
	}
	r.Header.Set("Origin", "https://shop.example.com")
	if err := nilPolicy.Check(r); !errors.Is(err, ErrForbiddenOrigin) {
		t.Errorf("nil policy, foreign origin: %v, want ErrForbiddenOrigin", err)
	}

	// A policy built without NewOriginPolicy never turns "*" into a wildcard.
	literal := &OriginPolicy{Allowed: []string{"*", "null"}}
	for _, o := range []string{"https://evil.net", "null", "*"} {
		r.Header.Set("Origin", o)
		if err := literal.Check(r); !errors.Is(err, ErrForbiddenOrigin) {
			t.Errorf("literal {*, null} policy, Origin %q: %v, want ErrForbiddenOrigin", o, err)
		}
	}
}
