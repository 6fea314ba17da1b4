package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/wsclient"
)

// devLogin signs the tab in through the development login page.
func (p *tab) devLogin(addr, name string, staff bool) {
	p.t.Helper()
	p.navigate("http://" + addr + "/login")
	p.waitJS("the login form", `document.querySelector('form.login-form') !== null`)
	role := `input[name=role][value=visitor]`
	if staff {
		role = `input[name=role][value=staff]`
	}
	p.do("fill in the login form",
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.Click(chromedp.CSS(role)),
	)
	want := "/"
	if staff {
		want = "/admin/"
	}
	err := p.timed(func(ctx context.Context) error {
		_, err := chromedp.Run(ctx, chromedp.WaitEvent(cdppage.LoadEventFired, nil, chromedp.Submit(chromedp.CSS("form.login-form"))))
		return err
	})
	if err != nil {
		p.t.Fatalf("%s: submit the login form: %v", p.name, err)
	}
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
// person again.
func TestBrowserDevLogin(t *testing.T) {
	chromiumPath(t) // skip (or fail in CI) before starting anything
	s, _ := devServer(t)
	b := newBrowser(t)
	visitor := b.newTab("visitor")
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

	staff := b.newTab("staff")
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

func checkCookie(t *testing.T, p *tab, addr string) {
	t.Helper()
	var c *network.Cookie
	for _, x := range p.cookies("http://" + addr + "/") {
		if x.Name == "chat_token" {
			c = x
		}
	}
	if c == nil {
		t.Fatalf("%s: no chat_token cookie after login", p.name)
	}
	if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || c.Secure || c.Session {
		t.Errorf("%s: chat_token cookie httpOnly=%v sameSite=%q path=%q secure=%v session=%v; want HttpOnly, Lax, /, not Secure over http, persistent",
			p.name, c.HTTPOnly, c.SameSite, c.Path, c.Secure, c.Session)
	}
	if exp := time.Unix(int64(c.Expires), 0); time.Until(exp) < 23*time.Hour || time.Until(exp) > 25*time.Hour {
		t.Errorf("%s: chat_token expires %v, want in 24h", p.name, exp)
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
