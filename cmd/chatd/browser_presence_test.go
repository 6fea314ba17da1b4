package main

// Presence and staff availability through the pages (docs/PROTOCOL.md,
// "Presence", "Staff availability"; transport/web/assets/static/live.js).

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A visitor (Carl) and an agent (Ann). Carl's page says the away message
// while no staff is connected, "We're online" once Ann's inbox is open. Ann's
// inbox shows a dot on Carl's entry while his page is open, and the
// conversation's header "Online"; when Carl leaves, after the server's 3 s
// grace, the header says "Last seen just now" (the exact time in its title)
// and the dot goes; a reload of Ann's page shows the same from the inbox
// page. Carl comes back: "Online" again. Ann sets herself away with the
// toggle in the top bar ("Away"): Carl's page shows the away message; back
// ("Available"): "We're online". The words for older times and the page's
// automatic away (after a short idle time here, 10 minutes on the page) are
// checked on the page's own functions. In Chromium and in Firefox.
func TestBrowserPresence(t *testing.T) {
	eachBrowser(t, testBrowserPresence)
}

func testBrowserPresence(t *testing.T, br browserKind) {
	s := startServer(t)
	b := br.start(t)
	carl := signedIn(t, b, s.Addr, "Carl", "user-carl", false)
	ann := signedIn(t, b, s.Addr, "Ann", "staff-ann", true)

	// Nobody on the staff yet: the away message.
	carl.navigate("http://" + s.Addr + "/")
	carl.waitOnline()
	waitAvailability(carl, DefaultAwayMessage, false)
	carl.typeAndSend("Hello")
	carl.waitMessageText("Hello")

	ann.navigate("http://" + s.Addr + "/admin/")
	ann.waitOnline()
	ann.waitInbox("Carl [1] Hello")
	waitAwayToggle(ann, "Available")
	waitAvailability(carl, "We're online", true)
	conv := ann.inbox()[0].Conv
	waitEntryOnline(ann, conv, true)
	ann.openConversation(conv)
	waitPresence(ann, "Online", "")
	ann.docScreenshot(br, "admin-presence-desktop.png")

	// Carl leaves: offline after the grace, last seen when he left.
	left := time.Now()
	carl.navigate("http://" + s.Addr + "/healthz")
	waitPresence(ann, "Last seen just now", "Last seen ")
	if d := time.Since(left); d < 2500*time.Millisecond {
		t.Errorf("Carl was shown offline %v after he left, within the server's 3 s grace", d)
	}
	waitEntryOnline(ann, conv, false)

	// A reload shows the same, from the inbox page (once the server stored
	// the time: in batches of a few seconds). The probe is away, so that it
	// does not count as available staff.
	probe := dial(t, s, "staff-probe", "Probe", true, true)
	send(t, probe, map[string]any{"type": "away", "away": true})
	waitFor(t, 15*time.Second, "Carl's last-seen time stored", func() bool {
		inbox, _ := askInbox(t, probe)
		convs, _ := inbox.Fields["conversations"].([]any)
		for _, c := range convs {
			e, _ := c.(map[string]any)
			v, _ := e["visitor"].(map[string]any)
			if e["conversation_id"] == float64(conv) && v != nil && v["last_seen_at"] != nil {
				return true
			}
		}
		return false
	})
	probe.Close()
	ann.reload()
	ann.waitOnline()
	ann.waitJS("the conversation to open again", fmt.Sprintf(`document.querySelector('#inbox .conv.active')?.dataset.conv === '%d'`, conv))
	waitPresence(ann, "Last seen just now", "Last seen ")
	waitEntryOnline(ann, conv, false)

	// The words for older times, and for no time known.
	var words []string
	ann.evalJSON(`import('/static/live.js').then(({ presenceText }) => {
		const now = Date.parse('2026-12-05T12:00:00Z');
		return [
			presenceText({ online: true }, now),
			presenceText({ online: false }, now),
			presenceText({ online: false, last_seen_at: '2026-12-05T11:59:30Z' }, now),
			presenceText({ online: false, last_seen_at: '2026-12-05T11:55:00Z' }, now),
			presenceText({ online: false, last_seen_at: '2026-12-05T09:10:00Z' }, now),
			presenceText({ online: false, last_seen_at: '2026-12-04T11:00:00Z' }, now),
			presenceText({ online: false, last_seen_at: '2026-12-01T11:00:00Z' }, now),
			presenceText(null, now),
		];
	})`, &words)
	want := []string{"Online", "Offline", "Last seen just now", "Last seen 5 min ago", "Last seen 2 h ago", "Last seen 1 day ago", "Last seen 4 days ago", ""}
	if fmt.Sprint(words) != fmt.Sprint(want) {
		t.Errorf("presenceText gives %q, want %q", words, want)
	}

	// Carl is back.
	carl.navigate("http://" + s.Addr + "/")
	carl.waitOnline()
	waitPresence(ann, "Online", "")
	waitEntryOnline(ann, conv, true)
	waitAvailability(carl, "We're online", true)

	// Ann sets herself away, then back.
	ann.click("set Ann away", "#away")
	waitAwayToggle(ann, "Away")
	waitAvailability(carl, DefaultAwayMessage, false)
	carl.docScreenshot(br, "chat-availability-desktop.png")
	ann.click("set Ann back", "#away")
	waitAwayToggle(ann, "Available")
	waitAvailability(carl, "We're online", true)

	// The automatic away, with 200 ms for 10 minutes: away after the idle
	// time, back at the next input; an away set by hand stays.
	var sent []map[string]any
	ann.evalJSON(`import('/static/live.js').then(async ({ AwayControl }) => {
		const sent = [];
		const target = new EventTarget();
		const c = new AwayControl({ send: (f) => { sent.push(f); return true; }, onChange: () => {}, idleMs: 200, target });
		const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
		c.up();
		await sleep(500);
		target.dispatchEvent(new Event('keydown'));
		c.toggle();
		await sleep(500);
		target.dispatchEvent(new Event('pointerdown'));
		c.stop();
		return sent;
	})`, &sent)
	if got := fmt.Sprint(sent); got != "[map[away:true type:away] map[away:false type:away] map[away:true type:away]]" {
		t.Errorf("the away control sent %s; want away (idle), back (input), away (by hand) and nothing at the next input", got)
	}
}

