package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage/pgtest"
)

// A page reconnects soon after its server is reachable again: its back-off
// starts well under a second and grows slowly (full jitter, 250 ms
// doubling, at most 10 s), so after three failed attempts the next one comes
// within about 2 s; and it starts a new first attempt at once when the
// browser says the network is back (the online event) or the tab becomes
// visible (visibilitychange), however long its back-off has grown. The page
// reaches chatd through a TCP proxy that the test cuts and restores at once
// (a restarting chatd would add its own start-up time). In Chromium and in
// Firefox.
func TestBrowserReconnectsFast(t *testing.T) {
	eachBrowser(t, func(t *testing.T, br browserKind) {
		s := startServer(t)
		link := pgtest.StartProxy(t, s.Addr)
		addr := link.Addr()
		b := br.start(t)
		b.expectErrors("/ws/chat/", "ERR_CONNECTION", "/session", "NetworkError") // the failed attempts, as the browsers log them
		p := b.newPage("visitor")
		p.setToken(addr, mint(t, "user-1", "Alice", false))
		p.navigate("http://" + addr + "/")
		p.waitOnline()
		p.typeAndSend("before")
		p.waitMessageText("before")

		attempts := func(n int) string {
			return `document.getElementById('state').dataset.state !== 'online' && Number(document.getElementById('state').dataset.attempt || 0) >= ` + strconv.Itoa(n)
		}

		// Down for three failed attempts, then back: online within 3 s.
		link.SetDown(true)
		p.waitJS("three failed attempts", attempts(3))
		link.SetDown(false)
		back := time.Now()
		p.waitOnline()
		if d := time.Since(back); d > 3*time.Second {
			t.Errorf("online %v after the server was reachable again, want under 3 s", d)
		} else {
			t.Logf("online %v after the server was reachable again", d.Round(time.Millisecond))
		}

		// Down long enough for the back-off to reach seconds; the network
		// "comes back": the page starts a new first attempt at once (the
		// attempt counter is back to 0 when the event returns). How soon that
		// socket opens is the browser's business: Firefox delays WebSockets
		// to a host that just refused several.
		for _, ev := range []struct{ what, script string }{
			{"the online event", `window.dispatchEvent(new Event('online'))`},
			{"the tab becoming visible", `document.dispatchEvent(new Event('visibilitychange'))`},
		} {
			link.SetDown(true)
			p.waitJS("six failed attempts", attempts(6))
			link.SetDown(false)
			back = time.Now()
			if got := p.evalString(`(` + ev.script + `, document.getElementById('state').dataset.attempt)`); got != "0" {
				t.Errorf("after %s the page is at attempt %s, want a new first attempt", ev.what, got)
			}
			p.waitOnline()
			t.Logf("online %v after %s", time.Since(back).Round(time.Millisecond), ev.what)
		}
		p.typeAndSend("after")
		p.waitMessageText("after")
		checkThread(t, p, []string{"before", "after"})
	})
}
