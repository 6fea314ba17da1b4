package main

import (
	"fmt"
	"testing"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// Screenshots of every page, desktop (1280×800) and phone (390×844), with a
// realistic inbox, saved as test artifacts ($ARTIFACTS_DIR, default
// artifacts/screenshots). docs/img/ holds the ones the README shows. The test
// also checks that the phone layouts fit the screen (no sideways scrolling).
func TestBrowserScreenshots(t *testing.T) {
	chromiumPath(t) // skip (or fail in CI) before starting anything
	s, secret := devServer(t)

	// Five visitors and two staff members talk through Go clients.
	type line struct {
		staff string // "" for the visitor
		text  string
	}
	visitors := []struct {
		sub, name string
		lines     []line
	}{
		{"dev-jonas-berg", "Jonas Berg", []line{
			{"", "Hi! Is the oak garden bench still available in green?"},
			{"Ann", "Hi Jonas, yes: four left in green."},
			{"", "Great, can it ship to Oslo?"},
		}},
		{"dev-lena-fischer", "Lena Fischer", []line{
			{"", "The delivery arrived a day early. Thanks!"},
			{"Bob", "Glad to hear it, enjoy the planters!"},
		}},
		{"dev-marie-dupont", "Marie Dupont", []line{
			{"", "Bonjour! Do you deliver on Saturdays?"},
			{"Ann", "Hello Marie! Yes, Saturday delivery is available in most areas for €4.90."},
			{"", "Perfect. And can I choose a time slot?"},
			{"Bob", "You can pick a two-hour slot at checkout, from 8:00 to 18:00."},
			{"", "Wonderful, thank you both!"},
		}},
		{"dev-tomas-ruiz", "Tomás Ruiz", []line{
			{"", "Where can I find the assembly instructions for the potting table?"},
		}},
		{"dev-priya-shah", "Priya Shah", []line{
			{"", "My order #4417 arrived with a cracked pot."},
			{"", "Could you send a replacement? I can send a photo."},
		}},
	}
	staff := map[string]string{
		"Ann": mintWith(t, secret, "dev-staff-ann", "Ann", true),
		"Bob": mintWith(t, secret, "dev-staff-bob", "Bob", true),
	}
	staffClients := map[string]*wsclient.Client{}
	for name, tok := range staff {
		staffClients[name] = dialAs(t, s, tok, true)
	}
	convs := map[string]int64{}
	for i, v := range visitors {
		c := dialAs(t, s, mintWith(t, secret, v.sub, v.name, false), false)
		conv := convOf(t, c)
		convs[v.name] = conv
		for j, l := range v.lines {
			id := fmt.Sprintf("seed-%d-%d", i, j)
			if l.staff == "" {
				post(t, c, 0, l.text, id)
			} else {
				post(t, staffClients[l.staff], conv, l.text, id)
			}
		}
	}

	b := newBrowser(t)
	p := b.newTab("pages")
	p.viewport(1280, 800, false)
	p.navigate("http://" + s.Addr + "/login")
	p.screenshot("login-desktop.png")
	p.viewport(390, 844, true)
	p.navigate("http://" + s.Addr + "/login")
	p.checkFits()
	p.screenshot("login-phone.png")

	// The visitor's chat.
	p.viewport(1280, 800, false)
	p.devLogin(s.Addr, "Marie Dupont", false)
	p.waitOnline()
	p.waitMessageText("Wonderful, thank you both!")
	p.screenshot("chat-desktop.png")
	p.viewport(390, 844, true)
	p.navigate("http://" + s.Addr + "/")
	p.waitOnline()
	p.waitMessageText("Wonderful, thank you both!")
	p.checkFits()
	p.screenshot("chat-phone.png")

	// The widget on a page of chatd's own (development mode's demo page).
	p.viewport(1280, 800, false)
	p.navigate("http://" + s.Addr + "/widget-demo")
	p.waitJS("the widget button", `document.querySelector('[data-grainchat]')?.shadowRoot?.querySelector('button') != null`)
	p.screenshot("widget-closed-desktop.png")
	p.do("open the widget", evalVoid(`GrainChat.open()`))
	p.waitJS("the widget's chat", `(() => {
		const f = document.querySelector('[data-grainchat]').shadowRoot.querySelector('iframe');
		const d = f && f.contentDocument;
		return d && d.getElementById('state')?.dataset.state === 'online' &&
			[...d.querySelectorAll('#messages .msg[data-seq] .text')].some(e => e.textContent.startsWith('Wonderful'));
	})()`)
	p.screenshot("widget-desktop.png")
	p.viewport(390, 844, true)
	p.navigate("http://" + s.Addr + "/widget-demo") // the panel reopens: the widget remembers it for the tab
	p.checkFits()
	p.waitJS("the widget's chat", `(() => {
		const f = document.querySelector('[data-grainchat]').shadowRoot.querySelector('iframe');
		const d = f && f.contentDocument;
		return d && d.getElementById('state')?.dataset.state === 'online' &&
			[...d.querySelectorAll('#messages .msg[data-seq] .text')].some(e => e.textContent.startsWith('Wonderful'));
	})()`)
	p.screenshot("widget-phone.png")

	// The inbox, as Ann, who has read Jonas's and Lena's conversations.
	a := b.newTab("inbox")
	a.viewport(1280, 800, false)
	a.devLogin(s.Addr, "Ann", true)
	a.waitOnline()
	a.waitJS("five conversations", `document.querySelectorAll('#inbox .conv').length === 5`)
	a.openConversation(convs["Jonas Berg"])
	a.waitMessageText("Great, can it ship to Oslo?")
	a.openConversation(convs["Lena Fischer"])
	a.waitMessageText("Glad to hear it, enjoy the planters!")
	a.openConversation(convs["Marie Dupont"])
	a.waitMessageText("Wonderful, thank you both!")
	a.waitInbox(
		"Priya Shah [2] Could you send a replacement? I can send a photo.",
		"Tomás Ruiz [1] Where can I find the assembly instructions for the potting table?",
		"Marie Dupont [] Wonderful, thank you both!",
		"Lena Fischer [] Bob: Glad to hear it, enjoy the planters!",
		"Jonas Berg [] Great, can it ship to Oslo?",
	)
	a.do("start a reply", evalVoid(`document.getElementById('text').focus()`))
	a.screenshot("admin-desktop.png")

	a.viewport(390, 844, true)
	a.navigate("http://" + s.Addr + "/admin/")
	a.waitOnline()
	a.waitJS("five conversations", `document.querySelectorAll('#inbox .conv').length === 5`)
	a.checkFits()
	a.screenshot("admin-phone-inbox.png")
	a.openConversation(convs["Priya Shah"])
	a.waitMessageText("Could you send a replacement? I can send a photo.")
	a.checkFits()
	a.screenshot("admin-phone-conversation.png")
}

// checkFits fails when the page scrolls sideways (a layout wider than the screen).
func (p *tab) checkFits() {
	p.t.Helper()
	var w struct {
		Scroll int `json:"scroll"`
		Client int `json:"client"`
	}
	p.evalJSON(`({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth})`, &w)
	if w.Scroll > w.Client {
		p.t.Errorf("%s: page is %dpx wide on a %dpx screen", p.name, w.Scroll, w.Client)
	}
}
