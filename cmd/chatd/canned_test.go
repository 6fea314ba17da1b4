package main

// End-to-end tests of the canned replies and the staff list (issue 15): the
// WebSocket's canned, canned_save, canned_delete and staff frames and the
// REST API's /canned_replies and /staff, on real chatd servers with
// PostgreSQL and real WebSocket clients; every REST answer is checked
// against docs/openapi.yaml.

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/grainchat/grainchat/transport/wsclient"
)

// cannedAsk sends a canned request and returns its answer, a canned or
// staff frame, failing on an error frame.
func cannedAsk(t testing.TB, c *wsclient.Client, req map[string]any) wsclient.Frame {
	t.Helper()
	f := cannedAnswer(t, c, req)
	if f.Type() == "error" {
		t.Fatalf("%v: got %s", req, f.Raw)
	}
	return f
}

// cannedRefused sends a canned request and returns the code of the error
// frame it gets.
func cannedRefused(t testing.TB, c *wsclient.Client, req map[string]any) string {
	t.Helper()
	f := cannedAnswer(t, c, req)
	if f.Type() != "error" {
		t.Fatalf("%v: got %s, want an error", req, f.Raw)
	}
	if _, ok := f.Fields["conversation_id"]; ok {
		t.Errorf("%v: the error names a conversation: %s", req, f.Raw)
	}
	return f.String("code")
}

// cannedAnswer sends req and waits for the next canned, staff or error frame.
func cannedAnswer(t testing.TB, c *wsclient.Client, req map[string]any) wsclient.Frame {
	t.Helper()
	from := len(c.Frames())
	send(t, c, req)
	f, _ := waitFrame(t, c, from, fmt.Sprintf("the answer to %v", req), func(f wsclient.Frame) bool {
		return f.Type() == "canned" || f.Type() == "staff" || f.Type() == "error"
	})
	return f
}

// replies is a canned frame's list (or a REST answer's canned_replies).
func replies(t testing.TB, list any) []map[string]any {
	t.Helper()
	items, ok := list.([]any)
	if !ok {
		t.Fatalf("a list of canned replies: %v", list)
	}
	out := make([]map[string]any, len(items))
	for i, x := range items {
		out[i] = x.(map[string]any)
	}
	return out
}

// replyNames is the names of a list of replies, in order.
func replyNames(list []map[string]any) []string {
	var out []string
	for _, r := range list {
		out = append(out, r["name"].(string))
	}
	return out
}

// findReply returns the reply named name, nil when there is none.
func findReply(list []map[string]any, name string) map[string]any {
	for _, r := range list {
		if r["name"] == name {
			return r
		}
	}
	return nil
}

// checkReply checks a reply object's shape: id, name, body, updated_at in
// the wire's time format, updated_by the given staff user.
func checkReply(t testing.TB, r map[string]any, name, body, by string) {
	t.Helper()
	u, _ := r["updated_by"].(map[string]any)
	at, _ := r["updated_at"].(string)
	if id, _ := r["id"].(float64); id <= 0 || r["name"] != name || r["body"] != body || !wireTime.MatchString(at) ||
		u == nil || u["external_id"] != by || u["id"] == nil || u["name"] == nil {
		t.Errorf("reply %v, want name %q, body %q, by %s", r, name, body, by)
	}
}

