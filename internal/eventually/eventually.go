// Package eventually waits in tests for a condition that other goroutines
// or processes bring about, against a deadline, instead of sleeping for a
// guessed time.
package eventually

import (
	"testing"
	"time"
)

// Deadline is how long True waits before failing the test.
const Deadline = 60 * time.Second

// True polls cond every 10ms until it holds, and fails t if it still does
// not after Deadline. what completes "timed out waiting for …".
func True(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Deadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // a poll interval, not synchronisation: cond decides
	}
}
