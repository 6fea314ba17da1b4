package web

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/auth"
)

var secret = []byte("web-test-secret-0123456789-abcdefghij")

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func issuer(t *testing.T) *auth.Issuer {
	t.Helper()
	iss, err := auth.NewIssuer(auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func verifier(t *testing.T) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// server builds the routes on a mux as chatd does; dev turns the
// development login on.
func server(t *testing.T, dev bool, embed ...string) http.Handler {
	t.Helper()
	cfg := Config{Verifier: verifier(t), EmbedOrigins: embed}
	if dev {
		cfg.DevIssuer = issuer(t)
	}
	mux := http.NewServeMux()
	for pattern, h := range New(quiet(), cfg).Routes() {
		mux.Handle(pattern, h)
	}
	return mux
}

func do(h http.Handler, req *http.Request) *http.Response {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func get(h http.Handler, target string) *http.Response {
	return do(h, httptest.NewRequest(http.MethodGet, target, nil))
}

func directives(csp string) map[string]string {
	out := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		d = strings.TrimSpace(d)
		name, value, _ := strings.Cut(d, " ")
		out[name] = value
	}
	return out
}

func TestPagesHaveStrictHeaders(t *testing.T) {
	h := server(t, true, "https://shop.example.com")
	for _, tt := range []struct {
		path      string
		ancestors string
		frames    string
	}{
		{"/", "'none'", "'none'"},
		{"/chat/", "'none'", "'none'"},
		{"/admin/", "'none'", "'none'"},
		{"/login", "'none'", "'none'"},
		{"/widget-demo", "'none'", "'self'"},
		{"/embed/", "'self' https://shop.example.com", "'none'"},
	} {
		resp := get(h, "http://chat.example.com:8080"+tt.path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", tt.path, resp.StatusCode)
			continue
		}
		hd := resp.Header
		if ct := hd.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", tt.path, ct)
		}
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Referrer-Policy") == "" {
			t.Errorf("%s: nosniff %q, Referrer-Policy %q", tt.path, hd.Get("X-Content-Type-Options"), hd.Get("Referrer-Policy"))
		}
		d := directives(hd.Get("Content-Security-Policy"))
		want := map[string]string{
			"default-src":               "'none'",
			"script-src":                "'self'",
			"style-src":                 "'self'",
			"connect-src":               "'self' ws://chat.example.com:8080 wss://chat.example.com:8080",
			"base-uri":                  "'none'",
			"object-src":                "'none'",
			"form-action":               "'self'",
			"frame-ancestors":           tt.ancestors,
			"frame-src":                 tt.frames,
			"require-trusted-types-for": "'script'",
			"trusted-types":             "'none'",
		}
		for k, v := range want {
			if d[k] != v {
				t.Errorf("%s: CSP %s = %q, want %q (policy %q)", tt.path, k, d[k], v, hd.Get("Content-Security-Policy"))
			}
		}
		for k, v := range d {
			if strings.Contains(v, "unsafe") || strings.Contains(v, "*") {
				t.Errorf("%s: CSP %s %q allows too much", tt.path, k, v)
			}
		}
		xfo := hd.Get("X-Frame-Options")
		if (tt.path == "/embed/") != (xfo == "") {
			t.Errorf("%s: X-Frame-Options %q", tt.path, xfo)
		}
	}
}

// A forged Host header cannot add sources to the policy.
func TestPolicyIgnoresStrangeHost(t *testing.T) {
	h := server(t, false)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = "evil.example; script-src *"
	csp := do(h, req).Header.Get("Content-Security-Policy")
	if d := directives(csp); d["connect-src"] != "'self'" || d["script-src"] != "'self'" {
		t.Errorf("policy for a strange Host: %q", csp)
	}
}

func TestEmbedOriginsAreValidated(t *testing.T) {
	h := server(t, false, "https://ok.example", "https://bad.example; script-src *", "*")
	d := directives(get(h, "/embed/").Header.Get("Content-Security-Policy"))
	if d["frame-ancestors"] != "'self' https://ok.example" {
		t.Errorf("frame-ancestors %q", d["frame-ancestors"])
	}
}

func TestStaticAssets(t *testing.T) {
	h := server(t, false)
	for _, tt := range []struct{ path, ct string }{
		{"/static/chat.js", "text/javascript; charset=utf-8"},
		{"/static/admin.js", "text/javascript; charset=utf-8"},
		{"/static/app.css", "text/css; charset=utf-8"},
		{"/static/icon.svg", "image/svg+xml"},
		{"/widget.js", "text/javascript; charset=utf-8"},
	} {
		resp := get(h, tt.path)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tt.ct || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d %q nosniff=%q", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("X-Content-Type-Options"))
			continue
		}
		etag := resp.Header.Get("ETag")
		req := httptest.NewRequest(http.MethodGet, tt.path, nil)
		req.Header.Set("If-None-Match", etag)
		if r := do(h, req); etag == "" || r.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %q: %d", tt.path, etag, r.StatusCode)
		}
	}
	if got := get(h, "/widget.js").Header.Get("Cross-Origin-Resource-Policy"); got != "cross-origin" {
		t.Errorf("widget.js Cross-Origin-Resource-Policy %q", got)
	}
	for _, p := range []string{"/static/", "/static/nope.js", "/static/chat.html", "/static/x/chat.js", "/chat.html", "/login.html"} {
		if r := get(h, p); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, r.StatusCode)
		}
	}
}

