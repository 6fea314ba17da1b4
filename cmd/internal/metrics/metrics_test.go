package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The Grafana dashboard in docs/grafana names only metrics chatd exports, and
// shows every one of them.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	b, err := os.ReadFile("../../../docs/grafana/grainchat.json")
	if err != nil {
		t.Fatal(err)
	}
	m := New(func() int { return 1 })
	// Labelled metrics are gathered once they have a series.
	m.ReadPaused("rate")
	m.FrameRefused("invalid_json")
	m.HandshakeRefused(401)
	m.GrainActivated("conversation")
	m.GrainPassivated("conversation")
	m.WebhookSent("http://receiver/hook")
	m.WebhookAttemptFailed("http://receiver/hook")
	m.WebhookExpired("http://receiver/hook")
	m.WebhookBacklog("http://receiver/hook", 1, time.Second)
	m.MailSent("visitor")
	m.MailAttemptFailed("visitor")
	m.MailGivenUp("visitor")
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
	}
	named := map[string]bool{}
	for _, n := range regexp.MustCompile(`grainchat_[a-z_]+`).FindAllString(string(b), -1) {
		// Histograms are queried through their series.
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(n, suffix); ok && exported[base] {
				n = base
			}
		}
		named[n] = true
		if !exported[n] {
			t.Errorf("the dashboard names %s, which chatd does not export", n)
		}
	}
	for n := range exported {
		if strings.HasPrefix(n, "grainchat_") && !named[n] {
			t.Errorf("chatd exports %s, which the dashboard does not show", n)
		}
	}
}
