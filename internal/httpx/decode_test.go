package httpx_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/apitest"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/money"
)

type outcome struct {
	OrderID  uuid.UUID    `json:"order_id"`
	Amount   money.Amount `json:"amount"`
	Quantity int64        `json:"quantity"`
	Lines    []struct {
		Quantity int64 `json:"quantity"`
	} `json:"lines"`
	Active *bool  `json:"active"`
	Note   string `json:"note"`
}

// post is a request with body sent as JSON.
func post(body string) *http.Request {
	req := httptest.NewRequest("POST", "/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// problemOf decodes a problem answer.
func problemOf(t *testing.T, rec *httptest.ResponseRecorder) (p struct {
	Type   string
	Detail string
	Errors map[string]string
}) {
	t.Helper()
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("not a problem: %s", rec.Body)
	}
	return p
}

// Every decoding failure names its input in errors, a field by its path
// in the request, the body as a whole as "body", with a message in JSON's
// terms: 400 for a value of another JSON kind (null included: no input of
// the API is nullable), an unknown or repeated member, a body that is not
// one JSON object; 422 for a value of the right kind that breaks the
// field's format or range (as a field rule does).
func TestDecodeNamesTheFieldInErrors(t *testing.T) {
	t.Parallel()
	const amount = `must be a decimal amount with at most two fraction digits, e.g. "1500.00"`
	for _, c := range []struct {
		body   string
		status int
		errors map[string]string
	}{
		{`{"order_id":"nope"}`, 422, map[string]string{"order_id": httpx.UUIDRule}},
		{`{"order_id":5}`, 400, map[string]string{"order_id": httpx.UUIDRule}},
		{`{"order_id":null}`, 400, map[string]string{"order_id": "must be a UUID, not null"}},
		{`{"order_id":"{0193a3e0-0000-7000-8000-000000000000}"}`, 422, map[string]string{"order_id": httpx.UUIDRule}},
		{`{"order_id":"urn:uuid:0193a3e0-0000-7000-8000-000000000000"}`, 422, map[string]string{"order_id": httpx.UUIDRule}},
		{`{"order_id":"0193a3e0000070008000000000000000"}`, 422, map[string]string{"order_id": httpx.UUIDRule}},
		{`{"amount":"1.001"}`, 422, map[string]string{"amount": amount}},
		{`{"amount":1.001}`, 422, map[string]string{"amount": amount}},
		{`{"amount":{}}`, 400, map[string]string{"amount": amount}},
		{`{"amount":[]}`, 400, map[string]string{"amount": amount}},
		{`{"amount":true}`, 400, map[string]string{"amount": amount}},
		{`{"amount":null}`, 400, map[string]string{"amount": "must be a decimal amount, not null"}},
		{`{"quantity":"1"}`, 400, map[string]string{"quantity": "must be an integer"}},
		{`{"quantity":1.5}`, 400, map[string]string{"quantity": "must be an integer"}},
		{`{"quantity":null}`, 400, map[string]string{"quantity": "must be an integer, not null"}},
		{`{"quantity":99999999999999999999}`, 422, map[string]string{"quantity": "is out of range"}},
		{`{"lines":{}}`, 400, map[string]string{"lines": "must be an array"}},
		{`{"lines":null}`, 400, map[string]string{"lines": "must be an array, not null"}},
		{`{"lines":[true]}`, 400, map[string]string{"lines[0]": "must be an object"}},
		{`{"lines":[null]}`, 400, map[string]string{"lines[0]": "must be an object, not null"}},
		{`{"lines":[{"quantity":[]}]}`, 400, map[string]string{"lines[0].quantity": "must be an integer"}},
		{`{"lines":[{"quantity":null}]}`, 400, map[string]string{"lines[0].quantity": "must be an integer, not null"}},
		{`{"active":"yes"}`, 400, map[string]string{"active": "must be true or false"}},
		{`{"active":null}`, 400, map[string]string{"active": "must be true or false, not null"}},
		{`{"note":null}`, 400, map[string]string{"note": "must be a string, not null"}},
		{`{"note":"\ud800"}`, 400, map[string]string{"note": `must be Unicode text (a \u escape names half a surrogate pair)`}},
		{`{"note":"a","NOTE":"b"}`, 400, map[string]string{"NOTE": "is not a field of this request (names are case-sensitive)"}},
		{`{"lines":[{"quantity":1,"quantity":2}]}`, 400, map[string]string{"lines[0].quantity": "appears more than once"}},
		{`{"note":"a\u0000"}`, 422, map[string]string{"note": "must not contain NUL (U+0000)"}},
		{`null`, 400, map[string]string{"body": "must be a JSON object"}},
		{` [] `, 400, map[string]string{"body": "must be a JSON object"}},
		{``, 400, map[string]string{"body": "is empty; it must be a JSON object"}},
		{`{"note":`, 400, map[string]string{"body": "is not valid JSON (at byte 8)"}},
		{`{"note":"a"} x`, 400, map[string]string{"body": "is not valid JSON: it has more after the object (at byte 13)"}},
		{"{\"note\":\"\xff\"}", 400, map[string]string{"body": "is not valid UTF-8"}},
	} {
		rec := httptest.NewRecorder()
		var v outcome
		if httpx.DecodeJSON(rec, post(c.body), &v) {
			t.Errorf("%s: accepted", c.body)
			continue
		}
		p := problemOf(t, rec)
		if rec.Code != c.status || !maps.Equal(p.Errors, c.errors) {
			t.Errorf("%s: %d %s, want %d with errors %v", c.body, rec.Code, rec.Body, c.status, c.errors)
		}
		if term := apitest.GoTerm(p.Detail); term != "" {
			t.Errorf("%s: the detail %q names Go (%q)", c.body, p.Detail, term)
		}
		for field, msg := range p.Errors {
			if !strings.Contains(p.Detail, field) && field != "body" || !strings.Contains(p.Detail, msg) && field != "NOTE" {
				t.Errorf("%s: the detail %q does not say what errors says", c.body, p.Detail)
			}
		}
	}
}

// A UUID is read in its canonical form only, either case.
func TestParseUUID(t *testing.T) {
	t.Parallel()
	for s, ok := range map[string]bool{
		"0193a3e0-0000-7000-8000-000000000000":          true,
		"0193A3E0-ABCD-7000-8000-00000000000F":          true,
		"{0193a3e0-0000-7000-8000-000000000000}":        false,
		"urn:uuid:0193a3e0-0000-7000-8000-000000000000": false,
		"0193a3e0000070008000000000000000":              false,
		"0193a3e0-0000-7000-8000-00000000000g":          false,
		"0193a3e0-0000-7000-8000_000000000000":          false,
		" 0193a3e0-0000-7000-8000-00000000000":          false,
		"":                                              false,
	} {
		id, err := httpx.ParseUUID(s)
		if (err == nil) != ok || ok && id.String() != strings.ToLower(s) {
			t.Errorf("ParseUUID(%q) = %v, %v; want ok %v", s, id, err, ok)
		}
	}
}

// An integer parameter is written as the API writes integers.
func TestParseInt(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]int{"1": 1, "20": 20, "100": 100, "0": -1, "101": -1, "+5": -1, "-5": -1, "05": -1,
		" 5": -1, "5 ": -1, "1e2": -1, "0x10": -1, "": -1, "99999999999999999999": -1, "١": -1} {
		n, ok := httpx.ParseInt(s, 1, 100)
		if ok != (want >= 0) || ok && n != want {
			t.Errorf("ParseInt(%q) = %d, %v; want %d", s, n, ok, want)
		}
	}
}