// TestCannedReplies: staff create, list, rename, edit and delete the team's
// canned replies over the WebSocket and see each other's changes; names are
// unique in lower case; visitors are refused; seed-dialect frames change
// nothing and get no answer.
func TestCannedReplies(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	ann := dial(t, s, "ann", "Ann", true, true)
	bob := dial(t, s, "bob", "Bob", true, true)
	carl := dial(t, s, "carl", "Carl", false, true)
	eve := dial(t, s, "eve", "Eve", true, false) // seed-dialect staff

	if f := cannedAsk(t, ann, map[string]any{"type": "canned"}); len(replies(t, f.Fields["replies"])) != 0 {
		t.Fatalf("no replies yet: %s", f.Raw)
	}
	f := cannedAsk(t, ann, map[string]any{"type": "canned_save", "name": " Greeting ", "body": "  Hello! How can I help?\n"})
	saved := obj(f, "saved")
	checkReply(t, saved, "greeting", "Hello! How can I help?", "ann")
	if list := replies(t, f.Fields["replies"]); len(list) != 1 || fmt.Sprint(list[0]) != fmt.Sprint(saved) {
		t.Fatalf("the list after the first save: %s", f.Raw)
	}
	greeting := int64(saved["id"].(float64))

	// Bob sees it, adds his own; the list is sorted by name.
	f = cannedAsk(t, bob, map[string]any{"type": "canned"})
	if _, ok := f.Fields["saved"]; ok || fmt.Sprint(replyNames(replies(t, f.Fields["replies"]))) != "[greeting]" {
		t.Fatalf("bob's list: %s", f.Raw)
	}
	f = cannedAsk(t, bob, map[string]any{"type": "canned_save", "name": "asap", "body": "We are on it."})
	asap := int64(obj(f, "saved")["id"].(float64))
	if got := replyNames(replies(t, f.Fields["replies"])); fmt.Sprint(got) != "[asap greeting]" {
		t.Fatalf("names %v", got)
	}

	// Names are unique whatever their case.
	if code := cannedRefused(t, ann, map[string]any{"type": "canned_save", "name": "ASAP", "body": "x"}); code != "name_taken" {
		t.Errorf("creating a taken name: %s", code)
	}
	if code := cannedRefused(t, bob, map[string]any{"type": "canned_save", "id": asap, "name": "Greeting", "body": "x"}); code != "name_taken" {
		t.Errorf("renaming to a taken name: %s", code)
	}
	// Unknown ids, bad names and texts.
	for _, c := range []struct {
		req  map[string]any
		code string
	}{
		{map[string]any{"type": "canned_delete", "id": 999999999}, "canned_not_found"},
		{map[string]any{"type": "canned_save", "id": 999999999, "name": "x", "body": "x"}, "canned_not_found"},
		{map[string]any{"type": "canned_save", "name": "two words", "body": "x"}, "invalid_request"},
		{map[string]any{"type": "canned_save", "name": strings.Repeat("n", 33), "body": "x"}, "invalid_request"},
		{map[string]any{"type": "canned_save", "name": "x", "body": "   "}, "invalid_request"},
		{map[string]any{"type": "canned_save", "name": "x", "body": strings.Repeat("x", 4001)}, "invalid_request"},
		{map[string]any{"type": "canned_delete"}, "invalid_request"},
	} {
		if code := cannedRefused(t, ann, c.req); code != c.code {
			t.Errorf("%.80v: %s, want %s", c.req, code, c.code)
		}
	}

	// Ann edits bob's reply: her name on it now; then renames it.
	f = cannedAsk(t, ann, map[string]any{"type": "canned_save", "id": asap, "name": "asap", "body": "We are on it!"})
	checkReply(t, obj(f, "saved"), "asap", "We are on it!", "ann")
	f = cannedAsk(t, ann, map[string]any{"type": "canned_save", "id": asap, "name": "soon", "body": "We are on it!"})
	if got := replyNames(replies(t, f.Fields["replies"])); fmt.Sprint(got) != "[greeting soon]" || obj(f, "saved")["id"] != float64(asap) {
		t.Errorf("after the rename: %s", f.Raw)
	}
	f = cannedAsk(t, bob, map[string]any{"type": "canned_delete", "id": asap})
	if _, ok := f.Fields["saved"]; ok || fmt.Sprint(replyNames(replies(t, f.Fields["replies"]))) != "[greeting]" {
		t.Errorf("after the delete: %s", f.Raw)
	}
	if code := cannedRefused(t, ann, map[string]any{"type": "canned_delete", "id": asap}); code != "canned_not_found" {
		t.Errorf("deleting twice: %s", code)
	}

	// The staff list: every staff user who connected, by name; no visitor.
	f = cannedAsk(t, ann, map[string]any{"type": "staff"})
	var staff []string
	for _, u := range f.Fields["staff"].([]any) {
		m := u.(map[string]any)
		if m["id"] == nil || m["name"] == nil {
			t.Errorf("staff entry %v", m)
		}
		staff = append(staff, m["external_id"].(string))
	}
	if fmt.Sprint(staff) != "[ann bob eve]" {
		t.Errorf("staff %v, want [ann bob eve]", staff)
	}

	// Visitors are refused every canned frame.
	for _, typ := range []string{"canned", "canned_save", "canned_delete", "staff"} {
		req := map[string]any{"type": typ, "id": greeting, "name": "mine", "body": "x"}
		if code := cannedRefused(t, carl, req); code != "forbidden" {
			t.Errorf("a visitor's %s: %s", typ, code)
		}
	}

	// A seed-dialect staff client's canned frames change nothing and are
	// not answered: the message it sends after them is the next frame it
	// gets, and its frames stay the document's.
	conv := convOf(t, carl)
	post(t, carl, conv, "hello", "c1")
	send(t, eve, map[string]any{"type": "canned_save", "name": "eve", "body": "from the seed dialect"})
	send(t, eve, map[string]any{"type": "canned_delete", "id": greeting})
	send(t, eve, map[string]any{"type": "canned"})
	send(t, eve, map[string]any{"message": "seed reply", "conversation_id": conv})
	waitMessage(t, eve, "seed reply")
	for _, f := range eve.Frames() {
		checkSeedFrame(t, f)
	}
	if got := replyNames(replies(t, cannedAsk(t, ann, map[string]any{"type": "canned"}).Fields["replies"])); fmt.Sprint(got) != "[greeting]" {
		t.Errorf("after the seed client's frames: %v", got)
	}
	// The visitor never saw a canned frame.
	for _, f := range carl.Frames() {
		if f.Type() == "canned" || f.Type() == "staff" {
			t.Errorf("the visitor got %s", f.Raw)
		}
	}
}

