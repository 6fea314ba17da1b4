package main

// A visitor's details from their token (email and ctx claims): stored,
// shown to staff over REST, bounded (docs/API.md, docs/PROTOCOL.md).

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/wsclient"
)

// mintDetails signs a visitor token with email and ctx claims.
func mintDetails(t *testing.T, sub, name, email, ctx string) string {
	t.Helper()
	iss, err := auth.NewIssuer(auth.Config{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Mint(auth.Identity{Subject: sub, Name: name, Email: email, Context: ctx}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVisitorDetailsFromToken(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	api := newAPIClient(t, s)
	ann := mint(t, "ann", "Ann", true)
	dial(t, s, "ann", "Ann", true, true)

	tok := mintDetails(t, "vera", "Vera", "vera@example.com", `{"plan":"pro","account_id":42,"vip":true,"tag":"<b>x</b>"}`)
	vera, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Token: tok, V1: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vera.Close)
	conv := convOf(t, vera)
	post(t, vera, conv, "hello", "v1")

	r := api.call("GET", fmt.Sprintf("/conversations/%d", conv), ann, nil)
	u, _ := r.body["user"].(map[string]any)
	c, _ := u["context"].(map[string]any)
	if r.status != 200 || u["email"] != "vera@example.com" || c["plan"] != "pro" || c["account_id"] != float64(42) ||
		c["vip"] != true || c["tag"] != "<b>x</b>" || len(c) != 4 || u["name"] != "Vera" {
		t.Errorf("GET conversation: %d %s", r.status, r.raw)
	}
	list := api.call("GET", "/conversations", ann, nil)
	if e := findConversation(list, conv); e == nil || obj2(e, "user")["email"] != "vera@example.com" {
		t.Errorf("GET conversations: %s", list.raw)
	}

	// A token without them clears them; a staff member without them shows nulls.
	plain := dialURL(t, s.URL(), "vera", "Vera", false)
	plain.Close()
	r = api.call("GET", fmt.Sprintf("/conversations/%d", conv), ann, nil)
	if u := obj2(r.body, "user"); r.status != 200 || u["email"] != nil || u["context"] != nil {
		t.Errorf("after a token without details: %s", r.raw)
	}

	// Refused at the handshake, with a 401 and nothing stored.
	for _, bad := range []struct{ email, ctx string }{
		{"not an address", ""},
		{"", `{"nested":{"a":1}}`},
		{"", `{"big":"` + strings.Repeat("x", 600) + `"}`},
		{"", `[1]`},
	} {
		c, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Token: mintDetails(t, "vera", "Vera", bad.email, bad.ctx), V1: true})
		if err == nil {
			c.Close()
			t.Errorf("token with email %q ctx %q: connected", bad.email, bad.ctx)
			continue
		}
		if c == nil || c.Resp == nil || c.Resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token with email %q ctx %q: %v, want 401", bad.email, bad.ctx, err)
		}
	}
}

// obj2 is m[key] as an object (nil if it is not one).
func obj2(m map[string]any, key string) map[string]any {
	o, _ := m[key].(map[string]any)
	return o
}
