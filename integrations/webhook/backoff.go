package webhook

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait before attempt n+1 after n failed attempts (n >= 1):
// min doubled n-1 times, capped at max, of which a random half is taken off
// ("equal jitter": between half and all of it), so that the retries of many
// events, or of many nodes' senders after an outage, spread out instead of
// arriving together. rnd returns a number in [0, 1); nil means math/rand.
func Backoff(n int, min, max time.Duration, rnd func() float64) time.Duration {
	if rnd == nil {
		rnd = rand.Float64
	}
	if n < 1 {
		n = 1
	}
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + time.Duration(rnd()*float64(d-half))
}
