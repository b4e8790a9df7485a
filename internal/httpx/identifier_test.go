package httpx_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/orders-reference/orders/internal/httpx"
)

// A header the service reads and stores is an identifier (Idempotency-Key,
// webhook-id, X-Min-Position): besides the text rule, the one rule of
// identifiers from outside (internal/textrule) refuses what is invisible
// or reorders what is shown, with a 400 naming the header and the code
// point; what identifiers hold otherwise passes.
func TestHeadersAreIdentifiers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		value     string
		refused   bool
		codepoint string
	}{
		{"unique-key-123", false, ""},
		{"clé unique 😀", false, ""},
		{"key\u202e", true, "U+202E"},
		{"\ufeffkey", true, "U+FEFF"},
		{"ke\u200by", true, "U+200B"},
		{"key\u2066", true, "U+2066"},
		{"key\u00ad", true, "U+00AD"},
		{"key\U000e0041", true, "U+E0041"},
		{"key\u200d", true, "U+200D"},
		{"key\ufe0f", true, "U+FE0F"},
		{"\u3164", true, "U+3164"},
		{"a b", false, ""},
		{"a\u00a0b", true, "U+00A0"},
		{"a\u3000b", true, "U+3000"},
		{"a\u2028b", true, "U+2028"},
		{"a\u2029b", true, "U+2029"},
	} {
		for _, name := range []string{"Idempotency-Key", "webhook-id"} {
			req := httptest.NewRequest("POST", "/", nil)
			req.Header.Set(name, c.value)
			got, _, p := httpx.Header(req, name, 255)
			if !c.refused {
				if p != nil || got != c.value {
					t.Errorf("%s %q: %q, %v", name, c.value, got, p)
				}
				continue
			}
			if p == nil || p.Type != httpx.TypeMalformedRequest || !strings.Contains(p.Detail, c.codepoint) || !strings.Contains(p.Detail, name) {
				t.Errorf("%s %q: %+v, want a 400 naming it and %s", name, c.value, p, c.codepoint)
			}
		}
	}
}