// waitAvailability waits until the visitor's page says exactly text about
// staff, shown as available or not.
func waitAvailability(p *page, text string, online bool) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("availability %q", text), fmt.Sprintf(`(() => { const a = document.getElementById('availability');
		return !a.hidden && a.textContent === %s && a.dataset.online === '%t'; })()`, jsString(text), online))
}

// waitPresence waits until the conversation header's presence says exactly
// text, with a title starting with titlePrefix ("": no title).
func waitPresence(p *page, text, titlePrefix string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("presence %q", text), fmt.Sprintf(`(() => { const n = document.getElementById('conv-presence');
		const title = n.getAttribute('title') || '';
		return n.textContent === %s && (%s === '' ? title === '' : title.startsWith(%s) && title.length > %d); })()`,
		jsString(text), jsString(titlePrefix), jsString(titlePrefix), len(titlePrefix)+4))
	if titlePrefix != "" {
		title := p.evalString(`document.getElementById('conv-presence').title`)
		if !strings.HasPrefix(title, titlePrefix) {
			p.t.Errorf("%s: the presence's title is %q", p.name, title)
		}
	}
}

// waitEntryOnline waits until conv's inbox entry shows the online dot, or
// not.
func waitEntryOnline(p *page, conv int64, online bool) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("conversation %d's dot online=%t", conv, online), fmt.Sprintf(`(() => {
		const b = document.querySelector('#inbox .conv[data-conv="%d"]');
		const dot = b && b.querySelector('.presence-dot');
		return b && (%t ? !!dot && dot.title === 'Online' && b.getAttribute('aria-label').startsWith('Carl, online') : !dot);
	})()`, conv, online))
}

// waitAwayToggle waits until the agent's away toggle says text.
func waitAwayToggle(p *page, text string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("the away toggle %q", text), fmt.Sprintf(`(() => { const b = document.getElementById('away');
		return !b.disabled && b.textContent === %s && b.getAttribute('aria-pressed') === '%t'; })()`, jsString(text), text == "Away"))
}
