package main

// Helpers of the browser tests (browser_*_test.go): a headless Debian
// chromium driven by chromedp, one per test with a fresh profile; tabs in
// separate browser contexts (own cookies and storage, like two people); waits
// that poll the page with a deadline, never a sleep.
//
// Without chromium the tests skip, saying so; with CI=true they fail instead.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// browserWait bounds every single wait in a page.
const browserWait = 20 * time.Second

// chromiumPath finds Debian's chromium, or skips (fails with CI=true).
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "browser tests need Debian's chromium on PATH (apt-get install chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI=true: the browser tests must run", msg)
	}
	t.Skipf("%s; skipping (with CI=true this is a failure)", msg)
	return ""
}

// browser is one headless chromium process.
type browser struct {
	t       testing.TB
	ctx     context.Context
	allowed []string // page errors a test expects (expectErrors)
}

// newBrowser starts chromium with a fresh profile; it is stopped at cleanup.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	return startChromium(t, t.TempDir())
}

// newBrowserBlocking starts Chromium with third-party cookies (and with them
// third-party storage) blocked: the profile's preference that the browser's
// "Block third-party cookies" setting writes.
func newBrowserBlocking(t testing.TB) *browser {
	t.Helper()
	profile := t.TempDir()
	prefs := []byte(`{"profile":{"block_third_party_cookies":true,"cookie_controls_mode":1}}`)
	if err := os.MkdirAll(filepath.Join(profile, "Default"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(profile, "Default", "Preferences"), prefs, 0o600); err != nil {
		t.Fatal(err)
	}
	return startChromium(t, profile)
}

func startChromium(t testing.TB, profile string) *browser {
	t.Helper()
	path := chromiumPath(t)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		// Several tabs run at once; none may be throttled as a background tab.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.WindowSize(1280, 800),
	)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(browserErrorf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Do starts the browser and binds it to ctx (no deadline);
	// a watchdog bounds the start instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium (%s): %v", path, err)
		}
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("chromium (%s) did not start within 60s", path)
	}
	return &browser{t: t, ctx: ctx}
}

// browserErrorf is chromedp's error log, minus its complaint that the target
// of a cross-site iframe (see chromeDriver.frame) has no top-level frame of its own.
func browserErrorf(format string, args ...any) {
	if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "no top-level frame") {
		log.Print("chromedp: " + msg)
	}
}

// tab is a page in its own browser context, driven by chromedp.
type tab struct {
	*page
	ctx context.Context
}

// newTab opens a tab in a new browser context: its own cookies and storage.
func (b *browser) newTab(name string) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("%s: open tab: %v", name, err)
	}
	return newChromeTab(b.t, name, ctx)
}

// newPage is newTab for the flows written once for every browser. As in
// Firefox, an uncaught exception or a console.error of the page fails the
// test (checked at cleanup).
func (b *browser) newPage(name string) *page {
	p := b.newTab(name)
	b.watchErrors(p)
	return p.page
}

// watchErrors fails the test (at cleanup) for every uncaught exception and
// console.error of p's page, but those expectErrors allows.
func (b *browser) watchErrors(p *tab) {
	name := p.name
	ctx, cancel := context.WithCancel(context.Background())
	next, err := p.d.console(ctx)
	if err != nil {
		b.t.Fatalf("%s: console: %v", name, err)
	}
	var mu sync.Mutex
	var problems []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			e, err := next()
			if err != nil {
				return
			}
			// A page without an icon (/healthz) makes Chromium fetch
			// /favicon.ico, and log its 404 as an error.
			if (e.Method == "exception" || e.Method == "error") && !strings.HasSuffix(e.URL, "/favicon.ico") {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s: %s (%s)", e.Method, e.Text, e.URL))
				mu.Unlock()
			}
		}
	}()
	b.t.Cleanup(func() {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, pr := range problems {
			if !b.expected(pr) {
				b.t.Errorf("%s: page error (%s)", name, pr)
			}
		}
	})
}

// expectErrors lets the page errors containing one of texts pass (a test
// that provokes them).
func (b *browser) expectErrors(texts ...string) { b.allowed = append(b.allowed, texts...) }

func (b *browser) expected(problem string) bool {
	for _, s := range b.allowed {
		if strings.Contains(problem, s) {
			return true
		}
	}
	return false
}

func newChromeTab(t testing.TB, name string, ctx context.Context) *tab {
	return &tab{page: &page{t: t, name: name, d: chromeDriver{ctx}}, ctx: ctx}
}

// chromeDriver drives one chromedp target.
type chromeDriver struct{ ctx context.Context }

var _ driver = chromeDriver{}

// bound is the target's context, ending when ctx ends too.
func (c chromeDriver) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	tctx, cancel := context.WithCancel(c.ctx)
	stop := context.AfterFunc(ctx, cancel)
	return tctx, func() { stop(); cancel() }
}

