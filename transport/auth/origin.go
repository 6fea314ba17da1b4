package auth

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// OriginPolicy decides which browser pages may open a WebSocket: those served
// from the chat server's own host, and those whose origin is in Allowed. It is
// the defence against cross-site WebSocket hijacking, where a foreign page
// rides on the user's chat_token cookie. Check is safe for concurrent use as
// long as Allowed is not modified.
type OriginPolicy struct {
	// Allowed holds normalized origins ("https://shop.example.com",
	// "http://localhost:3000"): lowercase, no trailing slash, no default port.
	// Build it with NewOriginPolicy; entries are compared verbatim against the
	// normalized Origin header, so anything else simply never matches.
	Allowed []string
}

// NewOriginPolicy validates and normalizes allowed. Each entry must be an
// exact origin scheme://host[:port] (no path, query, user info or wildcard);
// "*" and "null" are refused. An empty list allows same-host pages only.
func NewOriginPolicy(allowed []string) (*OriginPolicy, error) {
	p := &OriginPolicy{Allowed: make([]string, 0, len(allowed))}
	var errs []error
	for _, a := range allowed {
		o, err := parseOrigin(strings.TrimSpace(a))
		if err != nil {
			errs = append(errs, fmt.Errorf("allowed origin %q: %w", a, err))
			continue
		}
		p.Allowed = append(p.Allowed, o.String())
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("auth: origin policy: %w", errors.Join(errs...))
	}
	return p, nil
}

// Check returns nil when r may proceed: it has no Origin header (a non-browser
// client, which a page cannot impersonate), or its Origin names r.Host itself
// (host and port compared case-insensitively; either http or https is
// accepted since the scheme cannot be trusted behind a proxy, so a Host
// without a port matches both http://host and https://host), or its Origin is
// in Allowed. Otherwise,
// including for the "null" origin, an empty or malformed one and repeated
// Origin headers, it returns an error wrapping ErrForbiddenOrigin. A nil policy
// allows same-host pages only.
func (p *OriginPolicy) Check(r *http.Request) error {
	values := r.Header.Values("Origin")
	switch len(values) {
	case 0:
		return nil
	case 1:
	default:
		return fmt.Errorf("%w: several Origin headers", ErrForbiddenOrigin)
	}
	o, err := parseOrigin(values[0])
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrForbiddenOrigin, clip(values[0]), err)
	}
	if o.sameHost(r.Host) {
		return nil
	}
	if p != nil {
		s := o.String()
		for _, a := range p.Allowed {
			if a == s {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %q", ErrForbiddenOrigin, clip(values[0]))
}

// origin is a parsed, normalized web origin. host is lowercase without
// brackets; port is empty when it is the scheme's default.
type origin struct {
	scheme, host, port string
}

var defaultPorts = map[string]string{"http": "80", "https": "443"}

// parseOrigin accepts exactly scheme://host[:port], with an optional trailing
// slash, case-insensitively.
func parseOrigin(s string) (origin, error) {
	s = strings.ToLower(strings.TrimSuffix(s, "/"))
	switch s {
	case "":
		return origin{}, errors.New("empty")
	case "*":
		return origin{}, errors.New("wildcard is not accepted, list exact origins")
	case "null":
		return origin{}, errors.New("null origin")
	}
	u, err := url.Parse(s)
	if err != nil {
		return origin{}, errors.New("not a URL")
	}
	if u.Scheme == "" || u.Host == "" || s != u.Scheme+"://"+u.Host {
		return origin{}, errors.New("want scheme://host[:port]")
	}
	o := origin{scheme: u.Scheme, host: u.Hostname(), port: u.Port()}
	if strings.HasSuffix(u.Host, ":") {
		return origin{}, errors.New("empty port")
	}
	if !validHost(o.host, strings.HasPrefix(u.Host, "[")) {
		return origin{}, errors.New("invalid host")
	}
	if o.port != "" {
		n, err := strconv.Atoi(o.port)
		if err != nil || n < 1 || n > 65535 || o.port[0] == '0' {
			return origin{}, errors.New("invalid port")
		}
		if defaultPorts[o.scheme] == o.port {
			o.port = ""
		}
	}
	return o, nil
}

func validHost(h string, bracketed bool) bool {
	if bracketed {
		ip := net.ParseIP(h)
		return ip != nil && strings.Contains(h, ":")
	}
	if h == "" || strings.HasPrefix(h, ".") || strings.Contains(h, "..") {
		return false
	}
	for _, c := range h {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_':
		default:
			return false
		}
	}
	return true
}

// String returns the normalized form, e.g. "https://shop.example.com".
func (o origin) String() string {
	host := o.host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if o.port != "" {
		host += ":" + o.port
	}
	return o.scheme + "://" + host
}

// sameHost reports whether o is an http(s) origin naming requestHost (the
// request's Host header). A request host without a port matches an origin on
// its scheme's default port, whichever the scheme.
func (o origin) sameHost(requestHost string) bool {
	if defaultPorts[o.scheme] == "" || requestHost == "" {
		return false
	}
	host, port := splitHost(strings.ToLower(requestHost))
	if host != o.host {
		return false
	}
	if o.port == "" { // the scheme's default port
		return port == "" || port == defaultPorts[o.scheme]
	}
	return port == o.port
}

// splitHost splits "host", "host:port", "[v6]" or "[v6]:port", dropping the
// brackets.
func splitHost(hostport string) (host, port string) {
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && i > strings.LastIndexByte(hostport, ']') {
		host, port = hostport[:i], hostport[i+1:]
	} else {
		host = hostport
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), port
}

// clip bounds an attacker-supplied header before it goes into an error.
func clip(s string) string {
	const max = 100
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
