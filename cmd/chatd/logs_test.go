package main

// chatd never logs a token or a message body: not at debug level, not when it
// refuses a handshake or a frame, not in the actor runtime's own records.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/grainchat/grainchat/transport/wire"
	"github.com/grainchat/grainchat/transport/wsclient"
)

func TestLogsHaveNoTokensOrMessageBodies(t *testing.T) {
	for _, tc := range []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"memory store, text", func(*testing.T) []string { return nil }},
		{"postgres, json", func(t *testing.T) []string {
			return []string{"--database-url", newDatabase(t), "--log-format", "json"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkLogsKeepSecrets(t, tc.args(t)) })
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func checkLogsKeepSecrets(t *testing.T, extra []string) {
	args := append([]string{"--log-level", "debug", "--actor-log-level", "debug", "--max-message-chars", "200", "--max-frame-bytes", "2048"}, extra...)
	s := startServer(t, args...)

	marker := "MARKER" + randomHex(t, 12) // the text of every message sent
	visitorTok := mint(t, "logs-visitor-"+marker[6:14], "Vera", false)
	staffTok := mint(t, "logs-staff-"+marker[6:14], "Sam", true)
	badTok := mintWith(t, []byte("some-other-secret-0123456789-abcdefghij"), "logs-mallory", "Mallory", false)

	// A visitor (token in the query, v1) and staff (token in the header)
	// exchange messages; the marker travels through sessions, grains, the
	// inbox and the store.
	visitor, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL()+"?token="+url.QueryEscape(visitorTok), wsclient.Options{V1: true})
	if err != nil {
		t.Fatalf("dial with the token in the query: %v", err)
	}
	defer visitor.Close()
	welcome, _ := waitType(t, visitor, 0, "welcome")
	conv := welcome.Int("conversation_id")
	staff, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Token: staffTok, V1: true})
	if err != nil {
		t.Fatalf("dial staff: %v", err)
	}
	defer staff.Close()
	waitType(t, staff, 0, "inbox")
	send(t, visitor, map[string]any{"message": marker + " from the visitor", "client_msg_id": "m1"})
	waitMessage(t, staff, marker+" from the visitor")
	send(t, staff, map[string]any{"message": marker + " from staff", "conversation_id": conv})
	waitMessage(t, visitor, marker+" from staff")
	send(t, visitor, map[string]any{"type": "history", "limit": 10})
	waitType(t, visitor, 0, "history")
	// A seed client, token in the cookie.
	seed, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Header: http.Header{"Cookie": {"chat_token=" + visitorTok}}})
	if err != nil {
		t.Fatalf("dial with the cookie: %v", err)
	}
	defer seed.Close()
	send(t, seed, map[string]any{"message": marker + " seed"})
	waitMessage(t, seed, marker+" seed")

	// Refused handshakes: a bad token in the query, in the header, in the
	// cookie; a good token from a foreign origin.
	for _, d := range []struct {
		what string
		url  string
		opts wsclient.Options
		want int
	}{
		{"bad token in the query", s.URL() + "?token=" + url.QueryEscape(badTok), wsclient.Options{}, 401},
		{"bad token in the header", s.URL(), wsclient.Options{Token: badTok}, 401},
		{"bad token in the cookie", s.URL(), wsclient.Options{Header: http.Header{"Cookie": {"chat_token=" + badTok}}}, 401},
		{"garbage token", s.URL() + "?token=" + marker, wsclient.Options{}, 401},
		{"foreign origin", s.URL() + "?token=" + url.QueryEscape(visitorTok), wsclient.Options{Origin: "https://evil.example"}, 403},
	} {
		c, err := wsclient.Dial(ctxT(t, 10*time.Second), d.url, d.opts)
		if err == nil {
			c.Close()
			t.Fatalf("%s: connected", d.what)
		}
		if c == nil || c.Resp == nil || c.Resp.StatusCode != d.want {
			t.Fatalf("%s: %v, want status %d", d.what, err, d.want)
		}
	}

	// Refused frames that quote the marker: invalid JSON, too long, a NUL,
	// a wrong type, a binary frame, a forbidden conversation.
	for _, f := range []struct {
		raw  string
		code string
	}{
		{`{"message":"` + marker + ` unterminated`, wire.CodeInvalidJSON},
		{marker, wire.CodeInvalidJSON},
		{`{"message":"` + strings.Repeat(marker, 10) + `","client_msg_id":"long"}`, wire.CodeMessageTooLong},
		{`{"message":"` + marker + `\u0000"}`, wire.CodeInvalidText},
		{`{"message":{"text":"` + marker + `"}}`, wire.CodeInvalidRequest},
		{`{"type":"` + marker + `"}`, wire.CodeUnknownType},
		{`{"message":"` + marker + ` elsewhere","conversation_id":` + "999999" + `}`, wire.CodeForbidden},
	} {
		from := len(visitor.Frames())
		sendRaw(t, visitor, gws.OpcodeText, []byte(f.raw))
		waitFrame(t, visitor, from, "error "+f.code, func(fr wsclient.Frame) bool {
			return fr.Type() == "error" && fr.String("code") == f.code
		})
	}
	from := len(visitor.Frames())
	sendRaw(t, visitor, gws.OpcodeBinary, []byte(marker))
	waitFrame(t, visitor, from, "error for a binary frame", func(fr wsclient.Frame) bool { return fr.Type() == "error" })

	// Frames that close the socket: too large (1009) and invalid UTF-8 (1007).
	for _, f := range []struct {
		raw  string
		code uint16
	}{
		{`{"message":"` + strings.Repeat(marker, 100) + `"}`, 1009},
		{`{"message":"` + marker + "\xff\xfe" + `"}`, 1007},
	} {
		c, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Token: visitorTok})
		if err != nil {
			t.Fatal(err)
		}
		sendRaw(t, c, gws.OpcodeText, []byte(f.raw))
		closed, err := c.WaitClosed(ctxT(t, waitTimeout))
		if err != nil || closed.Code != f.code {
			t.Errorf("frame closing with %d: closed %+v, %v", f.code, closed, err)
		}
		c.Close()
	}
	// A plain HTTP request with the token in its query string.
	_ = httpStatus(t, "http://"+s.Addr+"/session?token="+url.QueryEscape(visitorTok), nil)

	// API keys: one made over REST and used; an unknown one on REST and on
	// the WebSocket.
	apiKey, badKey := restAPIKey(t, s, staffTok, "logs "+marker[6:14]), "gck_"+marker[6:]+strings.Repeat("A", 43-len(marker[6:]))
	for key, want := range map[string]int{apiKey: 200, badKey: 401} {
		if got := httpStatus(t, "http://"+s.Addr+"/api/v1/conversations", http.Header{"Authorization": {"Bearer " + key}}); got != want {
			t.Errorf("REST with a key: %d, want %d", got, want)
		}
	}
	if c, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Token: apiKey}); err == nil {
		c.Close()
		t.Errorf("a socket with an API key was accepted")
	}

	visitor.Close()
	staff.Close()
	seed.Close()
	s.Stop() // the shutdown's records too
	logs := s.out.String()

	if !strings.Contains(logs, "socket open") || !strings.Contains(logs, "socket closed") {
		t.Fatalf("the log has no debug records; is the level debug?\n%s", logs)
	}
	secrets := map[string]string{"the marker text": marker, "the API key": apiKey, "the API key's random part": apiKey[4:], "the bad API key": badKey}
	for name, tok := range map[string]string{"visitor token": visitorTok, "staff token": staffTok, "bad token": badTok} {
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("%s %q is not a JWT", name, tok)
		}
		secrets[name] = tok
		secrets[name+"'s payload"] = parts[1]
		secrets[name+"'s signature"] = parts[2]
	}
	for name, secret := range secrets {
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, secret) {
				t.Errorf("the log has %s:\n%s", name, line)
			}
		}
	}
	t.Logf("%d log lines checked", strings.Count(logs, "\n"))
}

// restAPIKey creates an API key over REST with a staff token and returns it.
func restAPIKey(t *testing.T, s *testServer, staffToken, name string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name})
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr+"/api/v1/api_keys", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+staffToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Key string `json:"key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated || out.Key == "" {
		t.Fatalf("POST /api/v1/api_keys: %d, %v", resp.StatusCode, err)
	}
	return out.Key
}
