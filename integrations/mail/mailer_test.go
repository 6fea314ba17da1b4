package mail_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grainchat/grainchat/integrations/mail"
	"github.com/grainchat/grainchat/integrations/mail/mailtest"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/pgstore"
	"github.com/grainchat/grainchat/storage/pgtest"

	_ "github.com/lib/pq"
)

// presence is the cluster's presence as a test sets it (the chatd tests use
// the real one).
type presence struct {
	mu     sync.Mutex
	online map[int64]bool
	staff  bool
}

func (p *presence) VisitorsOnline(_ context.Context, convs []int64) (map[int64]bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[int64]bool{}
	for _, c := range convs {
		out[c] = p.online[c]
	}
	return out, nil
}

func (p *presence) StaffOnline(context.Context) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.staff, nil
}

func (p *presence) set(conv int64, online bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.online[conv] = online
}

type counters struct{ sent, failed, givenUp, interrupted atomic.Int64 }

func (c *counters) MailSent(string)          { c.sent.Add(1) }
func (c *counters) MailAttemptFailed(string) { c.failed.Add(1) }
func (c *counters) MailGivenUp(string)       { c.givenUp.Add(1) }
func (c *counters) MailInterrupted(n int)    { c.interrupted.Add(int64(n)) }

// fixture is a store with one staff user and helpers to add visitors.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	store *pgstore.Store
	db    *sql.DB
	staff storage.User
	smtp  *mailtest.Server
	pres  *presence
	stats *counters
}

