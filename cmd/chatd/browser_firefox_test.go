package main

// The pages in Firefox: Debian's firefox-esr, headless, driven over
// WebDriver BiDi by cmd/internal/bidi (Firefox serves BiDi itself; Debian
// has no geckodriver and none is needed). One Firefox per test with a fresh
// profile; every person is a user context of their own (own cookies and
// storage) in a window of their own (always in the foreground, like a
// person's window); waits poll the page with a deadline, never a sleep.
// Uncaught errors and console errors of the pages fail the test.
//
// Without firefox-esr the tests skip, saying so; with CI=true they fail
// instead.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/bidi"
)

// firefoxPath finds Debian's firefox-esr, or skips (fails with CI=true).
func firefoxPath(t testing.TB) string {
	t.Helper()
	p, err := bidi.FindFirefox()
	if err == nil {
		return p
	}
	msg := "the Firefox tests need Debian's firefox-esr on PATH (apt-get install firefox-esr)"
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI=true: the Firefox tests must run", msg)
	}
	t.Skipf("%s; skipping (with CI=true this is a failure)", msg)
	return ""
}

// foxBrowser is one headless Firefox.
type foxBrowser struct {
	t       testing.TB
	b       *bidi.Browser
	logs    *bidi.Subscription // every page's log entries
	allowed []string           // page errors a test expects (expectErrors)
}

// newFirefox starts Firefox with a fresh profile; it is stopped at cleanup,
// after the test's pages are checked for errors.
func newFirefox(t testing.TB) *foxBrowser {
	t.Helper()
	return startFirefox(t, nil)
}

// newFirefoxBlocking starts Firefox with third-party cookies and storage
// blocked (network.cookie.cookieBehavior 1, "All cross-site cookies").
func newFirefoxBlocking(t testing.TB) *foxBrowser {
	t.Helper()
	return startFirefox(t, map[string]any{"network.cookie.cookieBehavior": 1})
}

func startFirefox(t testing.TB, prefs map[string]any) *foxBrowser {
	t.Helper()
	path := firefoxPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := bidi.Start(ctx, bidi.Options{Path: path, ProfileDir: t.TempDir(), Prefs: prefs})
	if err != nil {
		t.Fatalf("start firefox (%s): %v", path, err)
	}
	f := &foxBrowser{t: t, b: b}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("stop firefox: %v\n%s", err, b.Output())
		}
	})
	if f.logs, err = b.Subscribe(ctx, []string{"log.entryAdded"}); err != nil {
		t.Fatalf("subscribe to the pages' logs: %v", err)
	}
	// Registered after Close, so it runs before it.
	t.Cleanup(f.checkNoPageErrors)
	return f
}

// checkNoPageErrors fails the test for every uncaught exception and every
// console.error of a page.
func (f *foxBrowser) checkNoPageErrors() {
	done, cancel := context.WithCancel(context.Background())
	cancel() // Next returns what is queued, then the context's error
	for {
		ev, err := f.logs.Next(done)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				f.t.Errorf("page logs: %v", err)
			}
			return
		}
		e, err := bidi.DecodeLogEntry(ev)
		if err != nil {
			f.t.Errorf("page logs: %v", err)
			continue
		}
		if (e.Type == "javascript" || e.Level == "error") && !f.expected(e.Text) {
			f.t.Errorf("page error (%s, %s): %s", e.Type, e.Level, e.Text)
		}
	}
}

// expectErrors lets the page errors containing one of texts pass (a test
// that provokes them).
func (f *foxBrowser) expectErrors(texts ...string) { f.allowed = append(f.allowed, texts...) }

