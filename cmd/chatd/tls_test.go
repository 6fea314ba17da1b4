package main

// TLS (--tls-cert/--tls-key), the Secure flag of the development login's
// cookie and trusted proxies (--trusted-proxies), each against a real chatd.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// testCert is a self-signed certificate for 127.0.0.1 written to PEM files.
type testCert struct {
	CertFile, KeyFile string
	Pool              *x509.CertPool // trusts the certificate
}

// newTestCert makes a self-signed ECDSA certificate for 127.0.0.1 in a
// temporary directory.
func newTestCert(t testing.TB) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "grainchat test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := testCert{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), Pool: x509.NewCertPool()}
	c.Pool.AddCert(cert)
	if err := os.WriteFile(c.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// clientTLS trusts c only, as a browser that knows the certificate would.
func (c testCert) clientTLS() *tls.Config { return &tls.Config{RootCAs: c.Pool} }

// httpsClient is an HTTP client that trusts c and does not follow redirects.
func (c testCert) httpsClient() *http.Client {
	return &http.Client{
		Transport:     &http.Transport{TLSClientConfig: c.clientTLS()},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

var listenLineTLS = regexp.MustCompile(`chatd: listening on https://(\S+) \(WebSocket at wss://`)

// startServerTLS is startServer for a chatd serving TLS: startServer waits
// for an http:// listen line, which a TLS server does not print.
func startServerTLS(t testing.TB, cert testCert, args ...string) *testServer {
	t.Helper()
	full := append([]string{"--addr", "127.0.0.1:0", "--jwt-secret", testSecret, "--log-level", "warn", "--message-rate", "-1",
		"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile}, args...)
	return startRun(t, listenLineTLS, full)
}

// devArgs turn startServer's production secret off: development mode, with
// its secret in a temporary file and the login page on.
func devArgs(t testing.TB) []string {
	return []string{"--jwt-secret", "", "--dev-secret-file", filepath.Join(t.TempDir(), "dev-secret")}
}

// frameCollector is a gws client handler that hands on every text frame.
type frameCollector struct {
	gws.BuiltinEventHandler
	frames chan []byte
}

func (f *frameCollector) OnMessage(_ *gws.Conn, m *gws.Message) {
	b := append([]byte(nil), m.Bytes()...)
	m.Close()
	select {
	case f.frames <- b:
	default:
	}
}

// dialWSS opens a seed-protocol socket to url with tlsConfig and header.
func dialWSS(url string, tlsConfig *tls.Config, header http.Header) (*gws.Conn, *frameCollector, *http.Response, error) {
	fc := &frameCollector{frames: make(chan []byte, 64)}
	conn, resp, err := gws.NewClient(fc, &gws.ClientOption{
		Addr:             url,
		TlsConfig:        tlsConfig,
		RequestHeader:    header,
		HandshakeTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, nil, resp, err
	}
	go conn.ReadLoop()
	return conn, fc, resp, nil
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// chatOverWSS sends text over a wss socket and waits for it to come back.
func chatOverWSS(t *testing.T, conn *gws.Conn, fc *frameCollector, text string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"message": text})
	if err := conn.WriteMessage(gws.OpcodeText, b); err != nil {
		t.Fatalf("send over wss: %v", err)
	}
	deadline := time.After(waitTimeout)
	for {
		select {
		case raw := <-fc.frames:
			var f map[string]any
			if err := json.Unmarshal(raw, &f); err != nil {
				t.Fatalf("frame %q: %v", raw, err)
			}
			if f["message"] == text {
				return
			}
		case <-deadline:
			t.Fatalf("message %q did not come back over wss", text)
		}
	}
}

// With --tls-cert and --tls-key chatd serves HTTPS and WSS on --addr, TLS
// 1.2 at least, and nothing in plain text.
func TestTLSServesHTTPSAndWSS(t *testing.T) {
	cert := newTestCert(t)
	s := startServerTLS(t, cert)
	if !strings.Contains(s.out.String(), "wss://"+s.Addr+"/ws/chat/") {
		t.Errorf("the listen line does not give the wss URL:\n%s", s.out.String())
	}

	// A real WebSocket over wss, with a valid token: a message goes and comes back.
	conn, fc, resp, err := dialWSS("wss://"+s.Addr+"/ws/chat/", cert.clientTLS(), bearer(mint(t, "tls-alice", "Alice", false)))
	if err != nil {
		t.Fatalf("dial wss: %v (response %v)", err, resp)
	}
	defer conn.NetConn().Close()
	if st, ok := conn.NetConn().(*tls.Conn); !ok {
		t.Errorf("the wss socket runs over %T, not TLS", conn.NetConn())
	} else if v := st.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Errorf("negotiated TLS version %x", v)
	}
	chatOverWSS(t, conn, fc, "hello over wss")

	// Without a token: refused before the upgrade, over TLS too.
	if _, _, resp, err := dialWSS("wss://"+s.Addr+"/ws/chat/", cert.clientTLS(), nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wss without a token: err %v, response %v; want 401", err, resp)
	}

	// Plain ws:// to the TLS port does not connect.
	if c, err := wsclient.Dial(ctxT(t, 5*time.Second), "ws://"+s.Addr+"/ws/chat/", wsclient.Options{Token: mint(t, "tls-bob", "Bob", false)}); err == nil {
		c.Close()
		t.Error("a plain ws:// socket connected to the TLS port")
	}
	// Nor plain http.
	if resp, err := http.Get("http://" + s.Addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain http /healthz answered 200 on the TLS port")
		}
	}

	// /healthz over https, with a client that trusts the certificate.
	hc := cert.httpsClient()
	resp, err = hc.Get("https://" + s.Addr + "/healthz")
	if err != nil {
		t.Fatalf("https /healthz: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" || resp.TLS == nil {
		t.Errorf("https /healthz = %d %q (tls %v)", resp.StatusCode, body, resp.TLS != nil)
	}

	// A client that does not know the certificate refuses it (it is really
	// the configured one that is served).
	if resp, err := http.Get("https://" + s.Addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("an untrusted self-signed certificate was accepted")
	}

	// TLS 1.0 and 1.1 are refused.
	old := cert.clientTLS()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if c, err := tls.Dial("tcp", s.Addr, old); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
}

// Half a pair and unusable files stop chatd before it listens, saying what is
// wrong.
func TestTLSConfigErrors(t *testing.T) {
	good := newTestCert(t)
	other := newTestCert(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"only a certificate", []string{"--tls-cert", good.CertFile}, nil, []string{"invalid configuration", "tls-cert, tls-key: give both"}},
		{"only a key (environment)", nil, map[string]string{"CHAT_TLS_KEY": good.KeyFile}, []string{"invalid configuration", "tls-cert, tls-key: give both"}},
		{"missing certificate file", []string{"--tls-cert", missing, "--tls-key", good.KeyFile}, nil, []string{"tls-cert, tls-key: load the key pair", missing}},
		{"not PEM", []string{"--tls-cert", garbage, "--tls-key", garbage}, nil, []string{"tls-cert, tls-key: load the key pair", "PEM"}},
		{"key of another certificate", []string{"--tls-cert", good.CertFile, "--tls-key", other.KeyFile}, nil, []string{"tls-cert, tls-key: load the key pair", "does not match"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--addr", "127.0.0.1:0", "--jwt-secret", testSecret}, tc.args...)
			var out syncBuffer
			err := run(ctxT(t, 10*time.Second), args, func(k string) string { return tc.env[k] }, &out)
			if err == nil {
				t.Fatal("chatd started")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
			if strings.Contains(out.String(), "listening on") {
				t.Errorf("chatd listened before failing:\n%s", out.String())
			}
		})
	}
}

// devLoginCookie signs in through the development login at base (http or
// https) and returns the chat_token cookie it sets.
func devLoginCookie(t *testing.T, hc *http.Client, base string, header http.Header) *http.Cookie {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(url.Values{"name": {"Ann"}, "role": {"visitor"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s/login: %v", base, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST %s/login = %d, want 303", base, resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "chat_token" {
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
				t.Errorf("chat_token cookie HttpOnly=%v SameSite=%v Path=%q; want HttpOnly, Lax, /", c.HttpOnly, c.SameSite, c.Path)
			}
			return c
		}
	}
	t.Fatalf("POST %s/login set no chat_token cookie", base)
	return nil
}

var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

// The development login's cookie is Secure over TLS, and the token it holds
// opens a wss socket.
func TestCookieSecureOverTLS(t *testing.T) {
	cert := newTestCert(t)
	s := startServerTLS(t, cert, devArgs(t)...)
	c := devLoginCookie(t, cert.httpsClient(), "https://"+s.Addr, nil)
	if !c.Secure {
		t.Error("chat_token cookie set over TLS is not Secure")
	}
	conn, fc, resp, err := dialWSS("wss://"+s.Addr+"/ws/chat/", cert.clientTLS(), http.Header{"Cookie": {"chat_token=" + c.Value}})
	if err != nil {
		t.Fatalf("dial wss with the login cookie: %v (response %v)", err, resp)
	}
	defer conn.NetConn().Close()
	chatOverWSS(t, conn, fc, "signed in over https")
}

// Over plain http the cookie is not Secure (a browser would not send it
// back), and X-Forwarded-Proto from an untrusted peer changes nothing.
func TestCookieNotSecureOverPlainHTTP(t *testing.T) {
	s := startServer(t, devArgs(t)...)
	if c := devLoginCookie(t, noRedirect, "http://"+s.Addr, nil); c.Secure {
		t.Error("chat_token cookie set over plain http is Secure")
	}
	if c := devLoginCookie(t, noRedirect, "http://"+s.Addr, http.Header{"X-Forwarded-Proto": {"https"}}); c.Secure {
		t.Error("X-Forwarded-Proto: https from a peer that is not a trusted proxy made the cookie Secure")
	}
}

// X-Forwarded-Proto is honoured from a trusted proxy (the test's own
// 127.0.0.1 listed in --trusted-proxies), and only from there.
func TestProxyForwardedProtoFromTrustedPeer(t *testing.T) {
	s := startServer(t, append(devArgs(t), "--trusted-proxies", "127.0.0.1/32")...)
	if c := devLoginCookie(t, noRedirect, "http://"+s.Addr, http.Header{"X-Forwarded-Proto": {"https"}}); !c.Secure {
		t.Error("X-Forwarded-Proto: https from a trusted proxy did not make the cookie Secure")
	}
	if c := devLoginCookie(t, noRedirect, "http://"+s.Addr, nil); c.Secure {
		t.Error("without X-Forwarded-Proto the cookie is Secure over plain http")
	}
	s.Stop() // one chatd at a time: two in one process race inside protoactor/grpc

	// A list that does not contain the peer: ignored.
	other := startServer(t, append(devArgs(t), "--trusted-proxies", "10.0.0.0/8,192.0.2.1")...)
	if c := devLoginCookie(t, noRedirect, "http://"+other.Addr, http.Header{"X-Forwarded-Proto": {"https"}}); c.Secure {
		t.Error("X-Forwarded-Proto: https from a peer outside --trusted-proxies made the cookie Secure")
	}
}

// The client address chatd logs for a socket is the X-Forwarded-For client
// only when the peer is a trusted proxy; otherwise it is the peer.
func TestProxyClientAddressInLogs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		want    string
		notWant string
	}{
		{"trusted proxy", []string{"--trusted-proxies", "127.0.0.1/32"}, "client_ip=203.0.113.7", "client_ip=127.0.0.1"},
		{"untrusted peer", nil, "client_ip=127.0.0.1", "203.0.113.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, append([]string{"--log-level", "debug"}, tc.args...)...)
			c, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{
				Token: mint(t, "proxy-"+tc.name, "P", false), Header: http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.7"}},
			})
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			if err := waitLog(s, `"socket open"`, tc.want); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(s.out.String(), tc.notWant) {
				t.Errorf("the log has %q:\n%s", tc.notWant, s.out.String())
			}
		})
	}
}

// waitLog waits until one line of s's log contains every part.
func waitLog(s *testServer, parts ...string) error {
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, line := range strings.Split(s.out.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("no log line has " + strings.Join(parts, " and ") + ":\n" + s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
