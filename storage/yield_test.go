package storage_test

import (
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
)

// A pass yields while the store was busy more than half of the time since
// the last pass, until MaxLag after the last drain; never with MaxLag 0.
func TestYield(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	y := storage.NewYield(2*time.Second, t0, 0)
	for _, tc := range []struct {
		now, busy int // ms since t0; the store's busy time then
		drained   bool
		want      bool
	}{
		{now: 500, busy: 100, want: false},                // busy 20 %
		{now: 1000, busy: 400, want: true},                // busy 60 %, drained 1 s ago
		{now: 1500, busy: 700, drained: true, want: true}, // busy 60 %: yields, then a drain marks 1.5 s
		{now: 3000, busy: 1600, want: true},               // 1.5 s after the drain
		{now: 3600, busy: 2000, want: false},              // 2.1 s after the drain: runs anyway
		{now: 4000, busy: 2100, want: false},              // busy 25 %
	} {
		if got := y.Skip(at(tc.now), ms(tc.busy)); got != tc.want {
			t.Errorf("at %d ms (busy %d ms): Skip = %v, want %v", tc.now, tc.busy, got, tc.want)
		}
		if tc.drained {
			y.Drained(at(tc.now))
		}
	}
	never := storage.NewYield(0, t0, 0)
	if never.Skip(at(1000), ms(1000)) {
		t.Error("MaxLag 0 yielded")
	}
}
