package bidi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Executables are the names FindFirefox looks for on PATH, in order.
var Executables = []string{"firefox-esr", "firefox"}

// ErrNoFirefox is returned by FindFirefox when no Firefox is on PATH.
var ErrNoFirefox = errors.New("no firefox-esr or firefox on PATH (Debian: apt-get install firefox-esr)")

// FindFirefox returns the path of the first of Executables on PATH, or
// ErrNoFirefox.
func FindFirefox() (string, error) {
	for _, name := range Executables {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoFirefox
}

// Options configure Start. The zero value is a good start.
type Options struct {
	// Path is the Firefox executable. Empty means FindFirefox.
	Path string
	// ProfileDir is an empty directory to use as the profile (a test's
	// t.TempDir()). Empty means a new temporary directory, removed by Close.
	ProfileDir string
	// Prefs are written into the profile's user.js on top of DefaultPrefs.
	Prefs map[string]any
	// Headful shows windows; the default is --headless.
	Headful bool
	// Env is added to the process's environment (KEY=value).
	Env []string
}

// Browser is a running Firefox with a WebDriver BiDi session.
type Browser struct {
	conn    *Conn
	cmd     *exec.Cmd
	path    string
	profile string
	ownDir  bool // Close removes profile
	output  *tail
	exited  chan struct{}
	waitErr error // cmd.Wait's result, once exited is closed

	closeOnce sync.Once
	closeErr  error
}

var listening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// Start runs Firefox with a fresh profile and the remote agent on a free
// loopback port, connects to its BiDi endpoint and opens a session. ctx
// bounds the start (DefaultTimeout if it has no deadline), not the
// browser's life: Close stops it. On error nothing is left running.
func Start(ctx context.Context, opts Options) (*Browser, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	path := opts.Path
	if path == "" {
		var err error
		if path, err = FindFirefox(); err != nil {
			return nil, err
		}
	}
	b := &Browser{path: path, profile: opts.ProfileDir, output: newTail(64 << 10), exited: make(chan struct{})}
	if b.profile == "" {
		dir, err := os.MkdirTemp("", "bidi-firefox-profile-")
		if err != nil {
			return nil, fmt.Errorf("firefox profile: %w", err)
		}
		b.profile, b.ownDir = dir, true
	}
	if err := b.start(ctx, opts); err != nil {
		if b.conn != nil {
			_ = b.conn.Close()
		}
		_ = b.stop(0)
		return nil, err
	}
	return b, nil
}

// start runs Firefox and opens the session; on error the caller stops it.
func (b *Browser) start(ctx context.Context, opts Options) error {
	if err := writeUserJS(b.profile, opts.Prefs); err != nil {
		return fmt.Errorf("firefox profile: %w", err)
	}
	args := []string{"--no-remote", "--profile", b.profile, "--remote-debugging-port", "0"}
	if !opts.Headful {
		args = append([]string{"--headless"}, args...)
	}
	b.cmd = exec.Command(b.path, args...)
	b.cmd.Env = append(os.Environ(),
		"MOZ_CRASHREPORTER_DISABLE=1",
		// Release builds ignore the profile's services.settings.server
		// (and so reach Mozilla's Remote Settings servers) unless this is set.
		"MOZ_REMOTE_SETTINGS_DEVTOOLS=1",
	)
	b.cmd.Env = append(b.cmd.Env, opts.Env...)
	url := make(chan string, 1)
	lines := &lineWriter{line: func(s string) {
		b.output.add(s)
		if m := listening.FindStringSubmatch(s); m != nil {
			select {
			case url <- m[1]:
			default:
			}
		}
	}}
	b.cmd.Stdout, b.cmd.Stderr = lines, lines
	// Firefox's content processes keep its output pipes open: bound how
	// long Wait waits for them after Firefox itself has exited.
	b.cmd.WaitDelay = 5 * time.Second
	setProcessGroup(b.cmd)
	if err := b.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", b.path, err)
	}
	go func() {
		b.waitErr = b.cmd.Wait()
		close(b.exited)
	}()

	var endpoint string
	select {
	case endpoint = <-url:
	case <-b.exited:
		return fmt.Errorf("%s exited before its remote agent listened (%v):\n%s", b.path, b.waitErr, b.output)
	case <-ctx.Done():
		return fmt.Errorf("%s: remote agent not listening: %w\n%s", b.path, ctx.Err(), b.output)
	}
	var err error
	if b.conn, err = Dial(ctx, strings.TrimSuffix(endpoint, "/")+"/session"); err != nil {
		return err
	}
	return b.conn.Call(ctx, "session.new", map[string]any{"capabilities": map[string]any{}}, nil)
}

