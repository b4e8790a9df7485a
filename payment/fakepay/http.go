package fakepay

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/payment"
)

// Handler serves the provider's HTTP API:
//
//	POST /payments               {order_id, amount, currency, callback_url} + Idempotency-Key → 201 {payment_id, status}
//	POST /payments/{id}/refund   (Idempotency-Key optional) → 200 {refund_id, payment_id, status}
//	GET  /payments/{id}          → 200 the payment as it stands now
//	GET  /payments?order_id=…    → 200 the order's payment as it stands now
//	GET  /payments?idempotency_key=…  (or with an Idempotency-Key header: likewise)
//
// A payment as it stands now is {payment_id, status, order_id, amount,
// currency, refund_id?, callback_url, webhooks_delivered, webhook_attempts}
// with status pending, succeeded, failed or refunded; an unknown payment is
// a 404 problem, a lookup naming no order or key, or a malformed one, a
// 400 problem. Requests are checked with the API's own mechanisms
// (internal/httpx): strict JSON bodies, query parameters (each route
// declares its own: an unknown one is 400) and headers held to the same
// text rule, an Accept header that accepts no JSON 406, RFC 9457 problems
// for unknown routes (404) and methods (405 with Allow), HEAD wherever
// GET is served.
func (p *Provider) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.GetHead, httpx.AcceptJSON)
	// The fake provider serves no /docs: the 404 lists what it serves.
	r.NotFound(httpx.NotFoundSee("this provider serves /payments, /payments/{id}, /payments/{id}/refund and /healthz"))
	r.MethodNotAllowed(httpx.MethodNotAllowed(r))
	none := httpx.Query()
	r.With(none).Post("/payments", p.create)
	r.With(httpx.Query(httpx.Param{Name: "order_id", Max: 36}, httpx.Param{Name: "idempotency_key", Max: MaxIdempotencyKey}), httpx.NoBody).
		Get("/payments", p.find)
	r.With(none).Post("/payments/{id}/refund", p.refund)
	r.With(none, httpx.NoBody).Get("/payments/{id}", p.get)
	r.With(none, httpx.NoBody).Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return r
}

// MaxIdempotencyKey is the longest Idempotency-Key accepted, in
// characters, as by the Orders API.
const MaxIdempotencyKey = 255

