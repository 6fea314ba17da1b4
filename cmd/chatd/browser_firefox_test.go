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
	"path/filepath"
	"reflect"
	"regexp"
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
	t    testing.TB
	b    *bidi.Browser
	logs *bidi.Subscription // every page's log entries
}

// newFirefox starts Firefox with a fresh profile; it is stopped at cleanup,
// after the test's pages are checked for errors.
func newFirefox(t testing.TB) *foxBrowser {
	t.Helper()
	path := firefoxPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := bidi.Start(ctx, bidi.Options{Path: path, ProfileDir: t.TempDir()})
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
		if e.Type == "javascript" || e.Level == "error" {
			f.t.Errorf("page error (%s, %s): %s", e.Type, e.Level, e.Text)
		}
	}
}

// foxTab is a page in its own user context (cookies and storage) and window.
type foxTab struct {
	t    testing.TB
	name string
	f    *foxBrowser
	page *bidi.Page
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
	page, err := f.b.NewPage(ctx, uc)
	if err != nil {
		f.t.Fatalf("%s: open a window: %v", name, err)
	}
	return &foxTab{t: f.t, name: name, f: f, page: page}
}

// timed runs fn with a context bounded by browserWait.
func (p *foxTab) timed(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	return fn(ctx)
}

// navigate loads url and waits for the load event.
func (p *foxTab) navigate(url string) {
	p.t.Helper()
	if err := p.timed(func(ctx context.Context) error { return p.page.Navigate(ctx, url) }); err != nil {
		p.t.Fatalf("%s: navigate to %s: %v%s", p.name, url, err, p.debugState())
	}
}

// setToken gives the person the chat_token cookie for the server at addr, as
// the host site would (HttpOnly, SameSite=Lax).
func (p *foxTab) setToken(addr, token string) {
	p.t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		p.t.Fatal(err)
	}
	err = p.timed(func(ctx context.Context) error {
		return p.f.b.SetCookie(ctx, p.page.UserContext, bidi.Cookie{
			Name: "chat_token", Value: token, Domain: host, Path: "/", HTTPOnly: true, SameSite: "lax",
		})
	})
	if err != nil {
		p.t.Fatalf("%s: set cookie: %v", p.name, err)
	}
}

// run evaluates script (statements allowed) for its effect.
func (p *foxTab) run(what, script string) {
	p.t.Helper()
	err := p.timed(func(ctx context.Context) error {
		_, err := p.page.Evaluate(ctx, script)
		return err
	})
	if err != nil {
		p.t.Fatalf("%s: %s: %v%s", p.name, what, err, p.debugState())
	}
}

// evalJSON evaluates expr and decodes its JSON-able value into out.
func (p *foxTab) evalJSON(expr string, out any) {
	p.t.Helper()
	if err := p.timed(func(ctx context.Context) error { return p.page.EvaluateJSON(ctx, expr, out) }); err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.name, expr, err)
	}
}

// evalString evaluates expr to a string.
func (p *foxTab) evalString(expr string) string {
	p.t.Helper()
	var s string
	p.evalJSON(expr, &s)
	return s
}

// waitJS polls expr (every 50ms) until it is truthy. Errors while polling
// (a page between two documents, an element not there yet) count as "not
// yet"; the last one is reported if the wait times out.
func (p *foxTab) waitJS(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(browserWait)
	var lastErr error
	for {
		var ok bool
		err := p.timed(func(ctx context.Context) error { return p.page.EvaluateJSON(ctx, "!!("+expr+")", &ok) })
		if err == nil && ok {
			return
		}
		if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: waiting for %s (%s): timed out after %v (last error: %v)%s", p.name, what, expr, browserWait, lastErr, p.debugState())
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-p.f.b.Conn().Done():
			p.t.Fatalf("%s: waiting for %s: firefox is gone: %v\n%s", p.name, what, p.f.b.Conn().Err(), p.f.b.Output())
		}
	}
}

