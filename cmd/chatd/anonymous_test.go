package main

// Anonymous visitors (--anonymous-visitors; docs/API.md "Anonymous
// visitors", SECURITY.md): identities issued by chatd, kept across
// reconnects, bounded per client address, and merged into a signed-in
// visitor's conversation.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// anonIdentity is POST /anonymous's answer.
type anonIdentity struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
	New       bool   `json:"new"`
	User      struct {
		ExternalID string `json:"external_id"`
		Name       string `json:"name"`
	} `json:"user"`
}

// anonPost sends a POST to the server with its own Origin and returns the
// status, the body and the headers.
func anonPost(t *testing.T, s *testServer, path, bearer, origin string, body any) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctxT(t, 30*time.Second), "POST", "http://"+s.Addr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if origin == "" {
		origin = "http://" + s.Addr
	}
	req.Header.Set("Origin", origin)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// newAnon asks for a new identity and checks the answer.
func newAnon(t *testing.T, s *testServer) anonIdentity {
	t.Helper()
	status, body, _ := anonPost(t, s, "/anonymous", "", "", nil)
	var id anonIdentity
	if status != 200 || json.Unmarshal(body, &id) != nil || id.Token == "" || !id.New ||
		!strings.HasPrefix(id.User.ExternalID, "anon:") || !strings.HasPrefix(id.User.Name, "Visitor ") {
		t.Fatalf("POST /anonymous: %d %s", status, body)
	}
	return id
}

func dialToken(t *testing.T, s *testServer, token string) (*wsclient.Client, error) {
	t.Helper()
	c, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Token: token, V1: true})
	if err == nil {
		t.Cleanup(c.Close)
	}
	return c, err
}

func TestAnonymousVisitors(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t), "--anonymous-visitors",
		"--anonymous-new-per-hour", "3", "--anonymous-conns-per-ip", "2")
	ann := dial(t, s, "ann", "Ann", true, true)

	id := newAnon(t, s)
	v, err := dialToken(t, s, id.Token)
	if err != nil {
		t.Fatal(err)
	}
	if w := welcomeOf(t, v); obj(w, "user")["name"] != id.User.Name || obj(w, "user")["is_admin"] != false {
		t.Fatalf("welcome %s, want the anonymous name %q", w.Raw, id.User.Name)
	}
	conv := convOf(t, v)
	post(t, v, conv, "hello from nobody", "a1")
	waitMsg(t, ann, conv, "hello from nobody")
	post(t, ann, conv, "hi there", "r1")
	waitMsg(t, v, conv, "hi there")

	// A reload: the same identity, the same conversation and its history.
	v.Close()
	v, err = dialToken(t, s, id.Token)
	if err != nil {
		t.Fatal(err)
	}
	if got := convOf(t, v); got != conv {
		t.Fatalf("reconnected to conversation %d, want %d", got, conv)
	}
	if texts := textsOf(historyMessages(t, history(t, v, map[string]any{}))); strings.Join(texts, "|") != "hello from nobody|hi there" {
		t.Fatalf("history after a reload: %q", texts)
	}

	// Renewal keeps the identity and costs nothing of the hourly bound.
	status, body, _ := anonPost(t, s, "/anonymous", id.Token, "", nil)
	var renewed anonIdentity
	if status != 200 || json.Unmarshal(body, &renewed) != nil || renewed.New || renewed.User.ExternalID != id.User.ExternalID || renewed.Token == "" {
		t.Fatalf("renew: %d %s", status, body)
	}

	// Bounds per client address: 3 new identities an hour, 2 open sockets.
	second := newAnon(t, s)
	third := newAnon(t, s)
	status, body, hdr := anonPost(t, s, "/anonymous", "", "", nil)
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !strings.Contains(string(body), "rate_limited") {
		t.Errorf("a 4th identity in the hour: %d %s (Retry-After %q), want 429", status, body, hdr.Get("Retry-After"))
	}
	if _, err := dialToken(t, s, second.Token); err != nil {
		t.Fatal(err)
	}
	c, err := dialToken(t, s, third.Token)
	if err == nil || c == nil || c.Resp == nil || c.Resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a 3rd anonymous socket from one address: %v, want 429", err)
	}
	dial(t, s, "carl-other", "Carl", false, true) // signed-in visitors are not counted

	// A foreign origin gets nothing; a host token cannot take an anonymous sub.
	if status, body, _ := anonPost(t, s, "/anonymous", "", "https://evil.example", nil); status != http.StatusForbidden {
		t.Errorf("POST /anonymous from another origin: %d %s", status, body)
	}
	if c, err := dialToken(t, s, mint(t, "x", "X", false)); err != nil {
		t.Fatalf("a plain host token: %v", err)
	} else {
		c.Close()
	}
	if c, err := dialToken(t, s, handToken(map[string]any{"alg": "HS256", "typ": "JWT"},
		map[string]any{"sub": id.User.ExternalID, "exp": time.Now().Add(time.Hour).Unix()}, []byte(testSecret))); err == nil {
		c.Close()
		t.Error("a host token with an anonymous sub connected")
	}
}

