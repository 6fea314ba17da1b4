package main

// End-to-end tests of the email notifications (docs/EMAIL.md): real chatd
// processes on PostgreSQL send through a real SMTP server run by the test
// (mailtest); visitors and staff are real WebSocket clients, so presence
// and read marks are the cluster's own.

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/integrations/mail/mailtest"
	"github.com/grainchat/grainchat/transport/wsclient"
)

// mailArgs are chatd's email flags for tests: a short delay and poll.
func mailArgs(smtp *mailtest.Server, extra ...string) []string {
	return append([]string{"--smtp-url", smtp.URL(), "--mail-from", "Support <help@chat.example>",
		"--public-url", "https://chat.example", "--mail-delay", "1s", "--mail-poll", "100ms",
		"--presence-grace", "300ms"}, extra...)
}

// dialVisitor connects a grainchat.v1 visitor whose token carries email.
func dialVisitor(t *testing.T, url, sub, name, email string) *wsclient.Client {
	t.Helper()
	c, err := wsclient.Dial(ctxT(t, 10*time.Second), url, wsclient.Options{Token: mintDetails(t, sub, name, email, ""), V1: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// mailsTo returns the mails sent to addr.
func mailsTo(smtp *mailtest.Server, addr string) []mailtest.Mail {
	var out []mailtest.Mail
	for _, m := range smtp.Mails() {
		for _, to := range m.To {
			if to == addr {
				out = append(out, m)
			}
		}
	}
	return out
}

// stillMails checks for d that addr has exactly want mails.
func stillMails(t *testing.T, smtp *mailtest.Server, addr string, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if got := mailsTo(smtp, addr); len(got) != want {
			t.Fatalf("%s has %d mails, want %d", addr, len(got), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitTranscriptSent waits until the store records the transcript mail to
// email as sent: the SMTP server has the mail a moment before, and a request
// made in between is answered queued (the mail under way).
func waitTranscriptSent(t *testing.T, dsn, email string) {
	t.Helper()
	conn, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitFor(t, 20*time.Second, "the transcript mail to "+email+" recorded as sent", func() bool {
		var sent bool
		err := conn.QueryRow(`SELECT ms.transcript_requested_at IS NULL AND ms.transcript_sent_at IS NOT NULL
			FROM mail_state ms JOIN conversations c ON c.id = ms.conversation_id JOIN users u ON u.id = c.user_id
			WHERE u.email = $1`, email).Scan(&sent)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("reading the transcript mail state of %s: %v", email, err) // a broken query is not a wait
		}
		return err == nil && sent
	})
}

// waitMails waits until addr has n mails and returns them.
func waitMails(t *testing.T, smtp *mailtest.Server, addr string, n int, d time.Duration) []mailtest.Mail {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("%d mails to %s", n, addr), func() bool { return len(mailsTo(smtp, addr)) >= n })
	return mailsTo(smtp, addr)
}

// A reply the visitor is online for is not mailed while they are; once they
// leave without reading it, it is, once, even across a restart; a reply they
// read is never mailed; staff hear of a new conversation only while no agent
// is online.
func TestMailVisitorLeft(t *testing.T) {
	db := newDatabase(t)
	smtp := mailtest.Start(t)
	args := append([]string{"--database-url", db}, mailArgs(smtp, "--mail-staff-to", "team@chat.example")...)
	s := startServer(t, args...)

	vera := dialVisitor(t, s.URL(), "vera", "Vera", "vera@visitor.example")
	conv := convOf(t, vera)
	post(t, vera, conv, "Where is my order?", "q1")

	// No agent online: the team hears of it, once.
	team := waitMails(t, smtp, "team@chat.example", 1, 15*time.Second)
	if got := team[0].Header.Get("Subject"); got != "New conversation from Vera" {
		t.Errorf("staff mail subject %q", got)
	}
	if !strings.Contains(team[0].Body, "Where is my order?") || !strings.Contains(team[0].Body, fmt.Sprintf("https://chat.example/admin/#c%d", conv)) {
		t.Errorf("staff mail body:\n%s", team[0].Body)
	}

	ann := dial(t, s, "ann", "Ann", true, true)
	post(t, ann, conv, "It ships <today>.", "r1")
	waitMsg(t, vera, conv, "It ships <today>.")
	// Vera is online (and has not read it): no mail, even after the delay.
	stillMails(t, smtp, "vera@visitor.example", 0, 2500*time.Millisecond)

	// A new conversation while Ann is online: the team is not mailed.
	olga := dialVisitor(t, s.URL(), "olga", "Olga", "")
	post(t, olga, convOf(t, olga), "hi", "o1")

	vera.Close()
	mails := waitMails(t, smtp, "vera@visitor.example", 1, 15*time.Second)
	m := mails[0]
	if got := m.Header.Get("Subject"); got != "New reply to your conversation" {
		t.Errorf("visitor mail subject %q", got)
	}
	if got := m.Header.Get("From"); !strings.Contains(got, "help@chat.example") {
		t.Errorf("From %q", got)
	}
	for _, want := range []string{"Hello Vera,", "It ships <today>.", "https://chat.example/chat/", "Ann, "} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("visitor mail lacks %q:\n%s", want, m.Body)
		}
	}

	// A restart sends nothing again.
	s.Stop()
	s = startServer(t, args...)
	stillMails(t, smtp, "vera@visitor.example", 1, 2500*time.Millisecond)

	// A reply Vera reads before she leaves is never mailed.
	ann = dial(t, s, "ann", "Ann", true, true)
	vera = dialVisitor(t, s.URL(), "vera", "Vera", "vera@visitor.example")
	r := post(t, ann, conv, "Anything else?", "r2")
	waitMsg(t, vera, conv, "Anything else?")
	seq := r.Int("seq")
	send(t, vera, map[string]any{"type": "read", "conversation_id": conv, "seq": seq})
	waitFrame(t, vera, 0, "read ack", func(f wsclient.Frame) bool {
		return f.Type() == "read" && f.Int("read_seq") == seq
	})
	vera.Close()
	stillMails(t, smtp, "vera@visitor.example", 1, 2500*time.Millisecond)
	if n := len(mailsTo(smtp, "team@chat.example")); n != 1 {
		t.Errorf("team has %d mails, want 1 (Olga came while Ann was online)", n)
	}
}

// On a cluster one node sends; a visitor connected to another node counts as
// online; when the sending node is killed another takes over, and no mail is
// sent twice.
func TestMailClusterSenderKilled(t *testing.T) {
	db := newDatabase(t)
	smtp := mailtest.Start(t)
	c := startAutomanagedCluster(t, db, 2, mailArgs(smtp, "--mail-staff=false")...)
	sending := func(p *nodeProc) bool {
		return strings.Contains(p.out.String(), "sending the cluster's mails from this node")
	}
	var sender, other *nodeProc
	waitFor(t, 30*time.Second, "a node sending the mails", func() bool {
		for i, p := range c.nodes {
			if sending(p) {
				sender, other = p, c.nodes[1-i]
				return true
			}
		}
		return false
	})

	// Vera is on the node that does not send; Ann replies from the sender.
	vera := dialVisitor(t, other.URL(), "vera", "Vera", "vera@visitor.example")
	conv := convOf(t, vera)
	post(t, vera, conv, "hello", "q1")
	ann := dialURL(t, sender.URL(), "ann", "Ann", true)
	send(t, ann, map[string]any{"message": "first reply", "conversation_id": conv})
	waitMsg(t, vera, conv, "first reply")
	stillMails(t, smtp, "vera@visitor.example", 0, 2500*time.Millisecond)
	vera.Close()
	waitMails(t, smtp, "vera@visitor.example", 1, 15*time.Second)

	sender.Kill()
	waitFor(t, 30*time.Second, "the other node sending the mails", func() bool { return sending(other) })
	stillMails(t, smtp, "vera@visitor.example", 1, 2500*time.Millisecond)

	ann2 := dialURL(t, other.URL(), "ann", "Ann", true)
	send(t, ann2, map[string]any{"message": "second reply", "conversation_id": conv})
	mails := waitMails(t, smtp, "vera@visitor.example", 2, 15*time.Second)
	if !strings.Contains(mails[1].Body, "second reply") || strings.Contains(mails[1].Body, "first reply") {
		t.Errorf("second mail:\n%s", mails[1].Body)
	}
	stillMails(t, smtp, "vera@visitor.example", 2, 2*time.Second)
}

// A visitor asks for their transcript by email: one mail with every message
// in order (never a note), then no second one for 10 minutes; without an
// address, without email on the server, or as staff, the request is refused
// with the documented error.
func TestMailTranscript(t *testing.T) {
	db := newDatabase(t)
	smtp := mailtest.Start(t)
	s := startServer(t, append([]string{"--database-url", db}, mailArgs(smtp, "--mail-staff=false")...)...)

	vera := dialVisitor(t, s.URL(), "vera", "Vera", "vera@visitor.example")
	if w := welcomeOf(t, vera); w.Fields["transcript_email"] != true {
		t.Fatalf("welcome %s, want transcript_email true", w.Raw)
	}
	conv := convOf(t, vera)
	ann := dial(t, s, "ann", "Ann", true, true)
	post(t, vera, conv, "first <question>", "q1")
	post(t, ann, conv, "first answer", "a1")
	send(t, ann, map[string]any{"type": "note", "conversation_id": conv, "message": "internal: VIP"})
	waitFrame(t, ann, 0, "the note", func(f wsclient.Frame) bool { return f.Type() == "changed" })
	post(t, vera, conv, "second question\nwith two lines", "q2")
	post(t, ann, conv, "second answer", "a2")

	from := len(vera.Frames())
	send(t, vera, map[string]any{"type": "transcript_email"})
	f, _ := waitFrame(t, vera, from, "transcript_email answer", func(f wsclient.Frame) bool { return f.Type() == "transcript_email" })
	if f.Fields["queued"] != true {
		t.Fatalf("answer %s, want queued", f.Raw)
	}
	m := waitMails(t, smtp, "vera@visitor.example", 1, 15*time.Second)[0]
	if got := m.Header.Get("Subject"); got != "Your support conversation" {
		t.Errorf("subject %q", got)
	}
	body := m.Body
	order := []string{"Vera:\n    first <question>", "Ann (support):\n    first answer",
		"Vera:\n    second question\n    with two lines", "Ann (support):\n    second answer", "https://chat.example/chat/"}
	at := 0
	for _, want := range order {
		i := strings.Index(body[at:], want)
		if i < 0 {
			t.Fatalf("transcript lacks %q after byte %d:\n%s", want, at, body)
		}
		at += i + len(want)
	}
	if strings.Contains(body, "VIP") {
		t.Errorf("the transcript shows a note:\n%s", body)
	}

	// Again at once: not queued, with when it may be asked again.
	waitTranscriptSent(t, db, "vera@visitor.example")
	from = len(vera.Frames())
	send(t, vera, map[string]any{"type": "transcript_email"})
	f, _ = waitFrame(t, vera, from, "second answer", func(f wsclient.Frame) bool { return f.Type() == "transcript_email" })
	next, err := time.Parse(time.RFC3339Nano, f.String("next_allowed_at"))
	if f.Fields["queued"] != false || err != nil || next.Before(time.Now().Add(9*time.Minute)) || next.After(time.Now().Add(11*time.Minute)) {
		t.Errorf("second answer %s, want queued false and next_allowed_at in about 10 minutes", f.Raw)
	}
	stillMails(t, smtp, "vera@visitor.example", 1, 1500*time.Millisecond)

	// Refusals.
	refused := func(c *wsclient.Client, code string) {
		t.Helper()
		from := len(c.Frames())
		send(t, c, map[string]any{"type": "transcript_email"})
		f, _ := waitFrame(t, c, from, "an error", func(f wsclient.Frame) bool { return f.Type() == "error" || f.Type() == "transcript_email" })
		if f.Type() != "error" || f.String("code") != code {
			t.Errorf("got %s, want error %s", f.Raw, code)
		}
	}
	olga := dialVisitor(t, s.URL(), "olga", "Olga", "")
	if w := welcomeOf(t, olga); w.Fields["transcript_email"] != nil {
		t.Errorf("welcome without an email %s: want no transcript_email", w.Raw)
	}
	refused(olga, "email_unavailable")
	refused(ann, "forbidden")

	// One in-process chatd at a time (protoactor sets grpc's global logger
	// as a node starts).
	s.Stop()
	plain := startServer(t, "--database-url", newDatabase(t))
	nomail := dialVisitor(t, plain.URL(), "vera", "Vera", "vera@visitor.example")
	if w := welcomeOf(t, nomail); w.Fields["transcript_email"] != nil {
		t.Errorf("welcome of a server without email %s", w.Raw)
	}
	refused(nomail, "email_unavailable")
}
