package transport

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// frontFixture is a Front on a loopback listener with an HTTP server behind
// it; ws counts the requests the front served, web those the server did.
type frontFixture struct {
	addr    string
	front   *Front
	server  *http.Server
	ws, web atomic.Int64
	remote  atomic.Value // the RemoteAddr ws saw
	served  chan error
}

func newFrontFixture(t *testing.T, maxHeader int) *frontFixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fx := &frontFixture{addr: ln.Addr().String(), served: make(chan error, 1)}
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fx.ws.Add(1)
		fx.remote.Store(r.RemoteAddr)
		if r.URL.Path == "/ws/chat/panic" {
			panic("injected")
		}
		if r.URL.Path == "/ws/chat/refuse" {
			w.Header().Set("Retry-After", "7")
			http.Error(w, "server busy", http.StatusServiceUnavailable)
			return
		}
		// An echo "upgrade": the bytes read past the request come first.
		raw, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		early, _ := brw.Reader.Peek(brw.Reader.Buffered())
		early = append([]byte(nil), early...)
		go func() {
			defer raw.Close()
			_, _ = raw.Write(append([]byte("HTTP/1.1 101 Switching Protocols\r\n\r\n"), early...))
			_, _ = io.Copy(raw, raw)
		}()
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fx.web.Add(1)
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /ws/chat/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fx.web.Add(1)
		ws.ServeHTTP(w, r)
	}))
	fx.front = NewFront(slog.New(slog.DiscardHandler), ln, ws, FrontConfig{
		Prefix: "GET " + ChatPath, ReadHeaderTimeout: 2 * time.Second, MaxHeaderBytes: maxHeader,
	})
	fx.server = &http.Server{Handler: mux, ReadHeaderTimeout: 2 * time.Second, MaxHeaderBytes: maxHeader}
	go func() { _ = fx.front.Serve() }()
	go func() { fx.served <- fx.server.Serve(fx.front.Listener()) }()
	t.Cleanup(func() { _ = fx.server.Close() })
	return fx
}

func (fx *frontFixture) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", fx.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// TestFront_servesHandshakesItself: a request for the chat socket reaches
// the handler without the HTTP server, which keeps serving everything else;
// the bytes a client sent right after its request reach the socket.
func TestFront_servesHandshakesItself(t *testing.T) {
	fx := newFrontFixture(t, 0)
	c, br := fx.dial(t)
	if _, err := io.WriteString(c, "GET /ws/chat/?token=x HTTP/1.1\r\nHost: chat\r\nUpgrade: websocket\r\n\r\nEARLY"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v, %v", resp, err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "EARLY" {
		t.Fatalf("early bytes: %q, %v", got, err)
	}
	if _, err := io.WriteString(c, "after"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "after" {
		t.Fatalf("echo after the upgrade: %q, %v", got, err)
	}
	if ws, web := fx.ws.Load(), fx.web.Load(); ws != 1 || web != 0 {
		t.Fatalf("handshakes served: front %d, HTTP server %d; want 1 and 0", ws, web)
	}
	if remote := fx.remote.Load(); remote != c.LocalAddr().String() {
		t.Fatalf("RemoteAddr %v, want the client's %s", remote, c.LocalAddr())
	}

	// Anything else goes to the HTTP server, kept alive across requests.
	h, hbr := fx.dial(t)
	for i := range 2 {
		if _, err := io.WriteString(h, "GET /healthz HTTP/1.1\r\nHost: chat\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(hbr, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	// An upgrade on a connection the server kept alive reaches the same
	// handler, through the server.
	if _, err := io.WriteString(h, "GET /ws/chat/ HTTP/1.1\r\nHost: chat\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(hbr, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade after a kept-alive request: %v, %v", resp, err)
	}
	if ws, web := fx.ws.Load(), fx.web.Load(); ws != 2 || web != 3 {
		t.Fatalf("requests: ws handler %d, HTTP server %d; want 2 and 3", ws, web)
	}
}

// TestFront_refusals: a handler's refusal is written whole, with its
// headers and a length, and the connection closes; a request that cannot
// be read gets net/http's answers.
func TestFront_refusals(t *testing.T) {
	fx := newFrontFixture(t, 1024)
	for _, tt := range []struct {
		name, request string
		status        int
		body, retry   string
	}{
		{"refused", "GET /ws/chat/refuse HTTP/1.1\r\nHost: chat\r\n\r\n", 503, "server busy\n", "7"},
		{"malformed", "GET /ws/chat/ HTTP/1.1\r\nHost chat\r\n\r\n", 400, "400 Bad Request", ""},
		{"header too large", "GET /ws/chat/ HTTP/1.1\r\nHost: chat\r\nX-Big: " + strings.Repeat("x", 8000) + "\r\n\r\n", 431,
			"431 Request Header Fields Too Large", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, br := fx.dial(t)
			if _, err := io.WriteString(c, tt.request); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != tt.status || string(body) != tt.body || resp.Header.Get("Retry-After") != tt.retry ||
				!resp.Close || resp.Header.Get("Date") == "" {
				t.Fatalf("got %d %q (%v), headers %v; want %d %q, Retry-After %q, Connection: close",
					resp.StatusCode, body, err, resp.Header, tt.status, tt.body, tt.retry)
			}
			if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the answer: %v, want the connection closed", err)
			}
		})
	}
	if web := fx.web.Load(); web != 0 {
		t.Fatalf("the HTTP server served %d of these", web)
	}
}

// TestFront_survivesAPanickingHandler: a handshake whose handler panics
// loses its connection; the server goes on serving.
func TestFront_survivesAPanickingHandler(t *testing.T) {
	fx := newFrontFixture(t, 0)
	c, br := fx.dial(t)
	if _, err := io.WriteString(c, "GET /ws/chat/panic HTTP/1.1\r\nHost: chat\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the panicking handshake's connection still answers")
	}
	h, hbr := fx.dial(t)
	if _, err := io.WriteString(h, "GET /ws/chat/ HTTP/1.1\r\nHost: chat\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(hbr, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("the next handshake: %v, %v", resp, err)
	}
}

// TestFront_closes: closing the HTTP server closes the front: Serve returns,
// new connections are refused.
func TestFront_closes(t *testing.T) {
	fx := newFrontFixture(t, 0)
	if err := fx.server.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-fx.served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the HTTP server did not stop")
	}
	if err := fx.front.Serve(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", fx.addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the listener still accepts")
	}
}
