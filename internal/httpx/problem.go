// Package httpx holds the HTTP plumbing shared by the command and query
// APIs: RFC 9457 problem responses, strict JSON request decoding, JSON
// responses and the admin-secret check.
package httpx

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Problem is an RFC 9457 problem detail. Its title and status come from
// the catalog by Type, so every answer of one type looks the same;
// Extensions are added as extra members of the JSON object.
type Problem struct {
	Type       string
	Detail     string
	Extensions map[string]any
}

// Problem type URIs (relative references, documented in docs/api.md).
const (
	TypeValidation           = "/problems/validation"
	TypeMalformedRequest     = "/problems/malformed-request"
	TypeUnsupportedMediaType = "/problems/unsupported-media-type"
	TypeNotAcceptable        = "/problems/not-acceptable"
	TypeBodyTooLarge         = "/problems/body-too-large"
	TypeUnauthorized         = "/problems/unauthorized"
	TypeNotFound             = "/problems/not-found"
	TypeMethodNotAllowed     = "/problems/method-not-allowed"
	TypeInsufficientStock    = "/problems/insufficient-stock"
	TypeProductUnavailable   = "/problems/product-unavailable"
	TypeIdempotencyConflict  = "/problems/idempotency-key-conflict"
	TypeInvalidTransition    = "/problems/invalid-order-transition"
	TypeRateLimited          = "/problems/rate-limited"
	TypePaymentMismatch      = "/problems/payment-mismatch"
	TypeUnavailable          = "/problems/service-unavailable"
	TypeInternal             = "/problems/internal"
)

// ProblemSpec is what a problem type always answers with.
type ProblemSpec struct {
	Title  string
	Status int
}

// catalog is every problem type the service answers with: the one place
// where a type gets its title and HTTP status (RFC 9457 section 3.1).
var catalog = map[string]ProblemSpec{
	TypeValidation:           {"Unprocessable Content", http.StatusUnprocessableEntity},
	TypeMalformedRequest:     {"Bad Request", http.StatusBadRequest},
	TypeUnsupportedMediaType: {"Unsupported Media Type", http.StatusUnsupportedMediaType},
	TypeNotAcceptable:        {"Not Acceptable", http.StatusNotAcceptable},
	TypeBodyTooLarge:         {"Content Too Large", http.StatusRequestEntityTooLarge},
	TypeUnauthorized:         {"Unauthorized", http.StatusUnauthorized},
	TypeNotFound:             {"Not Found", http.StatusNotFound},
	TypeMethodNotAllowed:     {"Method Not Allowed", http.StatusMethodNotAllowed},
	TypeInsufficientStock:    {"Insufficient Stock", http.StatusConflict},
	TypeProductUnavailable:   {"Product Unavailable", http.StatusConflict},
	TypeIdempotencyConflict:  {"Idempotency Key Reused", http.StatusConflict},
	TypeInvalidTransition:    {"Conflict", http.StatusConflict},
	TypeRateLimited:          {"Too Many Requests", http.StatusTooManyRequests},
	TypePaymentMismatch:      {"Unprocessable Content", http.StatusUnprocessableEntity},
	TypeUnavailable:          {"Service Unavailable", http.StatusServiceUnavailable},
	TypeInternal:             {"Internal Server Error", http.StatusInternalServerError},
}

// Spec returns the title and status of a problem type; a type missing
// from the catalog (a programming error) answers as TypeInternal.
func Spec(typ string) ProblemSpec {
	if s, ok := catalog[typ]; ok {
		return s
	}
	return catalog[TypeInternal]
}

// Catalog returns a copy of the problem catalog, type → title and status
// (for documentation and its tests).
func Catalog() map[string]ProblemSpec {
	out := make(map[string]ProblemSpec, len(catalog))
	for k, v := range catalog {
		out[k] = v
	}
	return out
}

// MarshalJSON writes the standard members first, then the extensions.
func (p Problem) MarshalJSON() ([]byte, error) {
	spec := Spec(p.Type)
	m := make(map[string]any, len(p.Extensions)+4)
	for k, v := range p.Extensions {
		m[k] = v
	}
	m["type"], m["title"], m["status"] = p.Type, spec.Title, spec.Status
	if _, known := catalog[p.Type]; !known {
		m["type"] = TypeInternal
	}
	if p.Detail != "" {
		m["detail"] = p.Detail
	}
	return json.Marshal(m)
}