// TestClusterCanned: on a 2-node cluster, a canned reply saved by an agent
// on one node is in the list another agent asks for on the other node, and
// renaming it there to a taken name is refused.
func TestClusterCanned(t *testing.T) {
	c := startAutomanagedCluster(t, newDatabase(t), 2)
	ann := dialURL(t, c.nodes[0].URL(), "ann", "Ann", true)
	bob := dialURL(t, c.nodes[1].URL(), "bob", "Bob", true)

	cannedAsk(t, ann, map[string]any{"type": "canned_save", "name": "hello", "body": "Hello from node 1"})
	f := cannedAsk(t, ann, map[string]any{"type": "canned_save", "name": "bye", "body": "Goodbye"})
	annList := replies(t, f.Fields["replies"])
	bobList := replies(t, cannedAsk(t, bob, map[string]any{"type": "canned"}).Fields["replies"])
	if fmt.Sprint(annList) != fmt.Sprint(bobList) || fmt.Sprint(replyNames(bobList)) != "[bye hello]" {
		t.Fatalf("node 1 saved %v; node 2 lists %v", annList, bobList)
	}
	bye := findReply(bobList, "bye")["id"]
	if code := cannedRefused(t, bob, map[string]any{"type": "canned_save", "id": bye, "name": "HELLO", "body": "x"}); code != "name_taken" {
		t.Errorf("renaming to a taken name on node 2: %s", code)
	}
	cannedAsk(t, bob, map[string]any{"type": "canned_delete", "id": bye})
	if got := replyNames(replies(t, cannedAsk(t, ann, map[string]any{"type": "canned"}).Fields["replies"])); fmt.Sprint(got) != "[hello]" {
		t.Errorf("node 1 after node 2 deleted one: %v", got)
	}
	staff := cannedAsk(t, bob, map[string]any{"type": "staff"}).Fields["staff"].([]any)
	if len(staff) != 2 {
		t.Errorf("staff on node 2: %v", staff)
	}
}

