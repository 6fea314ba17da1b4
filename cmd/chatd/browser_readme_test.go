package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeSnippet returns the README's first ```js block.
func readmeSnippet(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```js\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no ```js block")
	}
	return string(m[1])
}

// The README's browser-console snippet works pasted as one block, as the
// README says: on a page of the server's origin (/healthz) of a
// development-mode chatd, with a real token in place of PASTE_TOKEN_HERE and
// the server's address in place of 127.0.0.1:8080, it throws nothing (neither
// when pasted nor later), its message is stored (staff receive it) and comes
// back on its own socket, logged as a parsed object. In Chromium and in
// Firefox.
func TestBrowserReadmeConsoleSnippet(t *testing.T) {
	checkConsoleSnippet(t, readmeSnippet(t))
}

// checkConsoleSnippet runs snippet as TestBrowserReadmeConsoleSnippet says.
func checkConsoleSnippet(t *testing.T, snippet string) {
	if !strings.Contains(snippet, "PASTE_TOKEN_HERE") {
		t.Fatalf("the README's snippet has no PASTE_TOKEN_HERE to replace:\n%s", snippet)
	}
	eachBrowser(t, func(t *testing.T, br browserKind) {
		s, secret := devServer(t)
		staff := dialAs(t, s, mintWith(t, secret, "dev-staff-ann", "Ann", true), true)
		code := strings.ReplaceAll(snippet, "PASTE_TOKEN_HERE", mintWith(t, secret, "dev-alice", "Alice", false))
		code = strings.ReplaceAll(code, "127.0.0.1:8080", s.Addr)
		code = strings.ReplaceAll(code, "localhost:8080", s.Addr)

		b := br.start(t)
		console := b.newPage("console")
		console.navigate("http://" + s.Addr + "/healthz")
		ctx, cancel := context.WithTimeout(context.Background(), 2*browserWait)
		defer cancel()
		logs, err := console.d.console(ctx)
		if err != nil {
			t.Fatal(err)
		}
		console.run("paste the README's snippet", code)

		m := waitMessage(t, staff, "Test")
		if m.String("sender_name") != "Alice" {
			t.Errorf("staff received %s, want Alice's Test", m.Raw)
		}
		// It comes back on the snippet's socket and is logged as an object.
		for {
			e, err := logs()
			if err != nil {
				t.Fatalf("the snippet never logged its message coming back: %v", err)
			}
			if e.Method == "exception" {
				t.Fatalf("the snippet threw: %s", e.Text)
			}
			echoed := false
			for _, a := range e.Args {
				if a.Type == "object" && a.Values["message"] == "Test" {
					echoed = true
				}
			}
			if e.Method == "log" && echoed {
				break
			}
		}
	})
}
