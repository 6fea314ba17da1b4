package main

import (
	"strconv"
	"testing"
	"time"
)

// A page reconnects soon after its server comes back: its back-off starts
// well under a second and grows slowly (full jitter, 250 ms doubling, at
// most 10 s), so after three failed attempts the next one comes within about
// 2 s; and it reconnects at once when the browser says the network is back
// (the online event) or the tab becomes visible (visibilitychange), however
// long its back-off has grown. In Chromium and in Firefox.
func TestBrowserReconnectsFast(t *testing.T) {
	eachBrowser(t, func(t *testing.T, br browserKind) {
		addr := freeAddr(t)
		s := startServer(t, "--addr", addr)
		b := br.start(t)
		b.expectErrors("/ws/chat/", "ERR_CONNECTION_REFUSED", "/session") // the failed attempts, as the browsers log them
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
		s.Stop()
		p.waitJS("three failed attempts", attempts(3))
		s = startServer(t, "--addr", addr)
		back := time.Now()
		p.waitOnline()
		if d := time.Since(back); d > 3*time.Second {
			t.Errorf("online %v after the server came back, want under 3 s", d)
		} else {
			t.Logf("online %v after the server came back", d.Round(time.Millisecond))
		}

		// Down long enough for the back-off to reach seconds; the network
		// "comes back": the page reconnects at once.
		s.Stop()
		p.waitJS("six failed attempts", attempts(6))
		s = startServer(t, "--addr", addr)
		back = time.Now()
		// The page starts a new attempt at once, from the shortest back-off
		// (the attempt counter is back to 0 when the event returns). How soon
		// that socket opens is the browser's business: Firefox delays
		// WebSockets to a host that just refused some.
		if got := p.evalString(`(window.dispatchEvent(new Event('online')), document.getElementById('state').dataset.attempt)`); got != "0" {
			t.Errorf("after the online event the page is at attempt %s, want a new first attempt", got)
		}
		p.waitOnline()
		t.Logf("online %v after the online event", time.Since(back).Round(time.Millisecond))
		// The same when the tab becomes visible again.
		s.Stop()
		p.waitJS("six failed attempts", attempts(6))
		s = startServer(t, "--addr", addr)
		back = time.Now()
		if got := p.evalString(`(document.dispatchEvent(new Event('visibilitychange')), document.getElementById('state').dataset.attempt)`); got != "0" {
			t.Errorf("after the tab became visible the page is at attempt %s, want a new first attempt", got)
		}
		p.waitOnline()
		t.Logf("online %v after the tab became visible", time.Since(back).Round(time.Millisecond))
		p.typeAndSend("after")
		p.waitJS("the message stored", `[...document.querySelectorAll('#messages .msg[data-seq] .text')].some(e => e.textContent === 'after')`)
	})
}
