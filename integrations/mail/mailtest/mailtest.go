// Package mailtest runs a real SMTP server (emersion/go-smtp on a loopback
// port) that keeps what it receives, for tests: they point --smtp-url at it
// and read the mails back. It can refuse mails for a while, to test retries.
package mailtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one received mail.
type Mail struct {
	From   string
	To     []string
	Header mail.Header
	Body   string // decoded when quoted-printable or base64, with \n line ends
	Raw    []byte
}

// Server is a running SMTP server.
type Server struct {
	srv  *smtp.Server
	addr string

	mu      sync.Mutex
	mails   []Mail
	refuse  int // refuse the next refuse DATA commands with 451
	changed chan struct{}
}

// Start starts a server on a free loopback port; it stops at the end of t.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{changed: make(chan struct{})}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "mailtest.local"
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is the server's --smtp-url (no TLS: it has no certificate).
func (s *Server) URL() string { return "smtp://" + s.addr + "?starttls=none" }

// RefuseNext makes the server answer the next n mails' DATA with a
// temporary failure (451).
func (s *Server) RefuseNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = n
}

// Mails returns the mails received so far, in order.
func (s *Server) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Wait returns the mails once at least n have arrived, or fails t at the
// deadline.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Mail {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		got, changed := len(s.mails), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.Mails()
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("mailtest: %d mails after %v, want %d: %v", got, timeout, n, subjects(s.Mails()))
		}
	}
}

func subjects(ms []Mail) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = fmt.Sprintf("%v: %s", m.To, m.Header.Get("Subject"))
	}
	return out
}

func (s *Server) add(m Mail) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse > 0 {
		s.refuse--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "mailtest: try again later"}
	}
	s.mails = append(s.mails, m)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s    *Server
	from string
	to   []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("mailtest: parse: %w", err)
	}
	body, err := decodeBody(msg)
	if err != nil {
		return err
	}
	body = strings.ReplaceAll(body, "\r\n", "\n")
	return x.s.add(Mail{From: x.from, To: x.to, Header: msg.Header, Body: body, Raw: raw})
}

// decodeBody reads a single-part body in its transfer encoding.
func decodeBody(msg *mail.Message) (string, error) {
	data, err := io.ReadAll(msg.Body)
	if err != nil {
		return "", err
	}
	switch strings.ToLower(msg.Header.Get("Content-Transfer-Encoding")) {
	case "", "7bit", "8bit", "binary":
		return string(data), nil
	case "quoted-printable":
		return decodeQP(data)
	case "base64":
		return decodeBase64(data)
	default:
		return "", errors.New("mailtest: unknown transfer encoding " + msg.Header.Get("Content-Transfer-Encoding"))
	}
}
