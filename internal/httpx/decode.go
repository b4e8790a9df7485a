package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"
)

// MaxBody is the largest request body accepted.
const MaxBody = 1 << 20

// DecodeJSON reads r's body into v strictly: JSON content type, at most
// MaxBody bytes of valid UTF-8, no unknown fields, nothing after the value,
// and every string in it text the service stores (TextProblems: 422 naming
// the fields). On failure it
// has already written the problem response and returns false.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			WriteProblem(w, Problem{Type: TypeUnsupportedMediaType,
				Detail: "Send the body as application/json."})
			return false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err == nil && !utf8.Valid(body) {
		// Go's decoder would replace the invalid bytes silently.
		WriteProblem(w, Problem{Type: TypeMalformedRequest, Detail: "The body is not valid UTF-8."})
		return false
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err = dec.Decode(v); err == nil {
			if _, extra := dec.Token(); !errors.Is(extra, io.EOF) {
				err = errors.New("unexpected data after the JSON value")
			}
		}
	}
	if err == nil {
		if problems := TextProblems(v); len(problems) > 0 {
			WriteProblem(w, Problem{Type: TypeValidation, Detail: "The request has invalid fields.",
				Extensions: map[string]any{"errors": problems}})
			return false
		}
		return true
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		WriteProblem(w, Problem{Type: TypeBodyTooLarge,
			Detail: fmt.Sprintf("The body must be at most %d bytes.", MaxBody)})
		return false
	}
	WriteProblem(w, Problem{Type: TypeMalformedRequest, Detail: describe(err)})
	return false
}

// describe turns a decoding error into a message for the client.
func describe(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "The body is empty; send a JSON object."
	case errors.As(err, &syntax):
		return fmt.Sprintf("The body is not valid JSON (at byte %d).", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("Field %q must be %s.", typ.Field, jsonKind(typ.Type))
		}
		return "The body must be a JSON object."
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "Unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ") + "."
	}
	return "The body could not be read: " + err.Error()
}

// jsonKind names what a Go type decodes from in JSON's terms (a request's
// fields are described to clients, never its Go types).
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a value of another type"
}