func newFixture(t *testing.T) *fixture {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	store, err := pgstore.Open(ctx, pgtest.Logger(t), dsn, pgstore.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	staff, err := store.UpsertUser(ctx, storage.UserInput{ExternalID: "ann", Name: "Ann", IsAdmin: true, Email: "ann@staff.example"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ctx: ctx, store: store, db: db, staff: staff, smtp: mailtest.Start(t),
		pres: &presence{online: map[int64]bool{}}, stats: &counters{}}
}

func (f *fixture) visitor(name, email string) (storage.User, storage.Conversation) {
	f.t.Helper()
	u, err := f.store.UpsertUser(f.ctx, storage.UserInput{ExternalID: strings.ToLower(name), Name: name, Email: email})
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := f.store.EnsureConversation(f.ctx, u.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return u, c
}

func (f *fixture) post(conv int64, from storage.User, body string) storage.Message {
	f.t.Helper()
	res, err := f.store.AppendMessages(f.ctx, []storage.NewMessage{{ConversationID: conv, SenderID: from.ID,
		SenderName: from.Name, SenderIsAdmin: from.IsAdmin, Body: body}})
	if err != nil {
		f.t.Fatal(err)
	}
	return res[0].Message
}

// start runs a mailer until the test ends.
func (f *fixture) start(cfg mail.Config) {
	f.t.Helper()
	cfg.From = "Support <help@chat.example>"
	cfg.PublicURL = "https://chat.example/"
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	cfg.LockInterval = 50 * time.Millisecond
	sender, err := mail.NewSMTP(f.smtp.URL())
	if err != nil {
		f.t.Fatal(err)
	}
	m, err := mail.New(slog.New(slog.NewTextHandler(f.t.Output(), nil)), cfg, f.store, f.pres, sender, f.stats)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	f.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// quiet checks that no mail beyond want arrives for d.
func (f *fixture) quiet(want int, d time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if got := len(f.smtp.Mails()); got != want {
			f.t.Fatalf("%d mails, want %d", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Staff replies the visitor has not read are emailed once the delay is over
// and while the visitor is offline, batched, in plain text, once; a later
// reply makes a new mail of its own; a read reply is never emailed.
func TestVisitorMail(t *testing.T) {
	f := newFixture(t)
	carl, conv := f.visitor("Carl", "carl@visitor.example")
	_, quietConv := f.visitor("Vera", "") // no email: never mailed
	olga, onlineConv := f.visitor("Olga", "olga@visitor.example")
	f.pres.set(onlineConv.ID, true)

	f.post(conv.ID, carl, "my parcel is late")
	f.post(conv.ID, f.staff, "Sorry! <b>Let me check</b> & see.")
	last := f.post(conv.ID, f.staff, "It ships today.\nTracking: 42")
	f.post(quietConv.ID, f.staff, "hello Vera")
	f.post(onlineConv.ID, olga, "hi")
	f.post(onlineConv.ID, f.staff, "hello Olga")
	f.start(mail.Config{Delay: 300 * time.Millisecond, NoStaffMail: true})

	mails := f.smtp.Wait(t, 1, 10*time.Second)
	m := mails[0]
	if len(m.To) != 1 || m.To[0] != "carl@visitor.example" {
		t.Fatalf("to %v, want carl", m.To)
	}
	if got := m.Header.Get("Subject"); got != "2 new replies to your conversation" {
		t.Errorf("subject %q", got)
	}
	wantID := fmt.Sprintf("<grainchat.reply.%d.%d@chat.example>", conv.ID, last.Seq)
	if got := m.Header.Get("Message-Id"); got != wantID {
		t.Errorf("Message-ID %q, want %q", got, wantID)
	}
	if got := m.Header.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted %q", got)
	}
	if got := m.Header.Get("X-Grainchat-Conversation"); got != fmt.Sprint(conv.ID) {
		t.Errorf("X-Grainchat-Conversation %q", got)
	}
	if ct := m.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	for _, want := range []string{"Hello Carl,", "Sorry! <b>Let me check</b> & see.", "    It ships today.\n    Tracking: 42",
		"https://chat.example/chat/", "Ann, "} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Body)
		}
	}
	if strings.Contains(m.Body, "my parcel is late") {
		t.Errorf("body quotes the visitor's own message:\n%s", m.Body)
	}
	f.quiet(1, 500*time.Millisecond) // Vera has no email; Olga is online

	// Olga leaves: her reply is mailed now.
	f.pres.set(onlineConv.ID, false)
	mails = f.smtp.Wait(t, 2, 10*time.Second)
	if mails[1].To[0] != "olga@visitor.example" || !strings.Contains(mails[1].Body, "hello Olga") {
		t.Fatalf("second mail %v: %s", mails[1].To, mails[1].Body)
	}

	// A new reply: a mail of its own, with only it.
	f.post(conv.ID, f.staff, "Delivered?")
	mails = f.smtp.Wait(t, 3, 10*time.Second)
	if got := mails[2].Header.Get("Subject"); got != "New reply to your conversation" {
		t.Errorf("third subject %q", got)
	}
	if !strings.Contains(mails[2].Body, "Delivered?") || strings.Contains(mails[2].Body, "It ships today") {
		t.Errorf("third mail should quote only the new reply:\n%s", mails[2].Body)
	}

	// A reply the visitor reads in time is never mailed.
	r := f.post(conv.ID, f.staff, "read me")
	if _, err := f.store.MarkRead(f.ctx, carl.ID, conv.ID, r.Seq); err != nil {
		t.Fatal(err)
	}
	f.quiet(3, time.Second)
	if n := f.stats.sent.Load(); n != 3 {
		t.Errorf("MailSent %d, want 3", n)
	}
}

// A temporary SMTP failure is retried; a sender that died between claiming
// and settling leaves a mail that is never sent again; two mailers on one
// database send each mail once.
func TestMailRetriesAndNoDuplicates(t *testing.T) {
	f := newFixture(t)
	carl, conv := f.visitor("Carl", "carl@visitor.example")
	dora, interrupted := f.visitor("Dora", "dora@visitor.example")
	f.post(conv.ID, carl, "hi")
	f.post(conv.ID, f.staff, "hello")
	f.post(interrupted.ID, dora, "hi")
	r := f.post(interrupted.ID, f.staff, "hello Dora")
	// A sender claimed Dora's mail and died.
	if err := f.store.ClaimMail(f.ctx, storage.MailClaim{Kind: storage.MailVisitor, ConversationID: interrupted.ID, UpTo: r.Seq}); err != nil {
		t.Fatal(err)
	}

	f.smtp.RefuseNext(1)
	f.start(mail.Config{Delay: 100 * time.Millisecond, NoStaffMail: true})
	f.start(mail.Config{Delay: 100 * time.Millisecond, NoStaffMail: true})
	// The retry waits about 30 s: too long for a test. Move it.
	deadline := time.Now().Add(10 * time.Second)
	for f.stats.failed.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no failed attempt counted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := f.db.ExecContext(f.ctx, `UPDATE mail_state SET visitor_retry_at = now() WHERE conversation_id = $1`, conv.ID); err != nil {
		t.Fatal(err)
	}
	mails := f.smtp.Wait(t, 1, 10*time.Second)
	if mails[0].To[0] != "carl@visitor.example" {
		t.Fatalf("mail to %v", mails[0].To)
	}
	f.quiet(1, time.Second)
	if got := f.stats.interrupted.Load(); got != 1 {
		t.Errorf("interrupted %d, want 1", got)
	}
}

// Staff are told of a new conversation when no agent is online, once; not
// when one is.
func TestStaffMail(t *testing.T) {
	f := newFixture(t)
	carl, conv := f.visitor("Carl", "carl@visitor.example")
	f.post(conv.ID, carl, "Is anyone there? <script>x</script>")
	f.start(mail.Config{Delay: time.Hour})

	m := f.smtp.Wait(t, 1, 10*time.Second)[0]
	if len(m.To) != 1 || m.To[0] != "ann@staff.example" {
		t.Fatalf("to %v, want ann", m.To)
	}
	if got := m.Header.Get("Subject"); got != "New conversation from Carl" {
		t.Errorf("subject %q", got)
	}
	for _, want := range []string{"Carl <carl@visitor.example>", "Is anyone there? <script>x</script>",
		fmt.Sprintf("https://chat.example/admin/#c%d", conv.ID)} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Body)
		}
	}
	f.post(conv.ID, carl, "hello?") // not a new conversation
	f.pres.mu.Lock()
	f.pres.staff = true
	f.pres.mu.Unlock()
	olga, conv2 := f.visitor("Olga", "")
	f.post(conv2.ID, olga, "hi") // staff online: no mail
	f.quiet(1, time.Second)
}

