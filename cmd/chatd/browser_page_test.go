package main

// One page interface for the browser tests: a flow (a visitor and staff
// talking, markup shown as text, a console snippet, …) is written once
// against page and runs in Chromium (chromedp, browser_harness_test.go) and
// in Firefox (WebDriver BiDi, browser_firefox_test.go) as the subtests
// "chromium" and "firefox" (eachBrowser). A browser is a driver: navigate,
// evaluate, click, type, screenshot, read the console; everything else
// (waiting with a deadline, reading the thread and the inbox) is page's,
// written once.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// driver is what a browser does for a page. Every call is bounded by ctx.
type driver interface {
	// navigate loads url and waits for its load event; reload the same.
	navigate(ctx context.Context, url string) error
	reload(ctx context.Context) error
	// eval evaluates the expression expr (awaiting a promise) and decodes
	// its value, as JSON, into out.
	eval(ctx context.Context, expr string, out any) error
	// run runs script (statements; top-level const and let persist, as in
	// a console) for its effect.
	run(ctx context.Context, script string) error
	// click clicks the centre of the first element matching the CSS
	// selector with the mouse, scrolled into view.
	click(ctx context.Context, selector string) error
	// typeKeys types text with the keyboard into what has the focus;
	// pressEnter presses Enter (keydown, keyup), optionally with Shift.
	typeKeys(ctx context.Context, text string) error
	pressEnter(ctx context.Context, shift bool) error
	// pressEscape presses Escape (keydown, keyup).
	pressEscape(ctx context.Context) error
	// viewport sets the page's size in CSS pixels: a desktop window, or a
	// phone screen (twice the pixel density; Chromium also emulates touch,
	// which BiDi cannot: the pages' layout depends on the width only).
	viewport(ctx context.Context, width, height int, phone bool) error
	// screenshot returns a PNG of the viewport.
	screenshot(ctx context.Context) ([]byte, error)
	// setToken gives the page's person the chat_token cookie for the server
	// at addr, as the host site would (HttpOnly, SameSite=Lax).
	setToken(ctx context.Context, addr, token string) error
	// cookie returns the page's person's cookie name for the server at addr
	// (nil when there is none).
	cookie(ctx context.Context, addr, name string) (*testCookie, error)
	// console records the page's console calls and uncaught exceptions from
	// now until ctx ends; next returns them in order, blocking until one
	// comes or ctx ends.
	console(ctx context.Context) (next func() (consoleEntry, error), err error)
	// frame returns a driver for the page's frame whose address starts
	// with urlPrefix (a cross-site iframe too), or nil if there is none yet.
	frame(ctx context.Context, urlPrefix string) (driver, error)
	// grant grants the page's person the permission name ("notifications")
	// on origin, as if they had allowed it when asked.
	grant(ctx context.Context, origin, name string) error
	// gone is non-nil once the browser is gone (a wait stops at once).
	gone() error
}

// testCookie is a cookie as a browser keeps it: SameSite in lower case,
// Expires zero for a session cookie.
type testCookie struct {
	Name, Path       string
	HTTPOnly, Secure bool
	SameSite         string
	Expires          time.Time
}

// consoleEntry is a console call (Method "log", "error", "warn", …) or an
// uncaught exception (Method "exception").
type consoleEntry struct {
	Method string
	Text   string
	URL    string // where it came from, when the browser says
	Args   []consoleArg
}

// consoleArg is an argument of a console call: a string's text, or an
// object's keys in order with their values as text.
type consoleArg struct {
	Type   string // "string", "number", "object", …
	Text   string
	Keys   []string
	Values map[string]string
}

// page is one person's page in a browser, with the waits and readings the
// tests share.
type page struct {
	t    testing.TB
	name string
	d    driver
}

// timed runs fn with a context bounded by browserWait.
func (p *page) timed(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	return fn(ctx)
}

// must fails the test with what and the page's state when err is not nil.
func (p *page) must(what string, err error) {
	p.t.Helper()
	if err != nil {
		p.t.Fatalf("%s: %s: %v%s", p.name, what, err, p.debugState())
	}
}

// navigate loads url and waits for the load event.
func (p *page) navigate(url string) {
	p.t.Helper()
	p.must("navigate to "+url, p.timed(func(ctx context.Context) error { return p.d.navigate(ctx, url) }))
}

// reload reloads the page and waits for the load event.
func (p *page) reload() {
	p.t.Helper()
	p.must("reload", p.timed(p.d.reload))
}

// setToken gives the person the chat_token cookie for the server at addr.
func (p *page) setToken(addr, token string) {
	p.t.Helper()
	p.must("set the token cookie", p.timed(func(ctx context.Context) error { return p.d.setToken(ctx, addr, token) }))
}

