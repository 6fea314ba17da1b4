package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/auth"
)

// mintExpiring signs a test token that expires after ttl (whole seconds).
func mintExpiring(t testing.TB, sub, name string, admin bool, ttl time.Duration) (string, time.Time) {
	t.Helper()
	tok := mintTTL(t, sub, name, admin, ttl)
	id, err := auth.NewVerifier(auth.Config{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := id.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	return tok, claims.ExpiresAt
}

// refused401 reads chatd's count of handshakes refused with 401.
func refused401(t testing.TB, s *testServer) string {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^grainchat_handshakes_refused_total\{status="401"\} (\S+)$`).FindSubmatch(body)
	if m == nil {
		return "0"
	}
	return string(m[1])
}

// When a page's token expires, chatd closes its socket (4401): the page says
// "Your session expired; sign in again" and does not reconnect with the
// token it has (no handshake is refused, the state stays signed out). A page
// whose cookie the host site renewed before the expiry asks GET /session
// once after the 4401 and reconnects with it. In Chromium and in Firefox.
func TestBrowserTokenExpiry(t *testing.T) {
	eachBrowser(t, func(t *testing.T, br browserKind) {
		s := startServer(t)
		b := br.start(t)
		p := b.newPage("visitor")
		token, exp := mintExpiring(t, "user-1", "Alice", false, 10*time.Second)
		p.setToken(s.Addr, token)
		p.navigate("http://" + s.Addr + "/")
		p.waitOnline()
		if time.Until(exp) < time.Second {
			t.Skipf("the page took until %v before its 10 s token expired to connect", time.Until(exp))
		}
		p.waitJS("the expiry in words", `document.getElementById('state').dataset.state === 'signed-out' &&
			document.getElementById('banner').textContent.startsWith('Your session expired; sign in again.')`)
		before := refused401(t, s)
		// For two seconds (several back-off rounds), nothing happens.
		until := time.Now().Add(2 * time.Second)
		for time.Now().Before(until) {
			if st := p.evalString(`document.getElementById('state').dataset.state`); st != "signed-out" {
				t.Fatalf("after the expiry the page went %q", st)
			}
			time.Sleep(100 * time.Millisecond) // sampling period of a bounded observation
		}
		if after := refused401(t, s); after != before || after != "0" {
			t.Errorf("handshakes refused with 401: %s, then %s: the page retried with its expired token", before, after)
		}

		// A page whose host site renewed the cookie in time: at the old
		// token's expiry it checks GET /session once and reconnects with the
		// new one.
		q := b.newPage("visitor with a renewed cookie")
		short, shortExp := mintExpiring(t, "user-2", "Bruno", false, 12*time.Second)
		q.setToken(s.Addr, short)
		q.navigate("http://" + s.Addr + "/")
		q.waitOnline()
		if time.Until(shortExp) < time.Second {
			t.Skipf("the page took until %v before its 12 s token expired to connect", time.Until(shortExp))
		}
		q.setToken(s.Addr, mint(t, "user-2", "Bruno", false)) // the host site renews the cookie
		// The old token's expiry passes (a known instant: nothing to poll).
		<-time.After(time.Until(shortExp.Add(1500 * time.Millisecond)))
		q.waitOnline()
		q.typeAndSend("still here")
		q.waitMessageText("still here")
		if after := refused401(t, s); after != "0" {
			t.Errorf("handshakes refused with 401: %s", after)
		}
	})
}

// The widget's host site gives a fresh token before the old one expires
// (GrainChat.setToken): the frame hands it to its socket in band, and the
// chat goes on past the old expiry on the same page (the unread count keeps
// counting: the frame was not reloaded). In Chromium and in Firefox.
func TestBrowserWidgetTokenRefresh(t *testing.T) {
	eachBrowser(t, func(t *testing.T, br browserKind) {
		var chatAddr, token string
		origin := hostSite(t, &chatAddr, &token)
		s := startServer(t, "--allowed-origins", origin)
		chatAddr = s.Addr
		staff := dial(t, s, "staff-1", "Ann", true, true)
		wendy := dial(t, s, "user-7", "Wendy", false, true) // her other device: the same conversation
		conv := convOf(t, wendy)

		b := br.start(t)
		b.expectErrors("favicon.ico") // Firefox: the host page's CSP refuses its favicon
		page := b.newPage("host page")
		// Counted from here (the browser has started): long enough for the
		// page to load and connect on a loaded machine (10 s was not, once).
		token, exp := mintExpiring(t, "user-7", "Wendy", false, 25*time.Second)
		page.navigate(origin + "/")
		root := `document.querySelector('[data-grainchat]').shadowRoot`
		page.waitJS("the chat button", root+`?.querySelector('button') != null`)
		page.run("open the chat", `GrainChat.open()`)
		page.waitJS("the frame to be ready", `document.querySelector('[data-grainchat]').dataset.state === 'ready'`)
		page.run("close the panel", `GrainChat.close()`)
		badge := func(n int) string {
			return fmt.Sprintf(`%s.querySelector('.grainchat-badge').textContent === '%d'`, root, n)
		}
		// The frame learns that the panel closed by a postMessage, which a
		// reply may overtake (it is then read, not unread): reply until the
		// closed panel counts one.
		count := root + `.querySelector('.grainchat-badge').textContent`
		for i := 1; page.evalString(count) != "1"; i++ {
			if i > 5 {
				t.Fatalf("no unread after %d replies to the closed panel (badge %q)", i-1, page.evalString(count))
			}
			post(t, staff, conv, fmt.Sprint("one ", i), fmt.Sprint("r1-", i))
			for until := time.Now().Add(3 * time.Second); time.Now().Before(until) && page.evalString(count) != "1"; {
				time.Sleep(50 * time.Millisecond) // poll, bounded by until
			}
		}

		fresh := mint(t, "user-7", "Wendy", false)
		page.run("give a fresh token", fmt.Sprintf(`GrainChat.setToken(%s)`, jsString(fresh)))
		// The old token's expiry passes (a known instant: nothing to poll).
		<-time.After(time.Until(exp.Add(1500 * time.Millisecond)))
		post(t, staff, conv, "two", "r2")
		page.waitJS("the second unread, on the same page", badge(2))
	})
}
