package main

import (
	"context"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// The original document's browser-console snippet works unchanged against
// chatd from a page of the server's origin carrying the chat_token cookie:
// it connects and logs "Connected" once, its {'message': 'Test'} reaches
// staff, and it receives and logs (as parsed objects) the document's own
// frames (the five seed keys, in order), staff replies too. In Chromium and
// in Firefox.
func TestBrowserSeedConsoleSnippet(t *testing.T) {
	eachBrowser(t, func(t *testing.T, br browserKind) {
		s := startServer(t)
		b := br.start(t)
		admin := b.newPage("admin")
		admin.setToken(s.Addr, mint(t, "staff-1", "Ann", true))
		admin.navigate("http://" + s.Addr + "/admin/")
		admin.waitOnline()

		console := b.newPage("console")
		console.setToken(s.Addr, mint(t, "user-1", "Alice", false))
		console.navigate("http://" + s.Addr + "/healthz") // as the README says: any page of the server's origin

		ctx, cancel := context.WithTimeout(context.Background(), 2*browserWait)
		defer cancel()
		logs, err := console.d.console(ctx)
		if err != nil {
			t.Fatalf("console: %v", err)
		}

		// The snippet as pasted into a console (only the host differs): its
		// first three lines at once, since the socket may open before a fourth
		// typed line; ws.send only once it is open, or it would throw.
		snippet := strings.Join([]string{
			`const ws = new WebSocket('ws://` + s.Addr + `/ws/chat/');`,
			`ws.onopen = () => console.log('Connected');`,
			`ws.onmessage = (e) => console.log('Message:', JSON.parse(e.data));`,
		}, "\n")
		console.run("console: "+snippet, snippet)
		// The test's own eyes on the raw frames (the snippet itself only logs).
		console.run("record frames", `window.__frames = []; ws.addEventListener('message', (e) => __frames.push(e.data));`)
		console.waitJS("the socket to open", `ws.readyState === WebSocket.OPEN`)
		console.run("console: send", `ws.send(JSON.stringify({'message': 'Test'}));`)

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
		for i, fr := range frames {
			m := seed.FindStringSubmatch(fr)
			if m == nil || m[1] != want[i][0] || m[2] != want[i][1] || m[3] != want[i][2] {
				t.Errorf("frame %d = %s, want the seed message frame for %v", i, fr, want[i])
			}
		}

		// The console shows what the document promises: Connected once, then a
		// parsed object per frame, in order.
		connected, messages := 0, []string{}
		for connected < 1 || len(messages) < 2 {
			e, err := logs()
			if err != nil {
				t.Fatalf("console: saw Connected %d times and Message %d times before %v", connected, len(messages), err)
			}
			if e.Method == "exception" {
				t.Errorf("console: an uncaught exception: %s", e.Text)
			}
			if e.Method != "log" || len(e.Args) == 0 {
				continue
			}
			switch e.Args[0].Text {
			case "Connected":
				connected++
				if len(messages) > 0 {
					t.Errorf("console: Connected after a Message")
				}
			case "Message:":
				if len(e.Args) < 2 || e.Args[1].Type != "object" {
					t.Fatalf("console.log('Message:', …) did not log a parsed object: %+v", e.Args)
				}
				if got := strings.Join(e.Args[1].Keys, ","); got != "message,sender_id,sender_name,sender_is_admin,conversation_id" {
					t.Errorf("console: logged object has keys %s", got)
				}
				messages = append(messages, e.Args[1].Values["message"])
			}
		}
		if connected != 1 || !reflect.DeepEqual(messages, []string{"Test", "Hello Alice"}) {
			t.Errorf("console: Connected %d times, messages %q", connected, messages)
		}
	})
}