func (p *Provider) create(w http.ResponseWriter, r *http.Request) {
	key, present, problem := httpx.Header(r, "Idempotency-Key", MaxIdempotencyKey)
	if problem == nil && !present {
		pr := httpx.InvalidField(httpx.TypeMalformedRequest, "Idempotency-Key", "is required")
		problem = &pr
	}
	if problem != nil {
		httpx.WriteProblem(w, *problem)
		return
	}
	var req payment.Request
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	if problems := requestProblems(req); len(problems) > 0 {
		httpx.WriteProblem(w, httpx.Invalid(httpx.TypeValidation, problems))
		return
	}
	pay, err := p.InitiatePayment(r.Context(), req, key)
	if err != nil {
		writeError(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, pay)
}

// requestProblems names the fields of a payment request that
// InitiatePayment would refuse, or that it could not act on (a callback
// URL it cannot call).
func requestProblems(req payment.Request) map[string]string {
	problems := map[string]string{}
	if req.OrderID == uuid.Nil {
		problems["order_id"] = "is required"
	}
	if req.Amount <= 0 {
		problems["amount"] = "must be greater than 0"
	}
	switch {
	case req.Currency == "":
		problems["currency"] = "is required"
	case !currencyCode(req.Currency):
		problems["currency"] = "must be an ISO 4217 code: three upper-case letters A-Z (USD)"
	}
	switch {
	case req.CallbackURL == "":
		problems["callback_url"] = "is required"
	case httpx.HTTPURLProblem(req.CallbackURL) != "":
		problems["callback_url"] = httpx.HTTPURLProblem(req.CallbackURL)
	}
	return problems
}

// currencyCode reports whether s has the form of an ISO 4217 alphabetic
// code, as the contract's currency ("USD") has and as Orders sends it:
// three upper-case ASCII letters ("usd", "US", "X\u202eY" are not).
func currencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range len(s) {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func (p *Provider) refund(w http.ResponseWriter, r *http.Request) {
	key, _, problem := httpx.Header(r, "Idempotency-Key", MaxIdempotencyKey)
	if problem != nil {
		httpx.WriteProblem(w, *problem)
		return
	}
	refund, err := p.Refund(r.Context(), chi.URLParam(r, "id"), key)
	if err != nil {
		writeError(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, refund)
}

// paymentJSON is a payment as the lookups show it: the protocol's fields
// and, for inspection, where and how often its webhook was delivered.
type paymentJSON struct {
	payment.Payment
	CallbackURL string `json:"callback_url"`
	Delivered   int    `json:"webhooks_delivered"`
	Attempts    int    `json:"webhook_attempts"`
}

func (p *Provider) get(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	p.writePayment(w, id, fmt.Errorf("%w: %s", payment.ErrNotFound, httpx.Quote(id)))
}

// find looks a payment up by order id or by idempotency key (a query
// parameter or the header). What names no payment, or names it in a
// malformed way, is 400, as a malformed query parameter is in the API.
func (p *Provider) find(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := q.Get("idempotency_key")
	header, _, problem := httpx.Header(r, "Idempotency-Key", MaxIdempotencyKey)
	if problem != nil {
		httpx.WriteProblem(w, *problem)
		return
	}
	// One name for one payment: order_id and a key name two (the order's
	// first payment, the key's), and a key parameter and a header that
	// disagree name two; answering either would be a guess.
	switch {
	case q.Has("order_id") && (key != "" || header != ""):
		problem := httpx.InvalidField(httpx.TypeMalformedRequest, "order_id", "names the payment alone: leave out idempotency_key and the Idempotency-Key header")
		problem.Detail = "Name the payment one way: order_id, or its idempotency key, not both."
		httpx.WriteProblem(w, problem)
		return
	case key != "" && header != "" && key != header:
		problem := httpx.InvalidField(httpx.TypeMalformedRequest, "idempotency_key", "must be the Idempotency-Key header's value when both are sent")
		problem.Detail = "The idempotency_key parameter and the Idempotency-Key header name two payments."
		httpx.WriteProblem(w, problem)
		return
	}
	if key == "" {
		key = header
	}
	switch {
	case q.Has("order_id"):
		orderID, err := httpx.ParseUUID(q.Get("order_id"))
		if err != nil {
			httpx.WriteProblem(w, httpx.InvalidField(httpx.TypeMalformedRequest, "order_id", httpx.UUIDRule))
			return
		}
		p.mu.Lock()
		id := p.byOrder[orderID]
		p.mu.Unlock()
		p.writePayment(w, id, fmt.Errorf("%w: no payment of order %s", payment.ErrNotFound, orderID))
	case key != "":
		p.mu.Lock()
		id := p.byKey[key]
		p.mu.Unlock()
		p.writePayment(w, id, fmt.Errorf("%w: no payment with key %s", payment.ErrNotFound, httpx.Quote(key)))
	default:
		problem := httpx.InvalidField(httpx.TypeMalformedRequest, "order_id", "is required, unless idempotency_key or an Idempotency-Key header names the payment")
		problem.Detail = "Name the payment: ?order_id=…, ?idempotency_key=… or an Idempotency-Key header."
		httpx.WriteProblem(w, problem)
	}
}

// writePayment answers payment id as it stands now, or notFound (a 404
// problem) when there is no such payment ("" is none).
func (p *Provider) writePayment(w http.ResponseWriter, id string, notFound error) {
	p.mu.Lock()
	pay, ok := p.payments[id]
	var out paymentJSON
	if ok {
		out = paymentJSON{Payment: pay.view(), CallbackURL: pay.Request.CallbackURL, Delivered: pay.Delivered, Attempts: pay.Attempts}
	}
	p.mu.Unlock()
	if !ok {
		writeError(w, notFound)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// writeError answers err with a fixed sentence for its kind, as the
// API's error table does: an error's own text (ids, keys, Go's words) is
// for logs, never a detail.
func writeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrIdempotencyConflict):
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeIdempotencyConflict,
			Detail: "This Idempotency-Key was used for another payment request (another order, amount or currency)."})
	case errors.Is(err, payment.ErrNotFound):
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeNotFound, Detail: "There is no such payment."})
	case errors.Is(err, payment.ErrRefused):
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeValidation,
			Detail: "The provider refuses this request: only a payment that succeeded can be refunded."})
	default:
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeUnavailable, Detail: "The provider cannot take this request right now; retry shortly."})
	}
}
