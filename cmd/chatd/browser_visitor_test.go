//go:build !race

// Not under -race, as TestBrowserWidgetOnAnotherSite (the Makefile runs both
// in its non-race pass): chromedp attaching to the widget's cross-site
// iframe races inside chromedp.

package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The visitor panel (issue 17): the widget on a host page of another site
// reports the host page's address and title (never the frame's own), and the
// inbox's side panel shows them, with the visitor's email, the host site's
// attributes (ctx) and the browser; a single-page app's navigation (a
// history push and a new title) reaches the panel live. Hostile values in
// the title and in ctx show as text: no element is made of them, no script
// runs. In Chromium and in Firefox, on PostgreSQL.
func TestBrowserVisitorPanel(t *testing.T) {
	eachBrowser(t, testBrowserVisitorPanel)
}

const (
	hostileTitle = `<img src=x onerror="window.pwned=1"> Garden shop`
	hostileCtx   = `<img src=x onerror="window.pwned=2">`
)

func testBrowserVisitorPanel(t *testing.T, br browserKind) {
	chatAddr := ""
	token := mintDetails(t, "user-vp", "Wendy", "wendy@example.com",
		fmt.Sprintf(`{"plan":"pro","seats":12,"vip":true,"note":%q}`, hostileCtx))
	host := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chat := "http://" + chatAddr
		w.Header().Set("Content-Security-Policy",
			"default-src 'none'; script-src "+chat+"; frame-src "+chat+"; style-src 'none'; img-src 'none'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>&lt;img src=x onerror="window.pwned=1"&gt; Garden shop</title>
<script src="%s/widget.js" data-token="%s" data-title="Questions?" async></script></head>
<body><h1>A shop on another site</h1></body></html>`, chat, token)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host.Listener = ln
	host.Start()
	t.Cleanup(host.Close)
	hostOrigin := "http://localhost:" + portOf(ln.Addr().String())

	s := startServer(t, "--allowed-origins", hostOrigin, "--database-url", newDatabase(t))
	chatAddr = s.Addr
	b := br.start(t)
	b.expectErrors("favicon.ico") // Firefox: the host page's CSP refuses its favicon

	// The visitor opens the widget on the host page and writes.
	shop := b.newPage("host page")
	shop.viewport(1280, 800, false)
	shopURL := hostOrigin + "/garden/tools?sort=price#top"
	shop.navigate(shopURL)
	shop.waitJS("the chat button", `document.querySelector('[data-grainchat]')?.shadowRoot?.querySelector('button') != null`)
	shop.run("open the chat", `document.querySelector('[data-grainchat]').shadowRoot.querySelector('button').click()`)
	frame := shop.frame("http://" + s.Addr + "/embed/")
	frame.waitOnline()
	frame.typeAndSend("Where is my order?")
	frame.waitMessageText("Where is my order?")
	browser := frame.evalString(`navigator.userAgent`)

	// Ann opens the conversation: the panel says who and where.
	ann := signedIn(t, b, s.Addr, "Ann", "staff-ann", true)
	ann.navigate("http://" + s.Addr + "/admin/")
	ann.waitOnline()
	ann.waitInbox("Wendy [1] Where is my order?")
	conv := ann.inbox()[0].Conv
	ann.openConversation(conv)
	field := func(name string) string {
		return fmt.Sprintf(`document.querySelector('#visitor-panel [data-field=%q]')?.textContent`, name)
	}
	ann.waitJS("the visitor panel to show the host page", fmt.Sprintf(`!document.getElementById('visitor-panel').hidden &&
		%s === %s && %s === %s`, field("page-url"), jsString(shopURL), field("page-title"), jsString(hostileTitle)))
	checks := map[string]string{
		field("name"):     "Wendy",
		field("email"):    "wendy@example.com",
		field("browser"):  browser,
		field("presence"): "Online",
		`[...document.querySelectorAll('#visitor-panel [data-context-key]')].map(d => d.textContent + '=' + d.nextElementSibling.textContent).join('|')`: "note=" + hostileCtx + "|plan=pro|seats=12|vip=true",
		`document.querySelector('#visitor-panel [data-field="page-url"] a')?.getAttribute('href')`:                                                       shopURL,
		`document.querySelector('#visitor-panel [data-field="page-url"] a')?.getAttribute('rel')`:                                                        "noopener noreferrer",
		`document.querySelector('#visitor-panel [data-field="page-url"] a')?.getAttribute('target')`:                                                     "_blank",
		`String(document.querySelectorAll('#visitor-panel img, #visitor-panel script').length)`:                                                          "0",
		`String(window.pwned)`: "undefined",
		// The panel sits beside the conversation at this width.
		`String(document.getElementById('visitor-panel').getBoundingClientRect().width > 150)`: "true",
	}
	for expr, want := range checks {
		if got := ann.evalString(expr); got != want {
			t.Errorf("%s = %q, want %q", expr, got, want)
		}
	}
	if browser == "" || !strings.Contains(browser, "Mozilla/5.0") {
		t.Errorf("the frame's user agent is %q", browser)
	}
	ann.docScreenshot(br, "admin-visitor-desktop.png")

	// The host page navigates as a single-page app: a history push and a new
	// title reach the panel without a reload.
	nextURL := hostOrigin + "/garden/tools/42?ref=mail"
	shop.run("navigate the host page", `history.pushState(null, '', '/garden/tools/42?ref=mail'); document.title = 'Spade <b>42</b>'`)
	ann.waitJS("the panel to follow the host page", fmt.Sprintf(`%s === %s && %s === 'Spade <b>42</b>'`,
		field("page-url"), jsString(nextURL), field("page-title")))
	// And a hash change.
	shop.run("change the host page's hash", `location.hash = 'reviews'`)
	ann.waitJS("the panel to follow the hash", fmt.Sprintf(`%s === %s`, field("page-url"), jsString(nextURL+"#reviews")))
	if got := ann.evalString(`String(document.querySelectorAll('#visitor-panel b, #visitor-panel img').length) + String(window.pwned)`); got != "0undefined" {
		t.Errorf("markup in the panel: %q", got)
	}

	// A reload of the inbox shows the same (from the server, not the page).
	ann.reload()
	ann.waitOnline()
	ann.waitJS("the panel after a reload", fmt.Sprintf(`%s === %s && %s === 'Spade <b>42</b>'`,
		field("page-url"), jsString(nextURL+"#reviews"), field("page-title")))
}
