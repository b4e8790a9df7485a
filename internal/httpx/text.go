package httpx

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"
)

// Text that the service stores must be text that PostgreSQL's text and
// json types hold and that every projection can apply: valid UTF-8 (JSON
// bodies are checked as bytes before decoding, since Go's decoder would
// silently replace invalid sequences), no NUL (PostgreSQL text cannot hold
// it, jsonb refuses \u0000), and no other control character (C0, DEL, C1),
// except tab and newline in fields that allow several lines. One rule, at
// the boundary: request bodies (DecodeJSON, every string field it decodes,
// however nested), query parameters (CheckQuery) and stored headers.

// TextProblem returns why s is not text the service accepts, or "" if it
// is; multiline allows tab and newline (and carriage return before one).
func TextProblem(s string, multiline bool) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for i, r := range s {
		switch {
		case r == 0:
			return "must not contain NUL (U+0000)"
		case multiline && (r == '\t' || r == '\n'):
		case multiline && r == '\r' && i+1 < len(s) && s[i+1] == '\n':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return fmt.Sprintf("must not contain control characters (U+%04X)", r)
		}
	}
	return ""
}

// TextProblems checks every string that v (a pointer to a decoded request:
// a tree, never a cycle; embedded structs are walked by field name) holds, in structs, pointers, slices and maps, and returns the problems by
// the field's JSON path (items[0].product_id). A string field tagged
// `text:"multiline"` may hold tabs and newlines.
func TextProblems(v any) map[string]string {
	problems := map[string]string{}
	walkText(reflect.ValueOf(v), "", false, problems)
	return problems
}

func walkText(v reflect.Value, path string, multiline bool, problems map[string]string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkText(v.Elem(), path, multiline, problems)
		}
	case reflect.String:
		if p := TextProblem(v.String(), multiline); p != "" {
			problems[orBody(path)] = p
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			// Bytes: a fixed array is binary (a uuid.UUID), a slice raw
			// JSON (json.RawMessage) that its own parser reads later.
			if v.Kind() == reflect.Slice && !utf8.Valid(v.Bytes()) {
				problems[orBody(path)] = "must be valid UTF-8"
			}
			return
		}
		for i := range v.Len() {
			walkText(v.Index(i), fmt.Sprintf("%s[%d]", path, i), multiline, problems)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			name := fmt.Sprint(k.Interface())
			if k.Kind() == reflect.String {
				if p := TextProblem(k.String(), false); p != "" {
					problems[join(path, "(key)")] = p
					continue
				}
			}
			walkText(v.MapIndex(k), join(path, name), multiline, problems)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			walkText(v.Field(i), join(path, name), f.Tag.Get("text") == "multiline", problems)
		}
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func orBody(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

// CheckQuery refuses, with 400 naming the parameter, a request whose query
// parameters (names or values) are not text the service accepts.
func CheckQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for name, values := range r.URL.Query() {
			if p := TextProblem(name, false); p != "" {
				WriteProblem(w, Problem{Type: TypeMalformedRequest, Detail: "A query parameter's name " + p + "."})
				return
			}
			for _, v := range values {
				if p := TextProblem(v, false); p != "" {
					problem := InvalidField(TypeMalformedRequest, name, p)
					problem.Detail = fmt.Sprintf("Query parameter %q %s.", name, p)
					WriteProblem(w, problem)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
