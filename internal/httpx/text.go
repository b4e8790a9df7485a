package httpx

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/orders-reference/orders/internal/textrule"
)

// Text that the service stores must be text that PostgreSQL's text and
// json types hold and that every projection can apply: valid UTF-8 (JSON
// bodies are checked as bytes before decoding, since Go's decoder would
// silently replace invalid sequences), no NUL (PostgreSQL text cannot hold
// it, jsonb refuses \u0000), and no other control character (C0, DEL, C1),
// except tab and newline in fields that allow several lines; a field of
// one line refuses the line and paragraph separators U+2028 and U+2029
// too (textrule.LineBreak), as it refuses the newline. One rule, at
// the boundary: request bodies (DecodeJSON, every string field it decodes,
// however nested), query parameters (Query) and stored headers
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
		case !multiline && textrule.LineBreak(r):
			return fmt.Sprintf("must not contain line or paragraph separators (U+%04X)", r)
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

// Param declares a query parameter of a route: its name, and the most
// characters its value may have (the longest value that can be right, or
// a bound a little above it: the route's own rule then says what is
// wrong).
type Param struct {
	Name string
	Max  int
}

// Query returns the middleware that reads a route's query string by the
// one rule of the API; each route mounts it with the parameters it
// declares (none: a route that takes none). It refuses with 400, naming
// each parameter in errors (by Clip: at most MaxEcho characters), a query
// string that does not parse (a malformed % escape, a ; separator), a
// parameter the route does not declare (an unknown one is refused, as an
// unknown body field is: "?emial=x" would otherwise list everything), and
// a declared one that is given more than once (none of them is a list:
// "limit=10&limit=200" has no one meaning), empty ("limit=" is not the
// absence of a limit), longer than its Max or not text the service
// accepts (TextProblem).
func Query(params ...Param) func(http.Handler) http.Handler {
	declared := make(map[string]int, len(params))
	names := make([]string, len(params))
	for i, p := range params {
		declared[p.Name], names[i] = p.Max, p.Name
	}
	takes := "it takes none"
	if len(names) > 0 {
		takes = "it takes " + strings.Join(names, ", ")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			query, err := url.ParseQuery(r.URL.RawQuery)
			if err != nil {
				WriteProblem(w, Problem{Type: TypeMalformedRequest, Detail: "The query string is not valid (a % escape is malformed or a ; separates parameters)."})
				return
			}
			problems := map[string]string{}
			for name, values := range query {
				max, ok := declared[name]
				if !ok {
					problems[name] = "is not a query parameter of this endpoint (" + takes + ")"
					continue
				}
				if p := queryValueProblem(values, max); p != "" {
					problems[name] = p
				}
			}
			switch len(problems) {
			case 0:
				next.ServeHTTP(w, r)
				return
			case 1:
				for name, problem := range problems {
					p := InvalidField(TypeMalformedRequest, name, problem)
					p.Detail = "Query parameter " + Quote(name) + " " + problem + "."
					WriteProblem(w, p)
				}
				return
			}
			WriteProblem(w, Invalid(TypeMalformedRequest, problems))
		})
	}
}

// queryValueProblem says what is wrong with the values of a declared
// query parameter, or "" if nothing is.
func queryValueProblem(values []string, max int) string {
	if len(values) > 1 {
		return "must be given once"
	}
	v := values[0]
	if p := TextProblem(v, false); p != "" {
		return p
	}
	switch n := utf8.RuneCountInString(v); {
	case n == 0:
		return "must not be empty (leave the parameter out instead)"
	case n > max:
		return fmt.Sprintf("must be at most %d characters", max)
	}
	return ""
}

// Header returns the value of the request header name, for a header whose
// value the service reads (and may store or echo): it must be sent at
// most once (two fields would have two meanings, and Get reads only the
// first), hold text the service accepts (TextProblem: no control
// character, tab included, valid UTF-8), be an identifier that looks like
// what it is (textrule.IdentifierProblem: no invisible or
// bidirectional-control character; every such header is an identifier:
// Idempotency-Key, webhook-id, X-Min-Position) and, if max is positive,
// be 1 to max characters long. present reports whether it was sent; a
// problem is a 400 naming the header.
func Header(r *http.Request, name string, max int) (value string, present bool, problem *Problem) {
	value, present, problem = singleHeader(r, name)
	if !present || problem != nil {
		return value, present, problem
	}
	message := TextProblem(value, false)
	if message == "" {
		message = textrule.IdentifierProblem(value)
	}
	if n := utf8.RuneCountInString(value); message == "" && max > 0 && (n == 0 || n > max) {
		message = fmt.Sprintf("must be 1-%d characters", max)
	}
	if message != "" {
		return "", true, headerProblem(name, message)
	}
	return value, true, nil
}

// Once returns the problem (400, errors naming each) of a request that
// sends any of the headers names more than once, or nil. A header the
// service reads has one meaning: two fields of it (two X-Admin-Secret,
// one right and one wrong; two webhook-signature) are refused, never
// read as the first. Header, CheckJSONMediaType and RequireAdmin apply
// it to the header each reads; a handler that hands headers to another
// reader (the webhook's signature check) applies it first.
func Once(r *http.Request, names ...string) *Problem {
	problems := map[string]string{}
	for _, name := range names {
		if len(r.Header.Values(name)) > 1 {
			problems[name] = "must be sent once"
		}
	}
	switch len(problems) {
	case 0:
		return nil
	case 1:
		for name, message := range problems {
			return headerProblem(name, message)
		}
	}
	p := Invalid(TypeMalformedRequest, problems)
	return &p
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
