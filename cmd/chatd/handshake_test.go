package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// handshake dials with opts (and an optional query string) and returns the
// HTTP status of the handshake (101 when upgraded) and the client.
func handshake(t *testing.T, s *testServer, query string, opts wsclient.Options) (int, *wsclient.Client) {
	t.Helper()
	u := s.URL()
	if query != "" {
		u += "?" + query
	}
	c, err := wsclient.Dial(ctxT(t, 10*time.Second), u, opts)
	if c != nil && c.Resp == nil {
		t.Fatalf("dial %s: no HTTP answer: %v", u, err)
	}
	if err == nil {
		t.Cleanup(c.Close)
	}
	return c.Resp.StatusCode, c
}

// Handshakes are refused with real HTTP statuses before the upgrade: 401 for
// a missing or invalid token, 403 for a foreign Origin. Tokens are read from
// the cookie chat_token, the query parameter token and the Authorization
// header, in that order.
func TestHandshake(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t), "--allowed-origins", "http://shop.example.com, https://app.example.org:8443")
	secret := []byte(testSecret)
	now := time.Now()
	hs256 := map[string]any{"alg": "HS256", "typ": "JWT"}
	claims := func(extra map[string]any) map[string]any {
		c := map[string]any{"sub": "hand-1", "name": "Hand", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	valid := mint(t, "user-1", "Alice", false)
	bearer := func(tok string) wsclient.Options { return wsclient.Options{Token: tok, V1: true} }
	cookie := func(tok string) http.Header { return http.Header{"Cookie": {"chat_token=" + tok}} }

	cases := []struct {
		name   string
		query  string
		opts   wsclient.Options
		status int
		// user is the welcome's user.name when upgraded.
		user string
	}{
		{name: "no token", opts: wsclient.Options{V1: true}, status: 401},
		{name: "garbage token", opts: bearer("not-a-jwt"), status: 401},
		{name: "hand-built valid HS256", opts: bearer(handToken(hs256, claims(nil), secret)), status: 101, user: "Hand"},
		{name: "bad signature", opts: bearer(handToken(hs256, claims(nil), []byte("another-secret-0123456789-abcdefghijkl"))), status: 401},
		{name: "tampered claims", opts: bearer(retarget(handToken(hs256, claims(nil), secret), claims(map[string]any{"admin": true}))), status: 401},
		{name: "alg none", opts: bearer(handToken(map[string]any{"alg": "none", "typ": "JWT"}, claims(nil), nil)), status: 401},
		{name: "alg None signed", opts: bearer(handToken(map[string]any{"alg": "None", "typ": "JWT"}, claims(nil), secret)), status: 401},
		{name: "alg RS256 signed with the secret", opts: bearer(handToken(map[string]any{"alg": "RS256", "typ": "JWT"}, claims(nil), secret)), status: 401},
		{name: "alg HS512 header", opts: bearer(handToken(map[string]any{"alg": "HS512", "typ": "JWT"}, claims(nil), secret)), status: 401},
		{name: "expired", opts: bearer(handToken(hs256, claims(map[string]any{"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()}), secret)), status: 401},
		{name: "not yet valid", opts: bearer(handToken(hs256, claims(map[string]any{"nbf": now.Add(time.Hour).Unix()}), secret)), status: 401},
		{name: "no exp", opts: bearer(handToken(hs256, claims(map[string]any{"exp": nil}), secret)), status: 401},
		{name: "no sub", opts: bearer(handToken(hs256, claims(map[string]any{"sub": nil}), secret)), status: 401},
		{name: "token in cookie", opts: wsclient.Options{V1: true, Header: cookie(valid)}, status: 101, user: "Alice"},
		{name: "token in query", query: "token=" + url.QueryEscape(valid), opts: wsclient.Options{V1: true}, status: 101, user: "Alice"},
		{name: "token in bearer", opts: bearer(valid), status: 101, user: "Alice"},
		{name: "cookie before query and header", query: "token=" + url.QueryEscape(mint(t, "user-2", "Bruno", false)),
			opts: wsclient.Options{V1: true, Token: mint(t, "user-3", "Carla", false), Header: cookie(valid)}, status: 101, user: "Alice"},
		{name: "query before header", query: "token=" + url.QueryEscape(valid),
			opts: wsclient.Options{V1: true, Token: mint(t, "user-3", "Carla", false)}, status: 101, user: "Alice"},
		{name: "foreign origin", opts: wsclient.Options{V1: true, Token: valid, Origin: "http://evil.example"}, status: 403},
		{name: "null origin", opts: wsclient.Options{V1: true, Token: valid, Origin: "null"}, status: 403},
		{name: "own origin", opts: wsclient.Options{V1: true, Token: valid, Origin: "http://" + s.Addr}, status: 101, user: "Alice"},
		{name: "allowed origin", opts: wsclient.Options{V1: true, Token: valid, Origin: "http://shop.example.com"}, status: 101, user: "Alice"},
		{name: "second allowed origin", opts: wsclient.Options{V1: true, Token: valid, Origin: "https://app.example.org:8443"}, status: 101, user: "Alice"},
		{name: "allowed host on another port", opts: wsclient.Options{V1: true, Token: valid, Origin: "http://shop.example.com:8080"}, status: 403},
		{name: "allowed host, other scheme", opts: wsclient.Options{V1: true, Token: valid, Origin: "https://shop.example.com"}, status: 403},
		{name: "no origin", opts: wsclient.Options{V1: true, Token: valid}, status: 101, user: "Alice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, c := handshake(t, s, tc.query, tc.opts)
			if status != tc.status {
				t.Fatalf("handshake answered %d, want %d", status, tc.status)
			}
			if status != 101 {
				return
			}
			w := welcomeOf(t, c)
			if name := obj(w, "user")["name"]; name != tc.user {
				t.Errorf("welcome %s, want user %q", w.Raw, tc.user)
			}
			if w.String("protocol") != "grainchat.v1" {
				t.Errorf("welcome %s, want protocol grainchat.v1", w.Raw)
			}
			if got := c.Resp.Header.Get("Sec-WebSocket-Protocol"); got != "grainchat.v1" {
				t.Errorf("upgrade chose subprotocol %q, want grainchat.v1", got)
			}
		})
	}

	// A client offering only other subprotocols is upgraded without one and
	// speaks seed.
	t.Run("other subprotocol", func(t *testing.T) {
		status, c := handshake(t, s, "", wsclient.Options{Token: valid, Header: http.Header{"Sec-WebSocket-Protocol": {"chat.v9"}}})
		if status != 101 {
			t.Fatalf("handshake answered %d, want 101", status)
		}
		if got := c.Resp.Header.Get("Sec-WebSocket-Protocol"); got != "" {
			t.Fatalf("upgrade chose subprotocol %q, want none", got)
		}
		send(t, c, map[string]any{"message": "no subprotocol"})
		f := waitMessage(t, c, "no subprotocol")
		checkSeedFrame(t, f)
		if n := len(c.Frames()); n != 1 {
			t.Errorf("got %d frames, want only the message:%s", n, dump(c))
		}
	})
}

// retarget replaces the claims of a signed token, keeping its header and
// signature: a forgery that only the signature check can catch.
func retarget(tok string, claims map[string]any) string {
	parts := strings.Split(tok, ".")
	c, _ := json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(c) + "." + parts[2]
}
