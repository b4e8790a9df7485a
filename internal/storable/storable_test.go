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
