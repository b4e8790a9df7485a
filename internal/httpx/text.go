package httpx

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
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
// however nested), query parameters (CheckQuery) and stored headers
// (Header).

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
// parameters (names or values) are not text the service accepts, or that
// gives one parameter more than once (no parameter of the API is a list:
// "limit=10&limit=200" has no one meaning, and reading the first would
// hide the second). Every API and the fake provider mount it.
func CheckQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			WriteProblem(w, Problem{Type: TypeMalformedRequest, Detail: "The query string is not valid (a % escape is malformed or a ; separates parameters)."})
			return
		}
		for _, name := range slices.Sorted(maps.Keys(query)) {
			if p := TextProblem(name, false); p != "" {
				WriteProblem(w, Problem{Type: TypeMalformedRequest, Detail: "A query parameter's name " + p + "."})
				return
			}
			values := query[name]
			problem := ""
			if len(values) > 1 {
				problem = "must be given once"
			}
			for _, v := range values {
				if p := TextProblem(v, false); p != "" && problem == "" {
					problem = p
				}
			}
			if problem != "" {
				p := InvalidField(TypeMalformedRequest, name, problem)
				p.Detail = "Query parameter " + Quote(name) + " " + problem + "."
				WriteProblem(w, p)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Header returns the value of the request header name, for a header whose
// value the service reads (and may store or echo): it must be sent at
// most once (two fields would have two meanings, and Get reads only the
// first), hold text the service accepts (TextProblem: no control
// character, tab included, valid UTF-8) and, if max is positive, be 1 to
// max characters long. present reports whether it was sent; a problem is
// a 400 naming the header.
func Header(r *http.Request, name string, max int) (value string, present bool, problem *Problem) {
	value, present, problem = singleHeader(r, name)
	if !present || problem != nil {
		return value, present, problem
	}
	message := TextProblem(value, false)
	if n := utf8.RuneCountInString(value); message == "" && max > 0 && (n == 0 || n > max) {
		message = fmt.Sprintf("must be 1-%d characters", max)
	}
	if message != "" {
		return "", true, headerProblem(name, message)
	}
	return value, true, nil
}

// singleHeader returns the one value of the request header name; two or
// more fields are a 400 naming it. (Header adds the text rule; a header
// with a syntax of its own, such as Content-Type, whose parameters may be
// separated by tabs, is read with this alone.)
func singleHeader(r *http.Request, name string) (value string, present bool, problem *Problem) {
	switch values := r.Header.Values(name); len(values) {
	case 0:
		return "", false, nil
	case 1:
		return values[0], true, nil
	}
	return "", true, headerProblem(name, "must be sent once")
}

func headerProblem(name, message string) *Problem {
	p := InvalidField(TypeMalformedRequest, name, message)
	p.Detail = "Header " + name + " " + message + "."
	return &p
}