func (f *foxBrowser) expected(text string) bool {
	for _, s := range f.allowed {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// foxTab is a page in its own user context (cookies and storage) and window.
type foxTab struct {
	*page
	f     *foxBrowser
	bpage *bidi.Page
}

// newTab opens a window in a new user context: another person.
func (f *foxBrowser) newTab(name string) *foxTab {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	uc, err := f.b.NewUserContext(ctx)
	if err != nil {
		f.t.Fatalf("%s: new user context: %v", name, err)
	}
	bp, err := f.b.NewPage(ctx, uc)
	if err != nil {
		f.t.Fatalf("%s: open a window: %v", name, err)
	}
	return &foxTab{page: &page{t: f.t, name: name, d: foxDriver{f: f, p: bp}}, f: f, bpage: bp}
}

// newPage is newTab for the flows written once for every browser.
func (f *foxBrowser) newPage(name string) *page { return f.newTab(name).page }

// foxDriver drives one Firefox page over WebDriver BiDi.
type foxDriver struct {
	f *foxBrowser
	p *bidi.Page
}

var _ driver = foxDriver{}

func (d foxDriver) navigate(ctx context.Context, url string) error { return d.p.Navigate(ctx, url) }
func (d foxDriver) reload(ctx context.Context) error               { return d.p.Reload(ctx) }

func (d foxDriver) eval(ctx context.Context, expr string, out any) error {
	return d.p.EvaluateJSON(ctx, expr, out)
}

func (d foxDriver) run(ctx context.Context, script string) error {
	_, err := d.p.Evaluate(ctx, script)
	return err
}

func (d foxDriver) click(ctx context.Context, selector string) error { return d.p.Click(ctx, selector) }
func (d foxDriver) typeKeys(ctx context.Context, text string) error  { return d.p.Type(ctx, text) }

func (d foxDriver) pressEnter(ctx context.Context, shift bool) error {
	if shift {
		return d.p.Press(ctx, bidi.KeyEnter, bidi.KeyShift)
	}
	return d.p.Press(ctx, bidi.KeyEnter)
}

func (d foxDriver) pressEscape(ctx context.Context) error { return d.p.Press(ctx, bidi.KeyEscape) }

func (d foxDriver) viewport(ctx context.Context, width, height int, phone bool) error {
	dpr := 1.0
	if phone {
		dpr = 2
	}
	return d.p.SetViewport(ctx, width, height, dpr)
}

func (d foxDriver) screenshot(ctx context.Context) ([]byte, error) { return d.p.Screenshot(ctx) }

func (d foxDriver) setToken(ctx context.Context, addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	return d.f.b.SetCookie(ctx, d.p.UserContext, bidi.Cookie{
		Name: "chat_token", Value: token, Domain: host, Path: "/", HTTPOnly: true, SameSite: "lax",
	})
}

func (d foxDriver) grant(ctx context.Context, origin, name string) error {
	return d.f.b.SetPermission(ctx, d.p.UserContext, origin, name, "granted")
}

func (d foxDriver) cookie(ctx context.Context, addr, name string) (*testCookie, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	cookies, err := d.f.b.Cookies(ctx, d.p.UserContext)
	if err != nil {
		return nil, err
	}
	for _, k := range cookies {
		if k.Name == name && strings.TrimPrefix(k.Domain, ".") == host {
			out := &testCookie{Name: k.Name, Path: k.Path, HTTPOnly: k.HTTPOnly, Secure: k.Secure, SameSite: strings.ToLower(k.SameSite)}
			if k.Expiry != 0 {
				out.Expires = time.Unix(k.Expiry, 0)
			}
			return out, nil
		}
	}
	return nil, nil
}

func (d foxDriver) console(ctx context.Context) (func() (consoleEntry, error), error) {
	logs, err := d.f.b.Subscribe(ctx, []string{"log.entryAdded"}, d.p.ID)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, logs.Close)
	return func() (consoleEntry, error) {
		ev, err := logs.Next(ctx)
		if err != nil {
			return consoleEntry{}, err
		}
		e, err := bidi.DecodeLogEntry(ev)
		if err != nil {
			return consoleEntry{}, err
		}
		out := consoleEntry{Method: e.Method, Text: e.Text}
		if e.Type == "javascript" {
			out.Method = "exception"
		}
		for _, a := range e.Args {
			arg := consoleArg{Type: a.Type, Text: a.String()}
			if a.Type == "object" {
				var fields [][2]json.RawMessage // an object's value: [key, RemoteValue] pairs
				if err := json.Unmarshal(a.Value, &fields); err != nil {
					return out, fmt.Errorf("console: a logged object: %w (%s)", err, a.Value)
				}
				arg.Values = map[string]string{}
				for _, kv := range fields {
					var k string
					var v bidi.RemoteValue
					_ = json.Unmarshal(kv[0], &k)
					_ = json.Unmarshal(kv[1], &v)
					arg.Keys = append(arg.Keys, k)
					arg.Values[k] = v.String()
				}
			}
			out.Args = append(out.Args, arg)
		}
		return out, nil
	}, nil
}

func (d foxDriver) frame(ctx context.Context, urlPrefix string) (driver, error) {
	frames, err := d.p.Frames(ctx)
	if err != nil {
		return nil, err
	}
	for _, fr := range frames {
		if strings.HasPrefix(fr.URL, urlPrefix) {
			return foxDriver{f: d.f, p: d.p.InFrame(fr.ID)}, nil
		}
	}
	return nil, nil
}

func (d foxDriver) gone() error {
	select {
	case <-d.f.b.Conn().Done():
		return fmt.Errorf("firefox is gone: %v\n%s", d.f.b.Conn().Err(), d.f.b.Output())
	default:
		return nil
	}
}
