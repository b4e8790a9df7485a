package httpapi

import (
	"net/http"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/tracing"
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
// one is 401 and records nothing. Then the request is checked as every
// request is: a JSON body (httpx.CheckJSONMediaType), the webhook-id the
// outcome is recorded under is text the service stores (httpx.Header),
// and the body is decoded strictly (httpx.Decode): the contract's five
// members, each once, exact case, nothing after; a provider that adds a
// member must be met by a change here, not silently half-read. The same
// message delivered again is acknowledged without a second effect.
func (a *API) paymentWebhook(w http.ResponseWriter, r *http.Request) {
	// Each signature header is read once, as every header the API reads
	// (a second field would be a second meaning the check never saw).
	if p := httpx.Once(r, payment.HeaderID, payment.HeaderTimestamp, payment.HeaderSignature); p != nil {
		httpx.WriteProblem(w, *p)
		return
	}
	body, p := httpx.ReadBody(w, r)
	if p != nil {
		httpx.WriteProblem(w, *p)
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
	if !httpx.CheckJSONMediaType(w, r) {
		return
	}
	// The message id is stored (each event's metadata, the order's
	// record of the messages it has seen): the header rule applies.
	if _, _, p := httpx.Header(r, payment.HeaderID, payment.MaxIDLength); p != nil {
		httpx.WriteProblem(w, *p)
		return
	}

	// occurred_at is informative only and kept raw, so that a provider's
	// format for it cannot block the outcome; every other member is
	// required.
	var in struct {
		PaymentID  *string        `json:"payment_id"`
		OrderID    *uuid.UUID     `json:"order_id"`
		Status     *string        `json:"status"`
		Amount     *money.Amount  `json:"amount"`
		OccurredAt jsontext.Value `json:"occurred_at"`
	}
	if p := httpx.Decode(body, &in); p != nil {
		httpx.WriteProblem(w, *p)
		return
	}
	problems := map[string]string{}
	switch {
	case in.OrderID == nil:
		problems["order_id"] = "is required"
	case *in.OrderID == uuid.Nil:
		problems["order_id"] = "must be the order's id"
	}
	// The payment id is stored and shown to customers, and put in the
	// provider's URLs: the rule of payment ids (an identifier from
	// outside, of URL-safe characters).
	if in.PaymentID == nil {
		problems["payment_id"] = "is required"
	} else if p := payment.IDProblem(*in.PaymentID); p != "" {
		problems["payment_id"] = p
	}
	switch {
	case in.Status == nil:
		problems["status"] = "is required"
	case *in.Status != payment.StatusSuccess && *in.Status != payment.StatusFailed:
		problems["status"] = `must be "success" or "failed"`
	}
	if in.Amount == nil {
		problems["amount"] = "is required"
	}
	if len(problems) > 0 {
		a.writeError(w, r, &command.ValidationError{Fields: problems})
		return
	}

	// The request's lines carry the order's id, and its correlation id
	// once RecordPayment has found the order's (logging.Add).
	logging.Add(r.Context(), "order_id", *in.OrderID)
	requestID := httpx.RequestIDFrom(r.Context())
	meta := tracing.Record(r.Context(), eventstore.Metadata{CorrelationID: requestID, CausationID: webhookID, Actor: events.ActorProvider})
	succeeded := *in.Status == payment.StatusSuccess
	v, err := a.cfg.Commands.RecordPayment(r.Context(), *in.OrderID, order.PaymentOutcome{
		WebhookID: webhookID, PaymentID: *in.PaymentID, Succeeded: succeeded, Amount: *in.Amount,
	}, meta)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "payment webhook recorded", "payment_id", httpx.Clip(*in.PaymentID),
		"outcome", *in.Status, "webhook_id", httpx.Clip(webhookID), "order_status", v.Status)
	setPosition(w, v.Position)
	httpx.WriteJSON(w, http.StatusOK, webhookAnswer{OrderID: v.ID.String(), Status: string(v.Status.Public())})
}
