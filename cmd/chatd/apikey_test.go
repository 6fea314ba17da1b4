package main

// End-to-end tests of API keys (issue 17) on PostgreSQL: keys made and
// revoked by the real `chatd apikey` command (a subprocess), a chatd that
// serves the REST API to them, real WebSocket clients that see what a key's
// bot does, and the keys managed over REST.

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// keyPattern finds a key in chatd apikey create's output.
var keyPattern = regexp.MustCompile(`gck_[A-Za-z0-9_-]{43}`)

// chatdCommand runs the chatd binary with args and an environment without
// CHAT_ variables, and returns its stdout, stderr and exit status.
func chatdCommand(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := exec.Command(chatdBinary(t), args...)
	cmd.Env = []string{"HOME=" + t.TempDir()}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		status = ee.ExitCode()
	case err != nil:
		t.Fatalf("chatd %q: %v", args, err)
	}
	return out.String(), errb.String(), status
}

// createKey runs chatd apikey create and returns the key it printed.
func createKey(t *testing.T, dsn, name string) string {
	t.Helper()
	out, errOut, status := chatdCommand(t, "apikey", "create", "--name", name, "--database-url", dsn)
	keys := keyPattern.FindAllString(out, -1)
	if status != 0 || len(keys) == 0 || !strings.Contains(out, "shown this once") {
		t.Fatalf("chatd apikey create --name %q: status %d, keys %q\nstdout:\n%s\nstderr:\n%s", name, status, keys, out, errOut)
	}
	for _, k := range keys {
		if k != keys[0] {
			t.Fatalf("chatd apikey create printed two keys: %q", keys)
		}
	}
	return keys[0]
}

// countFrames counts c's frames that match.
func countFrames(c *wsclient.Client, match func(wsclient.Frame) bool) int {
	n := 0
	for _, f := range c.Frames() {
		if match(f) {
			n++
		}
	}
	return n
}