// debugState describes the page for a failure message.
func (p *foxTab) debugState() string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var state any
	err := p.page.EvaluateJSON(ctx, `({
		url: location.href,
		title: document.title,
		state: document.getElementById('state')?.textContent,
		banner: document.getElementById('banner')?.hidden === false ? document.getElementById('banner').textContent : '',
		notice: document.getElementById('notice')?.hidden === false ? document.getElementById('notice').textContent : '',
		messages: [...document.querySelectorAll('#messages .msg')].map(li => (li.dataset.seq || 'pending') + ': ' + li.querySelector('.text')?.textContent),
		inbox: [...document.querySelectorAll('#inbox .conv')].map(b => b.querySelector('.conv-name')?.textContent + ' [' + (b.querySelector('.badge')?.textContent || '') + '] ' + b.querySelector('.conv-preview')?.textContent),
	})`, &state)
	if err != nil {
		return fmt.Sprintf("\n  (page state unavailable: %v)", err)
	}
	b, _ := json.Marshal(state)
	return "\n  page: " + string(b)
}

// waitOnline waits until the page's connection state says Connected.
func (p *foxTab) waitOnline() {
	p.t.Helper()
	p.waitJS("the connection to be up", `document.getElementById('state')?.dataset.state === 'online'`)
}

// typeAndSend clicks into the composer, types text key by key and presses
// Enter, as a person does.
func (p *foxTab) typeAndSend(text string) {
	p.t.Helper()
	p.waitJS("the composer to be enabled", `!document.getElementById('text').disabled`)
	err := p.timed(func(ctx context.Context) error {
		if err := p.page.Click(ctx, "#text"); err != nil {
			return err
		}
		if err := p.page.Type(ctx, text); err != nil {
			return err
		}
		return p.page.Press(ctx, bidi.KeyEnter)
	})
	if err != nil {
		p.t.Fatalf("%s: type %q: %v%s", p.name, text, err, p.debugState())
	}
}

// messages returns the stored messages the page shows, in page order.
func (p *foxTab) messages() []shownMessage {
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
func (p *foxTab) waitMessageText(text string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("message %q", text), fmt.Sprintf(
		`[...document.querySelectorAll('#messages .msg[data-seq] .text')].some(e => e.textContent === %s)`, jsString(text)))
}