// Only an absolute http(s) URL with a host is one the service can call.
func TestHTTPURLProblem(t *testing.T) {
	t.Parallel()
	for s, ok := range map[string]bool{
		"http://127.0.0.1:8000/webhooks/payment": true, "https://orders.example/hooks?x=1": true,
		"not a url": false, "/webhooks/payment": false, "ftp://example.com/": false, "http://": false,
		"mailto:a@example.com": false, "http:example.com": false, "": false, "http://exa mple.com/": false,
	} {
		if got := httpx.HTTPURLProblem(s); (got == "") != ok {
			t.Errorf("HTTPURLProblem(%q) = %q, want ok %v", s, got, ok)
		}
	}
}

// Quote writes a value as JSON does, never as Go's %q; what would not
// show as itself (controls, bidirectional controls, invisible code
// points, separators other than the space) is escaped the same way; and
// a value longer than MaxEcho bytes so written is cut, with its length.
// Clip is the same text without the quotes.
func TestQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"a": `"a"`, "a\x00": `"a\u0000"`, "tab\t": `"tab\t"`, "\xff": "\"\ufffd\"", `<&>`: `"<&>"`, `a"b\c`: `"a\"b\\c"`,
		"a b": `"a b"`, "é😀": `"é😀"`, "/orders/x": `"/orders/x"`, "\u00e9": `"é"`,
		"x\u202ey": `"x\u202ey"`, "\u2066\u2069\u200e\u061c": `"\u2066\u2069\u200e\u061c"`, // bidirectional controls
		"\u200b\ufeff\u00ad\u2060\u034f\u3164": `"\u200b\ufeff\u00ad\u2060\u034f\u3164"`, // invisible
		"\u00a0\u3000\u2028\u2029":             `"\u00a0\u3000\u2028\u2029"`,             // separators
		"\u007f\u0085\u009f":                   `"\u007f\u0085\u009f"`,                   // DEL and C1
		"\U000e0001\U000e0100":                 `"\udb40\udc01\udb40\udd00"`,             // a tag, a variation selector: as JSON writes them
		"\ue000\U000f0000":                     `"\ue000\udb80\udc00"`,                   // private use
		strings.Repeat("k", httpx.MaxEcho):     `"` + strings.Repeat("k", httpx.MaxEcho) + `"`,
		strings.Repeat("k", 1_000_000):         `"` + strings.Repeat("k", httpx.MaxEcho) + `…" (1000000 characters)`,
		strings.Repeat("é", 100):               `"` + strings.Repeat("é", httpx.MaxEcho/2) + `…" (100 characters)`,
		strings.Repeat("\u202e", 100_000):      `"` + strings.Repeat(`\u202e`, httpx.MaxEcho/6) + `…" (100000 characters)`,
	} {
		got := httpx.Quote(in)
		if got != want {
			t.Errorf("Quote(%.40q) = %.200s, want %.200s", in, got, want)
		}
		if term := apitest.GoTerm(got); term != "" {
			t.Errorf("Quote(%.40q) names Go: %q", in, term)
		}
		if clip := httpx.Clip(in); `"`+clip != strings.Replace(got, `…"`, `…`, 1) && `"`+clip+`"` != got {
			t.Errorf("Clip(%.40q) = %.200s, not Quote's text: %.200s", in, clip, got)
		}
		for _, r := range got {
			if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co, unicode.Bidi_Control, unicode.Other_Default_Ignorable_Code_Point) {
				t.Errorf("Quote(%.40q) = %.200s holds U+%04X", in, got, r)
			}
		}
	}
	// A name of the API is itself.
	for _, name := range []string{"items[99].product_id", "Idempotency-Key", "user_email", "/admin/orders/0193a3e0-0000-7000-8000-000000000000/history"} {
		if got := httpx.Clip(name); got != name {
			t.Errorf("Clip(%q) = %q", name, got)
		}
	}
}