// Carl chatted anonymously, then signed in: his anonymous conversation's
// messages move into his own, in order, live to staff; the anonymous one is
// resolved and its identity retired; a repeated merge adds nothing; a merge
// into someone else is refused.
func TestAnonymousMerge(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t), "--anonymous-visitors")
	ann := dial(t, s, "ann", "Ann", true, true)
	carlTok := mintTeams(t, "carl", "Carl", false, "billing", nil) // his host site's team for him
	carl := dialWith(t, s, "carl", carlTok, false, true)
	carlConv := convOf(t, carl)
	post(t, carl, carlConv, "an older question", "c1")

	id := newAnon(t, s)
	v, err := dialToken(t, s, id.Token)
	if err != nil {
		t.Fatal(err)
	}
	anonConv := convOf(t, v)
	post(t, v, anonConv, "where is my parcel?", "a1")
	post(t, ann, anonConv, "which order?", "r1")
	post(t, v, anonConv, "number 42", "a2")
	v.Close()

	status, body, _ := anonPost(t, s, "/anonymous/merge", carlTok, "", map[string]any{"anonymous_token": id.Token})
	var res struct {
		ConversationID int64 `json:"conversation_id"`
		Merged         int   `json:"merged_messages"`
	}
	if status != 200 || json.Unmarshal(body, &res) != nil || res.ConversationID != carlConv || res.Merged != 3 {
		t.Fatalf("merge: %d %s, want conversation %d and 3 messages", status, body, carlConv)
	}
	msgs := historyMessages(t, history(t, carl, map[string]any{}))
	want := []struct {
		text  string
		name  string
		admin bool
	}{{"an older question", "Carl", false}, {"where is my parcel?", "Carl", false}, {"which order?", "Ann", true}, {"number 42", "Carl", false}}
	if len(msgs) != len(want) {
		t.Fatalf("Carl's history has %d messages, want %d: %q", len(msgs), len(want), textsOf(msgs))
	}
	for i, w := range want {
		m := msgs[i]
		if m.String("message") != w.text || m.String("sender_name") != w.name || m.Fields["sender_is_admin"] != w.admin || m.Int("seq") != int64(i+1) {
			t.Errorf("message %d: %s, want %q from %s", i, m.Raw, w.text, w.name)
		}
		if strings.HasPrefix(m.String("client_msg_id"), "~") {
			t.Errorf("message %d shows the server's client_msg_id: %s", i, m.Raw)
		}
	}
	waitMsg(t, ann, carlConv, "number 42") // live to staff
	// Carl's conversation keeps his team, live and in the inbox.
	var team any = "(no inbox_update)"
	for _, f := range ann.Frames() {
		if c := obj(f, "conversation"); f.Type() == "inbox_update" && c["conversation_id"] == float64(carlConv) {
			team = c["team"]
		}
	}
	if team != "billing" {
		t.Errorf("Ann's last inbox_update of Carl's conversation has team %v, want billing", team)
	}
	if inbox, _ := askInbox(t, ann); inboxTeams(inbox)[carlConv] != "billing" {
		t.Errorf("Ann's inbox after the merge: %s, want Carl's conversation in billing", inbox.Raw)
	}
	waitFrame(t, ann, 0, "the anonymous conversation resolved", func(f wsclient.Frame) bool {
		return f.Type() == "event" && f.Int("conversation_id") == anonConv && obj(f, "event")["status"] == "resolved"
	})

	// The anonymous identity is retired.
	if c, err := dialToken(t, s, id.Token); err == nil {
		c.Close()
		t.Error("the merged anonymous identity still connects")
	} else if c == nil || c.Resp == nil || c.Resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("merged identity: %v, want 401", err)
	}
	// Again: nothing more. Into someone else: 409. Bad requests.
	status, body, _ = anonPost(t, s, "/anonymous/merge", carlTok, "", map[string]any{"anonymous_token": id.Token})
	if status != 200 || !strings.Contains(string(body), `"merged_messages":0`) {
		t.Errorf("a repeated merge: %d %s", status, body)
	}
	if status, body, _ := anonPost(t, s, "/anonymous/merge", mint(t, "olga", "Olga", false), "", map[string]any{"anonymous_token": id.Token}); status != http.StatusConflict {
		t.Errorf("merge into another user: %d %s, want 409", status, body)
	}
	for _, bad := range []struct {
		name, bearer string
		body         any
		status       int
	}{
		{"no token", "", map[string]any{"anonymous_token": id.Token}, 401},
		{"staff", mint(t, "ann", "Ann", true), map[string]any{"anonymous_token": id.Token}, 403},
		{"an anonymous bearer", newAnon(t, s).Token, map[string]any{"anonymous_token": id.Token}, 401},
		{"a host token as the anonymous one", carlTok, map[string]any{"anonymous_token": carlTok}, 401},
		{"no body", carlTok, nil, 400},
		{"unknown field", carlTok, map[string]any{"anonymous_token": id.Token, "x": 1}, 400},
	} {
		if status, body, _ := anonPost(t, s, "/anonymous/merge", bad.bearer, "", bad.body); status != bad.status {
			t.Errorf("%s: %d %s, want %d", bad.name, status, body, bad.status)
		}
	}
	// Without --anonymous-visitors there is no such endpoint. (One
	// in-process chatd at a time: protoactor sets grpc's global logger as
	// a node starts, which races with another node's logging.)
	s.Stop()
	plain := startServer(t)
	if status, _, _ := anonPost(t, plain, "/anonymous", "", "", nil); status != http.StatusNotFound {
		t.Error("POST /anonymous answered without --anonymous-visitors")
	}
}
