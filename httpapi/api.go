// Package httpapi is Orders over HTTP: one adapter for the command API
// (admin product commands, placing and canceling orders, the payment
// webhook) and the query API (products, orders, an order's audit trail).
// Each resource has one file and one JSON representation; every error is
// an RFC 9457 problem from one catalog (internal/httpx), chosen by one
// table (errors.go).
//
// MountCommands and MountQueries keep the deployment roles separable: a
// process serves either or both.
//
// Command answers come from the write model, so a caller sees its own
// write at once, and carry X-Event-Position; query answers come from the
// read models, and a request that sends that position back as
// X-Min-Position waits until the read model shows it (consistency.go).
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/ratelimit"
	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/query"
	"github.com/orders-reference/orders/query/orders"
	"github.com/orders-reference/orders/query/products"
)

// Commands is what the command API needs from the write side.
type Commands interface {
	CreateProduct(ctx context.Context, cmd command.CreateProduct) (command.ProductView, error)
	UpdateProduct(ctx context.Context, id uuid.UUID, d product.Details, meta eventstore.Metadata) (command.ProductView, error)
	PlaceOrder(ctx context.Context, cmd command.PlaceOrder) (command.OrderView, error)
	CancelOrder(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) (command.OrderView, error)
	RecordPayment(ctx context.Context, id uuid.UUID, outcome order.PaymentOutcome, meta eventstore.Metadata) (command.OrderView, error)
}

// Limiter is what the command API needs from a rate limiter.
type Limiter interface {
	Allow(ctx context.Context, key, token string) (ratelimit.Decision, error)
}

// WebhookVerifier checks a webhook's signature and returns its message id.
type WebhookVerifier interface {
	Verify(h http.Header, body []byte) (string, error)
}

// ProductReader reads the products read model.
type ProductReader interface {
	Get(ctx context.Context, id uuid.UUID) (products.Product, error)
	List(ctx context.Context, active *bool, limit int, cursor string) (query.Page[products.Product], error)
}

// OrderReader reads the orders read model.
type OrderReader interface {
	Get(ctx context.Context, id uuid.UUID) (orders.Order, error)
	List(ctx context.Context, email, status string, limit int, cursor string) (query.Page[orders.Order], error)
}

// Waiter waits until a projection has passed a position.
type Waiter interface {
	WaitFor(ctx context.Context, projection string, pos eventstore.Position) error
}

// Config wires the API. MountCommands uses the command fields,
// MountQueries the query fields.
type Config struct {
	AdminSecret string
	Logger      *slog.Logger

	// Commands runs the write side's commands.
	Commands Commands
	// Limiter limits order placements per customer email (nil: no limit).
	Limiter Limiter
	// FailClosed refuses orders (503) when the limiter fails; by default
	// they pass (fail open) and OnLimiterError is told.
	FailClosed     bool
	OnLimiterError func(err error)
	// OnRateLimited is told about every refused placement (for metrics).
	OnRateLimited func()
	// Backpressure, if set, admits new placements: it may hold one back
	// while the deployment is too far behind, and refuse it with
	// backpressure.ErrBehind (503) if that lasts.
	Backpressure Admitter
	// Webhooks verifies payment webhooks; without it POST /webhooks/payment
	// is not served.
	Webhooks WebhookVerifier

	Products ProductReader
	Orders   OrderReader
	// Events and StockIndex serve an order's audit trail; without Events
	// it is not served.
	Events     query.EventReader
	StockIndex query.StockIndex
	// Waiter serves X-Min-Position (nil: reads do not wait).
	Waiter Waiter
	// MaxWait bounds a read-your-writes wait (default 2s).
	MaxWait time.Duration
	// RequestTimeout, if positive, is every request's deadline: what it
	// still waits for then (a statement, a placement past its append) ends
	// its wait, and it is answered 503 with Retry-After.
	RequestTimeout time.Duration
}

// Admitter paces new work (see internal/backpressure).
type Admitter interface {
	Admit(ctx context.Context) error
}

// API serves the endpoints.
type API struct {
	cfg Config
	log *slog.Logger
}

