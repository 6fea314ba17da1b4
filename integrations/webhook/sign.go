// Package webhook sends grainchat's events to the operator's HTTP endpoints,
// signed, at least once and in order per conversation, from the outbox the
// store keeps (storage.Webhooks). Dispatcher runs the expander and one
// sender per endpoint; Sign and Verify are the signature, which receivers
// check as Verify does (docs/WEBHOOKS.md).
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of every request.
const (
	HeaderEventID   = "Grainchat-Event-Id"
	HeaderSignature = "Grainchat-Signature"
)

// DefaultTolerance is how far from the receiver's clock Verify accepts a
// signature's time by default: older requests are refused as replays.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	ErrMalformed    = errors.New("webhook: malformed signature header")
	ErrNoMatch      = errors.New("webhook: no signature matches")
	ErrOutOfWindow  = errors.New("webhook: signature time outside the tolerance (a replay, or a skewed clock)")
	ErrEmptySecret  = errors.New("webhook: empty secret")
	errMissingField = fmt.Errorf("%w: t and v1 are required", ErrMalformed)
)

// Sign returns the Grainchat-Signature header of body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with secret>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a Grainchat-Signature header against the raw body: one of
// its v1 values must be the HMAC of "<t>.<body>" (compared in constant
// time), and t must be within tolerance of now (0 means DefaultTolerance).
// Unknown fields are ignored, so that a later scheme (v2) can be added
// alongside. A receiver also drops an event id it has seen (Verify cannot:
// a retry is signed afresh with a new t).
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return ErrEmptySecret
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrMalformed
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil {
				return ErrMalformed
			}
			sigs = append(sigs, b)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return errMissingField
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrMalformed
	}
	want := mac(secret, ts, body)
	matched := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			matched = true
		}
	}
	if !matched {
		return ErrNoMatch
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrOutOfWindow
	}
	return nil
}
