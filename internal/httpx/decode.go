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
	"github.com/google/uuid"

	"github.com/orders-reference/orders/money"
)

// MaxBody is the largest request body accepted.
const MaxBody = 1 << 20

// DecodeJSON reads r's body into v strictly: JSON content type, at most
// MaxBody bytes, then Decode. On failure it has already written the
// problem response and returns false.
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
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			WriteProblem(w, Problem{Type: TypeBodyTooLarge,
				Detail: fmt.Sprintf("The body must be at most %d bytes.", MaxBody)})
			return false
		}
		WriteProblem(w, Problem{Type: TypeMalformedRequest, Detail: "The body could not be read."})
		return false
	}
	if p := Decode(body, v); p != nil {
		WriteProblem(w, *p)
		return false
	}
	return true
}

// Decode decodes a request body already read (DecodeJSON's, or a
// webhook's, whose signature is checked over the raw bytes first) into v,
// a pointer to a struct: the body must be valid UTF-8 (Go's decoder would
// replace invalid bytes silently) holding one JSON object (Unmarshal), and
// every string in it text the service stores (TextProblems). On failure it
// returns the problem to answer, which names the fields in the API's terms
// (items[0].quantity), never Go's: 400 for a body that cannot be read as
// the request, 422 for a value that breaks a field's rule.
func Decode(body []byte, v any) *Problem {
	if !utf8.Valid(body) {
		return &Problem{Type: TypeMalformedRequest, Detail: "The body is not valid UTF-8."}
	}
	if err := Unmarshal(body, v); err != nil {
		p := describe(err, body, v)
		return &p
	}
	if problems := TextProblems(v); len(problems) > 0 {
		p := Invalid(TypeValidation, problems)
		return &p
	}
	return nil
}

// Unmarshal decodes a JSON body into v with the semantics a request needs
// (github.com/go-json-experiment/json, the proposed encoding/json/v2):
// the body is one JSON object, member names match exactly (encoding/json
// matched "USER_EMAIL" to user_email), a name given twice is refused
// (encoding/json let the last win, so {"quantity":1,"quantity":4}
// reserved 4), unknown names are refused, and nothing may follow the
// value. Every decoder of request and webhook bodies goes through it.
func Unmarshal(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return errEmptyBody
	}
	if trimmed[0] != '{' {
		// null would decode into the zero request; a string, number or
		// array is refused by the decoder as well, but not as plainly.
		return errNotObject
	}
	return json.Unmarshal(body, v, json.RejectUnknownMembers(true))
}

var (
	errEmptyBody = errors.New("empty body")
	errNotObject = errors.New("the body is not a JSON object")
)

// describe turns a decoding error into the problem to answer, naming the
// field by its path in the request (items[0].quantity) and saying what it
// must be in JSON's terms, never Go's.
func describe(err error, body []byte, v any) Problem {
	var sem *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.Is(err, errEmptyBody):
		return Problem{Type: TypeMalformedRequest, Detail: "The body is empty; send a JSON object."}
	case errors.Is(err, errNotObject):
		return Problem{Type: TypeMalformedRequest, Detail: "The body must be a JSON object."}
	case errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName):
		return fieldProblem(TypeMalformedRequest, fieldPath(syn.JSONPointer), "appears more than once")
	case errors.As(err, &syn) && syn.JSONPointer != "" && onlyUnicode(body, v):
		// The bytes are UTF-8: an escape names half a surrogate pair.
		return fieldProblem(TypeMalformedRequest, fieldPath(syn.JSONPointer),
			`must be Unicode text (a \u escape names half a surrogate pair)`)
	case errors.As(err, &syn):
		return Problem{Type: TypeMalformedRequest, Detail: fmt.Sprintf("The body is not valid JSON (at byte %d).", syn.ByteOffset)}
	case errors.As(err, &sem) && errors.Is(sem.Err, json.ErrUnknownName):
		field := fieldPath(sem.JSONPointer)
		p := fieldProblem(TypeMalformedRequest, field, "is not a field of this request (names are case-sensitive)")
		p.Detail = fmt.Sprintf("Unknown field %q (names are case-sensitive).", field)
		return p
	case errors.As(err, &sem) && sem.JSONPointer != "" && sem.GoType != nil:
		typ, message := expected(sem)
		return fieldProblem(typ, fieldPath(sem.JSONPointer), message)
	}
	return Problem{Type: TypeMalformedRequest, Detail: "The body must be a JSON object."}
}

// fieldProblem is a problem about one field of the body: its detail quotes
// the field, its errors member names it.
func fieldProblem(typ, field, message string) Problem {
	p := InvalidField(typ, field, message)
	p.Detail = fmt.Sprintf("Field %q %s.", field, message)
	return p
}

// onlyUnicode reports whether body decodes into a fresh value of v's type
// once invalid Unicode is let through: then that was what stopped it.
func onlyUnicode(body []byte, v any) bool {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return false
	}
	fresh := reflect.New(t.Elem()).Interface()
	return json.Unmarshal(body, fresh, json.RejectUnknownMembers(true), jsontext.AllowInvalidUTF8(true)) == nil
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

// valueTypes describes the request types that decode from a JSON value of
// their own format, in JSON's terms. A value of the right JSON kind in a
// wrong format breaks the field's rule (422, as a price of "1.001" does);
// a value of another kind cannot be read (400).
var valueTypes = map[reflect.Type]struct {
	kind        jsontext.Kind // the JSON kind the format is written in
	description string
}{
	reflect.TypeFor[uuid.UUID]():    {'"', "a UUID"},
	reflect.TypeFor[money.Amount](): {'0', `a decimal amount with at most two fraction digits, e.g. "1500.00"`},
}

// expected says what a field that failed to decode must be, and whether
// the failure is a value breaking the field's rule (422) or a value of
// another JSON kind (400).
func expected(sem *json.SemanticError) (typ, message string) {
	t := sem.GoType
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if vt, ok := valueTypes[t]; ok {
		typ = TypeMalformedRequest
		if errors.Is(sem.Err, money.ErrInvalidAmount) || sem.JSONKind == vt.kind {
			typ = TypeValidation
		}
		return typ, "must be " + vt.description
	}
	if errors.Is(sem.Err, strconv.ErrRange) {
		return TypeValidation, "is out of range"
	}
	return TypeMalformedRequest, "must be " + jsonKind(t)
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