// The work a body costs is bounded by what a request can hold: an array
// longer than MaxArrayItems is refused before any element is decoded, and
// the answer is one problem of a few hundred bytes, however many elements
// the body has.
func TestHugeArraysAnswerSmall(t *testing.T) {
	t.Parallel()
	body := `{"lines":[` + strings.Repeat(`{},`, 340_000) + `{}]}`
	if len(body) > httpx.MaxBody {
		t.Fatalf("the body is %d bytes, over MaxBody", len(body))
	}
	rec := httptest.NewRecorder()
	var v outcome
	if httpx.DecodeJSON(rec, post(body), &v) {
		t.Fatal("340,001 lines accepted")
	}
	p := problemOf(t, rec)
	if rec.Code != 422 || len(p.Errors) != 1 || p.Errors["lines"] == "" || rec.Body.Len() > 500 {
		t.Errorf("%d, %d bytes: %.300s", rec.Code, rec.Body.Len(), rec.Body)
	}
	if v.Lines != nil {
		t.Errorf("%d lines decoded", len(v.Lines))
	}
	// At the bound, the array is decoded; an unknown member's array is
	// not counted (it is refused as unknown).
	ok := `{"lines":[` + strings.Repeat(`{"quantity":1},`, httpx.MaxArrayItems-1) + `{"quantity":1}]}`
	if rec := httptest.NewRecorder(); !httpx.DecodeJSON(rec, post(ok), &v) || len(v.Lines) != httpx.MaxArrayItems {
		t.Errorf("%d lines: %d %s", httpx.MaxArrayItems, rec.Code, rec.Body)
	}
	unknown := `{"other":[` + strings.Repeat(`1,`, 1000) + `1]}`
	rec = httptest.NewRecorder()
	httpx.DecodeJSON(rec, post(unknown), &v)
	if p := problemOf(t, rec); rec.Code != 400 || p.Errors["other"] == "" {
		t.Errorf("an unknown member's long array: %d %s", rec.Code, rec.Body)
	}
}

// However many inputs a request gets wrong, errors names at most
// MaxErrors of them (the first by name) and the detail counts them all.
func TestErrorsAreCapped(t *testing.T) {
	t.Parallel()
	if httpx.MaxErrors != apitest.MaxErrors {
		t.Fatalf("httpx.MaxErrors %d, apitest.MaxErrors %d", httpx.MaxErrors, apitest.MaxErrors)
	}
	fields := map[string]string{}
	for i := range 1000 {
		fields[fmt.Sprintf("items[%03d].quantity", i)] = "must be 1-10000"
	}
	p := httpx.Invalid(httpx.TypeValidation, fields)
	shown := p.Extensions["errors"].(map[string]string)
	if len(shown) != httpx.MaxErrors || shown["items[000].quantity"] == "" || shown["items[019].quantity"] == "" {
		t.Errorf("errors names %d: %v", len(shown), shown)
	}
	if !strings.Contains(p.Detail, "and 997 more (errors lists the first 20 of 1000)") {
		t.Errorf("detail %q", p.Detail)
	}
	if len(fields) != 1000 {
		t.Error("Invalid changed its argument")
	}
}

