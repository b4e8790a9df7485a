//go:build !linux

package redistest

import "testing"

// Hanging is skipped here: it relies on Linux dropping connects to a
// listener whose accept queue is full.
func Hanging(t testing.TB) string {
	t.Skip("redistest: a listener whose connects hang needs Linux")
	return ""
}
