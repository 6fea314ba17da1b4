package main

// The visitor's page (issue 17): a v1 visitor's page frames reach staff who
// have the conversation open, live, on another node of a cluster, and the
// REST Conversation; never visitors or seed-dialect sockets; bad page frames
// are refused with the documented errors (docs/PROTOCOL.md).

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/grainchat/grainchat/transport/wsclient"
)

const hostileText = `<img src=x onerror="document.title='pwned'"> & "quotes"`

// isVisitorPage matches a visitor frame of conv whose page has url.
func isVisitorPage(conv int64, url string) func(wsclient.Frame) bool {
	return func(f wsclient.Frame) bool {
		if f.Type() != "visitor" || f.Int("conversation_id") != conv {
			return false
		}
		u, _ := f.Fields["user"].(map[string]any)
		p, _ := u["page"].(map[string]any)
		return p != nil && p["url"] == url
	}
}

// restPage polls conversation conv over REST until its user's page has url,
// and returns the user object.
func restPage(t *testing.T, api *apiClient, token string, conv int64, url string) map[string]any {
	t.Helper()
	var user map[string]any
	waitFor(t, 15*time.Second, "REST to show "+url, func() bool {
		r := api.call("GET", fmt.Sprintf("/conversations/%d", conv), token, nil)
		user = obj2(r.body, "user")
		p, _ := user["page"].(map[string]any)
		return r.status == 200 && p != nil && p["url"] == url
	})
	return user
}