// A body is JSON only when it says so: Content-Type application/json
// (charset, if any, utf-8), sent once. Anything else is 415 naming
// Content-Type, with Accept-Post (or Accept-Patch) saying what is
// accepted; two Content-Type fields are 400.
func TestDecodeJSONChecksTheMediaType(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		method string
		types  []string
		status int
	}{
		{"POST", []string{"application/json"}, 200},
		{"POST", []string{"application/json; charset=utf-8"}, 200},
		{"POST", []string{"Application/JSON; charset=UTF-8"}, 200},
		{"POST", nil, 415},
		{"POST", []string{""}, 415},
		{"POST", []string{"text/plain"}, 415},
		{"PATCH", []string{"application/json; charset=latin1"}, 415},
		{"POST", []string{"application/json; charset=utf-16"}, 415},
		{"POST", []string{"application/json; version=2"}, 415},
		{"POST", []string{"application/problem+json"}, 415},
		{"POST", []string{"application/merge-patch+json"}, 415},
		{"POST", []string{"application/json;"}, 200},
		{"POST", []string{"application/json;\tcharset=utf-8"}, 200},
		{"POST", []string{"application/json, text/plain"}, 415},
		{"POST", []string{"application/json", "application/json"}, 400},
		{"POST", []string{"application/json", "text/plain"}, 400},
	} {
		req := httptest.NewRequest(c.method, "/", strings.NewReader(`{"note":"a"}`))
		for _, ct := range c.types {
			req.Header.Add("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		var v outcome
		if httpx.DecodeJSON(rec, req, &v) {
			rec.WriteHeader(200)
		}
		if rec.Code != c.status {
			t.Errorf("%s %q: %d, want %d (%s)", c.method, c.types, rec.Code, c.status, rec.Body)
			continue
		}
		if c.status == 200 {
			continue
		}
		if p := problemOf(t, rec); len(p.Errors) != 1 || p.Errors["Content-Type"] == "" {
			t.Errorf("%q: errors %v, want Content-Type", c.types, p.Errors)
		}
		accept := map[string]string{"POST": "Accept-Post", "PATCH": "Accept-Patch"}[c.method]
		if got := rec.Header().Get(accept); c.status == 415 && got != "application/json" {
			t.Errorf("%q: %s %q", c.types, accept, got)
		}
	}
}

// A header the service reads and stores is sent once, is text (no control
// character, tab included; valid UTF-8) and 1 to max characters long,
// counted in characters, not bytes.
func TestHeader(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		values  []string
		problem string
	}{
		{[]string{"k1"}, ""},
		{[]string{strings.Repeat("é", 255)}, ""},
		{[]string{strings.Repeat("é", 256)}, "must be 1-255 characters"},
		{[]string{strings.Repeat("x", 5000)}, "must be 1-255 characters"},
		{[]string{""}, "must be 1-255 characters"},
		{[]string{"a\tb"}, "must not contain control characters (U+0009)"},
		{[]string{"a\u0085b"}, "must not contain control characters (U+0085)"},
		{[]string{"a\xffb"}, "must be valid UTF-8"},
		{[]string{"a", "b"}, "must be sent once"},
	} {
		req := httptest.NewRequest("POST", "/", nil)
		for _, v := range c.values {
			req.Header.Add("Idempotency-Key", v)
		}
		got, present, p := httpx.Header(req, "Idempotency-Key", 255)
		switch {
		case !present:
			t.Errorf("%.20q: not present", c.values)
		case c.problem == "" && (p != nil || got != c.values[0]):
			t.Errorf("%.20q: %q, %v", c.values, got, p)
		case c.problem != "" && (p == nil || p.Extensions["errors"].(map[string]string)["Idempotency-Key"] != c.problem):
			t.Errorf("%.20q: %v, want %q", c.values, p, c.problem)
		}
	}
	if _, present, p := httpx.Header(httptest.NewRequest("GET", "/", nil), "Idempotency-Key", 255); present || p != nil {
		t.Error("an absent header is present")
	}
}

// A detail spells out the first few field problems, in name order.
func TestFieldsDetail(t *testing.T) {
	t.Parallel()
	got := httpx.FieldsDetail(map[string]string{"user_email": "must be a valid email address", "items[0].quantity": "must be 1-10000"})
	if want := "items[0].quantity must be 1-10000; user_email must be a valid email address."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	got = httpx.FieldsDetail(map[string]string{"a": "x", "b": "x", "c": "x", "d": "x", "e": "x"})
	if want := "a x; b x; c x; and 2 more (see errors)."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