// Conn is the browser's BiDi connection, for commands this package does not
// wrap.
func (b *Browser) Conn() *Conn { return b.conn }

// Output is the last 64 KiB or so of Firefox's stdout and stderr.
func (b *Browser) Output() string { return b.output.String() }

// Close ends the session and the browser (browser.close), waits for Firefox
// to exit (killing it and its processes after 10 s) and removes the profile
// if Start created it. It is idempotent and returns the first problem.
func (b *Browser) Close() error {
	b.closeOnce.Do(func() {
		if b.conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			// The connection may end before the answer: that is success too.
			err := b.conn.Call(ctx, "browser.close", nil, nil)
			cancel()
			if err != nil && !errors.Is(err, ErrClosed) {
				b.closeErr = fmt.Errorf("browser.close: %w", err)
			}
			_ = b.conn.Close()
		}
		if err := b.stop(10 * time.Second); err != nil && b.closeErr == nil {
			b.closeErr = err
		}
	})
	return b.closeErr
}

// stop waits up to grace for Firefox to exit, then kills its process group,
// and removes the profile if it is Start's own.
func (b *Browser) stop(grace time.Duration) error {
	var err error
	if b.cmd != nil && b.cmd.Process != nil {
		select {
		case <-b.exited:
			// A graceful exit: Firefox has shut its content processes down.
		case <-time.After(grace):
			if grace > 0 {
				err = fmt.Errorf("firefox did not exit within %v of browser.close; killed", grace)
			}
			// Firefox still runs (so its pid, the group's id, is still
			// its own): kill it and its content processes.
			killProcessGroup(b.cmd)
			select {
			case <-b.exited:
			case <-time.After(10 * time.Second):
				err = fmt.Errorf("firefox (pid %d) did not exit after SIGKILL", b.cmd.Process.Pid)
			}
		}
	}
	if b.ownDir {
		if rerr := os.RemoveAll(b.profile); rerr != nil && err == nil {
			err = fmt.Errorf("remove firefox profile: %w", rerr)
		}
	}
	return err
}

// NewUserContext creates a user context: its own cookies and storage, like
// a separate person (browser.createUserContext).
func (b *Browser) NewUserContext(ctx context.Context) (string, error) {
	var res struct {
		UserContext string `json:"userContext"`
	}
	err := b.conn.Call(ctx, "browser.createUserContext", nil, &res)
	return res.UserContext, err
}

// RemoveUserContext closes the user context's pages and forgets its data.
func (b *Browser) RemoveUserContext(ctx context.Context, userContext string) error {
	return b.conn.Call(ctx, "browser.removeUserContext", map[string]any{"userContext": userContext}, nil)
}

// NewPage opens a top-level browsing context in userContext ("" means the
// default one) in a window of its own, so that every page is in the
// foreground (visible, not throttled) like a person's window.
func (b *Browser) NewPage(ctx context.Context, userContext string) (*Page, error) {
	params := map[string]any{"type": "window"}
	if userContext != "" {
		params["userContext"] = userContext
	}
	var res struct {
		Context string `json:"context"`
	}
	if err := b.conn.Call(ctx, "browsingContext.create", params, &res); err != nil {
		return nil, err
	}
	return &Page{b: b, ID: res.Context, UserContext: userContext}, nil
}