func TestProductionHasNoLogin(t *testing.T) {
	h := server(t, false)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req := httptest.NewRequest(method, "/login", strings.NewReader("name=Mallory&role=staff"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp := do(h, req)
		if resp.StatusCode != http.StatusNotFound || len(resp.Cookies()) != 0 {
			t.Errorf("%s /login in production: %d, cookies %v", method, resp.StatusCode, resp.Cookies())
		}
	}
	for _, tt := range []struct{ method, path string }{{"POST", "/logout"}, {"GET", "/widget-demo"}} {
		if r := do(h, httptest.NewRequest(tt.method, tt.path, nil)); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s in production: %d", tt.method, tt.path, r.StatusCode)
		}
	}
}

func postLogin(h http.Handler, form url.Values, mutate func(*http.Request)) *http.Response {
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://127.0.0.1:8080")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if mutate != nil {
		mutate(req)
	}
	return do(h, req)
}

func TestDevLoginSetsCookie(t *testing.T) {
	h := server(t, true)
	v := verifier(t)
	for _, tt := range []struct {
		name, role, sub, to string
		admin, tls          bool
	}{
		{"Alice Smith", "visitor", "dev-alice-smith", "/", false, false},
		{"  Ann  ", "staff", "dev-staff-ann", "/admin/", true, false},
		{"Zoë O'Brien", "visitor", "dev-zoë-o-brien", "/", false, true},
	} {
		resp := postLogin(h, url.Values{"name": {tt.name}, "role": {tt.role}}, func(r *http.Request) {
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
		})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tt.to {
			t.Errorf("login %q: %d to %q, want 303 to %q", tt.name, resp.StatusCode, resp.Header.Get("Location"), tt.to)
			continue
		}
		cookies := resp.Cookies()
		if len(cookies) != 1 {
			t.Fatalf("login %q set %d cookies", tt.name, len(cookies))
		}
		c := cookies[0]
		if c.Name != "chat_token" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" ||
			c.Secure != tt.tls || c.MaxAge != int(DefaultDevTokenTTL.Seconds()) {
			t.Errorf("login %q cookie %+v: want chat_token, HttpOnly, SameSite=Lax, Path=/, Secure=%v, Max-Age 24h", tt.name, c, tt.tls)
		}
		id, err := v.Verify(c.Value)
		if err != nil {
			t.Fatalf("login %q token: %v", tt.name, err)
		}
		if id.Subject != tt.sub || id.Name != strings.TrimSpace(tt.name) || id.Admin != tt.admin {
			t.Errorf("login %q token names %+v, want sub %q admin %v", tt.name, id, tt.sub, tt.admin)
		}
		if until := time.Until(id.ExpiresAt); until < 23*time.Hour || until > 25*time.Hour {
			t.Errorf("login %q token expires in %v", tt.name, until)
		}
	}
}

func TestDevLoginRefusals(t *testing.T) {
	h := server(t, true)
	for _, tt := range []struct {
		what   string
		form   url.Values
		mutate func(*http.Request)
		status int
		says   string
	}{
		{"empty name", url.Values{"name": {"  "}, "role": {"visitor"}}, nil, 400, "Enter a name."},
		{"no letters", url.Values{"name": {"!!!"}, "role": {"visitor"}}, nil, 400, "at least one letter or digit"},
		{"long name", url.Values{"name": {strings.Repeat("a", 61)}, "role": {"visitor"}}, nil, 400, "too long"},
		{"unknown role", url.Values{"name": {"Ann"}, "role": {"root"}}, nil, 400, "Choose visitor or staff."},
		{"cross-site post", url.Values{"name": {"Ann"}, "role": {"staff"}}, func(r *http.Request) {
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		}, 403, "forbidden"},
		{"foreign origin", url.Values{"name": {"Ann"}, "role": {"staff"}}, func(r *http.Request) {
			r.Header.Del("Sec-Fetch-Site")
			r.Header.Set("Origin", "https://evil.example")
		}, 403, "forbidden"},
	} {
		resp := postLogin(h, tt.form, tt.mutate)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tt.status || len(resp.Cookies()) != 0 || !strings.Contains(string(body), tt.says) {
			t.Errorf("%s: %d, %d cookies, body %.200q; want %d saying %q", tt.what, resp.StatusCode, len(resp.Cookies()), body, tt.status, tt.says)
		}
	}
}

