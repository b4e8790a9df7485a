package httpx_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
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

// CheckQuery holds every query parameter to the text rule, and to one
// value: no parameter of the API is a list, so a repeated one is refused
// (400 naming it), never read as its first value.
func TestCheckQuery(t *testing.T) {
	t.Parallel()
	h := httpx.CheckQuery(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for query, field := range map[string]string{
		"limit=10&status=paid":        "",
		"":                            "",
		"limit=10&limit=200":          "limit",
		"status=paid&status=canceled": "status",
		"email=x&email=y":             "email",
		"email=x&email=x":             "email",
		"cursor=a%00b":                "cursor",
		"email=a%C2%85b":              "email",
		"email=%FF":                   "email",
		"a%00b=1":                     "-",
		"limit=%zz":                   "-",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/products?"+query, nil))
		switch {
		case field == "" && rec.Code != http.StatusNoContent:
			t.Errorf("?%s: %d %s", query, rec.Code, rec.Body)
		case field != "" && rec.Code != http.StatusBadRequest:
			t.Errorf("?%s: %d, want 400", query, rec.Code)
		case field != "" && field != "-":
			var p struct{ Errors map[string]string }
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || len(p.Errors) != 1 || p.Errors[field] == "" {
				t.Errorf("?%s: %s, want errors naming %s", query, rec.Body, field)
			}
		}
	}
}
