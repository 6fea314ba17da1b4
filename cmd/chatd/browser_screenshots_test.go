package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// Screenshots of every page, desktop (1280×800) and phone (390×844), with a
// realistic inbox, saved as test artifacts ($ARTIFACTS_DIR, default
// artifacts/screenshots; Chromium's under the names docs/img uses, Firefox's
// prefixed firefox-). The test also checks the layouts: no page scrolls
// sideways; on the chat and the inbox the composer and its Send button are
// on screen, uncovered and enabled, and the composer does not scroll for one
// line (Firefox draws the scroll bars headless Chromium hides), grows for two
// (Shift+Enter) and shrinks back once they are sent; the newest message
// stays above the composer; messages are typed and sent on a phone. In
// Chromium and in Firefox.
func TestBrowserScreenshots(t *testing.T) {
	eachBrowser(t, testScreenshots)
}

func testScreenshots(t *testing.T, br browserKind) {
	s, secret := devServer(t)
	shot := func(p *page, name string) { p.docScreenshot(br, name) }

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

	b := br.start(t)
	// The pages navigate one after the other in one tab: a page left while
	// its socket is still connecting (a slow machine) makes Firefox log the
	// socket's interruption as an error, although nothing failed (CI, once
	// in about 40 runs).
	b.expectErrors("was interrupted while the page was loading", "establish a connection to the server at ws://")
	p := b.newPage("pages")
	p.viewport(1280, 800, false)
	p.navigate("http://" + s.Addr + "/login")
	shot(p, "login-desktop.png")
	p.viewport(390, 844, true)
	p.navigate("http://" + s.Addr + "/login")
	p.checkNoSideways()
	shot(p, "login-phone.png")

	// The visitor's chat.
	p.viewport(1280, 800, false)
	p.devLogin(s.Addr, "Marie Dupont", false)
	p.waitOnline()
	p.waitMessageText("Wonderful, thank you both!")
	p.checkFits()
	shot(p, "chat-desktop.png")
	p.viewport(390, 844, true)
	p.navigate("http://" + s.Addr + "/")
	p.waitOnline()
	p.waitMessageText("Wonderful, thank you both!")
	p.checkFits()
	shot(p, "chat-phone.png")

	// The widget on a page of chatd's own (development mode's demo page).
	widgetChat := `(() => {
		const f = document.querySelector('[data-grainchat]').shadowRoot.querySelector('iframe');
		const d = f && f.contentDocument;
		return d && d.getElementById('state')?.dataset.state === 'online' &&
			[...d.querySelectorAll('#messages .msg[data-seq] .text')].some(e => e.textContent.startsWith('Wonderful'));
	})()`
	p.viewport(1280, 800, false)
	p.navigate("http://" + s.Addr + "/widget-demo")
	p.waitJS("the widget button", `document.querySelector('[data-grainchat]')?.shadowRoot?.querySelector('button') != null`)
	shot(p, "widget-closed-desktop.png")
	p.run("open the widget", `GrainChat.open()`)
	p.waitJS("the widget's chat", widgetChat)
	shot(p, "widget-desktop.png")
	p.viewport(390, 844, true)
	p.navigate("http://" + s.Addr + "/widget-demo") // the panel reopens: the widget remembers it for the tab
	p.checkNoSideways()
	p.waitJS("the widget's chat", widgetChat)
	shot(p, "widget-phone.png")

	// The inbox, as Ann, who has read Jonas's and Lena's conversations.
	a := b.newPage("inbox")
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
	a.checkFits()
	a.run("start a reply", `document.getElementById('text').focus()`)
	shot(a, "admin-desktop.png")

	a.viewport(390, 844, true)
	a.navigate("http://" + s.Addr + "/admin/")
	a.waitOnline()
	a.waitJS("five conversations", `document.querySelectorAll('#inbox .conv').length === 5`)
	a.waitJS("the list alone on the screen", `getComputedStyle(document.querySelector('.conversation-pane')).display === 'none'`)
	a.checkNoSideways()
	shot(a, "admin-phone-inbox.png")
	a.openConversation(convs["Priya Shah"])
	a.waitMessageText("Could you send a replacement? I can send a photo.")
	// On a phone the conversation takes the whole screen, with a way back.
	a.waitJS("the conversation in place of the list", `getComputedStyle(document.querySelector('.inbox-pane')).display === 'none' &&
		getComputedStyle(document.getElementById('back')).display !== 'none'`)
	a.checkFits()
	shot(a, "admin-phone-conversation.png")

	// Typing on the phones (after the screenshots, which show the seed
	// conversations): Marie writes one line, then two (Shift+Enter): the
	// composer grows without scrolling, Enter sends both lines, and it
	// shrinks back; Ann answers from her phone.
	p.navigate("http://" + s.Addr + "/")
	p.waitOnline()
	p.waitMessageText("Wonderful, thank you both!")
	p.typeAndSend("Between 10:00 and 12:00 would be ideal.")
	p.waitMessageText("Between 10:00 and 12:00 would be ideal.")
	p.checkFits()
	oneLine := p.composerHeight()
	p.must("write two lines", p.timed(func(ctx context.Context) error {
		if err := p.d.click(ctx, "#text"); err != nil {
			return err
		}
		if err := p.d.typeKeys(ctx, "Or after 16:00,"); err != nil {
			return err
		}
		if err := p.d.pressEnter(ctx, true); err != nil {
			return err
		}
		return p.d.typeKeys(ctx, "if that is easier.")
	}))
	p.waitJS("the composer to grow", fmt.Sprintf(`document.getElementById('text').clientHeight > %d`, oneLine.Client))
	if h := p.composerHeight(); h.Scroll > h.Client {
		t.Errorf("a two-line composer scrolls: %+v", h)
	}
	p.must("send", p.timed(func(ctx context.Context) error { return p.d.pressEnter(ctx, false) }))
	p.waitMessageText("Or after 16:00,\nif that is easier.")
	p.waitJS("the composer to shrink back", fmt.Sprintf(`document.getElementById('text').clientHeight === %d`, oneLine.Client))
	p.checkFits()
	// The newest message is on screen, above the composer.
	p.waitJS("the newest message above the composer", `(() => {
		const last = [...document.querySelectorAll('#messages .msg[data-seq]')].pop().getBoundingClientRect();
		const composer = document.getElementById('composer').getBoundingClientRect();
		return last.bottom <= composer.top + 1 && last.top >= 0;
	})()`)

	a.click("back to the list", "#back")
	a.waitJS("the list", `getComputedStyle(document.querySelector('.inbox-pane')).display !== 'none'`)
	a.openConversation(convs["Marie Dupont"])
	a.waitMessageText("Or after 16:00,\nif that is easier.")
	a.typeAndSend("Of course, Marie: 10:00 to 12:00 it is.")
	a.waitMessageText("Of course, Marie: 10:00 to 12:00 it is.")
	p.waitMessageText("Of course, Marie: 10:00 to 12:00 it is.")
	a.checkFits()
	wantTexts := []string{
		"Bonjour! Do you deliver on Saturdays?",
		"Hello Marie! Yes, Saturday delivery is available in most areas for €4.90.",
		"Perfect. And can I choose a time slot?",
		"You can pick a two-hour slot at checkout, from 8:00 to 18:00.",
		"Wonderful, thank you both!",
		"Between 10:00 and 12:00 would be ideal.",
		"Or after 16:00,\nif that is easier.",
		"Of course, Marie: 10:00 to 12:00 it is.",
	}
	for _, pg := range []*page{p, a} {
		checkThread(t, pg, wantTexts)
	}
}