// Two transcript requests before the mail leaves make one mail; one after it
// within TranscriptMailInterval is not queued; a request of a visitor
// without an address is never sent.
func TestTranscriptRequests(t *testing.T) {
	f := newFixture(t)
	carl, conv := f.visitor("Carl", "carl@visitor.example")
	f.post(conv.ID, carl, "hello")
	f.post(conv.ID, f.staff, "hi Carl")
	for range 2 {
		r, err := f.store.RequestTranscriptMail(f.ctx, conv.ID)
		if err != nil || !r.Queued {
			t.Fatalf("request: %+v %v", r, err)
		}
	}
	f.start(mail.Config{Delay: time.Hour, NoStaffMail: true})
	m := f.smtp.Wait(t, 1, 10*time.Second)[0]
	if !strings.Contains(m.Body, "Carl:\n    hello") || !strings.Contains(m.Body, "Ann (support):\n    hi Carl") {
		t.Errorf("transcript:\n%s", m.Body)
	}
	f.quiet(1, 500*time.Millisecond)
	r, err := f.store.RequestTranscriptMail(f.ctx, conv.ID)
	if err != nil || r.Queued || time.Until(r.NextAllowedAt) < 9*time.Minute {
		t.Fatalf("request after a sent mail: %+v %v", r, err)
	}
	vera, conv2 := f.visitor("Vera", "")
	f.post(conv2.ID, vera, "hi")
	if _, err := f.store.RequestTranscriptMail(f.ctx, conv2.ID); err != nil {
		t.Fatal(err)
	}
	f.quiet(1, 500*time.Millisecond)
	if got := f.stats.sent.Load(); got != 1 {
		t.Errorf("sent %d, want 1", got)
	}
}
