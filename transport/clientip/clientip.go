// Package clientip tells who is at the other end of an HTTP request: the
// client's IP address and whether its request travelled over TLS.
//
// Behind a reverse proxy the TCP peer is the proxy, which names the client in
// X-Forwarded-For and the scheme it was reached by in X-Forwarded-Proto. Anyone
// can send those headers, so a Resolver believes them only when the TCP peer
// is one of its trusted proxies; from any other peer they are ignored. A
// client therefore cannot choose the address written in chatd's logs, nor
// whether the cookies it is given are marked Secure. The RFC 7239 Forwarded
// header is not read.
package clientip

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Client is what is known about a request's client.
type Client struct {
	// Addr is the client's IP address: the TCP peer's, or, when the peer is a
	// trusted proxy, the nearest address in X-Forwarded-For that is not a
	// trusted proxy (read from the right). When the peer's address cannot be
	// parsed, Addr is the request's RemoteAddr as it is.
	Addr string
	// Secure reports whether the client reached chatd over TLS: the
	// connection is TLS, unless a trusted proxy says otherwise in
	// X-Forwarded-Proto ("https" is secure, any other value is not).
	Secure bool
}

// Resolver resolves requests' clients. A nil *Resolver, like one built from
// an empty list, trusts no proxy. It is safe for concurrent use.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that trusts the TCP peers inside the given networks:
// CIDR prefixes ("10.0.0.0/8", "fd00::/8") or single addresses ("10.1.2.3").
// It reports every entry it cannot parse.
func New(trusted []string) (*Resolver, error) {
	r := &Resolver{}
	var bad []string
	for _, s := range trusted {
		p, err := ParsePrefix(s)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		r.trusted = append(r.trusted, p)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("trusted proxies: %s", strings.Join(bad, "; "))
	}
	return r, nil
}

// ParsePrefix parses one trusted network: a CIDR prefix or a single address
// (a /32 or /128). IPv4-mapped IPv6 forms are taken as IPv4.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix", s)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Trusts reports whether a is inside one of the trusted networks.
func (r *Resolver) Trusts(a netip.Addr) bool {
	if r == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns req's client. The forwarded headers are read only when the
// TCP peer (req.RemoteAddr) is a trusted proxy.
func (r *Resolver) Resolve(req *http.Request) Client {
	c := Client{Addr: req.RemoteAddr, Secure: req.TLS != nil}
	peer, ok := parseHop(req.RemoteAddr)
	if !ok {
		return c
	}
	c.Addr = peer.String()
	if !r.Trusts(peer) {
		return c
	}
	hops := forwardedFor(req.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break // not an address: keep the last hop a trusted proxy vouched for
		}
		c.Addr = a.String()
		if !r.Trusts(a) {
			break
		}
	}
	if proto, ok := forwardedProto(req.Header); ok {
		c.Secure = strings.EqualFold(proto, "https")
	}
	return c
}

// forwardedFor lists the X-Forwarded-For entries of every such header, in
// order: the client first, the nearest proxy last.
func forwardedFor(h http.Header) []string {
	var hops []string
	for _, v := range h.Values("X-Forwarded-For") {
		for _, hop := range strings.Split(v, ",") {
			hops = append(hops, strings.TrimSpace(hop))
		}
	}
	return hops
}

// forwardedProto returns the scheme the outermost proxy was reached by: the
// first entry of X-Forwarded-Proto. Proxies should set the header, not
// append to what the client sent.
func forwardedProto(h http.Header) (string, bool) {
	v := h.Get("X-Forwarded-Proto")
	first, _, _ := strings.Cut(v, ",")
	first = strings.TrimSpace(first)
	return first, first != ""
}

// parseHop parses an address as found in RemoteAddr or X-Forwarded-For:
// "ip", "ip:port", "[ipv6]" or "[ipv6]:port". IPv4-mapped IPv6 addresses are
// returned as IPv4.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap(), true
		}
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

type contextKey struct{}

// Handler resolves each request's client once and stores it in the request's
// context, where FromRequest finds it, before calling next.
func (r *Resolver) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c := r.Resolve(req)
		next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), contextKey{}, c)))
	})
}

// FromRequest returns the client that a Resolver's Handler stored in req's
// context; without one (no Handler in front), req's own peer address and
// TLS state, trusting no proxy.
func FromRequest(req *http.Request) Client {
	if c, ok := req.Context().Value(contextKey{}).(Client); ok {
		return c
	}
	return (*Resolver)(nil).Resolve(req)
}
