package mail

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// This file owns sending: the Message a Mailer composes, and the SMTP
// server it goes to (--smtp-url).

// Message is one mail to send: plain UTF-8 text.
type Message struct {
	From    string
	To      []string
	Subject string
	Text    string
	// ID is the Message-ID without angle brackets: the same for every
	// attempt of one mail.
	ID string
	// Headers are extra headers (X-Grainchat-Conversation…).
	Headers map[string]string
}

// Sender sends a Message. An error that Permanent reports is not retried.
type Sender interface {
	Send(ctx context.Context, m *Message) error
}

// SMTP sends through an SMTP server.
type SMTP struct {
	host string
	opts []gomail.Option
}

// NewSMTP returns an SMTP sender for rawURL:
//
//	smtp://[user[:password]@]host[:port][?starttls=require|opportunistic|none]
//	smtps://[user[:password]@]host[:port]
//
// smtp:// uses port 25 and STARTTLS when the server offers it
// (opportunistic), or always (require: the default when a user is given, so
// that a password never crosses the network in clear); smtps:// is TLS from
// the start, port 465. With a user, the strongest authentication the server
// offers is used.
func NewSMTP(rawURL string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("smtp-url: %w", err)
	}
	host := u.Hostname()
	if host == "" {
		return nil, errors.New("smtp-url: no host")
	}
	opts := []gomail.Option{gomail.WithTimeout(DefaultSendTimeout)}
	port := 0
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("smtp-url: bad port %q", p)
		}
	}
	hasUser := u.User != nil && u.User.Username() != ""
	switch u.Scheme {
	case "smtp":
		if port == 0 {
			port = 25
		}
		policy := gomail.TLSOpportunistic
		mode := u.Query().Get("starttls")
		if mode == "" && hasUser {
			mode = "require"
		}
		switch mode {
		case "", "opportunistic":
		case "require":
			policy = gomail.TLSMandatory
		case "none":
			policy = gomail.NoTLS
		default:
			return nil, fmt.Errorf("smtp-url: starttls must be require, opportunistic or none, not %q", mode)
		}
		opts = append(opts, gomail.WithTLSPolicy(policy))
	case "smtps":
		if port == 0 {
			port = 465
		}
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("smtp-url: the scheme must be smtp or smtps, not %q", u.Scheme)
	}
	opts = append(opts, gomail.WithPort(port))
	if hasUser {
		pass, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(u.User.Username()), gomail.WithPassword(pass))
	}
	return &SMTP{host: host, opts: opts}, nil
}

// Send implements Sender: one connection per mail.
func (s *SMTP) Send(ctx context.Context, m *Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(m.From); err != nil {
		return permanent(fmt.Errorf("from: %w", err))
	}
	if err := msg.To(m.To...); err != nil {
		return permanent(fmt.Errorf("to: %w", err))
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(m.ID)
	msg.SetDate()
	for k, v := range m.Headers {
		msg.SetGenHeader(gomail.Header(k), v)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	opts := s.opts
	if d, ok := ctx.Deadline(); ok {
		opts = append(opts[:len(opts):len(opts)], gomail.WithTimeout(max(time.Until(d), time.Second)))
	}
	c, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return permanent(fmt.Errorf("smtp client: %w", err))
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		var se *gomail.SendError
		if errors.As(err, &se) && se.Reason == gomail.ErrSMTPRcptTo && !se.IsTemp() {
			return permanent(err) // the server refuses the address for good
		}
		return err
	}
	return nil
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// Permanent reports whether err says retrying the mail cannot help (a
// recipient refused for good, an address that cannot be written).
func Permanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// parseAddress checks one RFC 5322 address ("a@b" or "Name <a@b>").
func parseAddress(s string) (*mail.Address, error) {
	if s == "" {
		return nil, errors.New("no address")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an email address: %w", s, err)
	}
	return a, nil
}
