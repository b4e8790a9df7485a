package httpx_test

import (
	"encoding/json"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/httpx"
)

func TestTextProblem(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in        string
		multiline bool
		ok        bool
	}{
		{"Laptop 15\"", false, true},
		{"Ноутбук 😀 é", false, true},
		{"x\u202ey \u200b \ufeff", false, true}, // printable or format characters: PostgreSQL holds them
		{"a\x00b", false, false},
		{"a\x00b", true, false},
		{"a\xffb", false, false},
		{"\xed\xa0\x80", false, false}, // an encoded surrogate is not UTF-8
		{"a\x07b", false, false},
		{"a\x7fb", false, false},
		{"a\u0085b", false, false}, // C1
		{"line 1\nline 2", false, false},
		{"line 1\nline 2\ttab", true, true},
		{"line 1\r\nline 2", true, true},
		{"lone\rreturn", true, false},
		{"line\u2028separator", false, false}, // one line: refused as \n is
		{"para\u2029separator", false, false},
		{"line\u2028separator\u2029para", true, true},
		{"", false, true},
	} {
		got := httpx.TextProblem(c.in, c.multiline)
		if (got == "") != c.ok {
			t.Errorf("TextProblem(%q, multiline %v) = %q, want ok %v", c.in, c.multiline, got, c.ok)
		}
	}
}

type nested struct {
	Note  string `json:"note" text:"multiline"`
	Email string `json:"user_email"`
	Items []struct {
		ID string `json:"product_id"`
	} `json:"items"`
	Tags map[string]string `json:"tags"`
	ID   uuid.UUID         `json:"id"`
	Raw  json.RawMessage   `json:"raw"`
	Skip string            `json:"-"`
}

func TestTextProblemsNamesEveryFieldByItsJSONPath(t *testing.T) {
	t.Parallel()
	v := nested{Note: "two\nlines", Email: "a\x00@example.com", Tags: map[string]string{"k": "v\x01"}, ID: uuid.New(),
		Raw: json.RawMessage("\"\xff\""), Skip: "\x00"}
	v.Items = append(v.Items, struct {
		ID string `json:"product_id"`
	}{"ok"}, struct {
		ID string `json:"product_id"`
	}{"\x1b[31m"})
	got := httpx.TextProblems(&v)
	want := []string{"user_email", "items[1].product_id", "tags.k", "raw"}
	if len(got) != len(want) {
		t.Fatalf("problems %v, want the fields %v", got, want)
	}
	for _, f := range want {
		if got[f] == "" {
			t.Errorf("no problem for %s in %v", f, got)
		}
	}
}

// DecodeJSON refuses invalid UTF-8 (400) before Go's decoder would replace
// it, and text a field may not hold (422 with errors by field).
func TestDecodeJSONRefusesTextItCannotStore(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		body   string
		status int
		errors map[string]string
	}{
		{`{"note":"fine\nlines","user_email":"a@example.com"}`, 200, nil},
		{"{\"user_email\":\"a\xff@example.com\"}", 400, nil},
		{`{"user_email":"a\u0000@example.com"}`, 422, map[string]string{"user_email": "must not contain NUL (U+0000)"}},
		{`{"items":[{"product_id":"\u001b"}]}`, 422, map[string]string{"items[0].product_id": "must not contain control characters (U+001B)"}},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		var v nested
		if httpx.DecodeJSON(rec, req, &v) {
			rec.WriteHeader(200)
		}
		if rec.Code != c.status {
			t.Errorf("%q: status %d, want %d (%s)", c.body, rec.Code, c.status, rec.Body)
			continue
		}
		if c.errors != nil {
			var p struct{ Errors map[string]string }
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || !maps.Equal(p.Errors, c.errors) {
				t.Errorf("%q: errors %v (%v), want %v", c.body, p.Errors, err, c.errors)
			}
		}
	}
	_ = http.StatusOK
}

// FuzzTextProblem: what is accepted is valid UTF-8 without NUL or control
// characters (tab and newline only where allowed), survives a JSON round
// trip unchanged, and what a single-line field accepts a multiline one
// accepts too.
func FuzzTextProblem(f *testing.F) {
	for _, s := range []string{"", "a", "a\x00b", "\xff", "é", "\u0085", "a\r\nb", "\t", "\u202e", "\ufeff", "😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		single, multi := httpx.TextProblem(s, false) == "", httpx.TextProblem(s, true) == ""
		if single && !multi {
			t.Fatalf("%q accepted on one line but not on several", s)
		}
		if !multi {
			return
		}
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Fatalf("%q accepted", s)
		}
		for _, r := range s {
			if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
				t.Fatalf("%q accepted with U+%04X", s, r)
			}
			if single && r < 0x20 {
				t.Fatalf("%q accepted on one line with U+%04X", s, r)
			}
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back string
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Fatalf("%q does not survive JSON: %q (%v)", s, back, err)
		}
	})
}

