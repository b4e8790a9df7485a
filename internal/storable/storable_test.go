package storable_test

import (
	"testing"

	"github.com/orders-reference/orders/internal/storable"
)

// Text replaces exactly what a column cannot hold: NUL and invalid UTF-8.
func TestText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"legacy":      "legacy",
		"leg\x00acy":  "leg\uFFFDacy",
		"a\xffb":      "a\uFFFDb",
		"\x00\x00":    "\uFFFD\uFFFD",
		"tab\there\n": "tab\there\n",
		"é 😀 \u0085":  "é 😀 \u0085",
	} {
		if got := storable.Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
		if !storable.Is(storable.Text(in)) {
			t.Errorf("Text(%q) is not storable", in)
		}
	}
}

// Clip stores what Text does, bounded in bytes at a character boundary.
func TestClip(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"bad\x00gateway", 100, "bad\uFFFDgateway"},
		{"ab\xffcd", 3, "ab"},   // U+FFFD is 3 bytes: not cut in half
		{"ééé", 5, "éé"},        // 2 bytes each
		{"a\x00", 4, "a\uFFFD"}, // exactly 4 bytes
	} {
		if got := storable.Clip(c.in, c.n); got != c.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
