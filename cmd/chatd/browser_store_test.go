package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A development-mode chatd (memory store) restarts while a visitor and a
// staff member have their pages open: everything they showed belongs to a
// store that no longer exists. The welcome names another store_id, so both
// pages drop what they held (the staff page closes "Carl · conversation N",
// forgets its list and its unsent reply, which must not reach whoever holds
// an id in the new store), say "The chat server was reset; earlier messages
// are no longer available", and go on fresh: a new visitor's conversation
// and Carl's new one are listed, and a reply reaches exactly its visitor. In
// Chromium and in Firefox.
func TestBrowserStoreReset(t *testing.T) {
	eachBrowser(t, func(t *testing.T, br browserKind) {
		addr := freeAddr(t)
		secretFile := filepath.Join(t.TempDir(), "dev-jwt-secret")
		args := []string{"--addr", addr, "--jwt-secret=", "--dev-secret-file", secretFile}
		s1 := startServer(t, args...)
		secret := readSecret(t, secretFile)

		b := br.start(t)
		b.expectErrors("/ws/chat/", "ERR_CONNECTION_REFUSED", "/session") // reconnects while chatd is down
		carl := b.newPage("Carl")
		carl.setToken(addr, mintWith(t, secret, "dev-carl", "Carl", false))
		carl.navigate("http://" + addr + "/")
		carl.waitOnline()
		carl.typeAndSend("Where is my order?")
		carl.waitMessageText("Where is my order?")

		ann := b.newPage("Ann")
		ann.setToken(addr, mintWith(t, secret, "dev-staff-ann", "Ann", true))
		ann.navigate("http://" + addr + "/admin/")
		ann.waitOnline()
		ann.waitInbox("Carl [1] Where is my order?")
		oldConv := ann.inbox()[0].Conv
		ann.openConversation(oldConv)
		ann.typeAndSend("Checking, Carl.")
		carl.waitMessageText("Checking, Carl.")
		ann.waitMessageText("Checking, Carl.")
		if sub := ann.evalString(`document.getElementById('conv-sub').textContent`); !strings.Contains(sub, fmt.Sprintf("conversation %d", oldConv)) {
			t.Fatalf("the pane says %q", sub)
		}

		// chatd restarts with an empty store. Meanwhile Ann writes a reply
		// for Carl's old conversation.
		s1.Stop()
		ann.waitJS("the page to notice", `document.getElementById('state').dataset.state !== 'online'`)
		ann.typeAndSend("Carl, are you still there?")
		ann.waitJS("the reply to wait", `document.querySelectorAll('#messages .msg.pending').length === 1`)
		s2 := startServer(t, args...)
		staff := dialAs(t, s2, mintWith(t, secret, "dev-staff-bob", "Bob", true), true)
		dana := dialAs(t, s2, mintWith(t, secret, "dev-dana", "Dana", false), false)
		danaConv := convOf(t, dana)
		post(t, dana, 0, "Hi, I am Dana", "d1")

		for _, p := range []*page{ann, carl} {
			p.waitOnline()
			p.waitJS("the reset notice", `!document.getElementById('reset-note').hidden &&
				document.getElementById('reset-note').textContent.startsWith('The chat server was reset; earlier messages are no longer available.')`)
			p.waitJS("nothing from the old store", `document.querySelectorAll('#messages .msg').length === 0`)
		}
		ann.waitJS("the old conversation closed", `document.getElementById('pane').hidden &&
			document.getElementById('conv-sub').textContent === '' && location.hash === ''`)
		ann.waitInbox("Dana [1] Hi, I am Dana")
		ann.screenshot(fmt.Sprintf("admin-store-reset-%s.png", br.name))

		// Fresh: Carl writes again, in a conversation of the new store; Ann
		// answers Dana, and only Dana gets it.
		carl.typeAndSend("I am back")
		carl.waitMessageText("I am back")
		ann.waitInbox("Carl [1] I am back", "Dana [1] Hi, I am Dana")
		newConv := ann.inbox()[0].Conv
		if newConv == oldConv || newConv == danaConv || danaConv == oldConv {
			t.Errorf("conversation ids: Carl's old %d, his new %d, Dana's %d: an id came back", oldConv, newConv, danaConv)
		}
		ann.openConversation(danaConv)
		ann.typeAndSend("Hello Dana")
		waitMessage(t, dana, "Hello Dana")
		waitMessage(t, staff, "Hello Dana")
		post(t, staff, danaConv, "marker", "m1") // after Ann's queue, had it gone out
		waitMessage(t, dana, "marker")
		for _, c := range []struct {
			name   string
			frames []string
		}{{"Dana", textsOf(messagesIn(dana, 0, danaConv))}, {"staff", textsOf(framesOfType(staff, 0, "message"))}} {
			for _, text := range c.frames {
				if text == "Carl, are you still there?" || text == "Checking, Carl." || text == "Where is my order?" {
					t.Errorf("%s received %q from the old store", c.name, text)
				}
			}
		}
		checkThread(t, carl, []string{"I am back"})
	})
}

// readSecret reads a development server's token secret.
func readSecret(t testing.TB, file string) []byte {
	t.Helper()
	secret, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("dev secret: %v", err)
	}
	return []byte(strings.TrimSpace(string(secret)))
}
