package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/payment"
)

// WebhookVerifier checks a webhook's signature and returns its message id.
type WebhookVerifier interface {
	Verify(h http.Header, body []byte) (string, error)
}

// webhookAnswer acknowledges a webhook with the order's status after it.
type webhookAnswer struct {
	OrderID string `json:"order_id"`
	Status  string `json:"status"`
}

// paymentWebhook records a payment outcome reported by the provider. The
// signature is checked over the raw body before anything is parsed; a bad
// one is 401 and records nothing. The same message delivered again is
// acknowledged without a second effect. Unknown fields are ignored: a
// provider may add some.
func (a *API) paymentWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeBodyTooLarge, Title: "Content Too Large", Status: http.StatusRequestEntityTooLarge,
				Detail: "The body is too large."})
			return
		}
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeMalformedRequest, Title: "Bad Request", Status: http.StatusBadRequest,
			Detail: "The body could not be read."})
		return
	}
	webhookID, err := a.cfg.Webhooks.Verify(r.Header, body)
	if err != nil {
		a.log.WarnContext(r.Context(), "payment webhook refused", "error", err)
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeUnauthorized, Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: "The webhook signature is missing, invalid or outside the accepted time window."})
		return
	}

	// occurred_at is informative only and not read, so a provider's format
	// for it cannot block the outcome.
	var in struct {
		PaymentID string       `json:"payment_id"`
		OrderID   uuid.UUID    `json:"order_id"`
		Status    string       `json:"status"`
		Amount    money.Amount `json:"amount"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&in); err != nil {
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeMalformedRequest, Title: "Bad Request", Status: http.StatusBadRequest,
			Detail: "The webhook body is not the payment outcome JSON object."})
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
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeValidation, Title: "Unprocessable Content", Status: http.StatusUnprocessableEntity,
			Detail: "The webhook has invalid fields.", Extensions: map[string]any{"errors": problems}})
		return
	}

	requestID := httpx.RequestIDFrom(r.Context())
	meta := eventstore.Metadata{CorrelationID: requestID, CausationID: webhookID, Actor: command.ActorProvider}
	v, err := a.cfg.Commands.RecordPayment(r.Context(), in.OrderID, order.PaymentOutcome{
		WebhookID: webhookID, PaymentID: in.PaymentID, Succeeded: in.Status == payment.StatusSuccess, Amount: in.Amount,
	}, meta)
	if errors.Is(err, order.ErrPaymentMismatch) {
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypePaymentMismatch, Title: "Unprocessable Content", Status: http.StatusUnprocessableEntity,
			Detail: err.Error()})
		return
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "payment webhook recorded", "order_id", in.OrderID, "payment_id", in.PaymentID,
		"outcome", in.Status, "webhook_id", webhookID, "order_status", v.Status)
	setPosition(w, v.Position)
	httpx.WriteJSON(w, http.StatusOK, webhookAnswer{OrderID: v.ID.String(), Status: string(v.Status)})
}
