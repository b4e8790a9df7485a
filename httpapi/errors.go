package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/backpressure"
	"github.com/orders-reference/orders/internal/httpx"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/query"
)

// badRequest is a request the API cannot read: a malformed path or query
// parameter or header. param names it as the client sends it (id, limit,
// Idempotency-Key) and message says what it must be: the problem's
// errors member; without a param, message is the whole detail.
type badRequest struct{ param, message string }

func (e badRequest) Error() string {
	if e.param == "" {
		return "malformed request: " + e.message
	}
	return "malformed request: " + e.param + ": " + e.message
}

// errNotCaughtUp: a read-your-writes wait ran out (X-Min-Position).
var errNotCaughtUp = errors.New("the read model has not caught up with X-Min-Position yet; retry shortly")

// errorProblems maps every error the API answers to its problem type, in
// one table (the way benbjohnson/wtf maps its error codes): the first
// entry that errors.Is/As matches wins. detail is a fixed sentence for a
// client; decorate words it more closely from what the error carries as
// fields (the order's status, the kind of thing not found, the inputs a
// validation names), never from the error's text, which is for logs and
// may name internals (ids, Go's words). Every row has one: a test walks
// the table, and another checks that nothing here reads an error's
// Error(). The catalog in internal/httpx gives each type its title and
// status.
var errorProblems = []struct {
	match  func(error) bool
	typ    string
	detail string
}{
	{as[badRequest], httpx.TypeMalformedRequest, "A parameter or header of the request is malformed."},
	{is(query.ErrInvalidCursor), httpx.TypeMalformedRequest, "cursor is not one this API returned."},
	{is(command.ErrValidation), httpx.TypeValidation, "The request has invalid fields."},
	{is(product.ErrInvalid), httpx.TypeValidation, "The product's fields break its rules."},
	{is(command.ErrRejected), httpx.TypeInsufficientStock, "Not every item could be reserved; nothing is reserved."},
	{is(command.ErrIdempotencyConflict), httpx.TypeIdempotencyConflict, "This Idempotency-Key was used for a different request."},
	{as[errRateLimited], httpx.TypeRateLimited, "Too many orders for one email; retry later."},
	{is(errLimiterDown), httpx.TypeUnavailable, "Orders cannot be rate limited right now; try again shortly."},
	{is(errNotCaughtUp), httpx.TypeUnavailable, "The read model has not caught up with X-Min-Position yet; retry shortly."},
	{is(backpressure.ErrBehind), httpx.TypeUnavailable, "The service is catching up with its backlog of orders; retry shortly."},
	{dependencyTimeout, httpx.TypeUnavailable, "The database or the event store did not answer in time; retry shortly."},
	{is(product.ErrNotFound), httpx.TypeNotFound, "There is no product with this id."},
	{is(order.ErrNotFound), httpx.TypeNotFound, "There is no order with this id."},
	{is(query.ErrNotFound), httpx.TypeNotFound, "There is nothing with this id."},
	{is(order.ErrIllegalTransition), httpx.TypeInvalidTransition, "The order's status does not allow this."},
	{is(order.ErrPaymentMismatch), httpx.TypePaymentMismatch, "The outcome names another payment or amount than the order's."},
}

// dependencyTimeout: the database or the event store is unavailable or too
// slow (a statement timed out, a node is down), or the request's deadline
// passed while it waited.
func dependencyTimeout(err error) bool {
	return pg.Unavailable(err) || errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
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
	clientGone := errors.Is(r.Context().Err(), context.Canceled) // not the request's deadline
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil || clientGone && dependencyTimeout(err) {
		a.log.DebugContext(r.Context(), "client went away before the answer", "error", err)
		w.WriteHeader(statusClientClosedRequest)
		return
	}
	for _, m := range errorProblems {
		if !m.match(err) {
			continue
		}
		if m.typ == httpx.TypeUnavailable && dependencyTimeout(err) {
			// Operators see why (the error names no secret); the client
			// gets the table's detail.
			a.log.WarnContext(r.Context(), "request answered 503: the database or the event store did not answer in time",
				"method", httpx.Clip(r.Method), "path", httpx.Clip(r.URL.Path), "error", err)
		}
		p := httpx.Problem{Type: m.typ, Detail: m.detail}
		decorate(w, err, &p)
		if m.typ == httpx.TypeUnavailable && dependencyTimeout(err) {
			p.Detail += retryHint(r)
		}
		httpx.WriteProblem(w, p)
		return
	}
	a.log.ErrorContext(r.Context(), "request failed", "method", httpx.Clip(r.Method), "path", httpx.Clip(r.URL.Path), "error", err)
	httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeInternal, Detail: httpx.InternalDetail + retryHint(r)})
}

