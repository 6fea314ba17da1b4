package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/lxzan/gws"
)

// WebSocket-level behaviour, on one server: a frame larger than
// --max-frame-bytes closes the socket with 1009; a text frame with invalid
// UTF-8 closes it with 1007; a frame at the limit is fine; a ping's payload
// comes back in the pong.
func TestWebSocketFraming(t *testing.T) {
	const maxFrame = 2048
	s := startServer(t, "--database-url", newDatabase(t), "--max-frame-bytes", fmt.Sprint(maxFrame))
	t.Run("ping", func(t *testing.T) { testPingPongPayload(t, s) })
	for _, v1 := range []bool{true, false} {
		dialect := map[bool]string{true: "v1", false: "seed"}[v1]
		t.Run(dialect+"/at the limit", func(t *testing.T) {
			c := dial(t, s, "limit-"+dialect, "Lim", false, v1)
			prefix, suffix := `{"message":"`, `"}`
			text := "at the limit " + strings.Repeat("a", maxFrame-len(prefix)-len(suffix)-len("at the limit "))
			frame := prefix + text + suffix
			if len(frame) != maxFrame {
				t.Fatalf("frame is %d bytes", len(frame))
			}
			sendRaw(t, c, gws.OpcodeText, []byte(frame))
			waitMessage(t, c, text)
		})
		t.Run(dialect+"/oversize", func(t *testing.T) {
			c := dial(t, s, "big-"+dialect, "Big", false, v1)
			text := strings.Repeat("b", maxFrame)
			send(t, c, map[string]any{"message": text})
			cl, err := c.WaitClosed(ctxT(t, waitTimeout))
			if err != nil {
				t.Fatalf("socket still open after an oversize frame:%s", dump(c))
			}
			if cl.Code != 1009 {
				t.Errorf("closed with %d %q (%v), want 1009", cl.Code, cl.Reason, cl.Err)
			}
		})
		t.Run(dialect+"/invalid UTF-8", func(t *testing.T) {
			c := dial(t, s, "utf8-"+dialect, "Utf", false, v1)
			sendRaw(t, c, gws.OpcodeText, []byte("{\"message\":\"bad \xff\xfe utf8\"}"))
			cl, err := c.WaitClosed(ctxT(t, waitTimeout))
			if err != nil {
				t.Fatalf("socket still open after invalid UTF-8:%s", dump(c))
			}
			if cl.Code != 1007 {
				t.Errorf("closed with %d %q (%v), want 1007", cl.Code, cl.Reason, cl.Err)
			}
		})
	}
}

// pongRecorder is a gws client handler that keeps every pong payload (the
// wsclient package drops them).
type pongRecorder struct {
	pongs chan []byte
}

func (p *pongRecorder) OnOpen(*gws.Conn)                      {}
func (p *pongRecorder) OnClose(*gws.Conn, error)              {}
func (p *pongRecorder) OnPing(c *gws.Conn, payload []byte)    { _ = c.WritePong(payload) }
func (p *pongRecorder) OnPong(_ *gws.Conn, payload []byte)    { p.pongs <- bytes.Clone(payload) }
func (p *pongRecorder) OnMessage(_ *gws.Conn, m *gws.Message) { m.Close() }

// testPingPongPayload checks that a ping's payload comes back in the pong.
func testPingPongPayload(t *testing.T, s *testServer) {
	for _, v1 := range []bool{true, false} {
		t.Run(map[bool]string{true: "v1", false: "seed"}[v1], func(t *testing.T) {
			rec := &pongRecorder{pongs: make(chan []byte, 16)}
			h := http.Header{"Authorization": {"Bearer " + mint(t, "pinger", "Pinger", false)}}
			if v1 {
				h.Set("Sec-WebSocket-Protocol", "grainchat.v1")
			}
			conn, resp, err := gws.NewClient(rec, &gws.ClientOption{Addr: s.URL(), RequestHeader: h})
			if err != nil {
				t.Fatalf("dial: %v (%v)", err, resp)
			}
			go conn.ReadLoop()
			t.Cleanup(func() { _ = conn.WriteClose(1000, nil) })
			for _, payload := range [][]byte{
				[]byte("ping-123"),
				{},
				bytes.Repeat([]byte{0xff, 0x00, 'x'}, 41), // 123 bytes, binary, near the 125-byte limit
			} {
				if err := conn.WritePing(payload); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				select {
				case got := <-rec.pongs:
					if !bytes.Equal(got, payload) {
						t.Errorf("pong carries %q, want %q", got, payload)
					}
				case <-ctx.Done():
					t.Errorf("no pong for ping %q", payload)
				}
				cancel()
			}
		})
	}
}
