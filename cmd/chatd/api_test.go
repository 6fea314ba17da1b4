package main

// End-to-end tests of the REST API (docs/API.md) on a real chatd with
// PostgreSQL: every answer is checked against docs/openapi.yaml, every
// documented error is provoked, and what the API does reaches WebSocket
// clients live.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// apiClient calls one server's REST API and checks every answer against the
// OpenAPI description.
type apiClient struct {
	t      *testing.T
	base   string
	router routers.Router
}

func newAPIClient(t *testing.T, s *testServer) *apiClient {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(filepath.Join(root, "docs", "openapi.yaml"))
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	base := "http://" + s.Addr + "/api/v1"
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	return &apiClient{t: t, base: base, router: router}
}

// apiAnswer is one answer: its status, headers and JSON body.
type apiAnswer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (a apiAnswer) code() string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// call sends a request (token "": no Authorization header; body nil: none)
// and checks the answer against the OpenAPI description.
func (c *apiClient) call(method, path, token string, body any, header ...string) apiAnswer {
	c.t.Helper()
	var rd io.Reader
	var sent []byte
	if body != nil {
		switch b := body.(type) {
		case string:
			sent = []byte(b)
		default:
			sent, _ = json.Marshal(b)
		}
		rd = bytes.NewReader(sent)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := apiAnswer{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			c.t.Fatalf("%s %s: %d with a body that is not a JSON object: %s", method, path, resp.StatusCode, raw)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			c.t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
	}
	c.checkSpec(req, sent, resp, raw)
	return out
}

// checkSpec validates an answer against docs/openapi.yaml: its status is
// documented for the operation and its body matches the schema.
func (c *apiClient) checkSpec(req *http.Request, sent []byte, resp *http.Response, raw []byte) {
	c.t.Helper()
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			return // a path or method the API does not have: checked by the caller
		}
		c.t.Errorf("%s %s: not in docs/openapi.yaml: %v", req.Method, req.URL.Path, err)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(sent))
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(raw)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		c.t.Errorf("%s %s → %d %s: does not match docs/openapi.yaml: %v", req.Method, req.URL.Path, resp.StatusCode, raw, err)
	}
}

// findConversation returns conversation conv of a list answer.
func findConversation(a apiAnswer, conv int64) map[string]any {
	list, _ := a.body["conversations"].([]any)
	for _, e := range list {
		if m := e.(map[string]any); m["id"] == float64(conv) {
			return m
		}
	}
	return nil
}

