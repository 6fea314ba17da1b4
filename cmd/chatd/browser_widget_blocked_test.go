package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// hostSite serves a page of another site (http://localhost:P, not chatd's
// 127.0.0.1) that embeds the widget of the chatd at *chatAddr with *token,
// under a strict Content-Security-Policy. It returns the site's origin.
func hostSite(t testing.TB, chatAddr, token *string) string {
	t.Helper()
	host := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chat := "http://" + *chatAddr
		w.Header().Set("Content-Security-Policy",
			"default-src 'none'; script-src "+chat+"; frame-src "+chat+"; style-src 'none'; img-src 'none'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>Host site</title>
<script src="%s/widget.js" data-token="%s" data-title="Questions?" async></script></head>
<body><h1>A shop on another site</h1></body></html>`, chat, *token)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host.Listener = ln
	host.Start()
	t.Cleanup(host.Close)
	return "http://localhost:" + portOf(ln.Addr().String())
}

// The widget on a site that is not in --allowed-origins: chatd forbids the
// framing, so the frame never says it is ready. The panel then says "Chat is
// unavailable" itself (outside the blocked frame) with a Close button of its
// own that closes it, and the host page's console says why and what to do
// (list the site in --allowed-origins). In Chromium and in Firefox.
func TestBrowserWidgetOnSiteNotAllowed(t *testing.T) {
	eachBrowser(t, func(t *testing.T, br browserKind) {
		chatAddr, token := "", mint(t, "user-7", "Wendy", false)
		origin := hostSite(t, &chatAddr, &token)
		s := startServer(t) // no --allowed-origins
		chatAddr = s.Addr

		b := br.start(t)
		// The browsers' own reports of the refused frame, and the widget's.
		// (Firefox also reports the host page's CSP refusing its favicon.)
		b.expectErrors("frame-ancestors", "grainchat widget:", "favicon.ico")
		page := b.newPage("host page")
		ctx, cancel := context.WithTimeout(context.Background(), 3*browserWait)
		defer cancel()
		logs, err := page.d.console(ctx)
		if err != nil {
			t.Fatal(err)
		}
		page.navigate(origin + "/")
		root := `document.querySelector('[data-grainchat]').shadowRoot`
		page.waitJS("the chat button", root+`?.querySelector('button')?.textContent === 'Questions?'`)
		page.run("click the chat button", root+`.querySelector('button').click()`)
		page.waitJS("the unavailable panel", `(() => {
			const r = `+root+`, u = r.querySelector('.grainchat-unavailable');
			return u && getComputedStyle(u).display !== 'none' && u.querySelector('strong').textContent === 'Chat is unavailable' &&
				r.querySelector('iframe').style.display === 'none' && r.querySelector('.grainchat-panel').style.display === 'block';
		})()`)

		// The console says why.
		var said string
		for said == "" {
			e, err := logs()
			if err != nil {
				t.Fatalf("the host page's console never explained: %v", err)
			}
			if e.Method == "error" && strings.Contains(e.Text, "grainchat widget:") {
				said = e.Text
			}
		}
		for _, want := range []string{"--allowed-origins", origin, "http://" + s.Addr} {
			if !strings.Contains(said, want) {
				t.Errorf("the console error %q does not mention %s", said, want)
			}
		}

		page.screenshot(fmt.Sprintf("widget-unavailable-%s.png", br.name))
		page.run("click Close", root+`.querySelector('.grainchat-unavailable-close').click()`)
		page.waitJS("the panel to close", root+`.querySelector('.grainchat-panel').style.display === 'none' &&
			`+root+`.querySelector('button').getAttribute('aria-expanded') === 'false'`)
	})
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}
