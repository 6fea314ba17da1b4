//go:build race

package auth

// raceEnabled: the race detector's sync.Pool drops what is put back at
// random, so allocation counts mean nothing.
const raceEnabled = true