// on runs actions on the target within ctx.
func (c chromeDriver) on(ctx context.Context, actions ...chromedp.Action[chromedp.Void]) error {
	deadline, _ := ctx.Deadline()
	tctx, cancel := context.WithDeadline(c.ctx, deadline)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	return chromedp.Do(tctx, actions...)
}

func (c chromeDriver) navigate(ctx context.Context, url string) error {
	return c.on(ctx, chromedp.Navigate(url))
}

// reload reloads the page and polls until the new document has loaded. It
// does not wait on chromedp.Reload: its wait for the load event once missed
// the event of a page that had loaded (CI, a page holding a cross-site frame),
// and timed out. A page that asks before it is left (beforeunload: text not
// stored yet) holds the reload in its dialog: after 3 s with the old
// document the dialog is dismissed and reload fails saying so (a test that
// reloads right after a send must first wait for the message to be stored).
func (c chromeDriver) reload(ctx context.Context) error {
	if err := c.run(ctx, `window.grainchatOldDocument = true`); err != nil {
		return err
	}
	if err := c.on(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cdppage.Reload, cdppage.ReloadParams{})
		return err
	})); err != nil {
		return err
	}
	sent := time.Now()
	for {
		var state string
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.eval(pctx, `(window.grainchatOldDocument === undefined ? 'new ' : 'old ') + document.readyState`, &state)
		cancel()
		if err == nil && state == "new complete" {
			return nil
		}
		if err == nil && strings.HasPrefix(state, "old") && time.Since(sent) > 3*time.Second {
			dismissed := c.on(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := cdp.Call(ctx, t, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: false})
				return err
			}))
			if dismissed == nil {
				return errors.New("the page asked before it was left (a beforeunload dialog: text or messages not stored yet)")
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the new document has not loaded (last check: %q, %v): %w", state, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c chromeDriver) eval(ctx context.Context, expr string, out any) error {
	deadline, _ := ctx.Deadline()
	tctx, cancel := context.WithDeadline(c.ctx, deadline)
	defer cancel()
	raw, err := chromedp.Run(tctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode %.200s: %w", raw, err)
	}
	return nil
}

func (c chromeDriver) run(ctx context.Context, script string) error {
	return c.on(ctx, chromedp.Evaluate[chromedp.Void](script))
}

// click clicks the element selector names. A page that renders the element
// again between the lookup and the click (a list replaced when the server's
// answer comes) makes Chromium answer "Could not find node with given id":
// the element is looked up and clicked again, until ctx's deadline.
func (c chromeDriver) click(ctx context.Context, selector string) error {
	for {
		err := c.on(ctx, chromedp.Click(chromedp.CSS(selector)))
		if err == nil || !strings.Contains(err.Error(), "Could not find node with given id") {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (the element was rendered again at each try)", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c chromeDriver) typeKeys(ctx context.Context, text string) error {
	return c.on(ctx, chromedp.KeyEvent(text))
}

func (c chromeDriver) pressEnter(ctx context.Context, shift bool) error {
	return c.on(ctx, pressEnterMod(shift))
}

func (c chromeDriver) pressEscape(ctx context.Context) error {
	return c.on(ctx, chromedp.KeyEvent(kb.Escape))
}

func (c chromeDriver) viewport(ctx context.Context, width, height int, phone bool) error {
	if phone {
		return c.on(ctx, chromedp.EmulateViewport(int64(width), int64(height), chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	}
	return c.on(ctx, chromedp.EmulateViewport(int64(width), int64(height)))
}

func (c chromeDriver) screenshot(ctx context.Context) ([]byte, error) {
	deadline, _ := ctx.Deadline()
	tctx, cancel := context.WithDeadline(c.ctx, deadline)
	defer cancel()
	return chromedp.Run(tctx, chromedp.CaptureScreenshot())
}

func (c chromeDriver) setToken(ctx context.Context, addr, token string) error {
	return c.on(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetCookie, network.SetCookieParams{
			Name:     "chat_token",
			Value:    token,
			URL:      "http://" + addr + "/",
			Path:     "/",
			HTTPOnly: new(true),
			SameSite: network.CookieSameSiteLax,
		})
		return err
	}))
}

func (c chromeDriver) grant(ctx context.Context, origin, name string) error {
	deadline, _ := ctx.Deadline()
	tctx, cancel := context.WithDeadline(c.ctx, deadline)
	defer cancel()
	_, err := chromedp.CallBrowser(tctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
		Permission:       &cdpbrowser.PermissionDescriptor{Name: name},
		Setting:          cdpbrowser.PermissionSettingGranted,
		Origin:           origin,
		BrowserContextID: chromedp.FromContext(c.ctx).BrowserContextID,
	})
	return err
}

