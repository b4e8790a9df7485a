package apitest

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// goTerms are what a problem shown to a client must never contain: Go's
// types and syntax, its decoders' and database drivers' messages. A
// client names fields as the API does (items[0].quantity), and kinds as
// JSON does (a string, an integer, an object, an array).
var goTerms = regexp.MustCompile(strings.Join([]string{
	`\bstruct\b`, `\binterface ?\{`, `\bmap\[`, `\[\]`, `\bjson:`, `\\"json`,
	`\b(u?int|float|complex)(8|16|32|64)?\b`, `\bbool\b`, `\bnil\b`, `<nil>`, `%!`, `\brune\b`,
	`(?i)unmarshal`, `(?i)\bmarshal`, `\bGo\b`, `\breflect\b`, `\bpanic\b`, `goroutine`,
	`\*?\b(main|httpapi|httpx|command|order|product|money|uuid|payment|fakepay|events|eventstore|query|products|orders|json|jsontext|time|pgx|pgconn|sql|strconv)\.[A-Za-z_]`,
	`(?i)\bpgx\b`, `\bpgconn\b`, `SQLSTATE`, `\bERROR:`, `(?i)duplicate key value`, `(?i)violates`, `(?i)\brelation "`,
	`(?i)invalid UUID length`, `(?i)invalid byte sequence`, `\bjsontext\b`, `(?i)within "/`, `after offset`,
	// Go's %q escapes (JSON writes "\u0000", never "\x00") and Go's
	// durations ("1m0s", "1.5s", "250ms": a client reads "60 seconds").
	`\\x[0-9a-fA-F]{2}`, `\b\d+h\d+m\d+(\.\d+)?s\b`, `\b\d+m\d+(\.\d+)?s\b`, `\b\d+\.\d+s\b`, `\b\d+(ms|µs|ns)\b`,
}, "|"))

// GoTerm returns the first Go term in s, or "".
func GoTerm(s string) string { return goTerms.FindString(s) }

// MaxErrors is the most inputs a problem's errors member may name (the
// service's own bound, httpx.MaxErrors, is tested against it).
const MaxErrors = 20

// apiName is how the API names an input a problem is about: a body field
// by its JSON path (user_email, items[0].product_id), a query or path
// parameter (limit, id) or a header (Idempotency-Key), or the body itself.
var apiName = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_-]*(\[\d+\])*)(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*)*$`)

// clientName is how the API names an input the client named that is not
// one of its names (an unknown field or query parameter): as httpx.Clip
// writes it, what does not show as itself escaped (\u202e), and a long
// one cut, with its length ("kkkk… (1000000 characters)").
var clientName = regexp.MustCompile(`\\u[0-9a-f]{4}|… \(\d+ characters\)$`)

// MaxProblemBytes bounds every problem: what a problem repeats of a
// request is bounded (a few dozen characters of a text, 20 inputs), so no
// request, however large, gets a larger answer. (The largest are an
// insufficient-stock problem naming 100 products, and an errors member of
// 20 long names.)
const MaxProblemBytes = 8 << 10

// hidden reports whether r does not show as itself: a problem shows what
// a client sent escaped (\u202e), never raw, where it could reorder or
// hide the text around it.
func hidden(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co, unicode.Bidi_Control,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// CheckProblem fails t unless r is an RFC 9457 problem of the given
// status and type, in the API's terms: application/problem+json with type,
// title, status (the answer's) and a detail; no Go term in its detail,
// title or errors; at most MaxProblemBytes, with no code point in its
// text that does not show as itself; and, if fields are given, an errors
// member mapping exactly those inputs (by their names in the API) to
// messages, or, if none are, no errors member.
func CheckProblem(t testing.TB, r Response, status int, typ string, fields ...string) {
	t.Helper()
	if len(r.Raw) > MaxProblemBytes {
		t.Errorf("a problem of %d bytes, more than %d: %.300s", len(r.Raw), MaxProblemBytes, r.Raw)
	}
	if text := fmt.Sprint(r.Body); strings.ContainsFunc(text, hidden) { // its strings, decoded
		t.Errorf("a problem holds a code point that does not show as itself (U+%04X): %.300s", firstHidden(text), r.Raw)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("content type %q, want application/problem+json: %d %s", ct, r.Status, r.Raw)
	}
	if r.Body == nil {
		t.Fatalf("the answer is not a JSON object: %d %s", r.Status, r.Raw)
	}
	if r.Status != status || r.Body["type"] != typ || r.Body["status"] != float64(r.Status) {
		t.Errorf("want a %d %s problem, got %d %s", status, typ, r.Status, r.Raw)
	}
	if title, _ := r.Body["title"].(string); title == "" {
		t.Errorf("a problem without a title: %s", r.Raw)
	}
	detail, _ := r.Body["detail"].(string)
	if detail == "" {
		t.Errorf("a problem without a detail: %s", r.Raw)
	}
	for _, member := range []string{"type", "title", "detail"} {
		if s, _ := r.Body[member].(string); GoTerm(s) != "" {
			t.Errorf("%s names Go (%q): %s", member, GoTerm(s), r.Raw)
		}
	}
	raw, present := r.Body["errors"]
	if len(fields) == 0 {
		if present {
			t.Errorf("unexpected errors member: %s", r.Raw)
		}
		return
	}
	var errs map[string]string
	if b, err := json.Marshal(raw); err != nil || json.Unmarshal(b, &errs) != nil || len(errs) == 0 {
		t.Errorf("a problem about %v without an errors object of messages: %s", fields, r.Raw)
		return
	}
	if len(errs) > MaxErrors {
		t.Errorf("errors names %d inputs, more than %d: %.300s", len(errs), MaxErrors, r.Raw)
	}
	if got, want := slices.Sorted(maps.Keys(errs)), slices.Sorted(slices.Values(fields)); !slices.Equal(got, want) {
		t.Errorf("errors names %v, want %v: %s", got, want, r.Raw)
	}
	for name, msg := range errs {
		if !apiName.MatchString(name) && !clientName.MatchString(name) || GoTerm(name) != "" {
			t.Errorf("errors names %q, not an input of the API: %s", name, r.Raw)
		}
		if msg == "" || GoTerm(msg) != "" {
			t.Errorf("errors[%s] = %q names Go or nothing: %s", strconv.Quote(name), msg, r.Raw)
		}
	}
}

func firstHidden(s string) rune {
	for _, r := range s {
		if hidden(r) {
			return r
		}
	}
	return 0
}
