package httpapi

import (
	"errors"
	"io"
	"net/http"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/payment"
)

// webhookAnswer acknowledges a webhook with the order's status after it.
type webhookAnswer struct {
	OrderID string `json:"order_id"`
	Status  string `json:"status"`
}

// paymentWebhook records a payment outcome reported by the provider. The
// signature is checked over the raw body before anything is parsed; a bad
// one is 401 and records nothing. The same message delivered again is
// acknowledged without a second effect. The body is decoded strictly, as
// every body is (httpx.Decode): the contract's five members, each once,
// exact case, nothing after; a provider that adds a member must be met by a
// change here, not silently half-read.
func (a *API) paymentWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeBodyTooLarge, Detail: "The body is too large."})
			return
		}
		a.writeError(w, r, badRequest{message: "The body could not be read."})
		return
	}
	webhookID, err := a.cfg.Webhooks.Verify(r.Header, body)
	if err != nil {
		a.log.WarnContext(r.Context(), "payment webhook refused", "error", err)
		// RFC 9110 §11.6.1: a 401 carries a challenge; Standard Webhooks
		// signs with the webhook-signature header.
		w.Header().Set("WWW-Authenticate", `webhook-signature realm="payment-webhooks"`)
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeUnauthorized,
			Detail: "The webhook signature is missing, invalid or outside the accepted time window."})
		return
	}

	// Decoded strictly (httpx.Decode): a signed body is exactly one
	// outcome. occurred_at is informative only and kept raw, so a
	// provider's format for it cannot block the outcome.
	var in struct {
		PaymentID  string         `json:"payment_id"`
		OrderID    uuid.UUID      `json:"order_id"`
		Status     string         `json:"status"`
		Amount     money.Amount   `json:"amount"`
		OccurredAt jsontext.Value `json:"occurred_at"`
	}
	if p := httpx.Decode(body, &in); p != nil {
		httpx.WriteProblem(w, *p)
		return
	}
	problems := map[string]string{}
	if in.OrderID == uuid.Nil {
		problems["order_id"] = "must be the order's id"
	}
	if in.PaymentID == "" || len(in.PaymentID) > 255 {
		problems["payment_id"] = "must be 1-255 characters"
	}
	if in.Status != payment.StatusSuccess && in.Status != payment.StatusFailed {
		problems["status"] = `must be "success" or "failed"`
	}
	if len(problems) > 0 {
		a.writeError(w, r, &command.ValidationError{Fields: problems})
		return
	}

	requestID := httpx.RequestIDFrom(r.Context())
	meta := eventstore.Metadata{CorrelationID: requestID, CausationID: webhookID, Actor: events.ActorProvider}
	v, err := a.cfg.Commands.RecordPayment(r.Context(), in.OrderID, order.PaymentOutcome{
		WebhookID: webhookID, PaymentID: in.PaymentID, Succeeded: in.Status == payment.StatusSuccess, Amount: in.Amount,
	}, meta)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "payment webhook recorded", "order_id", in.OrderID, "payment_id", in.PaymentID,
		"outcome", in.Status, "webhook_id", webhookID, "order_status", v.Status)
	setPosition(w, v.Position)
	httpx.WriteJSON(w, http.StatusOK, webhookAnswer{OrderID: v.ID.String(), Status: string(v.Status)})
}
