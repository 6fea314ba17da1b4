package bidi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// firefox returns the Firefox to test with, or skips (fails with CI=true).
func firefox(t *testing.T) string {
	t.Helper()
	path, err := FindFirefox()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true: the Firefox tests must run", err)
		}
		t.Skipf("%v; skipping (with CI=true this is a failure)", err)
	}
	return path
}

func startFirefox(t *testing.T) *Browser {
	t.Helper()
	path := firefox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := Start(ctx, Options{Path: path, ProfileDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start firefox: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close firefox: %v\n%s", err, b.Output())
		}
	})
	return b
}

// ctxT bounds a whole test's browser work. The suite runs this package next
// to cmd/chatd's browser tests on two cores: 20 s was too short for the
// pages test twice (navigate, input.performActions timed out), so it is
// generous; it bounds a hang, it measures nothing.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Firefox starts with the profile's preferences, evaluates script in a
// page, and stops without leaving its process behind.
func TestFirefoxEvaluatesOnePlusOne(t *testing.T) {
	b := startFirefox(t)
	ctx := ctxT(t)
	p, err := b.NewPage(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Evaluate(ctx, "1+1")
	if err != nil {
		t.Fatal(err)
	}
	if v.Type != "number" || string(v.Value) != "2" {
		t.Errorf("1+1 = %+v, want the number 2", v)
	}
	var sum struct {
		N int      `json:"n"`
		S []string `json:"s"`
	}
	if err := p.EvaluateJSON(ctx, `Promise.resolve({n: 1+1, s: ['a', 'b']})`, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.N != 2 || strings.Join(sum.S, ",") != "a,b" {
		t.Errorf("EvaluateJSON gave %+v", sum)
	}
	_, err = p.Evaluate(ctx, `throw new Error('boom')`)
	var se *ScriptError
	if !errors.As(err, &se) || !strings.Contains(se.Text, "boom") {
		t.Errorf("a throwing script returned %v, want a ScriptError with its message", err)
	}
	// The preferences are in force.
	var prefs string
	data, err := os.ReadFile(filepath.Join(b.profile, "user.js"))
	if err != nil {
		t.Fatal(err)
	}
	prefs = string(data)
	for _, want := range []string{`user_pref("app.update.auto", false);`, `user_pref("datareporting.policy.dataSubmissionEnabled", false);`} {
		if !strings.Contains(prefs, want) {
			t.Errorf("user.js lacks %s", want)
		}
	}

	pid := b.cmd.Process.Pid
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case <-b.exited:
	default:
		t.Errorf("firefox (pid %d) still runs after Close", pid)
	}
}

// Two user contexts are two people: separate cookie jars; a page sees its
// own context's cookie; keyboard input reaches the focused field; console
// output arrives as log entries; the viewport and screenshots work.
func TestFirefoxPagesCookiesInputAndLog(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Cookie("who")
		who := ""
		if c != nil {
			who = c.Value
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>%s</title><input id="in"><button id="b" onclick="this.textContent='clicked'">b</button>`, who)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()
	host, _, _ := net.SplitHostPort(addr)

	b := startFirefox(t)
	ctx := ctxT(t)
	var pages []*Page
	for _, who := range []string{"ann", "bob"} {
		uc, err := b.NewUserContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.SetCookie(ctx, uc, Cookie{Name: "who", Value: who, Domain: host, Path: "/", HTTPOnly: true, SameSite: "lax"}); err != nil {
			t.Fatal(err)
		}
		p, err := b.NewPage(ctx, uc)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
	}
	logs, err := b.Subscribe(ctx, []string{"log.entryAdded"})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()

	for i, who := range []string{"ann", "bob"} {
		p := pages[i]
		if err := p.Navigate(ctx, "http://"+addr+"/"); err != nil {
			t.Fatal(err)
		}
		var title string
		if err := p.EvaluateJSON(ctx, `document.title`, &title); err != nil {
			t.Fatal(err)
		}
		if title != who {
			t.Errorf("page %d: server saw cookie %q, want %q", i, title, who)
		}
		cookies, err := b.Cookies(ctx, p.UserContext)
		if err != nil {
			t.Fatal(err)
		}
		if len(cookies) != 1 || cookies[0].Value != who || !cookies[0].HTTPOnly || cookies[0].SameSite != "lax" {
			t.Errorf("page %d: cookies %+v", i, cookies)
		}
	}

	p := pages[0]
	if _, err := p.Evaluate(ctx, `document.getElementById('in').focus()`); err != nil {
		t.Fatal(err)
	}
	if err := p.Type(ctx, "héllo <b>"); err != nil {
		t.Fatal(err)
	}
	var typed string
	if err := p.EvaluateJSON(ctx, `document.getElementById('in').value`, &typed); err != nil {
		t.Fatal(err)
	}
	if typed != "héllo <b>" {
		t.Errorf("typed %q", typed)
	}
	if err := p.Click(ctx, "#b"); err != nil {
		t.Fatal(err)
	}
	var label string
	if err := p.EvaluateJSON(ctx, `document.getElementById('b').textContent`, &label); err != nil {
		t.Fatal(err)
	}
	if label != "clicked" {
		t.Errorf("button says %q after a click", label)
	}

	if _, err := p.Evaluate(ctx, `console.log('hello', {a: 1})`); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := logs.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the console entry: %v", err)
		}
		e, err := DecodeLogEntry(ev)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == "console" && e.Method == "log" && len(e.Args) == 2 && e.Args[0].String() == "hello" {
			if e.Args[1].Type != "object" || e.Source.Context != p.ID {
				t.Errorf("console entry %+v", e)
			}
			break
		}
	}

	if err := p.SetViewport(ctx, 390, 844, 2); err != nil {
		t.Fatal(err)
	}
	var w int
	if err := p.EvaluateJSON(ctx, `innerWidth`, &w); err != nil {
		t.Fatal(err)
	}
	if w != 390 {
		t.Errorf("innerWidth %d on a 390px viewport", w)
	}
	png, err := p.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(png), "\x89PNG\r\n\x1a\n") {
		t.Errorf("screenshot is not a PNG")
	}
}

// A call honours its context; an error answer is an *Error with the
// specification's code.
func TestFirefoxErrorsAndDeadlines(t *testing.T) {
	b := startFirefox(t)
	ctx := ctxT(t)
	err := b.Conn().Call(ctx, "browsingContext.navigate", map[string]any{"context": "no-such-context", "url": "about:blank"}, nil)
	if ErrorCode(err) != "no such frame" {
		t.Errorf("navigating a missing context: %v, want a no such frame error", err)
	}
	err = b.Conn().Call(ctx, "no.suchCommand", nil, nil)
	if ErrorCode(err) != "unknown command" {
		t.Errorf("an unknown command: %v, want unknown command", err)
	}
	p, err := b.NewPage(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = p.Evaluate(short, `new Promise(() => {})`)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a never-settling promise: %v, want the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the call returned after %v", d)
	}
	// The connection is still usable.
	if _, err := p.Evaluate(ctx, "1"); err != nil {
		t.Errorf("after a timed-out call: %v", err)
	}
}

// A browser that exits at once is reported with its output, and leaves no
// profile behind; a preference of an unsupported type is refused.
func TestStartFailsCleanly(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	script := filepath.Join(t.TempDir(), "not-firefox")
	if err := os.WriteFile(script, []byte("#!"+sh+"\necho 'no remote agent here' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(t.TempDir(), "profile")
	if err := os.Mkdir(profile, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := Start(ctxT(t), Options{Path: script, ProfileDir: profile})
	if err == nil || b != nil {
		t.Fatalf("Start of a program without a remote agent: %v, %v", b, err)
	}
	if !strings.Contains(err.Error(), "exited before its remote agent listened") || !strings.Contains(err.Error(), "no remote agent here") {
		t.Errorf("error %q does not say what happened", err)
	}
	if _, err := os.Stat(filepath.Join(profile, "user.js")); err != nil {
		t.Errorf("the given profile has no user.js: %v", err)
	}

	if _, err := Start(ctxT(t), Options{Path: script, ProfileDir: t.TempDir(), Prefs: map[string]any{"x": 1.5}}); err == nil || !strings.Contains(err.Error(), "preference x") {
		t.Errorf("a float preference: %v, want it refused", err)
	}
}

// A permission set for one user context is that context's only: a page of
// the other still has to ask.
func TestFirefoxSetPermission(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>p</title>`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	origin := "http://" + ln.Addr().String()

	b := startFirefox(t)
	ctx := ctxT(t)
	var pages []*Page
	for range 2 {
		uc, err := b.NewUserContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p, err := b.NewPage(ctx, uc)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
	}
	if err := b.SetPermission(ctx, pages[0].UserContext, origin, "notifications", "granted"); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"granted", "default"} {
		if err := pages[i].Navigate(ctx, origin+"/"); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := pages[i].EvaluateJSON(ctx, `Notification.permission`, &got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("page %d: Notification.permission = %q, want %q", i, got, want)
		}
	}
}
