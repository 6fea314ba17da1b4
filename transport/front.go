package transport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// FrontConfig tunes a Front.
type FrontConfig struct {
	// Prefix is the start of the request line served directly, e.g.
	// "GET /ws/chat/": every request for the chat socket.
	Prefix string
	// ReadHeaderTimeout bounds reading a connection's first request (the
	// HTTP server's own setting, for the connections it gets).
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds a request's header (as http.Server's).
	MaxHeaderBytes int
}

// Front accepts a listener's connections and serves the WebSocket handshakes
// to the chat socket itself: a handshake costs no net/http connection (whose
// 4 KiB reader and writer a hijacked connection never gives back, and which
// made up a third of a handshake's garbage), only a pooled reader while the
// request is read. Every other connection goes on, with the bytes already
// read, to the HTTP server that serves Listener. Only the first request of a
// connection is looked at: an upgrade on a connection the HTTP server kept
// alive reaches the same handler through it.
type Front struct {
	logger *slog.Logger
	ln     net.Listener
	ws     http.Handler
	cfg    FrontConfig

	handoff   chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// NewFront serves ws's handshakes from ln's connections; Serve starts it.
func NewFront(logger *slog.Logger, ln net.Listener, ws http.Handler, cfg FrontConfig) *Front {
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = http.DefaultMaxHeaderBytes
	}
	return &Front{logger: logger, ln: ln, ws: ws, cfg: cfg, handoff: make(chan net.Conn), done: make(chan struct{})}
}

// Listener is what the HTTP server serves: the connections the front does
// not serve itself. Closing it closes the front's listener.
func (f *Front) Listener() net.Listener { return frontListener{f} }

// Serve accepts connections until the listener is closed; it then returns
// net.ErrClosed. Like http.Server.Serve it waits and tries again after a
// temporary error (out of file descriptors).
func (f *Front) Serve() error {
	var delay time.Duration
	for {
		c, err := f.ln.Accept()
		if err != nil {
			select {
			case <-f.done:
				return net.ErrClosed
			default:
			}
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				f.logger.Warn("accept failed; retrying", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			f.Close()
			return fmt.Errorf("front: accept: %w", err)
		}
		delay = 0
		go f.serveConn(c)
	}
}

// isTemporary reports an accept error that a later accept may not have
// (EMFILE, ENFILE, ECONNABORTED: what net/http retries too).
func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// Close closes the listener: Serve returns, the HTTP server's Accept fails.
func (f *Front) Close() error {
	f.closeOnce.Do(func() {
		close(f.done)
		f.closeErr = f.ln.Close()
	})
	return f.closeErr
}

var frontReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}

// serveConn reads the start of c's first request and serves it as a
// handshake, or hands c to the HTTP server.
func (f *Front) serveConn(c net.Conn) {
	defer func() {
		// As net/http does for its handlers: a bug in one handshake closes
		// that connection, not the server.
		if r := recover(); r != nil {
			f.logger.Error("handshake panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			_ = c.Close()
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(f.cfg.ReadHeaderTimeout))
	limit := &io.LimitedReader{R: c, N: int64(f.cfg.MaxHeaderBytes) + 4096} // as net/http's
	br := frontReaders.Get().(*bufio.Reader)
	br.Reset(limit)
	defer func() {
		br.Reset(nil)
		frontReaders.Put(br)
	}()
	// Any valid request line is longer than the prefix, so Peek waits for
	// no more than the client sends anyway.
	start, err := br.Peek(len(f.cfg.Prefix))
	if err != nil || string(start) != f.cfg.Prefix {
		if len(start) == 0 && err != nil {
			_ = c.Close() // closed (or silent until the deadline) before a byte
			return
		}
		f.handOff(c, br)
		return
	}
	req, err := http.ReadRequest(br)
	if err != nil {
		status := http.StatusBadRequest
		if limit.N <= 0 {
			status = http.StatusRequestHeaderFieldsTooLarge
		}
		writePlain(c, status)
		closeAfterResponse(c)
		return
	}
	// The request's context is the background: a handshake's waits are
	// bounded by their own timeouts (net/http's would also end when the
	// client hangs up, which costs a background read per connection).
	req.RemoteAddr = c.RemoteAddr().String()
	w := &frontWriter{conn: c, br: br, header: make(http.Header, 2)}
	f.ws.ServeHTTP(w, req)
	if !w.hijacked {
		w.finish()
		closeAfterResponse(c)
	}
}

// closeAfterResponse closes c once the client has had its response: after
// a FIN it reads what the client still sends (at most 256 KiB, 500 ms), for a
// close with unread bytes would send a reset, which can destroy the
// response before the client read it (net/http does the same).
func closeAfterResponse(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, _ = io.CopyN(io.Discard, c, 256<<10)
	}
	_ = c.Close()
}

// handOff gives c to the HTTP server with the bytes br read of it.
func (f *Front) handOff(c net.Conn, br *bufio.Reader) {
	_ = c.SetReadDeadline(time.Time{}) // the HTTP server sets its own
	var early []byte
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		early = bytes.Clone(b)
	}
	select {
	case f.handoff <- &replayConn{Conn: c, early: early}:
	case <-f.done:
		_ = c.Close()
	}
}

// frontListener is the HTTP server's side of a Front.
type frontListener struct{ f *Front }

func (l frontListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.f.handoff:
		return c, nil
	case <-l.f.done:
		return nil, net.ErrClosed
	}
}

func (l frontListener) Close() error   { return l.f.Close() }
func (l frontListener) Addr() net.Addr { return l.f.ln.Addr() }

// replayConn reads early, then the connection.
type replayConn struct {
	net.Conn
	early []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.early) > 0 {
		n := copy(p, c.early)
		c.early = c.early[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// frontWriter is the response of a request the front serves: a refusal
// (written whole, with a Content-Length, when the handler returns; the
// connection then closes) or a hijack.
type frontWriter struct {
	conn     net.Conn
	br       *bufio.Reader
	header   http.Header
	status   int
	body     []byte
	hijacked bool
}

func (w *frontWriter) Header() http.Header { return w.header }

func (w *frontWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *frontWriter) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

// Hijack implements http.Hijacker. The reader holds what was read past the
// request; it goes back to the front's pool when the handler returns, so
// the handler must copy what it keeps (upgrade does). There is no writer.
func (w *frontWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	w.hijacked = true
	_ = w.conn.SetDeadline(time.Time{})
	return w.conn, bufio.NewReadWriter(w.br, nil), nil
}

// finish writes the response.
func (w *frontWriter) finish() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %03d %s\r\n", w.status, http.StatusText(w.status))
	w.header.Del("Content-Length")
	w.header.Del("Transfer-Encoding")
	w.header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	w.header.Set("Connection", "close")
	w.header.Set("Content-Length", strconv.Itoa(len(w.body)))
	if w.header.Get("Content-Type") == "" && len(w.body) > 0 {
		w.header.Set("Content-Type", http.DetectContentType(w.body))
	}
	_ = w.header.Write(&b)
	b.WriteString("\r\n")
	b.Write(w.body)
	_ = w.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = w.conn.Write(b.Bytes())
}

// writePlain answers a request that could not be read, as net/http does.
func writePlain(c net.Conn, status int) {
	w := &frontWriter{conn: c, header: make(http.Header, 3)}
	w.header.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(strconv.Itoa(status) + " " + http.StatusText(status)))
	w.finish()
}
