package main

// The visitor page's "Email me this conversation" (docs/EMAIL.md,
// "Transcripts by email"; docs/BROWSER.md).

import (
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/integrations/mail/mailtest"
)

// Vera's token carries her email: her page offers the transcript by email;
// a click says it will come, and it does (a real SMTP server), with her
// message; a second click says when she may ask again. Olga's token has no
// email: no button. In Chromium and in Firefox, against PostgreSQL.
func TestBrowserTranscriptEmail(t *testing.T) {
	eachBrowser(t, func(t *testing.T, br browserKind) {
		smtp := mailtest.Start(t)
		db := newDatabase(t)
		s := startServer(t, append([]string{"--database-url", db}, mailArgs(smtp, "--mail-staff=false")...)...)
		b := br.start(t)
		vera := b.newPage("Vera")
		vera.setToken(s.Addr, mintDetails(t, "vera", "Vera", "vera@visitor.example", ""))
		vera.viewport(1280, 800, false)
		vera.navigate("http://" + s.Addr + "/")
		vera.waitOnline()
		vera.typeAndSend("my <b>order</b> #42")
		vera.waitMessageText("my <b>order</b> #42")

		vera.waitJS("the transcript button", `!document.getElementById('email-transcript').hidden`)
		vera.click("Email me this conversation", "#email-transcript")
		vera.waitJS("the note that it will come", `document.getElementById('transcript-note').textContent === 'We will email you this conversation in a moment.'`)
		m := waitMails(t, smtp, "vera@visitor.example", 1, 20*time.Second)[0]
		if m.Header.Get("Subject") != "Your support conversation" || !strings.Contains(m.Body, "Vera:\n    my <b>order</b> #42") {
			t.Errorf("transcript mail %q:\n%s", m.Header.Get("Subject"), m.Body)
		}
		waitTranscriptSent(t, db, "vera@visitor.example") // else the answer is "under way"
		vera.click("Email me this conversation again", "#email-transcript")
		vera.waitJS("the note that it was sent", `document.getElementById('transcript-note').textContent.startsWith('We emailed it to you a few minutes ago. You can ask again after ')`)
		stillMails(t, smtp, "vera@visitor.example", 1, time.Second)

		olga := b.newPage("Olga")
		olga.setToken(s.Addr, mint(t, "olga", "Olga", false))
		olga.viewport(1280, 800, false)
		olga.navigate("http://" + s.Addr + "/")
		olga.waitOnline()
		var hidden bool
		olga.evalJSON(`document.getElementById('email-transcript').hidden`, &hidden)
		if !hidden {
			t.Error("the transcript button shows for a visitor without an email")
		}
	})
}
