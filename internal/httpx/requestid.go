package httpx

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/logging"
)

type requestIDKey struct{}

// RequestID gives every request an id: the caller's X-Request-ID if it is
// sensible (sent once, 1-128 printable ASCII characters: no space, no
// control character, nothing a log line or an event's metadata could be
// confused by), else a new UUID. It is not refused: the id is the
// caller's hint for correlating, not an input of the request. The id is
// echoed in the response and becomes the correlation id of the events the
// request causes.
//
// It also opens the request's log scope (logging.Scope) with request_id
// and, until a handler that learns the order's own correlation id says
// otherwise (logging.Add), correlation_id set to the id: every record
// logged under the request carries them, and what the handlers add
// (order_id) reaches the access line Observe writes.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("X-Request-ID")
		id := ""
		if len(values) == 1 {
			id = values[0]
		}
		if !ValidRequestID(id) {
			id = uuid.NewString()
		}
		w.Header().Set("X-Request-ID", id)
		ctx := logging.Scope(context.WithValue(r.Context(), requestIDKey{}, id))
		logging.Add(ctx, "request_id", id, "correlation_id", id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// RequestIDFrom returns the request id RequestID stored in ctx.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// ValidRequestID reports whether s is an X-Request-ID the service keeps
// (and a client of another service following the same rule may send):
// 1-128 printable ASCII characters, no space.
func ValidRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