// Cookie is a cookie as storage.setCookie and storage.getCookies see it.
// SameSite is "strict", "lax" or "none".
type Cookie struct {
	Name     string
	Value    string
	Domain   string
	Path     string
	HTTPOnly bool
	Secure   bool
	SameSite string
	// Expiry is in seconds since the epoch; zero means a session cookie.
	Expiry int64
}

// SetCookie stores c in userContext's cookie jar ("" means the default user
// context).
func (b *Browser) SetCookie(ctx context.Context, userContext string, c Cookie) error {
	cookie := map[string]any{
		"name":     c.Name,
		"value":    map[string]any{"type": "string", "value": c.Value},
		"domain":   c.Domain,
		"httpOnly": c.HTTPOnly,
		"secure":   c.Secure,
	}
	if c.Path != "" {
		cookie["path"] = c.Path
	}
	if c.SameSite != "" {
		cookie["sameSite"] = c.SameSite
	}
	if c.Expiry != 0 {
		cookie["expiry"] = c.Expiry
	}
	return b.conn.Call(ctx, "storage.setCookie", map[string]any{"cookie": cookie, "partition": partition(userContext)}, nil)
}

// SetPermission sets the permission name ("notifications", "geolocation",
// …) of origin in userContext ("" means the default user context) to state:
// "granted", "denied" or "prompt" (permissions.setPermission, an extension
// module of WebDriver BiDi that Firefox serves).
func (b *Browser) SetPermission(ctx context.Context, userContext, origin, name, state string) error {
	params := map[string]any{
		"descriptor": map[string]any{"name": name},
		"state":      state,
		"origin":     origin,
	}
	if userContext != "" {
		params["userContext"] = userContext
	}
	return b.conn.Call(ctx, "permissions.setPermission", params, nil)
}

// Cookies returns the cookies of userContext's jar.
func (b *Browser) Cookies(ctx context.Context, userContext string) ([]Cookie, error) {
	var res struct {
		Cookies []struct {
			Name  string `json:"name"`
			Value struct {
				Type  string `json:"type"`
				Value string `json:"value"`
			} `json:"value"`
			Domain   string `json:"domain"`
			Path     string `json:"path"`
			HTTPOnly bool   `json:"httpOnly"`
			Secure   bool   `json:"secure"`
			SameSite string `json:"sameSite"`
			Expiry   int64  `json:"expiry"`
		} `json:"cookies"`
	}
	if err := b.conn.Call(ctx, "storage.getCookies", map[string]any{"partition": partition(userContext)}, &res); err != nil {
		return nil, err
	}
	out := make([]Cookie, 0, len(res.Cookies))
	for _, c := range res.Cookies {
		out = append(out, Cookie{Name: c.Name, Value: c.Value.Value, Domain: c.Domain, Path: c.Path,
			HTTPOnly: c.HTTPOnly, Secure: c.Secure, SameSite: c.SameSite, Expiry: c.Expiry})
	}
	return out, nil
}

func partition(userContext string) map[string]any {
	if userContext == "" {
		userContext = "default"
	}
	return map[string]any{"type": "storageKey", "userContext": userContext}
}

// Subscribe listens for events (e.g. "log.entryAdded") and subscribes the
// session to them, for the given browsing contexts only (none means all).
// Events that arrive after Subscribe returns are queued in the
// Subscription; Close it when done.
func (b *Browser) Subscribe(ctx context.Context, events []string, contexts ...string) (*Subscription, error) {
	s := b.conn.Listen(events...)
	params := map[string]any{"events": events}
	if len(contexts) > 0 {
		params["contexts"] = contexts
	}
	if err := b.conn.Call(ctx, "session.subscribe", params, nil); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// lineWriter calls line for every complete line written to it.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a "line" this long is kept as it is
		w.line(string(w.buf))
		w.buf = nil
	}
	return len(p), nil
}

// tail keeps about the last limit bytes of lines.
type tail struct {
	mu    sync.Mutex
	lines []string
	size  int
	limit int
}

func newTail(limit int) *tail { return &tail{limit: limit} }

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	t.size += len(line) + 1
	for t.size > t.limit && len(t.lines) > 1 {
		t.size -= len(t.lines[0]) + 1
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
