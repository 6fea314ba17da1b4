package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainchat/grainchat/integrations/webhook"
)

// The sink accepts signed events, refuses bad signatures, counts
// duplicates, and reports its counts.
func TestSink(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out safeBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--secret", "sink-secret-0123456789"}, &out)
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatal("the sink did not start")
	}
	send := func(body, secret string) int {
		req, _ := http.NewRequest(http.MethodPost, base+"/", strings.NewReader(body))
		req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(secret), time.Now(), []byte(body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		body, secret string
		want         int
	}{
		{`{"id":"msg_1","type":"message.created"}`, "sink-secret-0123456789", 204},
		{`{"id":"msg_1","type":"message.created"}`, "sink-secret-0123456789", 204},
		{`{"id":"evt_2","type":"note.created"}`, "sink-secret-0123456789", 204},
		{`{"id":"msg_3","type":"message.created"}`, "another-secret-012345", 400},
	} {
		if got := send(tc.body, tc.secret); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.body, got, tc.want)
		}
	}
	resp, err := http.Get(base + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st stats
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Events != 3 || st.Distinct != 2 || st.Duplicates != 1 || st.BadSignatures != 1 || st.ByType["message.created"] != 1 {
		t.Errorf("stats %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"duplicates":1`) {
		t.Errorf("final report missing: %s", out.String())
	}
}

// safeBuffer is a bytes.Buffer safe for concurrent use.
type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
