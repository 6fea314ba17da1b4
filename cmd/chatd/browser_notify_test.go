package main

// Notifications for staff through the inbox page
// (transport/web/assets/static/notify.js).

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
)

// An agent (Ann) and two visitors: Carl (a page) and Dora, whose
// conversation Bob takes. Ann's inbox offers "Enable notifications" (the
// browser has not been asked); her person allows notifications (through the
// browser driver: Chromium's DevTools protocol, Firefox's WebDriver BiDi
// permissions module) and her click asks the browser, which says yes: the
// button goes. The sound is off until she turns it on (it beeps once, to
// show how it sounds). Carl's and Dora's first messages beep and show a
// desktop notification each (unassigned conversations), and the title counts
// them; once Bob has Dora's conversation, her next message beeps but shows
// no notification (not Ann's); while Carl's conversation is on Ann's
// screen, his message does neither. After a reload the sound is still on.
// In Chromium and in Firefox.
func TestBrowserNotifications(t *testing.T) {
	eachBrowser(t, testBrowserNotifications)
}

func testBrowserNotifications(t *testing.T, br browserKind) {
	s := startServer(t)
	origin := "http://" + s.Addr
	b := br.start(t)
	carl := signedIn(t, b, s.Addr, "Carl", "user-carl", false)
	ann := signedIn(t, b, s.Addr, "Ann", "staff-ann", true)
	bob := dial(t, s, "staff-bob", "Bob", true, true)
	dora := dial(t, s, "user-dora", "Dora", false, true)
	doraConv := convOf(t, dora)

	ann.navigate(origin + "/admin/")
	ann.waitOnline()
	ann.waitJS("the inbox", `document.getElementById('inbox-loading').hidden`)
	ann.waitJS("the Enable notifications button", `Notification.permission === 'default' &&
		!document.getElementById('notify-enable').hidden && document.getElementById('notify-enable').textContent === 'Enable notifications'`)
	checkSound(t, ann, false)
	if title := ann.evalString(`document.title`); title != "Inbox — grainchat" {
		t.Errorf("Ann's title is %q", title)
	}

	// Ann's click asks the browser (from the click: with user activation);
	// she allows notifications (through the driver), and the button goes.
	recordNotifications(ann)
	ann.click("Enable notifications", "#notify-enable")
	ann.waitJS("the page to ask for permission", `JSON.stringify(window.asked) === '[true]'`)
	ann.must("grant notifications", ann.timed(func(ctx context.Context) error { return ann.d.grant(ctx, origin, "notifications") }))
	ann.waitJS("the button to go", `Notification.permission === 'granted' && document.getElementById('notify-enable').hidden`)
	ann.click("turn the sound on", "#sound")
	checkSound(t, ann, true)
	waitBeeps(ann, 1) // the toggle's own beep

	// Two new conversations: unassigned, each beeps and notifies.
	carl.navigate(origin + "/")
	carl.waitOnline()
	carl.typeAndSend("Hello")
	ann.waitInbox("Carl [1] Hello")
	waitBeeps(ann, 2)
	post(t, dora, doraConv, "Do you ship to Norway?", "d1")
	ann.waitInbox("Dora [1] Do you ship to Norway?", "Carl [1] Hello")
	waitBeeps(ann, 3)
	waitTitle(ann, "(2) Inbox — grainchat")
	waitNotifications(ann, "Carl: Hello", "Dora: Do you ship to Norway?")

	// Bob takes Dora's conversation: her next message beeps, but it is not
	// Ann's to be notified of.
	send(t, bob, map[string]any{"type": "assign", "conversation_id": doraConv, "assignee": "staff-bob"})
	ann.waitJS("Dora's conversation assigned to Bob", fmt.Sprintf(`document.querySelector('#inbox .conv[data-conv="%d"] .conv-assignee')?.textContent === '→ Bob'`, doraConv))
	post(t, dora, doraConv, "Hello?", "d2")
	ann.waitInbox("Dora [2] Hello?", "Carl [1] Hello")
	waitBeeps(ann, 4)
	waitTitle(ann, "(3) Inbox — grainchat")

	// Carl's conversation on screen: his message neither beeps nor notifies.
	ann.openConversation(ann.inbox()[1].Conv)
	waitTitle(ann, "(2) Inbox — grainchat")
	carl.typeAndSend("Are you there?")
	ann.waitMessageText("Are you there?")
	waitTitle(ann, "(2) Inbox — grainchat")
	// A marker: Dora writes once more (Bob's: a beep, no notification).
	post(t, dora, doraConv, "Thanks", "d3")
	ann.waitInbox("Dora [3] Thanks", "Carl [] Are you there?")
	waitBeeps(ann, 5)
	waitTitle(ann, "(3) Inbox — grainchat")
	waitNotifications(ann, "Carl: Hello", "Dora: Do you ship to Norway?")

	// The sound is remembered; the permission too.
	ann.reload()
	ann.waitOnline()
	checkSound(t, ann, true)
	ann.waitJS("no Enable notifications button", `document.getElementById('notify-enable').hidden`)

	// The decision, case by case.
	var got []string
	ann.evalJSON(`import('/static/notify.js').then(({ notifyDecision }) => {
		const me = { id: 7 };
		const m = (o) => ({ conversation_id: 1, seq: 5, sender_id: 9, sender_is_admin: false, ...o });
		const e = (o) => ({ last_seq: 4, read_seq: 0, assignee: null, ...o });
		const cases = [
			{ message: m(), me, entry: e(), openId: null, visible: true },               // unassigned
			{ message: m(), me, entry: e({ assignee: { id: 7 } }), openId: 2, visible: true }, // mine
			{ message: m(), me, entry: e({ assignee: { id: 8 } }), openId: 2, visible: true }, // a colleague's
			{ message: m(), me, entry: null, openId: null, visible: true },              // not listed
			{ message: m(), me, entry: e(), openId: 1, visible: true },                  // on screen
			{ message: m(), me, entry: e(), openId: 1, visible: false },                 // on screen, hidden tab
			{ message: m({ sender_is_admin: true, sender_id: 8 }), me, entry: e(), openId: null, visible: true }, // staff
			{ message: m(), me, entry: e({ read_seq: 5 }), openId: null, visible: true }, // read already
		];
		return cases.map((c) => { const d = notifyDecision(c); return (d.sound ? 'S' : '-') + (d.desktop ? 'D' : '-'); });
	})`, &got)
	if w := "[SD SD S- SD -- SD -- --]"; fmt.Sprint(got) != w {
		t.Errorf("notifyDecision gives %v, want %s", got, w)
	}
}

