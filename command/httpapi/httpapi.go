// Package httpapi is the command API of Orders over HTTP: admin product
// commands, placing and canceling orders. Responses come from the write
// model, so a caller sees its own write at once; errors are RFC 9457
// problems.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/ratelimit"
)

// Commands is what the API needs from the write side.
type Commands interface {
	CreateProduct(ctx context.Context, cmd command.CreateProduct) (command.ProductView, error)
	UpdateProduct(ctx context.Context, id uuid.UUID, d product.Details, meta eventstore.Metadata) (command.ProductView, error)
	PlaceOrder(ctx context.Context, cmd command.PlaceOrder) (command.OrderView, error)
	CancelOrder(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) (command.OrderView, error)
	RecordPayment(ctx context.Context, id uuid.UUID, outcome order.PaymentOutcome, meta eventstore.Metadata) (command.OrderView, error)
}

// Limiter is what the API needs from a rate limiter.
type Limiter interface {
	Allow(ctx context.Context, key, token string) (ratelimit.Decision, error)
}

// Config wires the API.
type Config struct {
	Commands    Commands
	AdminSecret string
	// Limiter limits order placements per customer email.
	Limiter Limiter
	// FailClosed refuses orders (503) when the limiter fails; by default
	// they pass (fail open) and OnLimiterError is told.
	FailClosed     bool
	OnLimiterError func(err error)
	// OnRateLimited is told about every refused placement (for metrics).
	OnRateLimited func()
	// Webhooks verifies payment webhooks; without it POST /webhooks/payment
	// is not served.
	Webhooks WebhookVerifier
	Logger   *slog.Logger
}

// API serves the command endpoints.
type API struct {
	cfg Config
	log *slog.Logger
}

// New returns the API.
func New(cfg Config) *API {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg, log: log}
}

// Mount adds the command routes to r.
func (a *API) Mount(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(httpx.RequireAdmin(a.cfg.AdminSecret))
		r.Post("/admin/products", a.createProduct)
		r.Patch("/admin/products/{id}", a.updateProduct)
	})
	r.Post("/orders", a.placeOrder)
	r.Post("/orders/{id}/cancel", a.cancelOrder)
	if a.cfg.Webhooks != nil {
		r.Post("/webhooks/payment", a.paymentWebhook)
	}
}

func meta(r *http.Request, actor string) eventstore.Metadata {
	id := httpx.RequestIDFrom(r.Context())
	return eventstore.Metadata{CorrelationID: id, CausationID: id, Actor: actor}
}

// pathID reads the {id} URL parameter; a malformed one is answered 400.
func pathID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeMalformedRequest, Title: "Bad Request", Status: http.StatusBadRequest,
			Detail: "The id in the path is not a UUID."})
		return uuid.Nil, false
	}
	return id, true
}

// errRateLimited carries the limiter's decision out of PlaceOrder.
type errRateLimited struct{ d ratelimit.Decision }

func (e errRateLimited) Error() string { return "rate limited" }

// errLimiterDown refuses orders when the limiter fails and FailClosed is set.
var errLimiterDown = errors.New("rate limiter unavailable")

// admit applies the per-email limit to a new order.
// The order id is the action's token: concurrent retries of one
// Idempotency-Key share it and are counted once.
func (a *API) admit(w http.ResponseWriter, email string) func(ctx context.Context, orderID uuid.UUID) error {
	return func(ctx context.Context, orderID uuid.UUID) error {
		if a.cfg.Limiter == nil {
			return nil
		}
		d, err := a.cfg.Limiter.Allow(ctx, order.NormalizeEmail(email), orderID.String())
		if err != nil {
			a.log.ErrorContext(ctx, "rate limiter failed", "error", err, "fail_closed", a.cfg.FailClosed)
			if a.cfg.OnLimiterError != nil {
				a.cfg.OnLimiterError(err)
			}
			if a.cfg.FailClosed {
				return errLimiterDown
			}
			return nil
		}
		setRateLimitHeaders(w, d)
		if !d.Allowed {
			if a.cfg.OnRateLimited != nil {
				a.cfg.OnRateLimited()
			}
			return errRateLimited{d}
		}
		return nil
	}
}

// setRateLimitHeaders writes the IETF RateLimit-Policy and RateLimit fields.
func setRateLimitHeaders(w http.ResponseWriter, d ratelimit.Decision) {
	w.Header().Set("RateLimit-Policy", fmt.Sprintf(`"orders";q=%d;w=%d`, d.Limit, int(d.Window.Seconds())))
	w.Header().Set("RateLimit", fmt.Sprintf(`"orders";r=%d;t=%d`, d.Remaining, ceilSeconds(d.Reset)))
}

func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}

// writeError maps the write side's errors to problems.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ve      *command.ValidationError
		rej     *command.RejectedError
		limited errRateLimited
	)
	switch {
	case errors.As(err, &ve):
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeValidation, Title: "Unprocessable Content", Status: http.StatusUnprocessableEntity,
			Detail: "The request has invalid fields.", Extensions: map[string]any{"errors": ve.Fields}})
	case errors.Is(err, product.ErrInvalid):
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeValidation, Title: "Unprocessable Content", Status: http.StatusUnprocessableEntity,
			Detail: err.Error()})
	case errors.As(err, &rej):
		typ, title := httpx.TypeInsufficientStock, "Insufficient Stock"
		if len(rej.Insufficient) == 0 {
			typ, title = httpx.TypeProductUnavailable, "Product Unavailable"
		}
		httpx.WriteProblem(w, httpx.Problem{Type: typ, Title: title, Status: http.StatusConflict,
			Detail:     "Not every item could be reserved; nothing is reserved.",
			Extensions: map[string]any{"order_id": rej.Order.ID, "insufficient": ids(rej.Insufficient), "unavailable": ids(rej.Unavailable)}})
	case errors.Is(err, command.ErrIdempotencyConflict):
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeIdempotencyConflict, Title: "Idempotency Key Reused", Status: http.StatusConflict,
			Detail: "This Idempotency-Key was used for a different request."})
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", fmt.Sprint(max(ceilSeconds(limited.d.RetryAfter), 1)))
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeRateLimited, Title: "Too Many Requests", Status: http.StatusTooManyRequests,
			Detail: fmt.Sprintf("At most %d orders per %s for one email.", limited.d.Limit, limited.d.Window)})
	case errors.Is(err, errLimiterDown):
		w.Header().Set("Retry-After", "5")
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeUnavailable, Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
			Detail: "Orders cannot be rate limited right now; try again shortly."})
	case errors.Is(err, product.ErrNotFound), errors.Is(err, order.ErrNotFound):
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeNotFound, Title: "Not Found", Status: http.StatusNotFound, Detail: err.Error()})
	case errors.Is(err, order.ErrIllegalTransition):
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeInvalidTransition, Title: "Conflict", Status: http.StatusConflict, Detail: err.Error()})
	default:
		httpx.Internal(w, r, a.log, err)
	}
}

func ids(in []uuid.UUID) []string {
	out := make([]string, len(in))
	for i, id := range in {
		out[i] = id.String()
	}
	return out
}
