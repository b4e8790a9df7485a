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

// MaxHeaderBytes bounds a request's line and header section (every
// server's http.Server.MaxHeaderBytes; net/http allows 4 KiB more for its
// buffering): 64 KiB, where Go's default is 1 MiB. Nothing the API takes
// comes near it (its longest headers are an Idempotency-Key of 255
// characters, a webhook's signatures and a trace context of a few
// hundred bytes; its longest URL is a list query with a 254-character
// email and a cursor), and it is twice what common proxies pass (nginx: 8
// KiB a line, 32 KiB in all), so every path, header and query value a
// client sends, and every text a problem or log line may repeat, is
// bounded by it. net/http answers a larger one itself, 431 in text/plain,
// before any handler runs (see docs/api.md).
const MaxHeaderBytes = 64 << 10

// MaxArrayItems bounds every array in a request body: no request takes
// more (an order has at most 100 items), so the work a body costs is
// bounded by what a request can hold, not by what fits in MaxBody. The
// shape check refuses a longer array before anything is decoded.
const MaxArrayItems = 100

// JSONMediaType is the media type of every request body.
const JSONMediaType = "application/json"

// ReadBody reads r's body, at most MaxBody bytes: every route that takes
// a body reads it here. On failure it returns the problem to answer (and
// has set the headers that go with it): 415 for a body sent with a
// content coding (CheckContentEncoding), 413 for a body over MaxBody,
// refused before a byte of it is read when its Content-Length says so
// (the client is not kept waiting, nor the server until its read
// timeout, for a body it will not take).
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, *Problem) {
	if p := CheckContentEncoding(w, r); p != nil {
		return nil, p
	}
	tooLarge := bodyProblem(TypeBodyTooLarge, fmt.Sprintf("must be at most %d bytes", MaxBody))
	if r.ContentLength > MaxBody {
		return nil, &tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &tooLarge
		}
		p := bodyProblem(TypeMalformedRequest, "could not be read")
		return nil, &p
	}
	return body, nil
}