// run runs script for its effect.
func (p *page) run(what, script string) {
	p.t.Helper()
	p.must(what, p.timed(func(ctx context.Context) error { return p.d.run(ctx, script) }))
}

// evalJSON evaluates expr and decodes its JSON-able value into out.
func (p *page) evalJSON(expr string, out any) {
	p.t.Helper()
	if err := p.timed(func(ctx context.Context) error { return p.d.eval(ctx, expr, out) }); err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.name, expr, err)
	}
}

// evalString evaluates expr to a string.
func (p *page) evalString(expr string) string {
	p.t.Helper()
	var s string
	p.evalJSON(expr, &s)
	return s
}

// waitJS polls expr (every 50ms) until it is truthy, for at most
// browserWait. Errors while polling (a page between two documents, an
// element not there yet) count as "not yet"; the last one is reported if the
// wait times out. It is the one poll-with-a-deadline of the browser tests.
func (p *page) waitJS(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(browserWait)
	var lastErr error
	for {
		var ok bool
		err := p.timed(func(ctx context.Context) error { return p.d.eval(ctx, "!!("+expr+")", &ok) })
		if err == nil && ok {
			return
		}
		if err != nil {
			lastErr = err
		}
		if gone := p.d.gone(); gone != nil {
			p.t.Fatalf("%s: waiting for %s: the browser is gone: %v", p.name, what, gone)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: waiting for %s (%s): timed out after %v (last error: %v)%s", p.name, what, expr, browserWait, lastErr, p.debugState())
		}
		time.Sleep(50 * time.Millisecond) // the poll's period; the deadline above bounds the wait
	}
}

// click clicks the first element matching selector.
func (p *page) click(what, selector string) {
	p.t.Helper()
	p.must(what, p.timed(func(ctx context.Context) error { return p.d.click(ctx, selector) }))
}

// frame waits for the page's frame whose address starts with prefix and
// returns it as a page of its own.
func (p *page) frame(prefix string) *page {
	p.t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		var fd driver
		err := p.timed(func(ctx context.Context) error {
			var err error
			fd, err = p.d.frame(ctx, prefix)
			return err
		})
		if err != nil {
			p.t.Fatalf("%s: frames: %v", p.name, err)
		}
		if fd != nil {
			return &page{t: p.t, name: p.name + " frame", d: fd}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no frame at %s within %v", p.name, prefix, browserWait)
		}
		time.Sleep(50 * time.Millisecond) // frames appear asynchronously; the deadline bounds the wait
	}
}

// debugState describes the page for a failure message.
func (p *page) debugState() string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var state any
	err := p.d.eval(ctx, `({
		url: location.href,
		title: document.title,
		error: document.querySelector('.form-error')?.textContent,
		state: document.getElementById('state')?.textContent,
		banner: document.getElementById('banner')?.hidden === false ? document.getElementById('banner').textContent : '',
		notice: document.getElementById('notice')?.hidden === false ? document.getElementById('notice').textContent : '',
		messages: [...document.querySelectorAll('#messages .msg')].map(li => (li.dataset.seq || 'pending') + ': ' + li.querySelector('.text')?.textContent),
		inbox: [...document.querySelectorAll('#inbox .conv')].map(b => b.querySelector('.conv-name')?.textContent + ' [' + (b.querySelector('.badge')?.textContent || '') + '] ' + b.querySelector('.conv-preview')?.textContent),
		composer: document.getElementById('text')?.value,
		focus: document.activeElement?.id,
		canned_menu: document.getElementById('canned-menu')?.hidden === false ? document.getElementById('canned-menu').textContent : null,
	})`, &state)
	if err != nil {
		return fmt.Sprintf("\n  (page state unavailable: %v)", err)
	}
	b, _ := json.Marshal(state)
	return "\n  page: " + string(b)
}

// waitOnline waits until the page's connection state says Connected.
func (p *page) waitOnline() {
	p.t.Helper()
	p.waitJS("the connection to be up", `document.getElementById('state')?.dataset.state === 'online'`)
}

// typeAndSend clicks into the composer, types text key by key and presses
// Enter, as a person does.
func (p *page) typeAndSend(text string) {
	p.t.Helper()
	p.waitJS("the composer to be enabled", `!document.getElementById('text').disabled`)
	p.must(fmt.Sprintf("type %q", text), p.timed(func(ctx context.Context) error {
		if err := p.d.click(ctx, "#text"); err != nil {
			return err
		}
		if err := p.d.typeKeys(ctx, text); err != nil {
			return err
		}
		return p.d.pressEnter(ctx, false)
	}))
}

