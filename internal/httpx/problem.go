// Package httpx holds the HTTP plumbing shared by the command and query
// APIs: RFC 9457 problem responses, strict JSON request decoding, JSON
// responses and the admin-secret check.
package httpx

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
)

// Problem is an RFC 9457 problem detail. Extensions are added as extra
// members of the JSON object.
type Problem struct {
	Type       string
	Title      string
	Status     int
	Detail     string
	Extensions map[string]any
}

// Problem type URIs (relative references, documented in docs/api.md).
const (
	TypeValidation          = "/problems/validation"
	TypeMalformedRequest    = "/problems/malformed-request"
	TypeBodyTooLarge        = "/problems/body-too-large"
	TypeUnauthorized        = "/problems/unauthorized"
	TypeNotFound            = "/problems/not-found"
	TypeInsufficientStock   = "/problems/insufficient-stock"
	TypeProductUnavailable  = "/problems/product-unavailable"
	TypeIdempotencyConflict = "/problems/idempotency-key-conflict"
	TypeInvalidTransition   = "/problems/invalid-order-transition"
	TypeRateLimited         = "/problems/rate-limited"
	TypePaymentMismatch     = "/problems/payment-mismatch"
	TypeUnavailable         = "/problems/service-unavailable"
	TypeInternal            = "/problems/internal"
)

// MarshalJSON writes the standard members first, then the extensions.
func (p Problem) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(p.Extensions)+4)
	for k, v := range p.Extensions {
		m[k] = v
	}
	m["type"], m["title"], m["status"] = p.Type, p.Title, p.Status
	if p.Detail != "" {
		m["detail"] = p.Detail
	}
	return json.Marshal(m)
}

// WriteProblem sends p as application/problem+json.
func WriteProblem(w http.ResponseWriter, p Problem) {
	body, err := json.Marshal(p)
	if err != nil {
		body = []byte(`{"type":"` + TypeInternal + `","title":"Internal Server Error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// Internal logs err and answers 500 without revealing it.
func Internal(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	WriteProblem(w, Problem{Type: TypeInternal, Title: "Internal Server Error", Status: http.StatusInternalServerError,
		Detail: "The request could not be completed; it is safe to retry with the same Idempotency-Key."})
}

// WriteJSON sends v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		WriteProblem(w, Problem{Type: TypeInternal, Title: "Internal Server Error", Status: http.StatusInternalServerError})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
