// Package httpapi is the query API of Orders over HTTP. It answers from
// the read models (and an order's history from the event store, found
// through the order_stock index); a request may send back the
// X-Event-Position of a command it made (as X-Min-Position) to wait until
// the read model shows it.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/query"
)

// Reader is what the API needs from the read models.
type Reader interface {
	Product(ctx context.Context, id uuid.UUID) (query.Product, error)
	Products(ctx context.Context, active *bool, limit int, cursor string) (query.Page[query.Product], error)
	Order(ctx context.Context, id uuid.UUID) (query.Order, error)
	Orders(ctx context.Context, email, status string, limit int, cursor string) (query.Page[query.Order], error)
	// OrderStockEvents is the order_stock index the audit history finds
	// an order's stock events with.
	OrderStockEvents(ctx context.Context, id uuid.UUID) (query.StockEvents, error)
}

// Waiter waits until a projection has passed a position.
type Waiter interface {
	WaitFor(ctx context.Context, projection string, pos eventstore.Position) error
}

// Config wires the API.
type Config struct {
	Reader Reader
	Waiter Waiter
	// Events serves the audit history from the event store.
	Events      query.EventReader
	AdminSecret string
	// MaxWait bounds a read-your-writes wait (default 2s).
	MaxWait time.Duration
	Logger  *slog.Logger
}

// API serves the query endpoints.
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

// Mount adds the query routes to r.
func (a *API) Mount(r chi.Router) {
	r.Get("/products", a.waiting("products", a.listProducts))
	r.Get("/products/{id}", a.waiting("products", a.getProduct))
	r.Get("/orders/{id}", a.waiting("orders", a.getOrder))
	r.With(httpx.RequireAdmin(a.cfg.AdminSecret)).Get("/admin/orders", a.waiting("orders", a.listOrders))
	if a.cfg.Events != nil {
		r.With(httpx.RequireAdmin(a.cfg.AdminSecret)).Get("/admin/orders/{id}/history", a.waiting(stockIndex, a.history))
	}
}

// stockIndex is the projection that finds an order's stock events for its
// history (projections.OrderStock): X-Min-Position on a history waits for it.
const stockIndex = "order_stock"

// history serves an order's audit trail from the event store: the order's
// own events as they are now, its stock events as far as the order_stock
// index has got (X-Min-Position waits for it to pass a write).
func (a *API) history(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	h, err := query.OrderHistory(r.Context(), a.cfg.Events, a.cfg.Reader, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, h)
}

// waiting honours X-Min-Position: the answer waits, up to MaxWait, until the
// projection has passed that position, and is 503 with Retry-After if not.
func (a *API) waiting(projection string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw := r.Header.Get("X-Min-Position")
		if raw == "" || a.cfg.Waiter == nil {
			next(w, r)
			return
		}
		pos, err := eventstore.ParsePosition(raw)
		if err != nil {
			badRequest(w, "X-Min-Position must be a position as returned in X-Event-Position (commit/prepare).")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.cfg.MaxWait)
		defer cancel()
		if err := a.cfg.Waiter.WaitFor(ctx, projection, pos); err != nil {
			if r.Context().Err() != nil {
				return // the client left
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				httpx.Internal(w, r, a.log, err)
				return
			}
			w.Header().Set("Retry-After", "1")
			httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeUnavailable, Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
				Detail: "The read model has not caught up with X-Min-Position yet; retry shortly."})
			return
		}
		next(w, r)
	}
}

func badRequest(w http.ResponseWriter, detail string) {
	httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeMalformedRequest, Title: "Bad Request", Status: http.StatusBadRequest, Detail: detail})
}

func pathID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		badRequest(w, "The id in the path is not a UUID.")
		return uuid.Nil, false
	}
	return id, true
}

// limit reads ?limit= (1-100, default 20).
func limit(w http.ResponseWriter, r *http.Request) (int, bool) {
	raw := r.URL.Query().Get("limit")
	if raw == "" {
		return 20, true
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > 100 {
		badRequest(w, "limit must be an integer from 1 to 100.")
		return 0, false
	}
	return n, true
}

type list[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func listOf[T any](p query.Page[T]) list[T] {
	l := list[T]{Items: p.Items}
	if l.Items == nil {
		l.Items = []T{}
	}
	if p.NextCursor != "" {
		l.NextCursor = &p.NextCursor
	}
	return l
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, query.ErrNotFound):
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeNotFound, Title: "Not Found", Status: http.StatusNotFound, Detail: err.Error()})
	case errors.Is(err, query.ErrInvalidCursor):
		badRequest(w, "cursor is not one this API returned.")
	default:
		httpx.Internal(w, r, a.log, err)
	}
}

func (a *API) listProducts(w http.ResponseWriter, r *http.Request) {
	var active *bool
	switch v := r.URL.Query().Get("is_active"); v {
	case "":
	case "true", "false":
		b := v == "true"
		active = &b
	default:
		badRequest(w, "is_active must be true or false.")
		return
	}
	n, ok := limit(w, r)
	if !ok {
		return
	}
	page, err := a.cfg.Reader.Products(r.Context(), active, n, r.URL.Query().Get("cursor"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, listOf(page))
}

func (a *API) getProduct(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	p, err := a.cfg.Reader.Product(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}

func (a *API) getOrder(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	o, err := a.cfg.Reader.Order(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, o)
}

// statuses an order can be listed by.
var statuses = map[string]bool{"created": true, "reserved": true, "payment_pending": true, "paid": true, "canceled": true}

func (a *API) listOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := q.Get("status")
	if status != "" && !statuses[status] {
		badRequest(w, "status must be one of created, reserved, payment_pending, paid, canceled.")
		return
	}
	n, ok := limit(w, r)
	if !ok {
		return
	}
	page, err := a.cfg.Reader.Orders(r.Context(), normalizeEmail(q.Get("email")), status, n, q.Get("cursor"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, listOf(page))
}

func normalizeEmail(s string) string { return order.NormalizeEmail(s) }
