package main

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// /metrics reports connections, frames, stored messages, batches and grain
// activations as they happen.
func TestMetricsEndpoint(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	admin := dial(t, s, "staff-1", "Ann", true, true)
	v := dial(t, s, "user-1", "Alice", false, true)
	for _, text := range []string{"one", "two"} {
		if err := v.Send(map[string]any{"message": text}); err != nil {
			t.Fatal(err)
		}
		waitMessage(t, admin, text)
	}
	if err := v.Send(map[string]any{"message": ""}); err != nil {
		t.Fatal(err)
	}
	waitType(t, v, 0, "error")
	body := scrape(t, "http://"+s.Addr+"/metrics")
	for metric, want := range map[string]float64{
		`grainchat_connections`:                                  2,
		`grainchat_messages_stored_total`:                        2,
		`grainchat_frames_in_total`:                              3,
		`grainchat_frames_refused_total{code="empty_message"}`:   1,
		`grainchat_grain_activations_total{kind="conversation"}`: 1,
		`grainchat_grain_activations_total{kind="inbox"}`:        1,
		`grainchat_store_batch_size_count`:                       2,
		`grainchat_cluster_members`:                              1,
	} {
		if got := metricValue(t, body, metric); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

func metricValue(t *testing.T, body, metric string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(metric) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Errorf("metric %s missing", metric)
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
