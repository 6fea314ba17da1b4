package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"
)

// readTextFrames parses n server frames from r, checking that each is a
// final, unmasked text frame, and returns their payloads.
func readTextFrames(t *testing.T, r io.Reader, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for range n {
		var h [2]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			t.Fatalf("frame %d header: %v", len(out), err)
		}
		if h[0] != 0x81 || h[1]&0x80 != 0 {
			t.Fatalf("frame %d: header % x, want a final unmasked text frame", len(out), h)
		}
		size := uint64(h[1])
		switch size {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(r, ext[:]); err != nil {
				t.Fatal(err)
			}
			size = uint64(binary.BigEndian.Uint16(ext[:]))
			if size < 126 {
				t.Fatalf("frame %d: 16-bit length %d should have been 7-bit", len(out), size)
			}
		case 127:
			var ext [8]byte
			if _, err := io.ReadFull(r, ext[:]); err != nil {
				t.Fatal(err)
			}
			size = binary.BigEndian.Uint64(ext[:])
			if size <= 0xffff {
				t.Fatalf("frame %d: 64-bit length %d should have been 16-bit", len(out), size)
			}
		}
		p := make([]byte, size)
		if _, err := io.ReadFull(r, p); err != nil {
			t.Fatalf("frame %d payload: %v", len(out), err)
		}
		out = append(out, p)
	}
	return out
}

// countingConn counts the Write calls that reach the network.
type countingConn struct {
	net.Conn
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes++
	return c.Conn.Write(p)
}

func TestWriteFramesEncodesEveryLengthInOrder(t *testing.T) {
	payloads := [][]byte{
		[]byte(`{"type":"ack"}`),
		[]byte(""),
		bytes.Repeat([]byte("a"), 125),
		bytes.Repeat([]byte("b"), 126),
		bytes.Repeat([]byte("c"), 0xffff),
		bytes.Repeat([]byte("d"), 0x10000),
		[]byte(`{"message":"é ✓ 😀"}`),
		bytes.Repeat([]byte("e"), frameBufferSize-2),
		bytes.Repeat([]byte("f"), 3000),
	}
	server, client := net.Pipe()
	defer client.Close()
	counted := &countingConn{Conn: server}
	fc := &frameConn{Conn: counted}
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := fc.writeFrames(payloads)
		done <- result{n, err}
		server.Close()
	}()
	got := readTextFrames(t, client, len(payloads))
	if rest, _ := io.ReadAll(client); len(rest) != 0 {
		t.Fatalf("%d bytes after the last frame", len(rest))
	}
	r := <-done
	if r.err != nil || r.n != len(payloads) {
		t.Fatalf("writeFrames = %d, %v; want %d, nil", r.n, r.err, len(payloads))
	}
	for i := range payloads {
		if !bytes.Equal(got[i], payloads[i]) {
			t.Fatalf("frame %d: got %d bytes %.20q, want %d bytes %.20q", i, len(got[i]), got[i], len(payloads[i]), payloads[i])
		}
	}
	// Small frames share writes; the big ones go alone (a writev on a
	// real socket; two writes through net.Pipe).
	if counted.writes >= 2*len(payloads) {
		t.Errorf("%d writes for %d frames: not coalesced", counted.writes, len(payloads))
	}
}

