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
	"reflect"
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

// viewport sets the page's size in CSS pixels: 1280×800 on a desktop,
// 390×844 at twice the pixel density on a phone.
func (p *foxTab) viewport(width, height int, dpr float64) {
	p.t.Helper()
	if err := p.timed(func(ctx context.Context) error { return p.bpage.SetViewport(ctx, width, height, dpr) }); err != nil {
		p.t.Fatalf("%s: viewport %dx%d: %v", p.name, width, height, err)
	}
	p.waitJS(fmt.Sprintf("a %dpx wide viewport", width), fmt.Sprintf(`innerWidth === %d`, width))
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
	if err := p.timed(func(ctx context.Context) error { return fn(ctx, p.bpage) }); err != nil {
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