func TestVisitorPage(t *testing.T) {
	c := startAutomanagedCluster(t, newDatabase(t), 2)
	nodeA, nodeB := c.nodes[0].URL(), c.nodes[1].URL()
	addrB := strings.TrimSuffix(strings.TrimPrefix(nodeB, "ws://"), "/ws/chat/")
	api := newAPIClient(t, &testServer{t: t, Addr: addrB})
	annTok := mint(t, "ann", "Ann", true)

	// Vera, a v1 visitor on node A, with details in her token and a
	// browser; Ann, staff on node B; and who must never get a visitor
	// frame: Walt (a v1 visitor on B), Sid (seed-dialect staff on B).
	const ua = "Mozilla/5.0 (X11; Linux x86_64) <b>Test</b>/1.0"
	vera, err := wsclient.Dial(ctxT(t, 10*time.Second), nodeA, wsclient.Options{
		Token: mintDetails(t, "vera", "Vera", "vera@example.com", `{"plan":"<i>pro</i>","account_id":42}`),
		V1:    true, Header: http.Header{"User-Agent": {ua}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vera.Close)
	conv := convOf(t, vera)
	ann := dialURL(t, nodeB, "ann", "Ann", true)
	walt := dialURL(t, nodeB, "walt", "Walt", false)
	sid, err := wsclient.Dial(ctxT(t, 10*time.Second), nodeB, wsclient.Options{Token: mint(t, "sid", "Sid", true)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sid.Close)
	post(t, vera, conv, "hello", "v1")

	// Ann opens the conversation: the visitor as stored, no page yet.
	annAt := len(ann.Frames())
	send(t, ann, map[string]any{"type": "open", "conversation_id": conv})
	f, _ := waitFrame(t, ann, annAt, "the visitor on open", func(f wsclient.Frame) bool {
		return f.Type() == "visitor" && f.Int("conversation_id") == conv
	})
	if u := obj(f, "user"); u["name"] != "Vera" || u["email"] != "vera@example.com" || u["page"] != nil ||
		obj2(u, "context")["plan"] != "<i>pro</i>" {
		t.Errorf("visitor on open: %s", f.Raw)
	}

	// Vera reports her page: Ann, on the other node, sees it live.
	const url1 = "https://shop.example.com/cart?item=7#details"
	annAt = len(ann.Frames())
	send(t, vera, map[string]any{"type": "page", "url": url1, "title": "  " + hostileText + "\n"})
	f, i := waitFrame(t, ann, annAt, "the page live", isVisitorPage(conv, url1))
	annAt = i + 1
	u := obj(f, "user")
	p := obj2(u, "page")
	if p["title"] != hostileText || p["browser"] != ua || u["email"] != "vera@example.com" || u["name"] != "Vera" ||
		obj2(u, "context")["account_id"] != float64(42) || p["updated_at"] == "" {
		t.Errorf("live visitor frame: %s", f.Raw)
	}
	// And REST, once written (within a few seconds).
	ru := restPage(t, api, annTok, conv, url1)
	if rp := obj2(ru, "page"); rp["title"] != hostileText || rp["browser"] != ua || rp["updated_at"] != p["updated_at"] {
		t.Errorf("REST user: %v, want the live frame's page %v", ru, p)
	}

	// The same page again changes nothing; the next one comes alone.
	send(t, vera, map[string]any{"type": "page", "url": url1, "title": hostileText})
	const url2 = "https://shop.example.com/checkout"
	send(t, vera, map[string]any{"type": "page", "url": url2, "title": "Checkout"})
	_, end := waitFrame(t, ann, annAt, "the second page", isVisitorPage(conv, url2))
	if n := len(framesOfType(ann, annAt, "visitor")); n != 1 {
		t.Errorf("%d visitor frames for one repeated and one new page, want 1:%s", n, dump(ann))
	}
	annAt = end + 1

	// A burst: every report reaches Ann in order, the store keeps the last.
	for i := range 8 {
		send(t, vera, map[string]any{"type": "page", "url": fmt.Sprintf("https://shop.example.com/p/%d", i), "title": fmt.Sprint("P", i)})
	}
	last := "https://shop.example.com/p/7"
	_, end = waitFrame(t, ann, annAt, "the burst's last page", isVisitorPage(conv, last))
	var urls []string
	for _, f := range framesOfType(ann, annAt, "visitor") {
		urls = append(urls, obj2(obj(f, "user"), "page")["url"].(string))
	}
	if len(urls) != 8 || urls[7] != last {
		t.Errorf("burst seen by Ann: %v", urls)
	}
	annAt = end + 1
	restPage(t, api, annTok, conv, last)

	// Opened right after a report (before the store has it): the new page.
	send(t, ann, map[string]any{"type": "leave", "conversation_id": conv})
	waitType(t, ann, annAt, "left")
	const url3 = "https://shop.example.com/thanks"
	send(t, vera, map[string]any{"type": "page", "url": url3, "title": "Thanks"})
	post(t, vera, conv, "marker", "v2") // after the report, in the socket's order
	waitMsg(t, ann, conv, "marker")
	annAt = len(ann.Frames())
	send(t, ann, map[string]any{"type": "open", "conversation_id": conv})
	waitFrame(t, ann, annAt, "the newest page on open", isVisitorPage(conv, url3))

	// Bad page frames: an error each, nothing relayed, the socket usable.
	t.Run("bad", func(t *testing.T) {
		for _, c := range []struct {
			name  string
			frame string
		}{
			{"no_url", `{"type":"page","title":"x"}`},
			{"relative_url", `{"type":"page","url":"/cart"}`},
			{"javascript_url", `{"type":"page","url":"javascript:alert(1)"}`},
			{"url_with_a_space", `{"type":"page","url":"https://e.example/a b"}`},
			{"url_over_2048_bytes", `{"type":"page","url":"https://e.example/` + strings.Repeat("a", 2048) + `"}`},
			{"url_not_a_string", `{"type":"page","url":1}`},
			{"title_over_300_bytes", `{"type":"page","url":"https://e.example/","title":"` + strings.Repeat("t", 301) + `"}`},
		} {
			t.Run(c.name, func(t *testing.T) {
				at := len(vera.Frames())
				sendRaw(t, vera, gws.OpcodeText, []byte(c.frame))
				f, _ := waitType(t, vera, at, "error")
				if f.String("code") != "invalid_request" {
					t.Errorf("%s: %s, want invalid_request", c.frame, f.Raw)
				}
				post(t, vera, conv, "still here "+c.name, "ok-"+c.name)
			})
		}
		t.Run("staff", func(t *testing.T) {
			at := len(ann.Frames())
			send(t, ann, map[string]any{"type": "page", "url": "https://e.example/"})
			if f, _ := waitType(t, ann, at, "error"); f.String("code") != "forbidden" {
				t.Errorf("a staff page frame: %s, want forbidden", f.Raw)
			}
		})
	})

	// Seed-dialect visitors never report (a page frame of theirs is
	// dropped): Sam's report, read before Vera's next one by the same
	// node's presence actor, is not stored when Vera's is.
	sam, err := wsclient.Dial(ctxT(t, 10*time.Second), nodeA, wsclient.Options{Token: mint(t, "sam", "Sam", false)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sam.Close)
	send(t, sam, map[string]any{"type": "page", "url": "https://e.example/sam"})
	send(t, sam, map[string]any{"message": "sam here"})
	samMsg, _ := waitFrame(t, ann, 0, "Sam's message", func(f wsclient.Frame) bool { return isMessage(f) && f.String("message") == "sam here" })
	samConv := samMsg.Int("conversation_id")
	const url4 = "https://shop.example.com/after-sam"
	send(t, vera, map[string]any{"type": "page", "url": url4})
	restPage(t, api, annTok, conv, url4)
	if r := api.call("GET", fmt.Sprintf("/conversations/%d", samConv), annTok, nil); r.status != 200 || obj2(r.body, "user")["page"] != nil {
		t.Errorf("a seed visitor's page frame was stored: %s", r.raw)
	}

	// Nobody but v1 staff ever got a visitor frame.
	for name, cl := range map[string]*wsclient.Client{"Vera": vera, "Walt": walt, "Sid": sid, "Sam": sam} {
		for _, f := range cl.Frames() {
			if f.Type() == "visitor" || strings.Contains(string(f.Raw), "shop.example.com") {
				t.Errorf("%s got %s", name, f.Raw)
			}
		}
	}
}
