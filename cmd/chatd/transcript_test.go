package main

// Transcripts over REST (docs/API.md, "Transcript").

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// getRaw GETs path of the REST API with token and returns the status, the
// headers and the body.
func getRaw(t *testing.T, s *testServer, path, token string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+s.Addr+"/api/v1"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// A transcript is the whole thread in order, as text (times, then who and
// what; a message's later lines indented) or JSON: messages and desk
// events, internal notes only when asked; across store pages; staff only.
func TestAPITranscript(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	api := newAPIClient(t, s)
	annTok := mint(t, "ann", "Ann", true)
	ann := dial(t, s, "ann", "Ann", true, true)
	dial(t, s, "bob", "Bob", true, true) // staff the store knows
	carl := dial(t, s, "carl", "Carl", false, true)
	conv := convOf(t, carl)
	path := fmt.Sprintf("/conversations/%d", conv)

	if r := api.call("PATCH", path, annTok, map[string]any{"status": "pending"}); r.status != 200 {
		t.Fatalf("PATCH: %d %s", r.status, r.raw)
	}
	post(t, carl, conv, "hello <b>there</b>", "c1") // reopens it
	post(t, ann, conv, "line one\nline two", "a1")
	if r := api.call("POST", path+"/notes", annTok, map[string]any{"body": "SECRET refund ok"}); r.status != 201 {
		t.Fatalf("POST notes: %d %s", r.status, r.raw)
	}
	if r := api.call("PATCH", path, annTok, map[string]any{"assignee": "bob"}); r.status != 200 {
		t.Fatalf("PATCH: %d %s", r.status, r.raw)
	}
	post(t, carl, conv, "bye", "c2")

	// Text, without notes, then with.
	status, h, text := getRaw(t, s, path+"/transcript", annTok)
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") ||
		h.Get("Content-Disposition") != fmt.Sprintf(`attachment; filename="conversation-%d.txt"`, conv) {
		t.Fatalf("text transcript: %d %v\n%s", status, h, text)
	}
	body := func(text string) []string { // the lines after the header, without their times
		_, rest, _ := strings.Cut(text, "\n\n")
		var out []string
		for _, l := range strings.Split(strings.TrimSuffix(rest, "\n"), "\n") {
			if len(l) > 25 && l[4] == '-' && strings.HasSuffix(l[:25], " UTC  ") {
				l = l[25:]
			}
			out = append(out, l)
		}
		return out
	}
	want := []string{
		"— Ann set the status to pending",
		"— Carl set the status to open", // his message reopened it: the event comes before it
		"Carl: hello <b>there</b>",
		"Ann (staff): line one",
		"    line two",
		"— Ann assigned the conversation to Bob",
		"Carl: bye",
	}
	if got := body(text); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("text transcript lines:\n%q\nwant\n%q\nwhole:\n%s", got, want, text)
	}
	if !strings.HasPrefix(text, fmt.Sprintf("Conversation %d with Carl (carl)\nExported ", conv)) || strings.Contains(text, "SECRET") {
		t.Errorf("text transcript:\n%s", text)
	}
	_, _, withNotes := getRaw(t, s, path+"/transcript?notes=true", annTok)
	want = append(want[:5:5], append([]string{"[internal note] Ann: SECRET refund ok"}, want[5:]...)...)
	if got := body(withNotes); fmt.Sprint(got) != fmt.Sprint(want) || !strings.Contains(withNotes, "not for the visitor") {
		t.Errorf("text transcript with notes:\n%q\nwant\n%q", got, want)
	}

	// More than a store page of messages, then a change after the last.
	const more = 430
	for i := range more {
		post(t, carl, conv, fmt.Sprintf("m%d", i), fmt.Sprintf("m%d", i))
	}
	if r := api.call("PATCH", path, annTok, map[string]any{"status": "resolved"}); r.status != 200 {
		t.Fatalf("PATCH: %d %s", r.status, r.raw)
	}
	r := api.call("GET", path+"/transcript?format=json", annTok, nil)
	if r.status != 200 || r.header.Get("Content-Disposition") != fmt.Sprintf(`attachment; filename="conversation-%d.json"`, conv) {
		t.Fatalf("JSON transcript: %d %v", r.status, r.header)
	}
	var doc struct {
		Conversation struct{ ID int64 }    `json:"conversation"`
		Notes        bool                  `json:"notes"`
		ExportedBy   struct{ Name string } `json:"exported_by"`
		Thread       []struct {
			Message *struct {
				Seq     int64  `json:"seq"`
				Message string `json:"message"`
			} `json:"message"`
			Event *struct {
				Kind     string `json:"kind"`
				Status   string `json:"status"`
				AfterSeq int64  `json:"after_seq"`
			} `json:"event"`
		} `json:"thread"`
	}
	if err := json.Unmarshal(r.raw, &doc); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	var kinds []string
	last := int64(0)
	for i, it := range doc.Thread {
		switch {
		case it.Message != nil && it.Event == nil:
			seqs = append(seqs, it.Message.Seq)
			last = it.Message.Seq
		case it.Event != nil && it.Message == nil:
			kinds = append(kinds, it.Event.Kind+":"+it.Event.Status)
			if it.Event.AfterSeq != last {
				t.Errorf("thread item %d: event after seq %d placed after seq %d", i, it.Event.AfterSeq, last)
			}
		default:
			t.Errorf("thread item %d has not exactly one of message and event", i)
		}
	}
	total := int64(3 + more)
	if int64(len(seqs)) != total || seqs[0] != 1 || seqs[len(seqs)-1] != total {
		t.Errorf("JSON transcript: %d messages (%v…), want seqs 1..%d", len(seqs), seqs[:min(5, len(seqs))], total)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Errorf("seqs %d then %d", seqs[i-1], seqs[i])
		}
	}
	if want := "[status:pending status:open assignee: status:resolved]"; fmt.Sprint(kinds) != want || doc.Notes || doc.ExportedBy.Name != "Ann" || doc.Conversation.ID != conv {
		t.Errorf("JSON transcript: events %v (want %s), notes %v, by %q, conversation %d", kinds, want, doc.Notes, doc.ExportedBy.Name, doc.Conversation.ID)
	}

	// Errors: a visitor, a bad format, an unknown conversation.
	for _, tc := range []struct {
		path, token string
		status      int
	}{
		{path + "/transcript", mint(t, "carl", "Carl", false), 403},
		{path + "/transcript?format=pdf", annTok, 400},
		{path + "/transcript?notes=yes", annTok, 400},
		{fmt.Sprintf("/conversations/%d/transcript", conv+1000), annTok, 404},
	} {
		if r := api.call("GET", tc.path, tc.token, nil); r.status != tc.status || r.code() == "" || strings.Contains(string(r.raw), "SECRET") {
			t.Errorf("GET %s: %d %s, want %d", tc.path, r.status, r.raw, tc.status)
		}
	}
}