// Invalid is the problem of a request whose inputs break rules: typ (a
// 400 TypeMalformedRequest for what cannot be read, a 422 TypeValidation
// for what breaks a field rule, or another status about inputs, such as a
// 415 about Content-Type) with the errors member, which maps each input by
// its name in the API (a body field as items[0].quantity, a query or path
// parameter, a header, "body" for the body as a whole) to what is wrong
// with it, and a detail that says the same in a sentence. errors names at
// most MaxErrors inputs (the first by name); the detail counts them all.
// An input a client named (an unknown field or query parameter) is named
// as Clip writes it: at most MaxEcho characters, what would not show
// escaped.
func Invalid(typ string, fields map[string]string) Problem {
	fields = clipNames(fields)
	shown := fields
	if len(fields) > MaxErrors {
		shown = make(map[string]string, MaxErrors)
		for _, name := range slices.Sorted(maps.Keys(fields))[:MaxErrors] {
			shown[name] = fields[name]
		}
	}
	return Problem{Type: typ, Detail: FieldsDetail(fields), Extensions: map[string]any{"errors": shown}}
}

// clipNames returns fields with every name as Clip writes it (fields
// itself when each already is).
func clipNames(fields map[string]string) map[string]string {
	for name := range fields {
		if Clip(name) != name {
			clipped := make(map[string]string, len(fields))
			for name, message := range fields {
				clipped[Clip(name)] = message
			}
			return clipped
		}
	}
	return fields
}

// InvalidField is Invalid for one input.
func InvalidField(typ, field, message string) Problem {
	return Invalid(typ, map[string]string{field: message})
}

// MaxErrors is the most inputs a problem's errors member names: an answer
// stays small however many inputs a request gets wrong.
const MaxErrors = 20

// detailFields is how many fields a detail spells out; errors has more.
const detailFields = 3

// FieldsDetail summarises field problems in a sentence, the fields in
// name order: "items[0].quantity must be 1-10000; user_email must be a
// valid email address."
func FieldsDetail(fields map[string]string) string {
	if len(fields) == 0 {
		return "The request has invalid fields."
	}
	names := slices.Sorted(maps.Keys(fields))
	parts := make([]string, 0, detailFields+1)
	for _, name := range names[:min(len(names), detailFields)] {
		parts = append(parts, name+" "+fields[name])
	}
	switch more := len(names) - detailFields; {
	case len(names) > MaxErrors:
		parts = append(parts, fmt.Sprintf("and %d more (errors lists the first %d of %d)", more, MaxErrors, len(names)))
	case more > 0:
		parts = append(parts, fmt.Sprintf("and %d more (see errors)", more))
	}
	return strings.Join(parts, "; ") + "."
}

// NotFound answers 404 for a path no route serves, pointing at the API's
// documentation (/docs) as the Orders API serves it.
func NotFound(w http.ResponseWriter, r *http.Request) {
	NotFoundSee("see /docs")(w, r)
}

// NotFoundSee is NotFound for a server whose documentation is elsewhere
// (the fake provider serves none): the detail ends with hint, in
// parentheses, or with nothing if hint is "".
func NotFoundSee(hint string) http.HandlerFunc {
	suffix := "."
	if hint != "" {
		suffix = " (" + hint + ")."
	}
	return func(w http.ResponseWriter, r *http.Request) {
		WriteProblem(w, Problem{Type: TypeNotFound, Detail: "No such endpoint: " + Quote(r.URL.Path) + suffix})
	}
}

// WriteProblem sends p as application/problem+json.
func WriteProblem(w http.ResponseWriter, p Problem) {
	status := Spec(p.Type).Status
	body, err := json.Marshal(p)
	if err != nil {
		body = []byte(`{"type":"` + TypeInternal + `","title":"Internal Server Error","status":500}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// InternalDetail is the detail of a 500: nothing of the cause (which is
// logged).
const InternalDetail = "The request could not be completed; retry later."

// WriteJSON sends v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		WriteProblem(w, Problem{Type: TypeInternal})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