func (c chromeDriver) cookie(ctx context.Context, addr, name string) (*testCookie, error) {
	deadline, _ := ctx.Deadline()
	tctx, cancel := context.WithDeadline(c.ctx, deadline)
	defer cancel()
	res, err := chromedp.Call(tctx, network.GetCookies, network.GetCookiesParams{URLs: []string{"http://" + addr + "/"}})
	if err != nil {
		return nil, err
	}
	for _, k := range res.Cookies {
		if k.Name == name {
			out := &testCookie{Name: k.Name, Path: k.Path, HTTPOnly: k.HTTPOnly, Secure: k.Secure, SameSite: strings.ToLower(string(k.SameSite))}
			if !k.Session {
				out.Expires = time.Unix(int64(k.Expires), 0)
			}
			return out, nil
		}
	}
	return nil, nil
}

func (c chromeDriver) console(ctx context.Context) (func() (consoleEntry, error), error) {
	cctx, cancel := c.bound(ctx)
	messages := chromedp.Console(cctx) // subscribed now
	ch := make(chan chromedp.ConsoleMessage, 1024)
	go func() {
		defer cancel()
		defer close(ch)
		for m, err := range messages {
			if err != nil {
				return
			}
			select {
			case ch <- m:
			case <-cctx.Done():
				return
			}
		}
	}()
	return func() (consoleEntry, error) {
		var m chromedp.ConsoleMessage
		var ok bool
		select {
		case m, ok = <-ch:
		case <-ctx.Done():
			return consoleEntry{}, ctx.Err()
		}
		if !ok {
			if ctx.Err() != nil {
				return consoleEntry{}, ctx.Err()
			}
			return consoleEntry{}, errors.New("the console subscription ended")
		}
		e := consoleEntry{Method: string(m.Type), Text: m.Text, URL: m.URL}
		if m.IsException() {
			e.Method = "exception"
		}
		for _, a := range m.Args {
			arg := consoleArg{Type: string(a.Type)}
			if a.Type == runtime.RemoteObjectTypeString {
				_ = json.Unmarshal(a.Value, &arg.Text)
			} else if len(a.Value) > 0 {
				arg.Text = string(a.Value)
			} else {
				arg.Text = a.Description
			}
			if a.Type == runtime.RemoteObjectTypeObject && a.Preview != nil {
				arg.Values = map[string]string{}
				for _, prop := range a.Preview.Properties {
					arg.Keys = append(arg.Keys, prop.Name)
					arg.Values[prop.Name] = prop.Value
				}
			}
			e.Args = append(e.Args, arg)
		}
		return e, nil
	}, nil
}

// frame attaches to the cross-site iframe (its own target) whose address
// starts with urlPrefix. (Attaching races inside chromedp: tests that use it
// run outside -race.)
func (c chromeDriver) frame(ctx context.Context, urlPrefix string) (driver, error) {
	deadline, _ := ctx.Deadline()
	tctx, cancel := context.WithDeadline(c.ctx, deadline)
	defer cancel()
	infos, err := chromedp.Targets(tctx)
	if err != nil {
		return nil, err
	}
	for _, info := range infos {
		if info.Type == "iframe" && strings.HasPrefix(info.URL, urlPrefix) {
			fctx, _ := chromedp.NewContext(c.ctx, chromedp.WithTargetID(info.TargetID)) // ends with the tab
			if err := chromedp.Do(fctx); err != nil {
				return nil, fmt.Errorf("attach to the frame: %w", err)
			}
			return chromeDriver{fctx}, nil
		}
	}
	return nil, nil
}

func (c chromeDriver) gone() error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	return nil
}

// pressEnterMod sends the Enter key the way a keyboard does (keydown, keyup),
// without the extra char event of SendKeys("\n"). With shift, the key down
// carries the text "\r", as a keyboard's does, so that a textarea inserts its
// new line.
func pressEnterMod(shift bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeRawKeyDown}
		if shift {
			down = input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Text: "\r", Modifiers: 8} // 8: Shift
		}
		up := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, Modifiers: down.Modifiers}
		for _, ev := range []input.DispatchKeyEventParams{down, up} {
			ev.Key, ev.Code, ev.WindowsVirtualKeyCode, ev.NativeVirtualKeyCode = "Enter", "Enter", 13, 13
			_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, ev)
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// artifactsDir is $ARTIFACTS_DIR, or artifacts/screenshots at the
// repository root (gitignored).
func artifactsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			t.Fatalf("artifacts: %v", err)
		}
		dir = filepath.Join(root, "artifacts", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts: %v", err)
	}
	return dir
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// freeAddr returns a loopback address nobody listens on (for a server that
// must come back on the same address).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// devServer starts chatd in development mode (no token secret): the login
// page is on. It returns the server and an issuer's secret for Go clients.
func devServer(t testing.TB, args ...string) (*testServer, []byte) {
	t.Helper()
	secretFile := filepath.Join(t.TempDir(), "dev-jwt-secret")
	s := startServer(t, append([]string{"--jwt-secret=", "--dev-secret-file", secretFile}, args...)...)
	secret, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatalf("dev secret: %v", err)
	}
	return s, []byte(strings.TrimSpace(string(secret)))
}