// recordNotifications makes the page note each desktop notification it
// shows (title: body), each beep (an oscillator started), and whether each
// request for permission came with user activation (from a click), in
// window.shown, window.beeps and window.asked.
func recordNotifications(p *page) {
	p.t.Helper()
	p.run("record notifications and beeps", `(() => {
		window.shown = [];
		window.beeps = 0;
		window.asked = [];
		const N = window.Notification;
		const ask = N.requestPermission.bind(N);
		N.requestPermission = (...args) => {
			window.asked.push(navigator.userActivation.isActive);
			return ask(...args);
		};
		window.Notification = class extends N {
			constructor(title, options) {
				super(title, options);
				window.shown.push(title + ': ' + (options && options.body));
			}
		};
		const start = OscillatorNode.prototype.start;
		OscillatorNode.prototype.start = function (...args) {
			window.beeps++;
			return start.apply(this, args);
		};
	})()`)
}

// waitBeeps waits until the page beeped n times, and checks it does not go on.
func waitBeeps(p *page, n int) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("%d beeps", n), fmt.Sprintf(`window.beeps === %d`, n))
}

// waitNotifications waits until the page showed exactly want.
func waitNotifications(p *page, want ...string) {
	p.t.Helper()
	w, _ := json.Marshal(want)
	p.waitJS(fmt.Sprintf("notifications %q", want), fmt.Sprintf(`JSON.stringify(window.shown) === JSON.stringify(JSON.parse(%s))`, jsString(string(w))))
}

// waitTitle waits until the page's title is want.
func waitTitle(p *page, want string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("title %q", want), fmt.Sprintf(`document.title === %s`, jsString(want)))
}

// checkSound fails the test unless the sound toggle says on (remembered)
// or off.
func checkSound(t *testing.T, p *page, on bool) {
	t.Helper()
	want := map[bool]string{true: "Sound on|true|on", false: "Sound off|false|"}[on]
	got := p.evalString(`(() => { const b = document.getElementById('sound');
		return b.textContent + '|' + b.getAttribute('aria-pressed') + '|' + (localStorage.getItem('grainchat.inbox.sound') || ''); })()`)
	if got != want {
		t.Errorf("%s: the sound toggle: %q, want %q", p.name, got, want)
	}
}