// TestAPIKeyFlows: a key from the command line replies, assigns, resolves,
// notes and reads as its bot, seen live by a visitor and an agent; a
// revoked key gets 401; no token becomes the bot; keys are managed over REST
// by staff with a token only.
func TestAPIKeyFlows(t *testing.T) {
	dsn := newDatabase(t)

	// The command line, before any server ran: it migrates the database.
	if _, errOut, status := chatdCommand(t, "apikey", "create", "--name", "crm"); status != 1 || !strings.Contains(errOut, "--database-url") {
		t.Errorf("chatd apikey create without a database: status %d, stderr %q; want 1 and a word on --database-url", status, errOut)
	}
	key := createKey(t, dsn, "CRM Bot")
	if _, errOut, status := chatdCommand(t, "apikey", "create", "--name", "crm bot", "--database-url", dsn); status != 1 || !strings.Contains(errOut, "name") {
		t.Errorf("a second key named crm bot: status %d, stderr %q; want 1, the name taken", status, errOut)
	}
	if _, errOut, status := chatdCommand(t, "apikey", "create", "--name", "crm/bot", "--database-url", dsn); status != 1 || !strings.Contains(errOut, "letters") {
		t.Errorf("a bad name: status %d, stderr %q; want 1 and the rule", status, errOut)
	}

	// The database keeps the key's SHA-256, never the key.
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sum := sha256.Sum256([]byte(key))
	var byHash, withText int
	if err := db.QueryRow(`SELECT count(*) FROM api_keys WHERE key_hash = $1`, sum[:]).Scan(&byHash); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM api_keys k WHERE position($1 in k::text) > 0 OR position($2 in k::text) > 0`,
		key, strings.TrimPrefix(key, "gck_")).Scan(&withText); err != nil {
		t.Fatal(err)
	}
	if byHash != 1 || withText != 0 {
		t.Fatalf("api_keys: %d rows with the key's hash, %d holding its text; want 1 and 0", byHash, withText)
	}

	s := startServer(t, "--database-url", dsn)
	api := newAPIClient(t, s)
	ann := mint(t, "ann", "Ann", true)
	annWS := dial(t, s, "ann", "Ann", true, true)
	carl := dial(t, s, "carl", "Carl", false, true)
	carlSeed := dial(t, s, "carl", "Carl", false, false) // the original document's dialect
	conv := convOf(t, carl)
	post(t, carl, conv, "where is my order?", "c1")
	path := fmt.Sprintf("/conversations/%d", conv)

	var botID float64
	t.Run("reads", func(t *testing.T) {
		a := api.call("GET", "/conversations?status=open", key, nil)
		if a.status != 200 || findConversation(a, conv) == nil {
			t.Fatalf("list with the key: %d %s", a.status, a.raw)
		}
		staff := api.call("GET", "/staff", key, nil)
		for _, u := range staff.body["staff"].([]any) {
			if u := u.(map[string]any); u["external_id"] == "apikey:crm bot" && u["name"] == "CRM Bot" {
				botID = u["id"].(float64)
			}
		}
		if botID == 0 {
			t.Fatalf("the bot is not among the staff: %s", staff.raw)
		}
	})

	t.Run("reply", func(t *testing.T) {
		const text = "Your order ships today."
		a := api.call("POST", path+"/messages", key, map[string]any{"message": text, "client_msg_id": "crm-1"})
		m, _ := a.body["message"].(map[string]any)
		if a.status != 201 || m["sender_name"] != "CRM Bot" || m["sender_is_admin"] != true || m["sender_id"] != botID {
			t.Fatalf("post with the key: %d %s", a.status, a.raw)
		}
		f, _ := waitMsg(t, carl, conv, text)
		if f.String("sender_name") != "CRM Bot" || f.Fields["sender_is_admin"] != true || float64(f.Int("sender_id")) != botID {
			t.Errorf("the visitor's frame: %s", f.Raw)
		}
		seed := waitMessage(t, carlSeed, text)
		if seed.String("sender_name") != "CRM Bot" || seed.Fields["sender_is_admin"] != true {
			t.Errorf("the seed visitor's frame: %s", seed.Raw)
		}
		staff, _ := waitMsg(t, annWS, conv, text)
		if staff.String("sender_name") != "CRM Bot" {
			t.Errorf("the agent's frame: %s", staff.Raw)
		}
		// The same client_msg_id again stores nothing.
		if a := api.call("POST", path+"/messages", key, map[string]any{"message": text, "client_msg_id": "crm-1"}); a.status != 201 || a.body["duplicate"] != true {
			t.Errorf("resend: %d %s", a.status, a.raw)
		}
		byBot := func(f wsclient.Frame) bool { return isMessage(f) && f.String("sender_name") == "CRM Bot" }
		if n := countFrames(carl, byBot); n != 1 {
			t.Errorf("the visitor got %d messages from the bot, want 1:%s", n, dump(carl))
		}
	})

	t.Run("assign and resolve", func(t *testing.T) {
		from := len(annWS.Frames())
		a := api.call("PATCH", path, key, map[string]any{"assignee": "apikey:crm bot", "status": "pending"})
		if a.status != 200 || a.body["status"] != "pending" || a.body["assignee"].(map[string]any)["name"] != "CRM Bot" {
			t.Fatalf("assign to the bot: %d %s", a.status, a.raw)
		}
		f, _ := waitEvent(t, annWS, from, conv, "assignee", "apikey:crm bot")
		if actor, _ := obj(f, "event")["actor"].(map[string]any); actor["name"] != "CRM Bot" {
			t.Errorf("the assignee event's actor: %s", f.Raw)
		}
		waitEvent(t, annWS, from, conv, "status", "pending")
		if a := api.call("PATCH", path, key, map[string]any{"assignee": "ann", "status": "resolved"}); a.status != 200 || a.body["status"] != "resolved" {
			t.Fatalf("assign to ann and resolve: %d %s", a.status, a.raw)
		}
		waitEvent(t, annWS, from, conv, "status", "resolved")
		waitEvent(t, annWS, from, conv, "assignee", "ann")
		if a := api.call("GET", "/conversations?status=resolved&assignee=ann", ann, nil); findConversation(a, conv) == nil {
			t.Errorf("not in ann's resolved view: %s", a.raw)
		}
		if a := api.call("POST", path+"/notes", key, map[string]any{"body": "synced to the CRM"}); a.status != 201 || a.body["kind"] != "note" {
			t.Errorf("note with the key: %d %s", a.status, a.raw)
		}
		if a := api.call("POST", path+"/read", key, map[string]any{"seq": 2}); a.status != 204 {
			t.Errorf("read mark with the key: %d %s", a.status, a.raw)
		}
		msgs := api.call("GET", path+"/messages", key, nil)
		if list, _ := msgs.body["messages"].([]any); msgs.status != 200 || len(list) != 2 {
			t.Errorf("messages with the key: %d %s", msgs.status, msgs.raw)
		}
	})

	t.Run("no token is the bot", func(t *testing.T) {
		for _, sub := range []string{"apikey:crm bot", "APIKEY:crm bot", "apikey:other"} {
			tok := handToken(map[string]any{"alg": "HS256", "typ": "JWT"},
				map[string]any{"sub": sub, "name": "Mallory", "admin": true, "exp": time.Now().Add(time.Hour).Unix()}, []byte(testSecret))
			if a := api.call("GET", "/conversations", tok, nil); a.status != 401 || a.code() != "invalid_token" {
				t.Errorf("REST with a token of sub %q: %d %s, want 401 invalid_token", sub, a.status, a.raw)
			}
			c, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Token: tok, V1: true})
			if err == nil {
				c.Close()
				t.Errorf("a socket with a token of sub %q was accepted", sub)
			} else if c == nil || c.Resp == nil || c.Resp.StatusCode != 401 {
				t.Errorf("a socket with a token of sub %q: %v, want 401", sub, err)
			}
		}
		if a := api.call("GET", "/conversations", mint(t, "carl", "Carl", false), nil); a.status != 403 || a.code() != "forbidden" {
			t.Errorf("a visitor's token: %d %s", a.status, a.raw)
		}
		var name string
		var admin bool
		if err := db.QueryRow(`SELECT name, is_admin FROM users WHERE external_id = 'apikey:crm bot'`).Scan(&name, &admin); err != nil || name != "CRM Bot" || !admin {
			t.Errorf("the bot after the attempts: %q admin %v, %v", name, admin, err)
		}
		var users int
		if err := db.QueryRow(`SELECT count(*) FROM users WHERE lower(external_id) LIKE 'apikey:%'`).Scan(&users); err != nil || users != 1 {
			t.Errorf("%d users with a bot's external id, %v; want the bot only", users, err)
		}
	})

	t.Run("managed over REST", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{{"GET", "/api_keys"}, {"POST", "/api_keys"}, {"DELETE", "/api_keys/1"}} {
			var body any
			if c.method == "POST" {
				body = map[string]any{"name": "successor"}
			}
			if a := api.call(c.method, c.path, key, body); a.status != 403 || a.code() != "forbidden" {
				t.Errorf("%s %s with a key: %d %s, want 403 forbidden", c.method, c.path, a.status, a.raw)
			}
		}
		created := api.call("POST", "/api_keys", ann, map[string]any{"name": " helpdesk "})
		second, _ := created.body["key"].(string)
		if created.status != 201 || !keyPattern.MatchString(second) || created.body["name"] != "helpdesk" ||
			created.body["created_by"].(map[string]any)["external_id"] != "ann" || created.body["bot"].(map[string]any)["external_id"] != "apikey:helpdesk" {
			t.Fatalf("create: %d %s", created.status, created.raw)
		}
		id := int64(created.body["id"].(float64))
		if a := api.call("GET", "/staff", second, nil); a.status != 200 {
			t.Errorf("the new key: %d %s", a.status, a.raw)
		}
		for _, c := range []struct {
			body   any
			status int
			code   string
		}{
			{map[string]any{"name": "HelpDesk"}, 409, "name_taken"},
			{map[string]any{"name": "help/desk"}, 400, "invalid_request"},
			{map[string]any{"name": strings.Repeat("x", 65)}, 400, "invalid_request"},
			{map[string]any{}, 400, "invalid_request"},
			{map[string]any{"name": "x", "scope": "all"}, 400, "invalid_request"},
			{map[string]any{"name": 7}, 400, "invalid_request"},
			{"[]", 400, "invalid_request"},
			{"nope", 400, "invalid_json"},
		} {
			if a := api.call("POST", "/api_keys", ann, c.body); a.status != c.status || a.code() != c.code {
				t.Errorf("create %v: %d %s, want %d %s", c.body, a.status, a.raw, c.status, c.code)
			}
		}
		list := api.call("GET", "/api_keys", ann, nil)
		keys, _ := list.body["api_keys"].([]any)
		if list.status != 200 || len(keys) != 2 || keys[0].(map[string]any)["name"] != "helpdesk" || keys[1].(map[string]any)["name"] != "CRM Bot" ||
			keys[1].(map[string]any)["created_by"] != nil || strings.Contains(string(list.raw), "gck_") {
			t.Fatalf("list: %d %s", list.status, list.raw)
		}
		// The keys' use is recorded in the background, within seconds.
		waitFor(t, 20*time.Second, "the keys' last_used_at", func() bool {
			for _, k := range api.call("GET", "/api_keys", ann, nil).body["api_keys"].([]any) {
				if k.(map[string]any)["last_used_at"] == nil {
					return false
				}
			}
			return true
		})

		if a := api.call("DELETE", fmt.Sprintf("/api_keys/%d", id), ann, nil); a.status != 204 {
			t.Fatalf("revoke: %d %s", a.status, a.raw)
		}
		if a := api.call("GET", "/staff", second, nil); a.status != 401 || a.code() != "invalid_token" {
			t.Errorf("a key revoked over REST: %d %s, want 401 invalid_token", a.status, a.raw)
		}
		if a := api.call("DELETE", fmt.Sprintf("/api_keys/%d", id), ann, nil); a.status != 204 {
			t.Errorf("revoke again: %d %s", a.status, a.raw)
		}
		for _, p := range []string{"/api_keys/999999", "/api_keys/abc", "/api_keys/0"} {
			if a := api.call("DELETE", p, ann, nil); a.status != 404 || a.code() != "api_key_not_found" {
				t.Errorf("DELETE %s: %d %s", p, a.status, a.raw)
			}
		}
		if a := api.call("PATCH", "/api_keys/1", ann, nil); a.status != 405 || a.header.Get("Allow") != "DELETE" {
			t.Errorf("PATCH a key: %d %s", a.status, a.raw)
		}
		if a := api.call("GET", "/api_keys", ann, nil); len(a.body["api_keys"].([]any)) != 1 {
			t.Errorf("list after the revocation: %s", a.raw)
		}
		all := api.call("GET", "/api_keys?revoked=true", ann, nil)
		if keys := all.body["api_keys"].([]any); len(keys) != 2 || keys[0].(map[string]any)["revoked_at"] == nil {
			t.Errorf("list with the revoked: %s", all.raw)
		}
		if a := api.call("GET", "/api_keys?revoked=maybe", ann, nil); a.status != 400 || a.code() != "invalid_request" {
			t.Errorf("revoked=maybe: %d %s", a.status, a.raw)
		}
	})

	t.Run("revoked from the command line", func(t *testing.T) {
		for _, bad := range []string{"gck_" + strings.Repeat("A", 43), "gck_", "gck_" + strings.Repeat("x", 9000)} {
			if a := api.call("GET", "/conversations", bad, nil); a.status != 401 || a.code() != "invalid_token" {
				t.Errorf("an unknown key: %d %s", a.status, a.raw)
			}
		}
		out, errOut, status := chatdCommand(t, "apikey", "revoke", "--name", "crm bot", "--database-url", dsn)
		if status != 0 || !strings.Contains(out, "revoked") {
			t.Fatalf("chatd apikey revoke: status %d\nstdout:\n%s\nstderr:\n%s", status, out, errOut)
		}
		for _, p := range []string{"/conversations", "/staff", path} {
			if a := api.call("GET", p, key, nil); a.status != 401 || a.code() != "invalid_token" {
				t.Errorf("GET %s with the revoked key: %d %s, want 401 invalid_token", p, a.status, a.raw)
			}
		}
		if _, _, status := chatdCommand(t, "apikey", "revoke", "--name", "crm bot", "--database-url", dsn); status != 1 {
			t.Errorf("revoking a name no valid key has: status %d, want 1", status)
		}
		out, _, status = chatdCommand(t, "apikey", "list", "--all", "--database-url", dsn)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if status != 0 || len(lines) != 3 || !strings.Contains(lines[1], "helpdesk") || !strings.Contains(lines[2], "CRM Bot") {
			t.Errorf("chatd apikey list --all: status %d\n%s", status, out)
		}
		if out, _, _ := chatdCommand(t, "apikey", "list", "--database-url", dsn); strings.TrimSpace(out) != "no API keys" {
			t.Errorf("chatd apikey list: %q, want no API keys", out)
		}
		// The bot's reply keeps its sender.
		msgs := api.call("GET", path+"/messages", ann, nil)
		if list := msgs.body["messages"].([]any); len(list) != 2 || list[1].(map[string]any)["sender_name"] != "CRM Bot" {
			t.Errorf("messages after the revocation: %s", msgs.raw)
		}
	})
}

// TestAPIKeyRateLimited: a key has its own bucket of the staff rate.
func TestAPIKeyRateLimited(t *testing.T) {
	s := startServer(t, "--staff-message-rate", "1", "--staff-message-burst", "3")
	api := newAPIClient(t, s)
	ann := mint(t, "ann", "Ann", true)
	created := api.call("POST", "/api_keys", ann, map[string]any{"name": "crm"})
	key, _ := created.body["key"].(string)
	if created.status != 201 || key == "" {
		t.Fatalf("create: %d %s", created.status, created.raw)
	}
	var got []int
	for range 5 {
		got = append(got, api.call("GET", "/conversations", key, nil).status)
	}
	a := api.call("GET", "/conversations", key, nil)
	if fmt.Sprint(got[:3]) != "[200 200 200]" || a.status != 429 || a.code() != "rate_limited" || a.header.Get("Retry-After") == "" {
		t.Errorf("statuses %v then %d %s", got, a.status, a.raw)
	}
	// The agent who made it has a bucket of their own.
	if a := api.call("GET", "/api_keys", ann, nil); a.status != 200 {
		t.Errorf("ann: %d %s", a.status, a.raw)
	}
}
