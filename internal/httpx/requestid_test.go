package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/httpx"
)

// The caller's X-Request-ID becomes the correlation id of what the request
// causes only if it is one sensible value; anything else is replaced with
// a new UUID (never refused: it is a hint, not an input).
func TestRequestIDIsValidatedOrReplaced(t *testing.T) {
	t.Parallel()
	var seen string
	h := httpx.RequestID(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = httpx.RequestIDFrom(r.Context()) }))
	for _, c := range []struct {
		values []string
		kept   bool
	}{
		{[]string{"req-1"}, true},
		{[]string{strings.Repeat("x", 128)}, true},
		{nil, false},
		{[]string{""}, false},
		{[]string{"a", "b"}, false},
		{[]string{"tab\there"}, false},
		{[]string{"with space"}, false},
		{[]string{"c1\u0085"}, false},
		{[]string{"\xff"}, false},
		{[]string{"nul\x00"}, false},
		{[]string{strings.Repeat("x", 129)}, false},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		for _, v := range c.values {
			req.Header.Add("X-Request-ID", v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get("X-Request-ID")
		if got != seen {
			t.Errorf("%q: echoed %q, correlated %q", c.values, got, seen)
		}
		if c.kept && got != c.values[0] || !c.kept && uuid.Validate(got) != nil {
			t.Errorf("%q: %q (kept %v)", c.values, got, c.kept)
		}
	}
}
