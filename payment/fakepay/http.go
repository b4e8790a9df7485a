package fakepay

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/payment"
)

// Handler serves the provider's HTTP API:
//
//	POST /payments               {order_id, amount, currency, callback_url} + Idempotency-Key → 201 {payment_id, status}
//	POST /payments/{id}/refund   (Idempotency-Key optional) → 200 {refund_id, payment_id, status}
//	GET  /payments/{id}          → 200 the payment as the provider sees it
func (p *Provider) Handler() http.Handler {
	r := chi.NewRouter()
	r.Post("/payments", p.create)
	r.Post("/payments/{id}/refund", p.refund)
	r.Get("/payments/{id}", p.get)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return r
}

func (p *Provider) create(w http.ResponseWriter, r *http.Request) {
	var req payment.Request
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	pay, err := p.InitiatePayment(r.Context(), req, r.Header.Get("Idempotency-Key"))
	if err != nil {
		writeError(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, pay)
}

func (p *Provider) refund(w http.ResponseWriter, r *http.Request) {
	refund, err := p.Refund(r.Context(), chi.URLParam(r, "id"), r.Header.Get("Idempotency-Key"))
	if err != nil {
		writeError(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, refund)
}

// paymentJSON is a payment as GET /payments/{id} shows it.
type paymentJSON struct {
	ID        string          `json:"payment_id"`
	Status    string          `json:"status"`
	Request   payment.Request `json:"request"`
	RefundID  string          `json:"refund_id,omitempty"`
	Delivered int             `json:"webhooks_delivered"`
	Attempts  int             `json:"webhook_attempts"`
}

func (p *Provider) get(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	p.mu.Lock()
	pay, ok := p.payments[id]
	var out paymentJSON
	if ok {
		out = paymentJSON{ID: pay.ID, Status: pay.Status, Request: pay.Request, RefundID: pay.RefundID, Delivered: pay.Delivered, Attempts: pay.Attempts}
	}
	p.mu.Unlock()
	if !ok {
		writeError(w, payment.ErrNotFound)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func writeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrIdempotencyConflict):
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeIdempotencyConflict, Detail: err.Error()})
	case errors.Is(err, payment.ErrNotFound):
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeNotFound, Detail: err.Error()})
	case errors.Is(err, payment.ErrRefused):
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeValidation, Detail: err.Error()})
	default:
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeUnavailable, Detail: err.Error()})
	}
}