// TestCannedAPI: the REST API's canned replies and staff list, every answer
// checked against docs/openapi.yaml, and the same replies over the
// WebSocket.
func TestCannedAPI(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	api := newAPIClient(t, s)
	ann, bob := mint(t, "ann", "Ann", true), mint(t, "bob", "Bob", true)
	annWS := dial(t, s, "ann", "Ann", true, true)
	dial(t, s, "carl", "Carl", false, true)

	if a := api.call("GET", "/canned_replies", ann, nil); a.status != 200 || len(replies(t, a.body["canned_replies"])) != 0 {
		t.Fatalf("empty list: %d %s", a.status, a.raw)
	}
	a := api.call("POST", "/canned_replies", ann, map[string]any{"name": "Refund", "body": " Your refund is on its way. "})
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	checkReply(t, a.body, "refund", "Your refund is on its way.", "ann")
	refund := int64(a.body["id"].(float64))
	a = api.call("POST", "/canned_replies", bob, map[string]any{"name": "thanks", "body": "Thank you!"})
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	thanks := int64(a.body["id"].(float64))
	// The socket lists what the API created.
	f := cannedAsk(t, annWS, map[string]any{"type": "canned"})
	if got := replyNames(replies(t, f.Fields["replies"])); fmt.Sprint(got) != "[refund thanks]" {
		t.Errorf("the socket's list: %v", got)
	}
	// And the API lists what the socket saved.
	cannedAsk(t, annWS, map[string]any{"type": "canned_save", "name": "hello", "body": "Hi!"})
	a = api.call("GET", "/canned_replies", bob, nil)
	list := replies(t, a.body["canned_replies"])
	if a.status != 200 || fmt.Sprint(replyNames(list)) != "[hello refund thanks]" {
		t.Fatalf("list: %d %s", a.status, a.raw)
	}
	checkReply(t, findReply(list, "thanks"), "thanks", "Thank you!", "bob")

	path := func(id int64) string { return fmt.Sprintf("/canned_replies/%d", id) }
	a = api.call("PATCH", path(thanks), ann, map[string]any{"body": "Thanks a lot!"})
	if a.status != 200 {
		t.Fatalf("patch body: %d %s", a.status, a.raw)
	}
	checkReply(t, a.body, "thanks", "Thanks a lot!", "ann")
	a = api.call("PATCH", path(thanks), ann, map[string]any{"name": "THX"})
	if a.status != 200 {
		t.Fatalf("patch name: %d %s", a.status, a.raw)
	}
	checkReply(t, a.body, "thx", "Thanks a lot!", "ann")

	for _, c := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{"POST", "/canned_replies", map[string]any{"name": "REFUND", "body": "x"}, 409, "name_taken"},
		{"PATCH", path(thanks), map[string]any{"name": "refund"}, 409, "name_taken"},
		{"POST", "/canned_replies", map[string]any{"name": "bad name", "body": "x"}, 400, "invalid_request"},
		{"POST", "/canned_replies", map[string]any{"name": "", "body": "x"}, 400, "invalid_request"},
		{"POST", "/canned_replies", map[string]any{"name": "x"}, 400, "invalid_request"},
		{"POST", "/canned_replies", map[string]any{"name": "x", "body": "  "}, 400, "invalid_request"},
		{"POST", "/canned_replies", map[string]any{"name": "x", "body": "a\x00b"}, 400, "invalid_request"},
		{"POST", "/canned_replies", map[string]any{"name": "x", "body": strings.Repeat("é", 4001)}, 400, "invalid_request"},
		{"POST", "/canned_replies", map[string]any{"name": "x", "body": "y", "id": 3}, 400, "invalid_request"},
		{"POST", "/canned_replies", map[string]any{"name": 5, "body": "y"}, 400, "invalid_request"},
		{"POST", "/canned_replies", "{not json", 400, "invalid_json"},
		{"POST", "/canned_replies", "null", 400, "invalid_json"},
		{"PATCH", path(thanks), map[string]any{}, 400, "invalid_request"},
		{"PATCH", path(thanks), map[string]any{"body": ""}, 400, "invalid_request"},
		{"PATCH", path(999999999), map[string]any{"body": "x"}, 404, "canned_not_found"},
		{"PATCH", "/canned_replies/abc", map[string]any{"body": "x"}, 404, "canned_not_found"},
		{"DELETE", path(999999999), nil, 404, "canned_not_found"},
		{"DELETE", "/canned_replies/0", nil, 404, "canned_not_found"},
	} {
		if a := api.call(c.method, c.path, ann, c.body); a.status != c.status || a.code() != c.code {
			t.Errorf("%s %s %.60v: %d %s, want %d %s", c.method, c.path, c.body, a.status, a.raw, c.status, c.code)
		}
	}

	if a := api.call("DELETE", path(refund), bob, nil); a.status != 204 || len(a.raw) != 0 {
		t.Errorf("delete: %d %s", a.status, a.raw)
	}
	if a := api.call("DELETE", path(refund), bob, nil); a.status != 404 || a.code() != "canned_not_found" {
		t.Errorf("delete twice: %d %s", a.status, a.raw)
	}
	if got := replyNames(replies(t, cannedAsk(t, annWS, map[string]any{"type": "canned"}).Fields["replies"])); fmt.Sprint(got) != "[hello thx]" {
		t.Errorf("the socket's list after the API's changes: %v", got)
	}

	// The staff list: ann and bob (who called the API), not carl.
	a = api.call("GET", "/staff", ann, nil)
	var staff []string
	for _, u := range a.body["staff"].([]any) {
		staff = append(staff, u.(map[string]any)["external_id"].(string))
	}
	if a.status != 200 || !slices.Equal(staff, []string{"ann", "bob"}) {
		t.Errorf("staff: %d %s", a.status, a.raw)
	}

	// Methods the paths do not have; visitors.
	for _, c := range []struct{ method, path, allow string }{
		{"PUT", "/canned_replies", "GET, POST"},
		{"GET", path(thanks), "PATCH, DELETE"},
		{"POST", "/staff", "GET"},
	} {
		if a := api.call(c.method, c.path, ann, nil); a.status != http.StatusMethodNotAllowed || a.code() != "method_not_allowed" || a.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d %s (Allow %q)", c.method, c.path, a.status, a.raw, a.header.Get("Allow"))
		}
	}
	carl := mint(t, "carl", "Carl", false)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/canned_replies", nil},
		{"POST", "/canned_replies", map[string]any{"name": "x", "body": "y"}},
		{"PATCH", path(thanks), map[string]any{"body": "y"}},
		{"DELETE", path(thanks), nil},
		{"GET", "/staff", nil},
	} {
		if a := api.call(c.method, c.path, carl, c.body); a.status != 403 || a.code() != "forbidden" {
			t.Errorf("a visitor's %s %s: %d %s", c.method, c.path, a.status, a.raw)
		}
	}
	if a := api.call("GET", "/canned_replies", "", nil); a.status != 401 || a.code() != "invalid_token" {
		t.Errorf("no token: %d %s", a.status, a.raw)
	}
}
