package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The original document's browser-console snippet works unchanged against
// chatd from a page of the server's origin carrying the chat_token cookie:
// it connects, its {'message': 'Test'} reaches staff, and it receives the
// document's own frames (the five seed keys, in order), staff replies too.
func TestBrowserSeedConsoleSnippet(t *testing.T) {
	chromiumPath(t) // skip (or fail in CI) before starting anything
	s := startServer(t)
	b := newBrowser(t)
	admin := b.newTab("admin")
	admin.setToken(s.Addr, mint(t, "staff-1", "Ann", true))
	admin.navigate("http://" + s.Addr + "/admin/")
	admin.waitOnline()

	console := b.newTab("console")
	console.setToken(s.Addr, mint(t, "user-1", "Alice", false))
	console.navigate("http://" + s.Addr + "/healthz") // as the README says: any page of the server's origin

	ectx, cancel := context.WithTimeout(console.ctx, browserWait)
	defer cancel()
	logs := chromedp.Events(ectx, runtime.ConsoleAPICalled)

	// The snippet as pasted into a console (only the host differs): its
	// first three lines at once, since the socket may open before a fourth
	// typed line; ws.send only once it is open, or it would throw.
	snippet := strings.Join([]string{
		`const ws = new WebSocket('ws://` + s.Addr + `/ws/chat/');`,
		`ws.onopen = () => console.log('Connected');`,
		`ws.onmessage = (e) => console.log('Message:', JSON.parse(e.data));`,
	}, "\n")
	console.do("console: "+snippet, evalVoid(snippet))
	// The test's own eyes on the raw frames (the snippet itself only logs).
	console.do("record frames", evalVoid(`window.__frames = []; ws.addEventListener('message', (e) => __frames.push(e.data));`))
	console.waitJS("the socket to open", `ws.readyState === WebSocket.OPEN`)
	console.do("console: send", evalVoid(`ws.send(JSON.stringify({'message': 'Test'}));`))

	console.waitJS("the message to come back", `__frames.length >= 1`)
	admin.waitInbox("Alice [1] Test")
	admin.openConversation(admin.inbox()[0].Conv)
	admin.typeAndSend("Hello Alice")
	console.waitJS("the reply", `__frames.length >= 2`)

	var frames []string
	console.evalJSON(`__frames`, &frames)
	seed := regexp.MustCompile(`^\{"message":"(.*)","sender_id":\d+,"sender_name":"(.*)","sender_is_admin":(true|false),"conversation_id":\d+\}$`)
	want := [][3]string{{"Test", "Alice", "false"}, {"Hello Alice", "Ann", "true"}}
	if len(frames) != 2 {
		t.Fatalf("the snippet's socket received %d frames, want 2: %q", len(frames), frames)
	}
	for i, f := range frames {
		m := seed.FindStringSubmatch(f)
		if m == nil || m[1] != want[i][0] || m[2] != want[i][1] || m[3] != want[i][2] {
			t.Errorf("frame %d = %s, want the seed message frame for %v", i, f, want[i])
		}
	}

	// The console shows what the document promises.
	var connected, messages int
	for ev, err := range logs {
		if err != nil {
			t.Fatalf("console: saw Connected %d times and Message %d times before %v", connected, messages, err)
		}
		if len(ev.Args) == 0 {
			continue
		}
		var first string
		_ = json.Unmarshal(ev.Args[0].Value, &first)
		switch first {
		case "Connected":
			connected++
		case "Message:":
			messages++
			if len(ev.Args) < 2 || ev.Args[1].Type != runtime.RemoteObjectTypeObject || ev.Args[1].Preview == nil {
				t.Errorf("console.log('Message:', …) did not log a parsed object: %+v", ev.Args)
			}
		}
		if connected == 1 && messages == 2 {
			break
		}
	}
}
