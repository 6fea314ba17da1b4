package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/grainchat/grainchat/integrations/webhook"
)

// The signature is the documented construction, computed independently:
// t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<body>")).
func TestSignIsTheDocumentedHMAC(t *testing.T) {
	secret := []byte("0123456789abcdef-secret")
	body := []byte(`{"id":"msg_1","type":"message.created"}`)
	at := time.Unix(1767225600, 0)
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(strconv.FormatInt(at.Unix(), 10) + "." + string(body)))
	want := "t=1767225600,v1=" + hex.EncodeToString(h.Sum(nil))
	if got := webhook.Sign(secret, at, body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("0123456789abcdef-secret")
	body := []byte(`{"id":"msg_1"}`)
	now := time.Unix(1767225600, 0)
	good := webhook.Sign(secret, now, body)
	other := webhook.Sign([]byte("another secret, 16+ bytes"), now, body)
	for _, tc := range []struct {
		name   string
		header string
		body   []byte
		now    time.Time
		secret []byte
		want   error
	}{
		{"valid", good, body, now, secret, nil},
		{"valid 4 minutes later", good, body, now.Add(4 * time.Minute), secret, nil},
		{"clock 4 minutes behind", good, body, now.Add(-4 * time.Minute), secret, nil},
		{"replayed 6 minutes later", good, body, now.Add(6 * time.Minute), secret, webhook.ErrOutOfWindow},
		{"from 6 minutes in the future", good, body, now.Add(-6 * time.Minute), secret, webhook.ErrOutOfWindow},
		{"body changed", good, []byte(`{"id":"msg_2"}`), now, secret, webhook.ErrNoMatch},
		{"other secret", other, body, now, secret, webhook.ErrNoMatch},
		{"one of two v1 matches (key rotation)", other + ",v1=" + good[len("t=1767225600,v1="):], body, now, secret, nil},
		{"unknown scheme ignored", good + ",v0=abc", body, now, secret, nil},
		{"t changed", "t=1767225601" + good[len("t=1767225600"):], body, now, secret, webhook.ErrNoMatch},
		{"no t", good[len("t=1767225600,"):], body, now, secret, webhook.ErrMalformed},
		{"no v1", "t=1767225600", body, now, secret, webhook.ErrMalformed},
		{"v1 not hex", "t=1767225600,v1=zz", body, now, secret, webhook.ErrMalformed},
		{"t not a number", "t=x,v1=00", body, now, secret, webhook.ErrMalformed},
		{"garbage", "hello", body, now, secret, webhook.ErrMalformed},
		{"empty secret", good, body, now, nil, webhook.ErrEmptySecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(tc.secret, tc.header, tc.body, tc.now, 0)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	min, max := time.Second, time.Minute
	for _, tc := range []struct {
		n        int
		low, top time.Duration // [low, top] with rnd 0 and rnd → 1
	}{
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{3, 2 * time.Second, 4 * time.Second},
		{6, 16 * time.Second, 32 * time.Second},
		{7, 30 * time.Second, time.Minute}, // 64 s capped at 60 s
		{1000, 30 * time.Second, time.Minute},
	} {
		if got := webhook.Backoff(tc.n, min, max, func() float64 { return 0 }); got != tc.low {
			t.Errorf("Backoff(%d) with rnd 0 = %v, want %v", tc.n, got, tc.low)
		}
		if got := webhook.Backoff(tc.n, min, max, func() float64 { return 0.999999 }); got > tc.top || got < tc.top*99/100 {
			t.Errorf("Backoff(%d) with rnd ~1 = %v, want about %v", tc.n, got, tc.top)
		}
	}
	// With the real source: always within [half, all] of the step, and spread.
	seen := map[time.Duration]bool{}
	for range 200 {
		d := webhook.Backoff(3, min, max, nil)
		if d < 2*time.Second || d > 4*time.Second {
			t.Fatalf("Backoff(3) = %v, outside [2s, 4s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("Backoff(3) gave %d distinct waits in 200 draws: no jitter?", len(seen))
	}
}