// inbox returns the conversations the inbox lists, in page order.
func (p *foxTab) inbox() []shownConv {
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
func (p *foxTab) waitInbox(want ...string) {
	p.t.Helper()
	w, _ := json.Marshal(want)
	p.waitJS("inbox "+strings.Join(want, " | "), fmt.Sprintf(`JSON.stringify([...document.querySelectorAll('#inbox .conv')].map(b =>
		b.querySelector('.conv-name').textContent + ' [' + (b.querySelector('.badge')?.textContent || '') + '] ' +
		b.querySelector('.conv-preview').textContent)) === JSON.stringify(JSON.parse(%s))`, jsString(string(w))))
}

// openConversation clicks the inbox entry of conv.
func (p *foxTab) openConversation(conv int64) {
	p.t.Helper()
	sel := fmt.Sprintf(`#inbox .conv[data-conv="%d"]`, conv)
	if err := p.timed(func(ctx context.Context) error { return p.page.Click(ctx, sel) }); err != nil {
		p.t.Fatalf("%s: open conversation %d: %v%s", p.name, conv, err, p.debugState())
	}
	p.waitJS("the conversation to load", fmt.Sprintf(
		`document.querySelector('#inbox .conv.active')?.dataset.conv === '%d' && !document.getElementById('pane').hidden`, conv))
}

// viewport sets the page's size in CSS pixels: 1280×800 on a desktop,
// 390×844 at twice the pixel density on a phone.
func (p *foxTab) viewport(width, height int, dpr float64) {
	p.t.Helper()
	if err := p.timed(func(ctx context.Context) error { return p.page.SetViewport(ctx, width, height, dpr) }); err != nil {
		p.t.Fatalf("%s: viewport %dx%d: %v", p.name, width, height, err)
	}
	p.waitJS(fmt.Sprintf("a %dpx wide viewport", width), fmt.Sprintf(`innerWidth === %d`, width))
}

// screenshot saves the visible page as artifactsDir()/name.
func (p *foxTab) screenshot(name string) string {
	p.t.Helper()
	var png []byte
	err := p.timed(func(ctx context.Context) error {
		var err error
		png, err = p.page.Screenshot(ctx)
		return err
	})
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	path := filepath.Join(artifactsDir(p.t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatalf("save screenshot: %v", err)
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

// checkFits fails when the page scrolls sideways (a layout wider than the
// screen), and checks that the composer is on screen, not covered, and
// enabled.
func (p *foxTab) checkFits() {
	p.t.Helper()
	var w struct {
		Scroll int `json:"scroll"`
		Inner  int `json:"inner"`
		Body   int `json:"body"`
	}
	p.evalJSON(`({scroll: document.documentElement.scrollWidth, inner: innerWidth, body: document.body.scrollWidth})`, &w)
	if w.Scroll > w.Inner || w.Body > w.Inner {
		p.t.Errorf("%s: page is %dpx wide (body %dpx) on a %dpx screen", p.name, w.Scroll, w.Body, w.Inner)
	}
	var c struct {
		Left, Top, Right, Bottom float64
		Hit, Enabled, Send       bool
		// The composer's content height and its room (after the page has
		// fitted it to its text): more content than room means a scroll bar.
		ScrollHeight, ClientHeight int
	}
	p.evalJSON(`(() => {
		const t = document.getElementById('text'), s = document.getElementById('send');
		const r = t.getBoundingClientRect(), sr = s.getBoundingClientRect();
		const hit = (x, y) => { const e = document.elementFromPoint(x, y); return e === t || t.contains(e); };
		const hitSend = (x, y) => { const e = document.elementFromPoint(x, y); return e === s || s.contains(e); };
		return {Left: r.left, Top: r.top, Right: r.right, Bottom: r.bottom,
			Hit: hit(r.left + r.width / 2, r.top + r.height / 2),
			Send: sr.width > 0 && sr.right <= innerWidth && sr.bottom <= innerHeight && hitSend(sr.left + sr.width / 2, sr.top + sr.height / 2),
			Enabled: !t.disabled, ScrollHeight: t.scrollHeight, ClientHeight: t.clientHeight};
	})()`, &c)
	var vw, vh int
	p.evalJSON(`innerWidth`, &vw)
	p.evalJSON(`innerHeight`, &vh)
	if c.Left < 0 || c.Top < 0 || c.Right > float64(vw) || c.Bottom > float64(vh) || c.Right-c.Left < 100 {
		p.t.Errorf("%s: the composer is at %+v, not fully on a %dx%d screen", p.name, c, vw, vh)
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

// keys runs keyboard (and mouse) input on the page.
func (p *foxTab) keys(what string, fn func(ctx context.Context, pg *bidi.Page) error) {
	p.t.Helper()
	if err := p.timed(func(ctx context.Context) error { return fn(ctx, p.page) }); err != nil {
		p.t.Fatalf("%s: %s: %v%s", p.name, what, err, p.debugState())
	}
}

// composerHeight is the composer's room and its text's height.
type composerHeight struct{ Client, Scroll int }

func (p *foxTab) composerHeight() composerHeight {
	p.t.Helper()
	var h composerHeight
	p.evalJSON(`({Client: document.getElementById('text').clientHeight, Scroll: document.getElementById('text').scrollHeight})`, &h)
	return h
}

// A visitor and a staff member, each in their own user context and window,
// talk both ways through the pages in Firefox: the visitor's chat (/) and
// the inbox (/admin/).
func TestFirefoxVisitorAndAdminExchange(t *testing.T) {
	firefoxPath(t) // skip (or fail in CI) before starting anything
	s := startServer(t)
	f := newFirefox(t)
	visitor := f.newTab("visitor")
	visitor.setToken(s.Addr, mint(t, "user-1", "Alice", false))
	admin := f.newTab("admin")
	admin.setToken(s.Addr, mint(t, "staff-1", "Ann", true))

	visitor.navigate("http://" + s.Addr + "/")
	visitor.waitOnline()
	if got := visitor.evalString(`document.getElementById('whoami').textContent`); got != "Signed in as Alice" {
		t.Errorf("visitor header says %q", got)
	}
	visitor.typeAndSend("Hello, my order has not arrived")
	visitor.waitMessageText("Hello, my order has not arrived")

	admin.navigate("http://" + s.Addr + "/admin/")
	admin.waitOnline()
	admin.waitInbox("Alice [1] Hello, my order has not arrived")
	conv := admin.inbox()[0].Conv
	admin.openConversation(conv)
	admin.waitMessageText("Hello, my order has not arrived")
	admin.waitInbox("Alice [] Hello, my order has not arrived")
	admin.typeAndSend("Hi Alice, Ann here. Let me check.")

	visitor.waitMessageText("Hi Alice, Ann here. Let me check.")
	visitor.typeAndSend("Thank you!")
	admin.waitMessageText("Thank you!")
	admin.waitInbox("Alice [] Thank you!")
	// The sender's page shows its message as stored once the ack arrives,
	// which can be after the other side shows it.
	visitor.waitMessageText("Thank you!")

	want := []shownMessage{
		{1, "Hello, my order has not arrived", "You", "ours"},
		{2, "Hi Alice, Ann here. Let me check.", "Ann · Support", "theirs"},
		{3, "Thank you!", "You", "ours"},
	}
	if got := visitor.messages(); !reflect.DeepEqual(got, want) {
		t.Errorf("visitor shows %+v\nwant %+v", got, want)
	}
	wantAdmin := []shownMessage{
		{1, "Hello, my order has not arrived", "Alice", "theirs"},
		{2, "Hi Alice, Ann here. Let me check.", "You", "ours"},
		{3, "Thank you!", "Alice", "theirs"},
	}
	if got := admin.messages(); !reflect.DeepEqual(got, wantAdmin) {
		t.Errorf("admin shows %+v\nwant %+v", got, wantAdmin)
	}
	for _, p := range []*foxTab{visitor, admin} {
		if n := p.evalString(`String(document.querySelectorAll('#messages .msg.pending, #messages .msg.failed').length)`); n != "0" {
			t.Errorf("%s: %s messages still pending or failed", p.name, n)
		}
		// The composer is empty again after each Enter (no stray newline).
		if v := p.evalString(`document.getElementById('text').value`); v != "" {
			t.Errorf("%s: composer holds %q after sending", p.name, v)
		}
	}
	if len(admin.inbox()) != 1 {
		t.Errorf("the inbox lists %d conversations, want 1", len(admin.inbox()))
	}
}

// Message text and names are shown as text in Firefox too: markup stays
// literal on both pages, creates no element and runs nothing.
func TestFirefoxMarkupIsText(t *testing.T) {
	firefoxPath(t) // skip (or fail in CI) before starting anything
	const (
		evil     = `<img src=x onerror=window.__xss=1>`
		evilName = `Eve <img src=x onerror=window.__xss=2>`
		reply    = `<script>window.__xss=3</script><b>bold?</b>`
	)
	s := startServer(t)
	f := newFirefox(t)
	visitor := f.newTab("visitor")
	visitor.setToken(s.Addr, mint(t, "user-1", evilName, false))
	admin := f.newTab("admin")
	admin.setToken(s.Addr, mint(t, "staff-1", "Ann", true))

	visitor.navigate("http://" + s.Addr + "/")
	visitor.waitOnline()
	visitor.typeAndSend(evil)
	visitor.waitMessageText(evil)

	admin.navigate("http://" + s.Addr + "/admin/")
	admin.waitOnline()
	admin.waitInbox(evilName + " [1] " + evil)
	admin.openConversation(admin.inbox()[0].Conv)
	admin.waitMessageText(evil)
	if got := admin.evalString(`document.getElementById('conv-name').textContent`); got != evilName {
		t.Errorf("conversation header %q, want the name as text", got)
	}
	admin.typeAndSend(reply)
	visitor.waitMessageText(reply)
	admin.waitMessageText(reply)

	for _, p := range []*foxTab{visitor, admin} {
		if got := p.evalString(`typeof window.__xss`); got != "undefined" {
			t.Errorf("%s: window.__xss is %s: markup ran", p.name, got)
		}
		if n := p.evalString(`String(document.querySelectorAll('#messages img, #messages script, #messages b, #inbox img, #conv-name img, #whoami img').length)`); n != "0" {
			t.Errorf("%s: %s elements were created from message text or names", p.name, n)
		}
		if n := p.evalString(`String([...document.images].filter(i => !i.closest('.brand')).length)`); n != "0" {
			t.Errorf("%s: the document has %s images besides the logo", p.name, n)
		}
		if got := len(p.messages()); got != 2 {
			t.Errorf("%s: %d messages shown, want 2", p.name, got)
		}
	}
	if got := visitor.evalString(`document.getElementById('whoami').textContent`); got != "Signed in as "+evilName {
		t.Errorf("visitor header %q", got)
	}
}

// Both pages on a desktop (1280×800) and on a phone (390×844): nothing
// scrolls sideways, the composer is on screen, uncovered and works;
// screenshots of each are saved as test artifacts (firefox-*.png).
func TestFirefoxLayoutAndScreenshots(t *testing.T) {
	firefoxPath(t) // skip (or fail in CI) before starting anything
	s := startServer(t)

	// Two visitors and a colleague wrote before; Marie's conversation is
	// the one on screen.
	marie := dial(t, s, "user-marie", "Marie Dupont", false, true)
	jonas := dial(t, s, "user-jonas", "Jonas Berg", false, true)
	bob := dial(t, s, "staff-bob", "Bob", true, true)
	marieConv := convOf(t, marie)
	post(t, jonas, 0, "Hi! Is the oak garden bench still available in green?", "j1")
	post(t, marie, 0, "Bonjour! Do you deliver on Saturdays?", "m1")
	post(t, bob, marieConv, "Hello Marie! Yes, Saturday delivery is available in most areas for €4.90.", "b1")
	post(t, marie, 0, "Perfect. And can I choose a time slot?", "m2")

	f := newFirefox(t)
	visitor := f.newTab("visitor")
	visitor.setToken(s.Addr, mint(t, "user-marie", "Marie Dupont", false))
	admin := f.newTab("admin")
	admin.setToken(s.Addr, mint(t, "staff-ann", "Ann", true))

	// The visitor's chat.
	visitor.viewport(1280, 800, 1)
	visitor.navigate("http://" + s.Addr + "/")
	visitor.waitOnline()
	visitor.waitMessageText("Perfect. And can I choose a time slot?")
	visitor.checkFits()
	visitor.screenshot("firefox-chat.png")

	visitor.viewport(390, 844, 2)
	visitor.navigate("http://" + s.Addr + "/")
	visitor.waitOnline()
	visitor.waitMessageText("Perfect. And can I choose a time slot?")
	visitor.checkFits()
	visitor.typeAndSend("Between 10:00 and 12:00 would be ideal.")
	visitor.waitMessageText("Between 10:00 and 12:00 would be ideal.")
	visitor.checkFits()
	// Shift+Enter makes a second line: the composer grows with it, still
	// without scrolling; Enter sends both lines and the composer shrinks back.
	oneLine := visitor.composerHeight()
	visitor.keys("write two lines", func(ctx context.Context, pg *bidi.Page) error {
		if err := pg.Click(ctx, "#text"); err != nil {
			return err
		}
		if err := pg.Type(ctx, "Or after 16:00,"); err != nil {
			return err
		}
		if err := pg.Press(ctx, bidi.KeyEnter, bidi.KeyShift); err != nil {
			return err
		}
		return pg.Type(ctx, "if that is easier.")
	})
	visitor.waitJS("the composer to grow", fmt.Sprintf(`document.getElementById('text').clientHeight > %d`, oneLine.Client))
	if h := visitor.composerHeight(); h.Scroll > h.Client {
		t.Errorf("a two-line composer scrolls: %+v", h)
	}
	visitor.keys("send", func(ctx context.Context, pg *bidi.Page) error { return pg.Press(ctx, bidi.KeyEnter) })
	visitor.waitMessageText("Or after 16:00,\nif that is easier.")
	visitor.waitJS("the composer to shrink back", fmt.Sprintf(`document.getElementById('text').clientHeight === %d`, oneLine.Client))
	visitor.checkFits()
	// The newest message is on screen, above the composer.
	visitor.waitJS("the newest message above the composer", `(() => {
		const last = [...document.querySelectorAll('#messages .msg[data-seq]')].pop().getBoundingClientRect();
		const composer = document.getElementById('composer').getBoundingClientRect();
		return last.bottom <= composer.top + 1 && last.top >= 0;
	})()`)
	visitor.screenshot("firefox-chat-phone.png")

	// The inbox.
	admin.viewport(1280, 800, 1)
	admin.navigate("http://" + s.Addr + "/admin/")
	admin.waitOnline()
	admin.waitInbox(
		"Marie Dupont [5] Or after 16:00, if that is easier.", // the preview is one line
		"Jonas Berg [1] Hi! Is the oak garden bench still available in green?",
	)
	admin.openConversation(marieConv)
	admin.waitMessageText("Or after 16:00,\nif that is easier.")
	admin.checkFits()
	admin.screenshot("firefox-admin.png")

	admin.viewport(390, 844, 2)
	admin.navigate("http://" + s.Addr + "/admin/")
	admin.waitOnline()
	admin.waitJS("two conversations", `document.querySelectorAll('#inbox .conv').length === 2`)
	admin.waitJS("the list alone on the screen", `getComputedStyle(document.querySelector('.conversation-pane')).display === 'none'`)
	var fits struct {
		Scroll int `json:"scroll"`
		Inner  int `json:"inner"`
	}
	admin.evalJSON(`({scroll: document.documentElement.scrollWidth, inner: innerWidth})`, &fits)
	if fits.Scroll > fits.Inner {
		t.Errorf("admin inbox on a phone: %dpx wide on a %dpx screen", fits.Scroll, fits.Inner)
	}
	admin.screenshot("firefox-admin-phone-inbox.png")
	admin.openConversation(marieConv)
	admin.waitMessageText("Or after 16:00,\nif that is easier.")
	// On a phone the conversation takes the whole screen, with a way back.
	admin.waitJS("the conversation in place of the list", `getComputedStyle(document.querySelector('.inbox-pane')).display === 'none' &&
		getComputedStyle(document.getElementById('back')).display !== 'none'`)
	admin.checkFits()
	admin.typeAndSend("Of course, Marie: 10:00 to 12:00 it is.")
	admin.waitMessageText("Of course, Marie: 10:00 to 12:00 it is.")
	visitor.waitMessageText("Of course, Marie: 10:00 to 12:00 it is.")
	admin.checkFits()
	admin.screenshot("firefox-admin-phone.png")

	wantTexts := []string{
		"Bonjour! Do you deliver on Saturdays?",
		"Hello Marie! Yes, Saturday delivery is available in most areas for €4.90.",
		"Perfect. And can I choose a time slot?",
		"Between 10:00 and 12:00 would be ideal.",
		"Or after 16:00,\nif that is easier.",
		"Of course, Marie: 10:00 to 12:00 it is.",
	}
	for _, p := range []*foxTab{visitor, admin} {
		var texts []string
		for i, m := range p.messages() {
			texts = append(texts, m.Text)
			if m.Seq != int64(i+1) {
				t.Errorf("%s: message %d has seq %d", p.name, i, m.Seq)
			}
		}
		if !reflect.DeepEqual(texts, wantTexts) {
			t.Errorf("%s shows %q\nwant %q", p.name, texts, wantTexts)
		}
	}
}

// The original document's browser-console snippet works unchanged in
// Firefox, from a page of the server's origin carrying the chat_token
// cookie: it connects and logs "Connected", its {'message': 'Test'} reaches
// staff, and it receives and logs (as parsed objects) the document's own
// frames (the five seed keys, in order), staff replies too.
func TestFirefoxSeedConsoleSnippet(t *testing.T) {
	firefoxPath(t) // skip (or fail in CI) before starting anything
	s := startServer(t)
	f := newFirefox(t)
	admin := f.newTab("admin")
	admin.setToken(s.Addr, mint(t, "staff-1", "Ann", true))
	admin.navigate("http://" + s.Addr + "/admin/")
	admin.waitOnline()

	console := f.newTab("console")
	console.setToken(s.Addr, mint(t, "user-1", "Alice", false))
	console.navigate("http://" + s.Addr + "/healthz") // as the README says: any page of the server's origin

	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	logs, err := f.b.Subscribe(ctx, []string{"log.entryAdded"}, console.page.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()

	// The snippet as pasted into a console (only the host differs): its
	// first three lines at once, since the socket may open before a fourth
	// typed line; ws.send only once it is open, or it would throw.
	snippet := strings.Join([]string{
		`const ws = new WebSocket('ws://` + s.Addr + `/ws/chat/');`,
		`ws.onopen = () => console.log('Connected');`,
		`ws.onmessage = (e) => console.log('Message:', JSON.parse(e.data));`,
	}, "\n")
	console.run("console: "+snippet, snippet)
	// The test's own eyes on the raw frames (the snippet itself only logs).
	console.run("record frames", `window.__frames = []; ws.addEventListener('message', (e) => __frames.push(e.data));`)
	console.waitJS("the socket to open", `ws.readyState === WebSocket.OPEN`)
	console.run("console: send", `ws.send(JSON.stringify({'message': 'Test'}));`)

	console.waitJS("the message to come back", `__frames.length >= 1`)
	admin.waitInbox("Alice [1] Test")
	admin.openConversation(admin.inbox()[0].Conv)
	admin.typeAndSend("Hello Alice")
	console.waitJS("the reply", `__frames.length >= 2`)

	var frames []string
	console.evalJSON(`__frames`, &frames)
	seed := regexp.MustCompile(`^\{"message":"(.*)","sender_id":\d+,"sender_name":"(.*)","sender_is_admin":(true|false),"conversation_id":\d+\}$`)
	want := [][3]string{{"Test", "Alice", "false"}, {"Hello Alice", "Ann", "true"}}
	if len(frames) != 2 {
		t.Fatalf("the snippet's socket received %d frames, want 2: %q", len(frames), frames)
	}
	for i, fr := range frames {
		m := seed.FindStringSubmatch(fr)
		if m == nil || m[1] != want[i][0] || m[2] != want[i][1] || m[3] != want[i][2] {
			t.Errorf("frame %d = %s, want the seed message frame for %v", i, fr, want[i])
		}
	}

	// The console shows what the document promises: Connected once, then a
	// parsed object per frame, in order.
	var connected int
	var messages []string
	for connected < 1 || len(messages) < 2 {
		ev, err := logs.Next(ctx)
		if err != nil {
			t.Fatalf("console: saw Connected %d times and Message %d times before %v", connected, len(messages), err)
		}
		e, err := bidi.DecodeLogEntry(ev)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != "console" || e.Method != "log" || len(e.Args) == 0 {
			continue
		}
		switch e.Args[0].String() {
		case "Connected":
			connected++
			if len(messages) > 0 {
				t.Errorf("console: Connected after a Message")
			}
		case "Message:":
			if len(e.Args) < 2 || e.Args[1].Type != "object" {
				t.Fatalf("console.log('Message:', …) did not log a parsed object: %+v", e.Args)
			}
			var fields [][2]json.RawMessage // an object's value: [key, RemoteValue] pairs
			if err := json.Unmarshal(e.Args[1].Value, &fields); err != nil {
				t.Fatalf("console: the logged object: %v (%s)", err, e.Args[1].Value)
			}
			var keys []string
			var text string
			for _, kv := range fields {
				var k string
				_ = json.Unmarshal(kv[0], &k)
				keys = append(keys, k)
				if k == "message" {
					var v bidi.RemoteValue
					_ = json.Unmarshal(kv[1], &v)
					text = v.String()
				}
			}
			if got := strings.Join(keys, ","); got != "message,sender_id,sender_name,sender_is_admin,conversation_id" {
				t.Errorf("console: logged object has keys %s", got)
			}
			messages = append(messages, text)
		}
	}
	if connected != 1 || !reflect.DeepEqual(messages, []string{"Test", "Hello Alice"}) {
		t.Errorf("console: Connected %d times, messages %q", connected, messages)
	}
}