// New returns the API.
func New(cfg Config) *API {
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 2 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg, log: log}
}

// Every route answers JSON (httpx.AcceptJSON, first, so a request refused
// for its Accept header changes nothing); an admin route then checks the
// secret (httpx.RequireAdmin) before anything of the request is read, so
// that a request without it is 401 whatever else is wrong with it. Every
// route declares the query parameters it takes (httpx.Query; the command
// routes take none), and a route that takes no body refuses one
// (httpx.NoBody: the queries, the cancel).

// MountCommands adds the command routes to r.
func (a *API) MountCommands(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(httpx.AcceptJSON, a.deadline)
		r.Group(func(r chi.Router) {
			r.Use(httpx.RequireAdmin(a.cfg.AdminSecret), httpx.Query())
			r.Post("/admin/products", a.createProduct)
			r.Patch("/admin/products/{id}", a.updateProduct)
		})
		r.Group(func(r chi.Router) {
			r.Use(httpx.Query())
			r.Post("/orders", a.placeOrder)
			r.With(httpx.NoBody).Post("/orders/{id}/cancel", a.cancelOrder)
			if a.cfg.Webhooks != nil {
				r.Post("/webhooks/payment", a.paymentWebhook)
			}
		})
	})
}

// MountQueries adds the query routes to r.
func (a *API) MountQueries(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(httpx.AcceptJSON, a.deadline)
		admin := httpx.RequireAdmin(a.cfg.AdminSecret)
		r.With(httpx.Query(paramIsActive, paramLimit, paramCursor), httpx.NoBody).Get("/products", a.waiting(products.Name, a.listProducts))
		r.With(httpx.Query(), httpx.NoBody).Get("/products/{id}", a.waiting(products.Name, a.getProduct))
		r.With(httpx.Query(), httpx.NoBody).Get("/orders/{id}", a.waiting(orders.Name, a.getOrder))
		r.With(admin, httpx.Query(paramEmail, paramStatus, paramLimit, paramCursor), httpx.NoBody).Get("/admin/orders", a.waiting(orders.Name, a.listOrders))
		if a.cfg.Events != nil {
			r.With(admin, httpx.Query(), httpx.NoBody).Get("/admin/orders/{id}/history", a.waiting(stockIndex, a.history))
		}
	})
}

// The query parameters of the list endpoints, each with the most
// characters its value may have: a cursor as long as any the API returns
// (base64 of a time and an id) with room to spare, an email as long as an
// address may be (order.MaxEmail), the others a little over their longest
// right value (their own rules then say what is wrong).
var (
	paramIsActive = httpx.Param{Name: "is_active", Max: 32}
	paramLimit    = httpx.Param{Name: "limit", Max: 32}
	paramStatus   = httpx.Param{Name: "status", Max: 32}
	paramCursor   = httpx.Param{Name: "cursor", Max: 256}
	paramEmail    = httpx.Param{Name: "email", Max: order.MaxEmail}
)

// deadline gives each request Config.RequestTimeout.
func (a *API) deadline(next http.Handler) http.Handler {
	if a.cfg.RequestTimeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// meta is the metadata of the events a request causes: the request id is
// their correlation and causation, and the request's trace context
// theirs, so that what they cause continues its trace.
func meta(r *http.Request, actor string) eventstore.Metadata {
	id := httpx.RequestIDFrom(r.Context())
	return tracing.Record(r.Context(), eventstore.Metadata{CorrelationID: id, CausationID: id, Actor: actor})
}

// orderPathID reads the {id} of an order's route (pathID); the request's
// log lines carry it as order_id.
func (a *API) orderPathID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	id, ok := a.pathID(w, r)
	if ok {
		logging.Add(r.Context(), "order_id", id)
	}
	return id, ok
}

// pathID reads the {id} URL parameter, a UUID in its canonical form
// (httpx.ParseUUID); a malformed one is answered 400.
func (a *API) pathID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	id, err := httpx.ParseUUID(chi.URLParam(r, "id"))
	if err != nil {
		a.writeError(w, r, badRequest{"id", httpx.UUIDRule})
		return uuid.Nil, false
	}
	return id, true
}