// pasteAndSend puts text into the composer at once (long texts), as a paste
// does, and presses Enter.
func (p *page) pasteAndSend(text string) {
	p.t.Helper()
	p.waitJS("the composer to be enabled", `!document.getElementById('text').disabled`)
	p.run("paste a message", fmt.Sprintf(`(() => { const t = document.getElementById('text');
		t.value = %s; t.dispatchEvent(new Event('input')); t.focus(); })()`, jsString(text)))
	p.must("press Enter", p.timed(func(ctx context.Context) error { return p.d.pressEnter(ctx, false) }))
}

// shownMessage is a message as the page shows it.
type shownMessage struct {
	Seq  int64  `json:"seq"`
	Text string `json:"text"`
	Who  string `json:"who"`
	Side string `json:"side"`
}

// messages returns the stored messages the page shows, in page order.
func (p *page) messages() []shownMessage {
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
func (p *page) waitMessageText(text string) {
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

// inbox returns the conversations the inbox lists, in page order.
func (p *page) inbox() []shownConv {
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
func (p *page) waitInbox(want ...string) {
	p.t.Helper()
	w, _ := json.Marshal(want)
	p.waitJS("inbox "+strings.Join(want, " | "), fmt.Sprintf(`JSON.stringify([...document.querySelectorAll('#inbox .conv')].map(b =>
		b.querySelector('.conv-name').textContent + ' [' + (b.querySelector('.badge')?.textContent || '') + '] ' +
		b.querySelector('.conv-preview').textContent)) === JSON.stringify(JSON.parse(%s))`, jsString(string(w))))
}

// openConversation clicks the inbox entry of conv.
func (p *page) openConversation(conv int64) {
	p.t.Helper()
	p.click(fmt.Sprintf("open conversation %d", conv), fmt.Sprintf(`#inbox .conv[data-conv="%d"]`, conv))
	p.waitJS("the conversation to load", fmt.Sprintf(
		`document.querySelector('#inbox .conv.active')?.dataset.conv === '%d' && !document.getElementById('pane').hidden`, conv))
}

// screenshot saves the visible page as artifactsDir()/name.
func (p *page) screenshot(name string) string {
	p.t.Helper()
	var png []byte
	p.must("screenshot", p.timed(func(ctx context.Context) error {
		var err error
		png, err = p.d.screenshot(ctx)
		return err
	}))
	path := filepath.Join(artifactsDir(p.t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatalf("save screenshot: %v", err)
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

// docScreenshot saves the visible page as name in Chromium (docs/img holds
// copies of those) and as firefox-name in Firefox.
func (p *page) docScreenshot(br browserKind, name string) string {
	p.t.Helper()
	if br.name != "chromium" {
		name = br.name + "-" + name
	}
	return p.screenshot(name)
}

// viewport sets the page's size (see driver.viewport) and waits until the
// page has it.
func (p *page) viewport(width, height int, phone bool) {
	p.t.Helper()
	p.must(fmt.Sprintf("viewport %dx%d", width, height), p.timed(func(ctx context.Context) error {
		return p.d.viewport(ctx, width, height, phone)
	}))
	p.waitJS(fmt.Sprintf("a %dpx wide viewport", width), fmt.Sprintf(`innerWidth === %d`, width))
}

// checkNoSideways fails when the page scrolls sideways (a layout wider than
// the screen).
func (p *page) checkNoSideways() {
	p.t.Helper()
	var w struct {
		Scroll, Inner, Body int
	}
	p.evalJSON(`({Scroll: document.documentElement.scrollWidth, Inner: innerWidth, Body: document.body.scrollWidth})`, &w)
	if w.Scroll > w.Inner || w.Body > w.Inner {
		p.t.Errorf("%s: page is %dpx wide (body %dpx) on a %dpx screen", p.name, w.Scroll, w.Body, w.Inner)
	}
}

// checkFits is checkNoSideways, and checks that the composer is on screen,
// not covered, enabled, with its Send button, and that its text does not
// scroll (Firefox draws scroll bars that headless Chromium hides).
func (p *page) checkFits() {
	p.t.Helper()
	p.checkNoSideways()
	var c struct {
		Left, Top, Right, Bottom   float64
		Hit, Enabled, Send         bool
		ScrollHeight, ClientHeight int
		VW, VH                     float64
	}
	p.evalJSON(`(() => {
		const t = document.getElementById('text'), s = document.getElementById('send');
		const r = t.getBoundingClientRect(), sr = s.getBoundingClientRect();
		const hit = (x, y) => { const e = document.elementFromPoint(x, y); return e === t || t.contains(e); };
		const hitSend = (x, y) => { const e = document.elementFromPoint(x, y); return e === s || s.contains(e); };
		return {Left: r.left, Top: r.top, Right: r.right, Bottom: r.bottom,
			Hit: hit(r.left + r.width / 2, r.top + r.height / 2),
			Send: sr.width > 0 && sr.right <= innerWidth && sr.bottom <= innerHeight && hitSend(sr.left + sr.width / 2, sr.top + sr.height / 2),
			Enabled: !t.disabled, ScrollHeight: t.scrollHeight, ClientHeight: t.clientHeight, VW: innerWidth, VH: innerHeight};
	})()`, &c)
	if c.Left < 0 || c.Top < 0 || c.Right > c.VW || c.Bottom > c.VH || c.Right-c.Left < 100 {
		p.t.Errorf("%s: the composer is at %+v, not fully on a %vx%v screen", p.name, c, c.VW, c.VH)
	}
	if !c.Hit || !c.Send {
		p.t.Errorf("%s: the composer or its Send button is covered or off screen: %+v", p.name, c)
	}
	if !c.Enabled {
		p.t.Errorf("%s: the composer is disabled", p.name)
	}
	if c.ScrollHeight > c.ClientHeight {
		p.t.Errorf("%s: the composer's text is %dpx high in %dpx of room: it scrolls (and shows a scroll bar) for a single line", p.name, c.ScrollHeight, c.ClientHeight)
	}
}

// composerHeight is the composer's room and its text's height.
type composerHeight struct{ Client, Scroll int }

func (p *page) composerHeight() composerHeight {
	p.t.Helper()
	var h composerHeight
	p.evalJSON(`({Client: document.getElementById('text').clientHeight, Scroll: document.getElementById('text').scrollHeight})`, &h)
	return h
}

// checkThread checks that p shows exactly texts, with seqs 1…n, each once,
// and nothing else in the list.
func checkThread(t testing.TB, p *page, texts []string) {
	t.Helper()
	got := p.messages()
	var gotTexts []string
	var seqs, wantSeqs []int64
	for i, m := range got {
		gotTexts = append(gotTexts, m.Text)
		seqs = append(seqs, m.Seq)
		wantSeqs = append(wantSeqs, int64(i+1))
	}
	if !reflect.DeepEqual(gotTexts, texts) || !reflect.DeepEqual(seqs, wantSeqs) {
		t.Errorf("%s shows %q (seqs %v), want %q with seqs 1…%d", p.name, gotTexts, seqs, texts, len(texts))
	}
	if n := p.evalString(`String(document.querySelectorAll('#messages .msg').length)`); n != fmt.Sprint(len(texts)) {
		t.Errorf("%s has %s message elements, want %d", p.name, n, len(texts))
	}
}

// pages opens pages in one running browser: each a person of their own
// (own cookies and storage).
type pages interface {
	newPage(name string) *page
	// expectErrors lets the page errors (uncaught exceptions, console
	// errors, which otherwise fail the test) that contain one of texts
	// pass: the ones a test provokes.
	expectErrors(texts ...string)
}

// signedIn opens a page for a person signed in to the server at addr (the
// test token of sub, name and admin as their cookie), at the desktop size
// the flows use.
func signedIn(t *testing.T, b pages, addr, name, sub string, admin bool) *page {
	t.Helper()
	p := b.newPage(name)
	p.setToken(addr, mint(t, sub, name, admin))
	p.viewport(1280, 800, false)
	return p
}

// browserKind is one of the browsers the flows run in.
type browserKind struct {
	name string
	// find skips the test (fails it with CI=true) when the browser is not
	// installed.
	find func(t testing.TB)
	// start starts the browser with a fresh profile, stopped at cleanup.
	start func(t testing.TB) pages
	// startBlocking does the same with third-party cookies and storage
	// blocked (the setting privacy-minded visitors choose).
	startBlocking func(t testing.TB) pages
}

var browserKinds = []browserKind{
	{"chromium", func(t testing.TB) { chromiumPath(t) }, func(t testing.TB) pages { return newBrowser(t) },
		func(t testing.TB) pages { return newBrowserBlocking(t) }},
	{"firefox", func(t testing.TB) { firefoxPath(t) }, func(t testing.TB) pages { return newFirefox(t) },
		func(t testing.TB) pages { return newFirefoxBlocking(t) }},
}

// eachBrowser runs flow once per browser, as the subtests "chromium" and
// "firefox"; a browser that is not installed skips its subtest (or fails it
// with CI=true) before flow starts anything.
func eachBrowser(t *testing.T, flow func(t *testing.T, br browserKind)) {
	for _, br := range browserKinds {
		t.Run(br.name, func(t *testing.T) {
			br.find(t)
			flow(t, br)
		})
	}
}
