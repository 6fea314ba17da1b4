package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/wsclient"
)

// devLogin signs the page's person in through the development login page,
// as a person does: types the name, picks the role, presses Sign in.
func (p *page) devLogin(addr, name string, staff bool) {
	p.t.Helper()
	p.navigate("http://" + addr + "/login")
	p.waitJS("the login form", `document.querySelector('form.login-form') !== null`)
	role := `input[name=role][value=visitor]`
	want := "/"
	if staff {
		role, want = `input[name=role][value=staff]`, "/admin/"
	}
	p.must("fill in the login form", p.timed(func(ctx context.Context) error {
		if err := p.d.click(ctx, "#name"); err != nil {
			return err
		}
		if err := p.d.typeKeys(ctx, name); err != nil {
			return err
		}
		return p.d.click(ctx, role)
	}))
	p.click("press Sign in", `form.login-form button[type=submit]`)
	p.waitJS("the redirect to "+want, `location.pathname === `+jsString(want)+` && document.readyState === 'complete'`)
}

// dialAs connects a Go v1 client with token and waits for its welcome (and
// inbox, for staff).
func dialAs(t testing.TB, s *testServer, token string, admin bool) *wsclient.Client {
	t.Helper()
	c, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Token: token, V1: true})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(c.Close)
	waitType(t, c, 0, "welcome")
	if admin {
		waitType(t, c, 0, "inbox")
	}
	return c
}

// mintWith signs a token with a development server's secret.
func mintWith(t testing.TB, secret []byte, sub, name string, admin bool) string {
	t.Helper()
	iss, err := auth.NewIssuer(auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Mint(auth.Identity{Subject: sub, Name: name, Admin: admin}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The quick start: in development mode /login is clearly labelled, signs a
// visitor and a staff member in with the chat_token cookie (HttpOnly,
// SameSite=Lax, Path=/, not Secure over plain http) and lands them on the
// chat and on the inbox, where they can talk. The same name is the same
// person again. In Chromium and in Firefox.
func TestBrowserDevLogin(t *testing.T) {
	eachBrowser(t, testDevLogin)
}

func testDevLogin(t *testing.T, br browserKind) {
	s, _ := devServer(t)
	b := br.start(t)
	b.expectErrors("/session", "/ws/chat/") // the signed-out page: its socket and GET /session answer 401
	visitor := b.newPage("visitor")
	visitor.navigate("http://" + s.Addr + "/")
	visitor.waitJS("the signed-out explanation", `document.getElementById('state').dataset.state === 'signed-out' &&
		document.getElementById('banner').textContent.includes('not signed in') &&
		document.querySelector('#banner a[href="/login"]') !== null`)

	visitor.navigate("http://" + s.Addr + "/login")
	if banner := visitor.evalString(`document.querySelector('.dev-banner').textContent`); !strings.Contains(banner, "DEVELOPMENT MODE") {
		t.Errorf("login page banner %q does not say DEVELOPMENT MODE", banner)
	}
	visitor.devLogin(s.Addr, "Alice Martin", false)
	checkCookie(t, visitor, s.Addr)
	visitor.waitOnline()
	if got := visitor.evalString(`document.getElementById('whoami').textContent`); got != "Signed in as Alice Martin" {
		t.Errorf("visitor header %q", got)
	}
	visitor.waitJS("the development banner", `!document.getElementById('dev-banner').hidden`)
	visitor.typeAndSend("Hello from the quick start")
	visitor.waitMessageText("Hello from the quick start")

	staff := b.newPage("staff")
	staff.devLogin(s.Addr, "Ann", true)
	checkCookie(t, staff, s.Addr)
	staff.waitOnline()
	staff.waitInbox("Alice Martin [1] Hello from the quick start")
	staff.openConversation(staff.inbox()[0].Conv)
	staff.typeAndSend("Welcome, Alice!")
	visitor.waitMessageText("Welcome, Alice!")

	// Signing in again with the same name is the same person: same history.
	visitor.devLogin(s.Addr, "Alice Martin", false)
	visitor.waitOnline()
	visitor.waitMessageText("Welcome, Alice!")
	if n := len(visitor.messages()); n != 2 {
		t.Errorf("after signing in again the visitor sees %d messages, want 2", n)
	}
	// The login page knows who is signed in; sign out clears the cookie.
	visitor.navigate("http://" + s.Addr + "/login")
	if cur := visitor.evalString(`document.querySelector('.current')?.textContent || ''`); !strings.Contains(cur, "Alice Martin") {
		t.Errorf("login page does not say who is signed in: %q", cur)
	}
}

func checkCookie(t *testing.T, p *page, addr string) {
	t.Helper()
	var c *testCookie
	err := p.timed(func(ctx context.Context) error {
		var err error
		c, err = p.d.cookie(ctx, addr, "chat_token")
		return err
	})
	if err != nil {
		t.Fatalf("%s: cookies: %v", p.name, err)
	}
	if c == nil {
		t.Fatalf("%s: no chat_token cookie after login", p.name)
	}
	if !c.HTTPOnly || c.SameSite != "lax" || c.Path != "/" || c.Secure || c.Expires.IsZero() {
		t.Errorf("%s: chat_token cookie %+v; want HttpOnly, Lax, /, not Secure over http, persistent", p.name, *c)
	}
	if time.Until(c.Expires) < 23*time.Hour || time.Until(c.Expires) > 25*time.Hour {
		t.Errorf("%s: chat_token expires %v, want in 24h", p.name, c.Expires)
	}
	if js := p.evalString(`document.cookie`); strings.Contains(js, "chat_token") {
		t.Errorf("%s: page scripts can read the token: document.cookie = %q", p.name, js)
	}
}

// In production (a token secret configured) there is no login page, no
// logout and no widget demo: the host site signs people in.
func TestBrowserProductionHasNoLogin(t *testing.T) {
	s := startServer(t)
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/login"}, {http.MethodPost, "/login"}, {http.MethodPost, "/logout"}, {http.MethodGet, "/widget-demo"},
	} {
		req, _ := http.NewRequest(c.method, "http://"+s.Addr+c.path, strings.NewReader("name=Mallory&role=staff"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || len(resp.Cookies()) != 0 {
			t.Errorf("production %s %s: %d with %d cookies, want 404 and none", c.method, c.path, resp.StatusCode, len(resp.Cookies()))
		}
	}
	if got := httpStatus(t, "http://"+s.Addr+"/", nil); got != http.StatusOK {
		t.Errorf("production chat page: %d", got)
	}
}
