package httpx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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
		err = Unmarshal(body, v)
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

// Unmarshal decodes a JSON body into v with the semantics a request needs
// (github.com/go-json-experiment/json, the proposed encoding/json/v2):
// member names match exactly (encoding/json matched "USER_EMAIL" to
// user_email), a name given twice is refused (encoding/json let the last
// win, so {"quantity":1,"quantity":4} reserved 4), unknown names are
// refused, and nothing may follow the value. Every decoder of request and
// webhook bodies goes through it.
func Unmarshal(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errEmptyBody
	}
	return json.Unmarshal(body, v, json.RejectUnknownMembers(true))
}

var errEmptyBody = errors.New("empty body")

// describe turns a decoding error into a message for the client, naming
// fields by their path in the request (items[0].quantity), never Go types.
func describe(err error) string {
	var sem *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.Is(err, errEmptyBody):
		return "The body is empty; send a JSON object."
	case errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName):
		return fmt.Sprintf("Field %q appears more than once.", fieldPath(syn.JSONPointer))
	case errors.As(err, &syn):
		return fmt.Sprintf("The body is not valid JSON (at byte %d).", syn.ByteOffset)
	case errors.As(err, &sem) && errors.Is(sem.Err, json.ErrUnknownName):
		return fmt.Sprintf("Unknown field %q (names are case-sensitive).", fieldPath(sem.JSONPointer))
	case errors.As(err, &sem) && sem.JSONPointer != "" && sem.GoType != nil:
		return fmt.Sprintf("Field %q must be %s.", fieldPath(sem.JSONPointer), jsonKind(sem.GoType))
	case errors.As(err, &sem):
		return "The body must be a JSON object."
	}
	return "The body could not be read."
}

// fieldPath turns a JSON Pointer (RFC 6901) into the API's field notation:
// /items/0/quantity is items[0].quantity.
func fieldPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteString(".")
		}
		b.WriteString(tok)
	}
	return b.String()
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
