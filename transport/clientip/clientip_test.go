package clientip

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustNew(t *testing.T, trusted ...string) *Resolver {
	t.Helper()
	r, err := New(trusted)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolve(t *testing.T) {
	proxies := mustNew(t, "127.0.0.1/32", "10.0.0.0/8", "fd00::/8")
	for _, tt := range []struct {
		name   string
		r      *Resolver
		remote string
		tls    bool
		xff    []string // one X-Forwarded-For header per entry
		proto  string
		addr   string
		secure bool
	}{
		{"no proxy, plain", nil, "198.51.100.9:5000", false, nil, "", "198.51.100.9", false},
		{"no proxy, tls", nil, "198.51.100.9:5000", true, nil, "", "198.51.100.9", true},
		{"untrusted peer: headers ignored", nil, "127.0.0.1:5000", false, []string{"203.0.113.7"}, "https", "127.0.0.1", false},
		{"untrusted peer with a list: headers ignored", proxies, "198.51.100.9:5000", false, []string{"203.0.113.7"}, "https", "198.51.100.9", false},
		{"untrusted peer cannot downgrade tls", proxies, "198.51.100.9:5000", true, nil, "http", "198.51.100.9", true},
		{"trusted peer", proxies, "127.0.0.1:5000", false, []string{"203.0.113.7"}, "https", "203.0.113.7", true},
		{"trusted peer, proto http over tls", proxies, "127.0.0.1:5000", true, nil, "http", "127.0.0.1", false},
		{"trusted peer, proto case", proxies, "127.0.0.1:5000", false, nil, "HTTPS", "127.0.0.1", true},
		{"trusted peer, no headers", proxies, "10.1.2.3:80", false, nil, "", "10.1.2.3", false},
		{"trusted peer, no headers, tls", proxies, "10.1.2.3:80", true, nil, "", "10.1.2.3", true},
		{"forged left entry is skipped", proxies, "127.0.0.1:5000", false, []string{"1.1.1.1, 203.0.113.7"}, "", "203.0.113.7", false},
		{"chain of trusted proxies", proxies, "127.0.0.1:5000", false, []string{"203.0.113.7, 10.0.0.5", "10.9.9.9"}, "", "203.0.113.7", false},
		{"all hops trusted: leftmost", proxies, "127.0.0.1:5000", false, []string{"10.0.0.1, 10.0.0.2"}, "", "10.0.0.1", false},
		{"garbage hop: stop at last trusted", proxies, "127.0.0.1:5000", false, []string{"203.0.113.7, unknown, 10.0.0.2"}, "", "10.0.0.2", false},
		{"hop with port", proxies, "127.0.0.1:5000", false, []string{"203.0.113.7:4711"}, "", "203.0.113.7", false},
		{"ipv6 peer and hop", proxies, "[fd00::1]:443", false, []string{"[2001:db8::7]:9"}, "https", "2001:db8::7", true},
		{"ipv4-mapped peer is trusted", proxies, "[::ffff:127.0.0.1]:5000", false, []string{"203.0.113.7"}, "", "203.0.113.7", false},
		{"proto: first entry", proxies, "127.0.0.1:5000", false, nil, "https, http", "127.0.0.1", true},
		{"unparsable peer", proxies, "@", false, []string{"203.0.113.7"}, "https", "@", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tt.remote
			if tt.tls {
				req.TLS = &tls.ConnectionState{}
			}
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if tt.proto != "" {
				req.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			got := tt.r.Resolve(req)
			if got.Addr != tt.addr || got.Secure != tt.secure {
				t.Errorf("Resolve = %+v, want addr %q secure %v", got, tt.addr, tt.secure)
			}
		})
	}
}

func TestNew(t *testing.T) {
	r, err := New([]string{"10.0.0.0/8", " 192.168.1.7 ", "2001:db8::/32", "::1", "::ffff:172.16.0.0/108"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"10.255.0.1", true}, {"11.0.0.1", false}, {"192.168.1.7", true}, {"192.168.1.8", false},
		{"2001:db8::99", true}, {"2001:db9::1", false}, {"::1", true}, {"172.16.3.4", true}, {"172.32.0.1", false},
		{"::ffff:10.0.0.1", true},
	} {
		if got := r.Trusts(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Trusts(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	_, err = New([]string{"10.0.0.0/33", "example.com", "10.0.0.1", "fe80::1%eth0"})
	if err == nil {
		t.Fatal("bad entries accepted")
	}
	for _, want := range []string{`"10.0.0.0/33"`, `"example.com"`, `"fe80::1%eth0"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), `"10.0.0.1"`) {
		t.Errorf("error %q names a good entry", err)
	}
	if (*Resolver)(nil).Trusts(netip.MustParseAddr("127.0.0.1")) {
		t.Error("a nil Resolver trusts a peer")
	}
}

func TestHandlerAndFromRequest(t *testing.T) {
	r := mustNew(t, "127.0.0.1/32")
	var got Client
	h := r.Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { got = FromRequest(req) }))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "127.0.0.1:1234"
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Forwarded-Proto", "https")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got != (Client{Addr: "203.0.113.7", Secure: true}) {
		t.Errorf("behind Handler: %+v", got)
	}
	// Without the Handler nothing is trusted.
	if c := FromRequest(req); c != (Client{Addr: "127.0.0.1", Secure: false}) {
		t.Errorf("without Handler: %+v", c)
	}
}
