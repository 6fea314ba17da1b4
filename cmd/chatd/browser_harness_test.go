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
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
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
	t   testing.TB
	ctx context.Context
}

// newBrowser starts chromium with a fresh profile; it is stopped at cleanup.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	path := chromiumPath(t)
	profile := t.TempDir()
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
// of a cross-site iframe (see frameTab) has no top-level frame of its own.
func browserErrorf(format string, args ...any) {
	if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "no top-level frame") {
		log.Print("chromedp: " + msg)
	}
}

// tab is a page in its own browser context.
type tab struct {
	t    testing.TB
	name string
	ctx  context.Context
}

// newTab opens a tab in a new browser context: its own cookies and storage.
func (b *browser) newTab(name string) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("%s: open tab: %v", name, err)
	}
	return &tab{t: b.t, name: name, ctx: ctx}
}

// timed runs f with a context bounded by browserWait.
func (p *tab) timed(f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	return f(ctx)
}

// do runs actions or fails the test.
func (p *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := p.timed(func(ctx context.Context) error { return chromedp.Do(ctx, actions...) }); err != nil {
		p.t.Fatalf("%s: %s: %v%s", p.name, what, err, p.debugState())
	}
}

// evalJSON evaluates expr and decodes its JSON-able value into out.
func (p *tab) evalJSON(expr string, out any) {
	p.t.Helper()
	raw, err := p.evalRaw(expr)
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.name, expr, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		p.t.Fatalf("%s: decode %s: %v (%s)", p.name, expr, err, raw)
	}
}

func (p *tab) evalRaw(expr string) ([]byte, error) {
	var raw []byte
	err := p.timed(func(ctx context.Context) error {
		var err error
		raw, err = chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
		return err
	})
	return raw, err
}

// evalString evaluates expr to a string.
func (p *tab) evalString(expr string) string {
	p.t.Helper()
	var s string
	p.evalJSON(expr, &s)
	return s
}

// waitJS polls expr (every 50ms) until it is truthy.
func (p *tab) waitJS(what, expr string) {
	p.t.Helper()
	err := p.timed(func(ctx context.Context) error {
		for {
			_, err := chromedp.Run(ctx, chromedp.Poll[json.RawMessage](expr,
				chromedp.WithPollingInterval(50*time.Millisecond),
				chromedp.WithPollingTimeout(browserWait)))
			// A navigation destroys the context the poll ran in: poll again
			// in the new document.
			if err == nil || ctx.Err() != nil || !navigatedAway(err) {
				return err
			}
		}
	})
	if err != nil {
		p.t.Fatalf("%s: waiting for %s (%s): %v%s", p.name, what, expr, err, p.debugState())
	}
}

func navigatedAway(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "context with specified id") || strings.Contains(msg, "Execution context was destroyed") ||
		strings.Contains(msg, "Inspected target navigated or closed")
}

// debugState describes the page for a failure message.
func (p *tab) debugState() string {
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](`({
		url: location.href,
		error: document.querySelector('.form-error')?.textContent,
		title: document.title,
		state: document.getElementById('state')?.textContent,
		banner: document.getElementById('banner')?.hidden === false ? document.getElementById('banner').textContent : '',
		notice: document.getElementById('notice')?.hidden === false ? document.getElementById('notice').textContent : '',
		messages: [...document.querySelectorAll('#messages .msg')].map(li => (li.dataset.seq || 'pending') + ': ' + li.querySelector('.text')?.textContent),
		inbox: [...document.querySelectorAll('#inbox .conv')].map(b => b.querySelector('.conv-name')?.textContent + ' [' + (b.querySelector('.badge')?.textContent || '') + '] ' + b.querySelector('.conv-preview')?.textContent),
	})`))
	if err != nil {
		return fmt.Sprintf("\n  (page state unavailable: %v)", err)
	}
	return "\n  page: " + string(raw)
}

// navigate loads url and waits for the load event.
func (p *tab) navigate(url string) {
	p.t.Helper()
	p.do("navigate to "+url, chromedp.Navigate(url))
}

// setToken gives the tab the chat_token cookie for the server at addr, as
// the host site would (HttpOnly, SameSite=Lax).
func (p *tab) setToken(addr, token string) {
	p.t.Helper()
	err := p.timed(func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
			Name:     "chat_token",
			Value:    token,
			URL:      "http://" + addr + "/",
			Path:     "/",
			HTTPOnly: new(true),
			SameSite: network.CookieSameSiteLax,
		})
		return err
	})
	if err != nil {
		p.t.Fatalf("%s: set cookie: %v", p.name, err)
	}
}

// cookies returns the tab's cookies for url.
func (p *tab) cookies(url string) []*network.Cookie {
	p.t.Helper()
	var res network.GetCookiesResult
	err := p.timed(func(ctx context.Context) error {
		var err error
		res, err = chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
		return err
	})
	if err != nil {
		p.t.Fatalf("%s: get cookies: %v", p.name, err)
	}
	return res.Cookies
}