// NoBody is the middleware of every route that takes no body (a GET, a
// cancel): a request that sends one anyway is refused, not served as if
// it had sent none (a body is a meaning the route would silently drop,
// and a large one costs what it costs to read). A Content-Encoding other
// than identity is 415 (CheckContentEncoding), a Content-Length over
// MaxBody 413, and any other body, however short, 400 naming it; a body
// sent without a Content-Length (chunked) is refused as soon as its
// first byte is read. An empty body passes whatever its Content-Type.
func NoBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := CheckContentEncoding(w, r); p != nil {
			WriteProblem(w, *p)
			return
		}
		if r.ContentLength > MaxBody {
			WriteProblem(w, bodyProblem(TypeBodyTooLarge, fmt.Sprintf("must be at most %d bytes (this endpoint takes none)", MaxBody)))
			return
		}
		empty := r.ContentLength == 0
		if r.ContentLength < 0 && r.Body != nil { // unknown length: is there a first byte?
			var b [1]byte
			n, _ := io.ReadFull(r.Body, b[:])
			empty = n == 0
		}
		if !empty {
			WriteProblem(w, bodyProblem(TypeMalformedRequest, "must be empty: this endpoint takes no body"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// CheckContentEncoding returns the problem of a body sent with a content
// coding (RFC 9110 §8.4): the service reads a body as it is sent, so a
// Content-Encoding other than identity (gzip, br…; its fields read as one
// list) is 415, with Accept-Encoding: identity saying what is accepted
// (§12.5.3, §15.5.16), never read as if it were not encoded. ReadBody
// applies it, so every route that takes a body does.
func CheckContentEncoding(w http.ResponseWriter, r *http.Request) *Problem {
	const name = "Content-Encoding"
	for _, field := range r.Header.Values(name) {
		for coding := range strings.SplitSeq(field, ",") {
			if coding = strings.TrimSpace(coding); coding == "" || strings.EqualFold(coding, "identity") {
				continue
			}
			w.Header().Set("Accept-Encoding", "identity")
			p := InvalidField(TypeUnsupportedMediaType, name, "must be identity (or left out): a body is taken as sent, not compressed")
			return &p
		}
	}
	return nil
}

// CheckJSONMediaType answers, and returns false for, a request whose body
// is not declared as JSON. Content-Type must be sent once (two are 400,
// as any header the API reads twice), and be application/json with no
// parameter but charset=utf-8 (RFC 8259 §8.1: JSON is UTF-8; the type
// defines no other parameter). Anything else, no Content-Type included,
// is 415 with Accept-Post or Accept-Patch naming what is accepted (RFC
// 9110 §15.5.16, RFC 5789 §3.1). Structured-syntax types such as
// application/merge-patch+json are other media types with other meanings,
// and refused as well.
func CheckJSONMediaType(w http.ResponseWriter, r *http.Request) bool {
	const name = "Content-Type"
	ct, _, p := singleHeader(r, name)
	if p != nil {
		WriteProblem(w, *p)
		return false
	}
	mt, params, err := mime.ParseMediaType(ct)
	ok := err == nil && mt == JSONMediaType
	for k, v := range params {
		ok = ok && k == "charset" && strings.EqualFold(v, "utf-8")
	}
	if ok {
		return true
	}
	switch r.Method {
	case http.MethodPost:
		w.Header().Set("Accept-Post", JSONMediaType)
	case http.MethodPatch:
		w.Header().Set("Accept-Patch", JSONMediaType)
	}
	WriteProblem(w, InvalidField(TypeUnsupportedMediaType, name, "must be application/json (charset, if given, utf-8)"))
	return false
}

// DecodeJSON reads r's body into v strictly: JSON content type
// (CheckJSONMediaType), at most MaxBody bytes (ReadBody), then Decode. On
// failure it has already written the problem response and returns false.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if !CheckJSONMediaType(w, r) {
		return false
	}
	body, p := ReadBody(w, r)
	if p == nil {
		p = Decode(body, v)
	}
	if p != nil {
		WriteProblem(w, *p)
		return false
	}
	return true
}

// Decode decodes a request body already read (DecodeJSON's, or a
// webhook's, whose signature is checked over the raw bytes first) into v,
// a pointer to a struct: the body must be valid UTF-8 (Go's decoder would
// replace invalid bytes silently) holding one JSON object of the right
// shape (checkShape: no null, no array longer than MaxArrayItems), which
// Unmarshal decodes, and every string in it text the service stores
// (TextProblems). On failure it returns the problem to answer, which names
// the fields in the API's terms (items[0].quantity), never Go's: 400 for a
// body that cannot be read as the request (a whole-body problem names
// "body"), 422 for a value that breaks a field's rule.
func Decode(body []byte, v any) *Problem {
	if !utf8.Valid(body) {
		p := bodyProblem(TypeMalformedRequest, "is not valid UTF-8")
		return &p
	}
	if p := checkShape(body, reflect.TypeOf(v)); p != nil {
		return p
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
// reserved 4), unknown names are refused, nothing may follow the value,
// and a UUID is only its canonical form (ParseUUID). Every decoder of
// request and webhook bodies goes through it.
func Unmarshal(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return errEmptyBody
	}
	if bytes.HasPrefix(trimmed, utf8BOM) {
		return errBOM
	}
	if trimmed[0] != '{' {
		// null would decode into the zero request; a string, number or
		// array is refused by the decoder as well, but not as plainly.
		return errNotObject
	}
	return json.Unmarshal(body, v, json.RejectUnknownMembers(true), json.WithUnmarshalers(canonicalUUID))
}

// canonicalUUID decodes a UUID from its canonical text only (ParseUUID);
// a value of another JSON kind is left to the default, which refuses it.
var canonicalUUID = json.UnmarshalFromFunc(func(dec *jsontext.Decoder, id *uuid.UUID) error {
	if dec.PeekKind() != '"' {
		return errors.ErrUnsupported // the default decodes (and refuses) it
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	parsed, err := ParseUUID(tok.String())
	if err != nil {
		return err
	}
	*id = parsed
	return nil
})

var (
	errEmptyBody = errors.New("empty body")
	errNotObject = errors.New("the body is not a JSON object")
)

// checkShape walks the body's JSON alongside t, the type it decodes into,
// before anything is decoded, and returns the first problem of its shape:
// a null where the request has a field (the API has no nullable input: a
// null is a value of the wrong JSON kind, 400), or an array longer than
// MaxArrayItems (422, before a single element is decoded). Members the
// type does not have and raw values are skipped without being decoded;
// a body that is not valid JSON is left to Unmarshal to describe.
func checkShape(body []byte, t reflect.Type) *Problem {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	p, _ := shape(dec, t, "")
	return p
}

func shape(dec *jsontext.Decoder, t reflect.Type, path string) (*Problem, error) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || isRaw(t) {
		return nil, dec.SkipValue()
	}
	_, value := valueTypes[t] // decoded from its own format, not walked
	switch dec.PeekKind() {
	case 'n':
		if path == "" {
			return nil, nil // the body itself: Unmarshal says it is not an object
		}
		p := fieldProblem(TypeMalformedRequest, path, "must be "+shortKind(t)+", not null")
		return &p, nil
	case '{':
		if value || t.Kind() != reflect.Struct && t.Kind() != reflect.Map {
			return nil, dec.SkipValue() // the wrong kind: Unmarshal describes it
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		for dec.PeekKind() != '}' {
			tok, err := dec.ReadToken()
			if err != nil {
				return nil, err
			}
			name := tok.String()
			if p, err := shape(dec, memberType(t, name), join(path, name)); p != nil || err != nil {
				return p, err
			}
		}
		_, err := dec.ReadToken()
		return nil, err
	case '[':
		if value || t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return nil, dec.SkipValue()
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		for i := 0; dec.PeekKind() != ']'; i++ {
			if i == MaxArrayItems {
				p := fieldProblem(TypeValidation, orBody(path), fmt.Sprintf("must have at most %d items", MaxArrayItems))
				return &p, nil
			}
			if p, err := shape(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); p != nil || err != nil {
				return p, err
			}
		}
		_, err := dec.ReadToken()
		return nil, err
	}
	return nil, dec.SkipValue()
}

// memberType is the type of t's member name as the decoder matches it
// (the exact JSON name), or nil if it has none.
func memberType(t reflect.Type, name string) reflect.Type {
	if t.Kind() == reflect.Map {
		return t.Elem()
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f.Type
		}
	}
	return nil
}

// isRaw reports whether t holds a JSON value as it is (jsontext.Value,
// json.RawMessage): its own parser reads it later, if at all.
func isRaw(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 && t != reflect.TypeFor[[]byte]()
}

// describe turns a decoding error into the problem to answer, naming the
// field by its path in the request (items[0].quantity) and saying what it
// must be in JSON's terms, never Go's.
func describe(err error, body []byte, v any) Problem {
	var sem *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.Is(err, errEmptyBody):
		return bodyProblem(TypeMalformedRequest, "is empty; it must be a JSON object")
	case errors.Is(err, errNotObject):
		return bodyProblem(TypeMalformedRequest, "must be a JSON object")
	case errors.Is(err, errBOM):
		return bodyProblem(TypeMalformedRequest, "must not start with a byte order mark (U+FEFF): JSON text is sent without one (RFC 8259 §8.1)")
	case errors.As(err, &syn) && tooDeep(body):
		return bodyProblem(TypeMalformedRequest, fmt.Sprintf("nests arrays and objects more than %d levels deep", maxJSONDepth))
	case errors.As(err, &syn) && surrogate(body, syn):
		return surrogateProblem(body, syn)
	case errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName):
		return fieldProblem(TypeMalformedRequest, fieldPath(syn.JSONPointer), "appears more than once")
	case errors.As(err, &syn) && syn.JSONPointer != "" && onlyUnicode(body, v):
		// The bytes are UTF-8: an escape names half a surrogate pair.
		return fieldProblem(TypeMalformedRequest, fieldPath(syn.JSONPointer),
			`must be Unicode text (a \u escape names half a surrogate pair)`)
	case errors.As(err, &syn) && oneValue(body):
		return bodyProblem(TypeMalformedRequest, fmt.Sprintf("is not valid JSON: it has more after the object (at byte %d)", syn.ByteOffset))
	case errors.As(err, &syn):
		return bodyProblem(TypeMalformedRequest, fmt.Sprintf("is not valid JSON (at byte %d)", syn.ByteOffset))
	case errors.As(err, &sem) && errors.Is(sem.Err, json.ErrUnknownName):
		field := fieldPath(sem.JSONPointer)
		p := fieldProblem(TypeMalformedRequest, field, "is not a field of this request (names are case-sensitive)")
		p.Detail = "Unknown field " + Quote(field) + " (names are case-sensitive)."
		return p
	case errors.As(err, &sem) && sem.JSONPointer != "" && sem.GoType != nil:
		typ, message := expected(sem, kindAt(body, sem.ByteOffset))
		return fieldProblem(typ, fieldPath(sem.JSONPointer), message)
	}
	return bodyProblem(TypeMalformedRequest, "must be a JSON object")
}