func TestDevSubject(t *testing.T) {
	for _, tt := range []struct {
		name  string
		staff bool
		sub   string
	}{
		{"Alice", false, "dev-alice"},
		{"Alice", true, "dev-staff-alice"},
		{"alice", false, "dev-alice"},
		{"Jean-Luc  Picard!", false, "dev-jean-luc-picard"},
		{"李小龍", false, "dev-李小龍"},
	} {
		sub, problem := devSubject(tt.name, tt.staff)
		if sub != tt.sub || problem != "" {
			t.Errorf("devSubject(%q, %v) = %q, %q; want %q", tt.name, tt.staff, sub, problem, tt.sub)
		}
	}
	sub, problem := devSubject(strings.Repeat("語", MaxNameChars), true)
	if problem != "" || len(sub) > auth.MaxSubjectBytes {
		t.Errorf("a long name gives sub of %d bytes (%q), want at most %d", len(sub), problem, auth.MaxSubjectBytes)
	}
	if _, problem := devSubject("a\x00b", false); problem == "" {
		t.Errorf("a control character is accepted")
	}
}

func TestLogoutClearsCookie(t *testing.T) {
	h := server(t, true)
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp := do(h, req)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 || resp.Cookies()[0].Name != "chat_token" {
		t.Errorf("logout: %d %v", resp.StatusCode, resp.Cookies())
	}
}

func TestLoginPageIsLabelled(t *testing.T) {
	h := server(t, true)
	resp := get(h, "http://127.0.0.1:8080/login")
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"DEVELOPMENT MODE", `name="role" value="visitor"`, `name="role" value="staff"`, "http://localhost:8080/login"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	// Signed in: it says as whom (the name escaped).
	tok, _ := issuer(t).Mint(auth.Identity{Subject: "dev-x", Name: "<b>X</b>", Admin: true}, time.Hour)
	req := httptest.NewRequest(http.MethodGet, "/login", nil)
	req.AddCookie(&http.Cookie{Name: "chat_token", Value: tok})
	body, _ = io.ReadAll(do(h, req).Body)
	if !strings.Contains(string(body), "&lt;b&gt;X&lt;/b&gt;</strong> (staff)") {
		t.Errorf("login page does not say who is signed in (escaped): %s", body)
	}
}

func TestSession(t *testing.T) {
	h := server(t, true)
	iss := issuer(t)
	good, _ := iss.Mint(auth.Identity{Subject: "u1", Name: "Alice"}, time.Hour)
	expiredIss, _ := auth.NewIssuer(auth.Config{Secret: secret, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	expired, _ := expiredIss.Mint(auth.Identity{Subject: "u1"}, time.Hour)
	for _, tt := range []struct {
		what   string
		header string
		status int
		want   string
	}{
		{"no token", "", 401, `"reason":"no_token"`},
		{"bearer", "Bearer " + good, 200, `"user":{"sub":"u1","name":"Alice","admin":false}`},
		{"expired", "Bearer " + expired, 401, `"reason":"expired"`},
		{"garbage", "Bearer x.y.z", 401, `"reason":"invalid"`},
	} {
		req := httptest.NewRequest(http.MethodGet, "/session", nil)
		if tt.header != "" {
			req.Header.Set("Authorization", tt.header)
		}
		resp := do(h, req)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) || !strings.Contains(string(body), `"dev":true`) {
			t.Errorf("%s: %d %s; want %d with %s", tt.what, resp.StatusCode, body, tt.status, tt.want)
		}
		if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: headers %v", tt.what, resp.Header)
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Errorf("%s: %v", tt.what, err)
		}
	}
	// Without a verifier there is nothing to answer.
	mux := http.NewServeMux()
	for p, hh := range New(quiet(), Config{}).Routes() {
		mux.Handle(p, hh)
	}
	if r := get(mux, "/session"); r.StatusCode != http.StatusNotFound {
		t.Errorf("/session without a verifier: %d", r.StatusCode)
	}
}

// The pages keep the promises the policy enforces: no inline script or
// style, no event-handler attributes, and no script that parses HTML.
func TestAssetsHaveNoInlineCodeOrHTMLSinks(t *testing.T) {
	inlineScript := regexp.MustCompile(`<script(\s[^>]*)?>`)
	handler := regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	sink := regexp.MustCompile(`\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(|setTimeout\(\s*['"]`)
	err := fs.WalkDir(files, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := files.ReadFile(p)
		src := string(b)
		switch {
		case strings.HasSuffix(p, ".html"):
			for _, m := range inlineScript.FindAllString(src, -1) {
				if !strings.Contains(m, "src=") {
					t.Errorf("%s: inline script %s", p, m)
				}
			}
			if strings.Contains(src, "<style") || strings.Contains(src, " style=") {
				t.Errorf("%s: inline style", p)
			}
			if m := handler.FindString(src); m != "" {
				t.Errorf("%s: event-handler attribute %q", p, m)
			}
		case strings.HasSuffix(p, ".js"):
			if m := sink.FindString(src); m != "" {
				t.Errorf("%s: uses %q", p, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