// pressEnter sends the Enter key the way a keyboard does (keydown, keyup),
// without the extra char event of SendKeys("\n").
func pressEnter() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// waitOnline waits until the page's connection state says Connected.
func (p *tab) waitOnline() {
	p.t.Helper()
	p.waitJS("the connection to be up", `document.getElementById('state')?.dataset.state === 'online'`)
}

// typeAndSend types text into the composer and presses Enter.
func (p *tab) typeAndSend(text string) {
	p.t.Helper()
	p.waitJS("the composer to be enabled", `!document.getElementById('text').disabled`)
	p.do("type "+text, chromedp.SendKeys(chromedp.ID("text"), text), pressEnter())
}

// pasteAndSend puts text into the composer at once (long texts) and presses Enter.
func (p *tab) pasteAndSend(text string) {
	p.t.Helper()
	p.waitJS("the composer to be enabled", `!document.getElementById('text').disabled`)
	p.do("paste a message",
		chromedp.SetJavascriptAttribute(chromedp.ID("text"), "value", text),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('text').dispatchEvent(new Event('input'))`),
		chromedp.Focus(chromedp.ID("text")),
		pressEnter())
}

// shownMessage is a message as the page shows it.
type shownMessage struct {
	Seq  int64  `json:"seq"`
	Text string `json:"text"`
	Who  string `json:"who"`
	Side string `json:"side"`
}

// messages returns the stored messages the page shows, in page order.
func (p *tab) messages() []shownMessage {
	p.t.Helper()
	var out []shownMessage
	p.evalJSON(`[...document.querySelectorAll('#messages .msg[data-seq]')].map(li => ({
		seq: Number(li.dataset.seq),
		text: li.querySelector('.text').textContent,
		who: li.querySelector('.who')?.textContent || '',
		side: li.classList.contains('ours') ? 'ours' : 'theirs',
	}))`, &out)
	return out
}

// waitMessageText waits until a stored message with exactly text is shown.
func (p *tab) waitMessageText(text string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("message %q", text), fmt.Sprintf(
		`[...document.querySelectorAll('#messages .msg[data-seq] .text')].some(e => e.textContent === %s)`, jsString(text)))
}

// shownConv is a conversation as the inbox shows it.
type shownConv struct {
	Conv    int64  `json:"conv"`
	Name    string `json:"name"`
	Preview string `json:"preview"`
	Unread  string `json:"unread"`
	Time    string `json:"time"`
}

func (p *tab) inbox() []shownConv {
	p.t.Helper()
	var out []shownConv
	p.evalJSON(`[...document.querySelectorAll('#inbox .conv')].map(b => ({
		conv: Number(b.dataset.conv),
		name: b.querySelector('.conv-name').textContent,
		preview: b.querySelector('.conv-preview').textContent,
		unread: b.querySelector('.badge')?.textContent || '',
		time: b.querySelector('.conv-time').textContent,
	}))`, &out)
	return out
}

// waitInbox waits until the inbox, as "name [unread] preview" lines in page
// order, equals want.
func (p *tab) waitInbox(want ...string) {
	p.t.Helper()
	w, _ := json.Marshal(want)
	p.waitJS("inbox "+strings.Join(want, " | "), fmt.Sprintf(`JSON.stringify([...document.querySelectorAll('#inbox .conv')].map(b =>
		b.querySelector('.conv-name').textContent + ' [' + (b.querySelector('.badge')?.textContent || '') + '] ' +
		b.querySelector('.conv-preview').textContent)) === JSON.stringify(JSON.parse(%s))`, jsString(string(w))))
}

// openConversation clicks the inbox entry of conv.
func (p *tab) openConversation(conv int64) {
	p.t.Helper()
	p.do(fmt.Sprintf("open conversation %d", conv), chromedp.Click(chromedp.CSS(fmt.Sprintf(`#inbox .conv[data-conv="%d"]`, conv))))
	p.waitJS("the conversation to load", fmt.Sprintf(
		`document.querySelector('#inbox .conv.active')?.dataset.conv === '%d' && !document.getElementById('pane').hidden`, conv))
}

// viewport sets the page's size: a desktop window, or a phone screen.
func (p *tab) viewport(width, height int64, phone bool) {
	p.t.Helper()
	if phone {
		p.do("phone viewport", chromedp.EmulateViewport(width, height, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
		return
	}
	p.do("desktop viewport", chromedp.EmulateViewport(width, height))
}

// screenshot saves the visible page as artifactsDir()/name.
func (p *tab) screenshot(name string) string {
	p.t.Helper()
	var png []byte
	err := p.timed(func(ctx context.Context) error {
		var err error
		png, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
		return err
	})
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	dir := artifactsDir(p.t)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatalf("save screenshot: %v", err)
	}
	p.t.Logf("screenshot: %s", path)
	return path
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

// evalVoid evaluates expr for its effect.
func evalVoid(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](expr)
}