// bodyProblem is a problem about the body as a whole: errors names it
// "body", and the detail says the same.
func bodyProblem(typ, message string) Problem {
	p := InvalidField(typ, "body", message)
	p.Detail = "The body " + message + "."
	return p
}

// fieldProblem is a problem about one field of the body: its detail quotes
// the field, its errors member names it.
func fieldProblem(typ, field, message string) Problem {
	p := InvalidField(typ, field, message)
	p.Detail = "Field " + Quote(field) + " " + message + "."
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
	return json.Unmarshal(body, fresh, json.RejectUnknownMembers(true), jsontext.AllowInvalidUTF8(true),
		json.WithUnmarshalers(canonicalUUID)) == nil
}

// oneValue reports whether body starts with one valid JSON value: then a
// syntax error is what follows it.
func oneValue(body []byte) bool {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	_, err := dec.ReadValue()
	return err == nil
}

// kindAt is the kind of the JSON value at offset in body (0 if none).
func kindAt(body []byte, offset int64) jsontext.Kind {
	if offset < 0 || offset >= int64(len(body)) {
		return 0
	}
	rest := bytes.TrimLeft(body[offset:], " \t\r\n,:")
	if len(rest) == 0 {
		return 0
	}
	switch c := rest[0]; {
	case c == '-' || c >= '0' && c <= '9':
		return '0'
	case c == 't':
		return 't'
	case c == 'f':
		return 'f'
	default:
		return jsontext.Kind(c)
	}
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
// their own format, in JSON's terms: the JSON kinds the format is written
// in, a short name and a description. A value of one of those kinds in a
// wrong format breaks the field's rule (422, as a price of "1.001" does);
// a value of another kind cannot be read (400).
var valueTypes = map[reflect.Type]struct {
	kinds       string // jsontext kinds: '"' a string, '0' a number
	name        string
	description string
}{
	reflect.TypeFor[uuid.UUID]():    {`"`, "a UUID", strings.TrimPrefix(UUIDRule, "must be ")},
	reflect.TypeFor[money.Amount](): {`"0`, "a decimal amount", `a decimal amount with at most two fraction digits, e.g. "1500.00"`},
}

// expected says what a field that failed to decode must be, and whether
// the failure is a value breaking the field's rule (422) or a value of
// another JSON kind (400); kind is the kind of the value sent.
func expected(sem *json.SemanticError, kind jsontext.Kind) (typ, message string) {
	t := sem.GoType
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if errors.Is(sem.Err, money.ErrTooLarge) { // the format is right, the size is not
		return TypeValidation, fmt.Sprintf("must be an amount from -%s to %s", money.MaxAmount, money.MaxAmount)
	}
	if vt, ok := valueTypes[t]; ok {
		typ = TypeMalformedRequest
		if kind != 0 && strings.ContainsRune(vt.kinds, rune(kind)) {
			typ = TypeValidation
		}
		return typ, "must be " + vt.description
	}
	if errors.Is(sem.Err, strconv.ErrRange) {
		return TypeValidation, "is out of range"
	}
	return TypeMalformedRequest, "must be " + jsonKind(t)
}

// shortKind names what a value of type t is, briefly (for "must be a
// string, not null").
func shortKind(t reflect.Type) string {
	if vt, ok := valueTypes[t]; ok {
		return vt.name
	}
	return jsonKind(t)
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