func TestAPIMatchesOpenAPI(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	api := newAPIClient(t, s)
	ann, bob := mint(t, "ann", "Ann", true), mint(t, "bob", "Bob", true)
	annWS := dial(t, s, "ann", "Ann", true, true)
	dial(t, s, "bob", "Bob", true, true) // bob is staff the store knows
	carl := dial(t, s, "carl", "Carl", false, true)
	conv := convOf(t, carl)
	post(t, carl, conv, "my order is late", "c1")
	post(t, carl, conv, "order 1234", "c2")
	path := fmt.Sprintf("/conversations/%d", conv)

	t.Run("authentication", func(t *testing.T) {
		cases := []struct {
			name   string
			token  string
			header []string
			status int
			code   string
		}{
			{"no token", "", nil, 401, "invalid_token"},
			{"cookie only", "", []string{"Cookie", "chat_token=" + ann}, 401, "invalid_token"},
			{"query only", "", nil, 401, "invalid_token"},
			{"bad token", "not.a.token", nil, 401, "invalid_token"},
			{"expired", handToken(map[string]any{"alg": "HS256", "typ": "JWT"},
				map[string]any{"sub": "ann", "admin": true, "exp": time.Now().Add(-time.Minute).Unix()}, []byte(testSecret)), nil, 401, "token_expired"},
			{"visitor", mint(t, "carl", "Carl", false), nil, 403, "forbidden"},
		}
		for _, c := range cases {
			p := "/conversations"
			if c.name == "query only" {
				p += "?token=" + ann
			}
			a := api.call("GET", p, c.token, nil, c.header...)
			if a.status != c.status || a.code() != c.code {
				t.Errorf("%s: %d %s, want %d %s", c.name, a.status, a.raw, c.status, c.code)
			}
		}
	})

	t.Run("list and get", func(t *testing.T) {
		a := api.call("GET", "/conversations", ann, nil)
		e := findConversation(a, conv)
		if a.status != 200 || e == nil {
			t.Fatalf("list: %d %s", a.status, a.raw)
		}
		if e["status"] != "open" || e["assignee"] != nil || e["unread"] != 2.0 || e["last_seq"] != 2.0 ||
			e["user"].(map[string]any)["external_id"] != "carl" || e["last_message"].(map[string]any)["message"] != "order 1234" {
			t.Errorf("entry %v", e)
		}
		if a.body["next_cursor"] != nil {
			t.Errorf("one conversation, next_cursor %v", a.body["next_cursor"])
		}
		for _, q := range []string{"status=resolved", "assignee=me", "assignee=bob", "q=absentword"} {
			if a := api.call("GET", "/conversations?"+q, ann, nil); a.status != 200 || findConversation(a, conv) != nil {
				t.Errorf("%s: %d %s", q, a.status, a.raw)
			}
		}
		// PostgreSQL indexes messages for search in the background (within
		// about half a second; up to 30 s while the store is saturated, as
		// a loaded test machine can make it): poll until the word is found.
		waitFor(t, 45*time.Second, "the search index to have the messages", func() bool {
			return findConversation(api.call("GET", "/conversations?q=order", ann, nil), conv) != nil
		})
		for _, q := range []string{"status=open", "status=all", "assignee=none", "assignee=any", "q=order", "q=carl", "limit=1"} {
			if a := api.call("GET", "/conversations?"+q, ann, nil); a.status != 200 || findConversation(a, conv) == nil {
				t.Errorf("%s: %d %s", q, a.status, a.raw)
			}
		}
		for _, q := range []string{"status=closed", "limit=0", "limit=101", "limit=x", "cursor=garbage", "assignee=carl", "q=" + strings.Repeat("x", 201)} {
			if a := api.call("GET", "/conversations?"+q, ann, nil); a.status != 400 || a.code() != "invalid_request" {
				t.Errorf("%s: %d %s, want 400 invalid_request", q, a.status, a.raw)
			}
		}
		if a := api.call("GET", path, ann, nil); a.status != 200 || a.body["id"] != float64(conv) || a.body["unread"] != 2.0 {
			t.Errorf("get: %d %s", a.status, a.raw)
		}
		for _, p := range []string{"/conversations/999999", "/conversations/abc", "/conversations/0"} {
			if a := api.call("GET", p, ann, nil); a.status != 404 || a.code() != "conversation_not_found" {
				t.Errorf("%s: %d %s", p, a.status, a.raw)
			}
		}
		if a := api.call("GET", "/nothing-here", ann, nil); a.status != 404 || a.code() != "not_found" {
			t.Errorf("unknown endpoint: %d %s", a.status, a.raw)
		}
		if a := api.call("DELETE", path, ann, nil); a.status != 405 || a.code() != "method_not_allowed" || a.header.Get("Allow") != "GET, PATCH" {
			t.Errorf("DELETE a conversation: %d %s", a.status, a.raw)
		}
	})

	t.Run("change", func(t *testing.T) {
		from := len(carl.Frames())
		a := api.call("PATCH", path, ann, map[string]any{"status": "pending", "assignee": "ann"})
		if a.status != 200 || a.body["status"] != "pending" || a.body["assignee"].(map[string]any)["external_id"] != "ann" {
			t.Fatalf("patch: %d %s", a.status, a.raw)
		}
		waitEvent(t, carl, from, conv, "status", "pending")
		waitEvent(t, annWS, 0, conv, "assignee", "ann")
		if a := api.call("GET", "/conversations?assignee=me&status=pending", ann, nil); findConversation(a, conv) == nil {
			t.Errorf("not in ann's pending view: %s", a.raw)
		}
		if a := api.call("PATCH", path, bob, map[string]any{"assignee": nil}); a.status != 200 || a.body["assignee"] != nil {
			t.Errorf("unassign: %d %s", a.status, a.raw)
		}
		for _, b := range []any{map[string]any{"status": "closed"}, map[string]any{"assignee": "carl"}, map[string]any{},
			map[string]any{"colour": "red"}, map[string]any{"status": 3}, map[string]any{"assignee": ""}} {
			if a := api.call("PATCH", path, ann, b); a.status != 400 || a.code() != "invalid_request" {
				t.Errorf("patch %v: %d %s", b, a.status, a.raw)
			}
		}
		if a := api.call("PATCH", path, ann, "{not json"); a.status != 400 || a.code() != "invalid_json" {
			t.Errorf("patch bad json: %d %s", a.status, a.raw)
		}
		if a := api.call("PATCH", "/conversations/999999", ann, map[string]any{"status": "open"}); a.status != 404 || a.code() != "conversation_not_found" {
			t.Errorf("patch unknown: %d %s", a.status, a.raw)
		}
	})

	t.Run("messages", func(t *testing.T) {
		from := len(carl.Frames())
		a := api.call("POST", path+"/messages", ann, map[string]any{"message": " Hello from the API ", "client_msg_id": "api-1", "based_on_seq": 2})
		if a.status != 201 || a.body["duplicate"] != false {
			t.Fatalf("post: %d %s", a.status, a.raw)
		}
		m := a.body["message"].(map[string]any)
		if m["seq"] != 3.0 || m["message"] != "Hello from the API" || m["sender_is_admin"] != true || m["client_msg_id"] != "api-1" {
			t.Errorf("posted %v", m)
		}
		waitFrame(t, carl, from, "the API's reply", func(f wsclient.Frame) bool {
			return isMessage(f) && f.String("message") == "Hello from the API" && f.Int("seq") == 3
		})
		if a := api.call("POST", path+"/messages", ann, map[string]any{"message": "Hello from the API", "client_msg_id": "api-1"}); a.status != 201 || a.body["duplicate"] != true || a.body["message"].(map[string]any)["seq"] != 3.0 {
			t.Errorf("resend: %d %s", a.status, a.raw)
		}
		// Stale: bob saw seq 2 only; ann's seq 3 came after.
		a = api.call("POST", path+"/messages", bob, map[string]any{"message": "late", "client_msg_id": "b-1", "based_on_seq": 2})
		if a.status != 409 || a.code() != "stale_reply" || a.body["error"].(map[string]any)["last_seq"] != 3.0 {
			t.Errorf("stale: %d %s", a.status, a.raw)
		}
		if a := api.call("POST", path+"/messages", bob, map[string]any{"message": "late", "client_msg_id": "b-1", "based_on_seq": 2, "force": true}); a.status != 201 {
			t.Errorf("forced: %d %s", a.status, a.raw)
		}
		for _, c := range []struct {
			body any
			code string
		}{
			{map[string]any{"message": "   "}, "empty_message"},
			{map[string]any{}, "empty_message"},
			{map[string]any{"message": strings.Repeat("x", 4001)}, "message_too_long"},
			{map[string]any{"message": "a\x00b"}, "invalid_text"},
			{map[string]any{"message": "x", "client_msg_id": strings.Repeat("k", 101)}, "invalid_request"},
			{map[string]any{"message": "x", "extra": 1}, "invalid_request"},
			{map[string]any{"message": 5}, "invalid_request"},
			{"[1,2]", "invalid_request"},
		} {
			if a := api.call("POST", path+"/messages", ann, c.body); a.status != 400 || a.code() != c.code {
				t.Errorf("post %v: %d %s, want 400 %s", c.body, a.status, a.raw, c.code)
			}
		}
		if a := api.call("POST", "/conversations/999999/messages", ann, map[string]any{"message": "x"}); a.status != 404 || a.code() != "conversation_not_found" {
			t.Errorf("post unknown: %d %s", a.status, a.raw)
		}
		big := `{"message":"` + strings.Repeat("x", 70<<10) + `"}`
		if a := api.call("POST", path+"/messages", ann, big); a.status != 413 {
			t.Errorf("a 70 KiB body: %d %s", a.status, a.raw)
		}
		a = api.call("GET", path+"/messages?limit=2", ann, nil)
		msgs, _ := a.body["messages"].([]any)
		if a.status != 200 || len(msgs) != 2 || a.body["has_more"] != true || msgs[0].(map[string]any)["seq"] != 1.0 {
			t.Errorf("messages page: %d %s", a.status, a.raw)
		}
		a = api.call("GET", path+"/messages?after_seq=1", ann, nil)
		msgs, _ = a.body["messages"].([]any)
		if a.status != 200 || len(msgs) != 3 || a.body["has_more"] != false {
			t.Errorf("messages after 1: %d %s", a.status, a.raw)
		}
		// pending, assigned to ann, unassigned: all after seq 2, which
		// this page holds (a page shows the events after its messages).
		if evs, _ := a.body["events"].([]any); len(evs) != 3 {
			t.Errorf("events after seq 2: %s", a.raw)
		}
		if a := api.call("GET", path+"/messages?after_seq=-1", ann, nil); a.status != 400 {
			t.Errorf("after_seq=-1: %d %s", a.status, a.raw)
		}
	})

	t.Run("read", func(t *testing.T) {
		from := len(annWS.Frames())
		if a := api.call("POST", path+"/read", ann, map[string]any{"seq": 3}); a.status != 204 || len(a.raw) != 0 {
			t.Fatalf("read: %d %s", a.status, a.raw)
		}
		if f, _ := waitType(t, annWS, from, "read"); f.Int("read_seq") != 3 {
			t.Errorf("ann's socket: %s", f.Raw)
		}
		api.call("POST", path+"/read", ann, map[string]any{"seq": 1})
		if a := api.call("GET", path, ann, nil); a.body["read_seq"] != 3.0 || a.body["unread"] != 1.0 {
			t.Errorf("after reading to 3 (and then 1): %s", a.raw) // seq 4 is bob's
		}
		for _, b := range []any{map[string]any{}, map[string]any{"seq": -1}, map[string]any{"seq": "x"}} {
			if a := api.call("POST", path+"/read", ann, b); a.status != 400 {
				t.Errorf("read %v: %d %s", b, a.status, a.raw)
			}
		}
		if a := api.call("POST", "/conversations/999999/read", ann, map[string]any{"seq": 1}); a.status != 404 || a.code() != "conversation_not_found" {
			t.Errorf("read unknown: %d %s", a.status, a.raw)
		}
	})
}

// TestAPIRateLimited: an agent over the staff rate gets 429 rate_limited
// with Retry-After.
func TestAPIRateLimited(t *testing.T) {
	s := startServer(t, "--staff-message-rate", "1", "--staff-message-burst", "3")
	api := newAPIClient(t, s)
	ann := mint(t, "ann", "Ann", true)
	var got []int
	for range 5 {
		got = append(got, api.call("GET", "/conversations", ann, nil).status)
	}
	a := api.call("GET", "/conversations", ann, nil)
	if fmt.Sprint(got[:3]) != "[200 200 200]" || a.status != 429 || a.code() != "rate_limited" || a.header.Get("Retry-After") == "" {
		t.Errorf("statuses %v then %d %s", got, a.status, a.raw)
	}
	// Another agent has its own bucket.
	if a := api.call("GET", "/conversations", mint(t, "bob", "Bob", true), nil); a.status != 200 {
		t.Errorf("bob: %d %s", a.status, a.raw)
	}
}