// retryHint adds to a 500 or 503 what only a placement's retry needs to
// know; other requests are safe to repeat as they are.
func retryHint(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); r.Method == http.MethodPost && rctx != nil && rctx.RoutePattern() == "/orders" {
		return " An order retried with the same Idempotency-Key is placed at most once."
	}
	return ""
}

// decorate adds what some errors carry as fields: the inputs of a
// malformed request or a validation error, the products of a rejection,
// the delays of a rate limit, the status of an order that cannot make a
// transition, the kind of thing not found. It words the detail from those
// fields only.
func decorate(w http.ResponseWriter, err error, p *httpx.Problem) {
	var (
		bad        badRequest
		ve         *command.ValidationError
		pe         *product.InvalidError
		rej        *command.RejectedError
		limited    errRateLimited
		mismatch   *order.MismatchError
		transition *order.TransitionError
		missing    *query.NotFoundError
	)
	switch {
	case errors.As(err, &bad) && bad.param == "":
		p.Detail = bad.message
	case errors.As(err, &bad):
		*p = httpx.InvalidField(p.Type, bad.param, bad.message)
		p.Detail = bad.param + " " + bad.message + "."
	case errors.As(err, &transition):
		p.Detail = transitionDetail(transition)
	case errors.As(err, &missing) && (missing.Kind == query.KindOrder || missing.Kind == query.KindProduct):
		p.Detail = "There is no " + missing.Kind + " with this id."
	case errors.Is(err, query.ErrInvalidCursor):
		detail := p.Detail
		*p = httpx.InvalidField(p.Type, "cursor", "is not one this API returned")
		p.Detail = detail
	case errors.As(err, &ve):
		*p = httpx.Invalid(p.Type, ve.Fields)
	case errors.As(err, &pe):
		*p = httpx.Invalid(p.Type, pe.Fields)
	case errors.As(err, &rej):
		if len(rej.Insufficient) == 0 {
			p.Type = httpx.TypeProductUnavailable
		}
		p.Extensions = map[string]any{"order_id": rej.Order.ID, "insufficient": ids(rej.Insufficient), "unavailable": ids(rej.Unavailable)}
	case errors.As(err, &mismatch):
		*p = httpx.InvalidField(p.Type, mismatch.Field, mismatch.Message)
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", fmt.Sprint(max(ceilSeconds(limited.d.RetryAfter), 1)))
		p.Detail = fmt.Sprintf("At most %d orders per %s for one email.", limited.d.Limit, per(limited.d.Window))
	case errors.Is(err, errLimiterDown):
		w.Header().Set("Retry-After", "5")
	case errors.Is(err, errNotCaughtUp), errors.Is(err, backpressure.ErrBehind):
		w.Header().Set("Retry-After", "1")
	case dependencyTimeout(err):
		w.Header().Set("Retry-After", "2")
	}
}

// transitionDetail words an illegal transition from its fields: the
// order's status and what was asked of it.
func transitionDetail(e *order.TransitionError) string {
	switch {
	case e.To != order.StatusNew:
		return fmt.Sprintf("The order is %s; it cannot become %s.", e.Status, e.To)
	case e.Refund:
		return fmt.Sprintf("The order is %s; it has no refund to record.", e.Status)
	}
	return fmt.Sprintf("The order is %s; no payment was requested for it, so no payment outcome can be recorded.", e.Status)
}

// per names a window as a client reads it ("minute", "60 seconds"),
// never as Go prints a duration ("1m0s").
func per(d time.Duration) string {
	switch {
	case d == time.Minute:
		return "minute"
	case d == time.Hour:
		return "hour"
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	case d == time.Second:
		return "second"
	}
	return fmt.Sprintf("%d seconds", max(ceilSeconds(d), 1))
}

func ids(in []uuid.UUID) []string {
	out := make([]string, len(in))
	for i, id := range in {
		out[i] = id.String()
	}
	return out
}