// A body of the wrong shape is described in JSON's terms, never Go's.
func TestDecodeJSONDescribesTypesInJSONTerms(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"items":{}}`:                    `Field "items" must be an array.`,
		`{"user_email":5}`:                `Field "user_email" must be a string.`,
		`{"items":[{"product_id":true}]}`: `must be a string.`,
		`{"tags":[]}`:                     `Field "tags" must be an object.`,
		`[1]`:                             `The body must be a JSON object.`,
		`{"user_email":"a@example.com","USER_EMAIL":"b@example.com"}`: `Unknown field "USER_EMAIL" (names are case-sensitive).`,
		`{"items":[{"product_id":"x","product_id":"y"}]}`:             `Field "items[0].product_id" appears more than once.`,
		`{"note":"a"}GARBAGE`:      `The body is not valid JSON`,
		`{"note":"a"}{"note":"b"}`: `The body is not valid JSON`,
	} {
		rec := httptest.NewRecorder()
		var v nested
		httpx.DecodeJSON(rec, post(body), &v)
		var p struct{ Detail string }
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if rec.Code != 400 || !strings.Contains(p.Detail, want) || strings.Contains(p.Detail, "struct") || strings.Contains(p.Detail, "[]") {
			t.Errorf("%s: %d %q, want 400 with %q", body, rec.Code, p.Detail, want)
		}
	}
}

// FuzzUnmarshal: whatever a request body holds, decoding it never panics,
// and what it accepts is one valid JSON value whose member names are all
// ones the target declares, each at most once.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`{"note":"a","user_email":"b"}`, `{"items":[{"product_id":"x"}]}`, `{"note":"a","note":"b"}`,
		`{"NOTE":"a"}`, `{}x`, `{"tags":{"k":"v"}}`, `{"id":"0193a3e0-0000-7000-8000-000000000000"}`, ``, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v nested
		if err := httpx.Unmarshal(body, &v); err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted %q, which is not one JSON value", body)
		}
		var generic map[string]json.RawMessage
		if err := json.Unmarshal(body, &generic); err == nil {
			for name := range generic {
				switch name {
				case "note", "user_email", "items", "tags", "id", "raw":
				default:
					t.Fatalf("accepted %q with the undeclared member %q", body, name)
				}
			}
		}
	})
}

// Query reads a route's query string by one rule: only the parameters the
// route declares, each once (no parameter of the API is a list), never
// empty, at most its Max characters, and text; anything else is 400
// naming each offending parameter (an unknown one bounded, as Clip
// writes it), never ignored or read as its first value.
func TestQuery(t *testing.T) {
	t.Parallel()
	h := httpx.Query(httpx.Param{Name: "limit", Max: 3}, httpx.Param{Name: "status", Max: 20}, httpx.Param{Name: "email", Max: 254},
		httpx.Param{Name: "cursor", Max: 256})(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	long := strings.Repeat("k", 1_000_000)
	for query, fields := range map[string][]string{
		"limit=10&status=paid":              nil,
		"":                                  nil,
		"email=" + strings.Repeat("e", 254): nil,
		"limit=10&limit=200":                {"limit"},
		"status=paid&status=canceled":       {"status"},
		"email=x&email=y":                   {"email"},
		"email=x&email=x":                   {"email"},
		"cursor=a%00b":                      {"cursor"},
		"email=a%C2%85b":                    {"email"},
		"email=%FF":                         {"email"},
		"limit=%zz":                         {},
		"a;b=1":                             {},
		// Undeclared, empty, too long.
		"emial=x":                           {"emial"},
		"emial=x&stauts=paid&limit=5":       {"emial", "stauts"},
		"limit=":                            {"limit"},
		"limit":                             {"limit"},
		"status=&email=":                    {"status", "email"},
		"email=" + strings.Repeat("e", 255): {"email"},
		"limit=1000":                        {"limit"},
		"a%00b=1":                           {`a\u0000b`},
		"a%E2%80%AEb=1":                     {`a\u202eb`},
		long + "=1":                         {httpx.Clip(long)},
		"email=" + long:                     {"email"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/products?"+query, nil))
		name := query
		if len(name) > 80 {
			name = name[:80] + "…"
		}
		switch {
		case fields == nil && rec.Code != http.StatusNoContent:
			t.Errorf("?%s: %d %s", name, rec.Code, rec.Body)
		case fields != nil && rec.Code != http.StatusBadRequest:
			t.Errorf("?%s: %d, want 400", name, rec.Code)
		case rec.Body.Len() > 1024:
			t.Errorf("?%s: a problem of %d bytes", name, rec.Body.Len())
		case len(fields) > 0:
			var p struct{ Errors map[string]string }
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || len(p.Errors) != len(fields) {
				t.Errorf("?%s: %s, want errors naming %q", name, rec.Body, fields)
			}
			for _, f := range fields {
				if p.Errors[f] == "" {
					t.Errorf("?%s: %s, want errors naming %q", name, rec.Body, f)
				}
			}
		}
	}
	// A route that declares none takes none.
	rec := httptest.NewRecorder()
	httpx.Query()(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/orders/x?limit=5", nil))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "it takes none") {
		t.Errorf("a parameter on a route that takes none: %d %s", rec.Code, rec.Body)
	}
}

// A header the service reads is read once: two fields of it are 400
// naming it, wherever it is read (Once, Header, RequireAdmin).
func TestHeadersAreReadOnce(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	admin := httpx.RequireAdmin("right")
	for _, c := range []struct {
		name    string
		header  http.Header
		handler http.Handler
		status  int
		fields  []string
	}{
		{"admin secret once", http.Header{"X-Admin-Secret": {"right"}}, admin(ok), http.StatusNoContent, nil},
		{"admin secret right, then wrong", http.Header{"X-Admin-Secret": {"right", "wrong"}}, admin(ok), http.StatusBadRequest, []string{"X-Admin-Secret"}},
		{"admin secret wrong, then right", http.Header{"X-Admin-Secret": {"wrong", "right"}}, admin(ok), http.StatusBadRequest, []string{"X-Admin-Secret"}},
		{"admin secret twice the same", http.Header{"X-Admin-Secret": {"right", "right"}}, admin(ok), http.StatusBadRequest, []string{"X-Admin-Secret"}},
		{"admin secret wrong", http.Header{"X-Admin-Secret": {"wrong"}}, admin(ok), http.StatusUnauthorized, nil},
		{"signature headers twice", http.Header{"Webhook-Id": {"a", "b"}, "Webhook-Timestamp": {"1", "2"}, "Webhook-Signature": {"v1,x"}},
			onceHandler(ok, "webhook-id", "webhook-timestamp", "webhook-signature"), http.StatusBadRequest, []string{"webhook-id", "webhook-timestamp"}},
		{"signature header twice", http.Header{"Webhook-Signature": {"v1,x", "v1,y"}},
			onceHandler(ok, "webhook-id", "webhook-timestamp", "webhook-signature"), http.StatusBadRequest, []string{"webhook-signature"}},
		{"signature headers once", http.Header{"Webhook-Id": {"a"}, "Webhook-Signature": {"v1,x v1,y"}},
			onceHandler(ok, "webhook-id", "webhook-timestamp", "webhook-signature"), http.StatusNoContent, nil},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header = c.header
		rec := httptest.NewRecorder()
		c.handler.ServeHTTP(rec, req)
		var p struct{ Errors map[string]string }
		_ = json.Unmarshal(rec.Body.Bytes(), &p)
		if rec.Code != c.status || len(p.Errors) != len(c.fields) {
			t.Errorf("%s: %d %s, want %d naming %v", c.name, rec.Code, rec.Body, c.status, c.fields)
		}
		for _, f := range c.fields {
			if p.Errors[f] == "" {
				t.Errorf("%s: %s, want errors naming %s", c.name, rec.Body, f)
			}
		}
	}
}

func onceHandler(next http.Handler, names ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := httpx.Once(r, names...); p != nil {
			httpx.WriteProblem(w, *p)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// A request header is read through this package (Header, Once,
// CheckJSONMediaType, RequireAdmin…), which reads each header the service
// reads once: nothing else in the service reads one with Header.Get or
// Values, which would take the first of two fields.
func TestRequestHeadersAreReadHere(t *testing.T) {
	t.Parallel()
	direct := regexp.MustCompile(`\b(r|req|request)\.Header\.(Get|Values)\(|\b(r|req|request)\.Header\[`)
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "tools" || d.Name() == "httpx" || d.Name() == "apitest" || strings.HasPrefix(d.Name(), ".")) && path != "../.." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			if direct.MatchString(line) {
				t.Errorf("%s:%d reads a request header itself (use httpx.Header or httpx.Once): %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
