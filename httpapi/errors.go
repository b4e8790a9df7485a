package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/internal/backpressure"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/query"
)

// badRequest is a request the API cannot read (a malformed id, header or
// query parameter); its text is the problem's detail.
type badRequest string

func (e badRequest) Error() string { return string(e) }

// errNotCaughtUp: a read-your-writes wait ran out (X-Min-Position).
var errNotCaughtUp = errors.New("the read model has not caught up with X-Min-Position yet; retry shortly")

// errorProblems maps every error the API answers to its problem type, in
// one table (the way benbjohnson/wtf maps its error codes): the first
// entry that errors.Is/As matches wins. detail, if set, replaces the
// error's own text (which may name internals); the catalog in
// internal/httpx gives each type its title and status.
var errorProblems = []struct {
	match  func(error) bool
	typ    string
	detail string
}{
	{as[badRequest], httpx.TypeMalformedRequest, ""},
	{is(query.ErrInvalidCursor), httpx.TypeMalformedRequest, "cursor is not one this API returned."},
	{as[*command.ValidationError], httpx.TypeValidation, "The request has invalid fields."},
	{is(product.ErrInvalid), httpx.TypeValidation, ""},
	{is(command.ErrRejected), httpx.TypeInsufficientStock, "Not every item could be reserved; nothing is reserved."},
	{is(command.ErrIdempotencyConflict), httpx.TypeIdempotencyConflict, "This Idempotency-Key was used for a different request."},
	{as[errRateLimited], httpx.TypeRateLimited, ""},
	{is(errLimiterDown), httpx.TypeUnavailable, "Orders cannot be rate limited right now; try again shortly."},
	{is(errNotCaughtUp), httpx.TypeUnavailable, "The read model has not caught up with X-Min-Position yet; retry shortly."},
	{is(backpressure.ErrBehind), httpx.TypeUnavailable, "The service is catching up with its backlog of orders; retry shortly."},
	{is(product.ErrNotFound), httpx.TypeNotFound, ""},
	{is(order.ErrNotFound), httpx.TypeNotFound, ""},
	{is(query.ErrNotFound), httpx.TypeNotFound, ""},
	{is(order.ErrIllegalTransition), httpx.TypeInvalidTransition, ""},
	{is(order.ErrPaymentMismatch), httpx.TypePaymentMismatch, ""},
}

func is(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }

func as[T error](err error) bool {
	var t T
	return errors.As(err, &t)
}

// statusClientClosedRequest is what a request whose client went away ends
// with in the access log and the metrics (nginx's 499: no one reads it).
const statusClientClosedRequest = 499

// writeError answers err as its problem; an error the table does not know
// is logged and answered 500 without revealing it. A request canceled
// because its client went away is not a server error: it is recorded as
// 499 and logged at debug level.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		a.log.DebugContext(r.Context(), "client went away before the answer", "error", err)
		w.WriteHeader(statusClientClosedRequest)
		return
	}
	for _, m := range errorProblems {
		if !m.match(err) {
			continue
		}
		p := httpx.Problem{Type: m.typ, Detail: m.detail}
		if p.Detail == "" {
			p.Detail = err.Error()
		}
		decorate(w, err, &p)
		httpx.WriteProblem(w, p)
		return
	}
	httpx.Internal(w, r, a.log, err)
}

// decorate adds what some errors carry: the fields of a validation error,
// the products of a rejection, the delays of a rate limit.
func decorate(w http.ResponseWriter, err error, p *httpx.Problem) {
	var (
		ve      *command.ValidationError
		pe      *product.InvalidError
		rej     *command.RejectedError
		limited errRateLimited
	)
	switch {
	case errors.As(err, &ve):
		p.Extensions = map[string]any{"errors": ve.Fields}
	case errors.As(err, &pe):
		p.Detail = "The request has invalid fields."
		p.Extensions = map[string]any{"errors": pe.Fields}
	case errors.As(err, &rej):
		if len(rej.Insufficient) == 0 {
			p.Type = httpx.TypeProductUnavailable
		}
		p.Extensions = map[string]any{"order_id": rej.Order.ID, "insufficient": ids(rej.Insufficient), "unavailable": ids(rej.Unavailable)}
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", fmt.Sprint(max(ceilSeconds(limited.d.RetryAfter), 1)))
		p.Detail = fmt.Sprintf("At most %d orders per %s for one email.", limited.d.Limit, limited.d.Window)
	case errors.Is(err, errLimiterDown):
		w.Header().Set("Retry-After", "5")
	case errors.Is(err, errNotCaughtUp), errors.Is(err, backpressure.ErrBehind):
		w.Header().Set("Retry-After", "1")
	}
}

func ids(in []uuid.UUID) []string {
	out := make([]string, len(in))
	for i, id := range in {
		out[i] = id.String()
	}
	return out
}