func TestWriteFramesCoalescesASmallBurstIntoOneWrite(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	counted := &countingConn{Conn: server}
	fc := &frameConn{Conn: counted}
	var payloads [][]byte
	for i := range 50 {
		payloads = append(payloads, []byte(strings.Repeat("x", i)))
	}
	go func() { _, _ = fc.writeFrames(payloads); server.Close() }()
	got := readTextFrames(t, client, len(payloads))
	for i := range payloads {
		if !bytes.Equal(got[i], payloads[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if counted.writes != 1 {
		t.Errorf("%d writes for a 1.3 KiB burst, want 1", counted.writes)
	}
}

func TestWriteFramesStopsAfterTheCloseFrame(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	fc := &frameConn{Conn: server}
	go func() { _, _ = io.Copy(io.Discard, client) }()
	// The handshake response must not count as a close frame.
	if _, err := fc.Write([]byte("HTTP/1.1 101 Switching Protocols\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if n, err := fc.writeFrames([][]byte{[]byte("before")}); n != 1 || err != nil {
		t.Fatalf("before the close frame: %d, %v", n, err)
	}
	if _, err := fc.Write([]byte{closeFrameByte, 2, 0x03, 0xe8}); err != nil {
		t.Fatal(err)
	}
	if n, err := fc.writeFrames([][]byte{[]byte("after")}); n != 0 || !errors.Is(err, errClosedFrame) {
		t.Fatalf("after the close frame: %d, %v; want 0, errClosedFrame", n, err)
	}
	server.Close()
}

// failingConn accepts ok writes, then fails every one.
type failingConn struct {
	net.Conn
	ok     int
	writes int
}

func (c *failingConn) Write(p []byte) (int, error) {
	c.writes++
	if c.writes > c.ok {
		return 0, errors.New("broken pipe")
	}
	return len(p), nil
}

func TestWriteFramesReportsWhatWasWrittenBeforeAnError(t *testing.T) {
	server, client := net.Pipe()
	fc := &frameConn{Conn: server}
	client.Close()
	n, err := fc.writeFrames([][]byte{[]byte("a"), []byte("b")})
	if n != 0 || err == nil {
		t.Fatalf("to a closed peer: %d, %v; want 0 and an error", n, err)
	}

	// Two frames fill the first write; the third fails with the second
	// write: two written. Then nothing more goes out, not even gws's close.
	half := bytes.Repeat([]byte("x"), frameBufferSize/2-8)
	fc = &frameConn{Conn: &failingConn{ok: 1}}
	n, err = fc.writeFrames([][]byte{half, half, half})
	if n != 2 || err == nil {
		t.Fatalf("with the second write failing: %d, %v; want 2 and an error", n, err)
	}
	if n, err := fc.writeFrames([][]byte{[]byte("more")}); n != 0 || !errors.Is(err, errClosedFrame) {
		t.Fatalf("after a failed write: %d, %v; want 0, errClosedFrame", n, err)
	}
	if _, err := fc.Write([]byte{closeFrameByte, 0}); !errors.Is(err, errBroken) {
		t.Fatalf("gws's close frame after a failed write: %v, want errBroken", err)
	}
}

func BenchmarkWriteFrames(b *testing.B) {
	payload := bytes.Repeat([]byte("m"), 300)
	frames := [][]byte{payload, payload, payload, payload}
	fc := &frameConn{Conn: discardConn{}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fc.writeFrames(frames); err != nil {
			b.Fatal(err)
		}
	}
}

type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

func TestConnSessionStoresLikeAMap(t *testing.T) {
	var s gws.SessionStorage = &connSession{}
	if _, ok := s.Load(connKey); ok || s.Len() != 0 {
		t.Fatal("a new session storage is not empty")
	}
	s.Store(connKey, 1)
	s.Store("other", 2)
	if v, ok := s.Load(connKey); !ok || v != 1 {
		t.Fatalf("Load(connKey) = %v, %v", v, ok)
	}
	if v, ok := s.Load("other"); !ok || v != 2 || s.Len() != 2 {
		t.Fatalf("Load(other) = %v, %v; Len %d", v, ok, s.Len())
	}
	seen := map[string]any{}
	s.Range(func(k string, v any) bool { seen[k] = v; return true })
	if len(seen) != 2 || seen[connKey] != 1 || seen["other"] != 2 {
		t.Fatalf("Range saw %v", seen)
	}
	s.Delete(connKey)
	s.Delete("other")
	if _, ok := s.Load(connKey); ok || s.Len() != 0 {
		t.Fatal("Delete left entries")
	}
}

// TestHeldHandshakeResponseGoesFirst: the held handshake response goes out
// in the same write as what follows it (frames, or gws's close frame), or
// alone on release; nothing ever overtakes it.
func TestHeldHandshakeResponseGoesFirst(t *testing.T) {
	const response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
	for _, tt := range []struct {
		name  string
		after func(fc *frameConn) error
		check func(t *testing.T, r io.Reader)
	}{
		{"frames", func(fc *frameConn) error {
			_, err := fc.writeFrames([][]byte{[]byte(`{"type":"welcome"}`), []byte("two")})
			return err
		}, func(t *testing.T, r io.Reader) {
			got := readTextFrames(t, r, 2)
			if string(got[0]) != `{"type":"welcome"}` || string(got[1]) != "two" {
				t.Fatalf("frames %q", got)
			}
		}},
		{"close frame", func(fc *frameConn) error {
			_, err := fc.Write([]byte{closeFrameByte, 2, 0x03, 0xe9})
			return err
		}, func(t *testing.T, r io.Reader) {
			b := make([]byte, 4)
			if _, err := io.ReadFull(r, b); err != nil || b[0] != closeFrameByte {
				t.Fatalf("close frame % x, %v", b, err)
			}
		}},
		{"release", func(fc *frameConn) error {
			if err := fc.release(); err != nil {
				return err
			}
			if err := fc.release(); err != nil { // once only
				return err
			}
			_, err := fc.writeFrames([][]byte{[]byte("later")})
			return err
		}, func(t *testing.T, r io.Reader) {
			if got := readTextFrames(t, r, 1); string(got[0]) != "later" {
				t.Fatalf("frame %q", got)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			server, client := net.Pipe()
			defer client.Close()
			counted := &countingConn{Conn: server}
			fc := &frameConn{Conn: counted, hold: true}
			if n, err := fc.Write([]byte(response)); err != nil || n != len(response) || counted.writes != 0 {
				t.Fatalf("holding the response: %d, %v, %d writes", n, err, counted.writes)
			}
			done := make(chan error, 1)
			go func() { done <- tt.after(fc) }()
			head := make([]byte, len(response))
			if _, err := io.ReadFull(client, head); err != nil || string(head) != response {
				t.Fatalf("first bytes %q, %v; want the handshake response", head, err)
			}
			tt.check(t, client)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			want := 1
			if tt.name == "release" {
				want = 2
			}
			if counted.writes != want {
				t.Errorf("%d writes, want %d", counted.writes, want)
			}
		})
	}
}

// TestRefusedUpgradeIsNotHeld: gws's answer to an upgrade it refuses (a 400,
// then it closes the connection) goes out at once even while holding.
func TestRefusedUpgradeIsNotHeld(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	counted := &countingConn{Conn: server}
	fc := &frameConn{Conn: counted, hold: true}
	const refusal = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
	done := make(chan error, 1)
	go func() { _, err := fc.Write([]byte(refusal)); done <- err }()
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second)) // a held refusal never comes
	got := make([]byte, len(refusal))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != refusal {
		t.Fatalf("read %q, %v; want the refusal at once", got, err)
	}
	if err := <-done; err != nil || counted.writes != 1 {
		t.Fatalf("write: %v, %d writes; want 1", err, counted.writes)
	}
}
