// Package payment is the protocol between Orders and its payment provider:
// what a payment request, a payment, a refund and a webhook look like (see
// the external contract), and how webhooks are signed and verified
// (Standard Webhooks). The fake provider, the provider's HTTP client and
// the webhook endpoint all speak it.
package payment

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/money"
)

// Payment and refund statuses. A webhook reports StatusSuccess or
// StatusFailed; a lookup of a payment answers StatusPending,
// StatusSucceeded, StatusFailed or StatusRefunded (the contract's words for
// a payment's current state).
const (
	StatusPending   = "pending"
	StatusSuccess   = "success"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusRefunded  = "refunded"
)

// Errors that callers branch on.
var (
	// ErrUnavailable: the provider could not be reached or failed (5xx);
	// the same request may succeed later.
	ErrUnavailable = errors.New("payment provider unavailable")
	// ErrRefused: the provider refused the request (4xx); repeating it
	// will not help.
	ErrRefused = errors.New("payment provider refused the request")
	// ErrNotFound: the provider knows no such payment.
	ErrNotFound = errors.New("payment not found")
	// ErrConflict: the provider refused a request whose idempotency key it
	// saw with another request (409). It is an ErrRefused; the payment
	// the key names exists, so its caller reconciles by looking it up.
	ErrConflict = fmt.Errorf("%w: idempotency key reused for a different request", ErrRefused)
)

// Request asks the provider to take a payment for an order. The provider
// reports the outcome to CallbackURL.
type Request struct {
	OrderID     uuid.UUID    `json:"order_id"`
	Amount      money.Amount `json:"amount"`
	Currency    string       `json:"currency"`
	CallbackURL string       `json:"callback_url"`
}

// Payment is the provider's answer to a Request (ID and StatusPending), or
// to a lookup: then Status is the payment's current state (StatusPending,
// StatusSucceeded, StatusFailed, StatusRefunded) and the other fields say
// what it pays for. The identity of a payment is its business request
// (order, amount, currency): the callback URL is not part of it.
type Payment struct {
	ID       string       `json:"payment_id"`
	Status   string       `json:"status"`
	OrderID  uuid.UUID    `json:"order_id,omitzero"`
	Amount   money.Amount `json:"amount,omitzero"`
	Currency string       `json:"currency,omitempty"`
	// RefundID names the refund of a refunded payment.
	RefundID string `json:"refund_id,omitempty"`
}

// Refund is the provider's answer to a refund request.
type Refund struct {
	ID        string `json:"refund_id"`
	PaymentID string `json:"payment_id"`
	Status    string `json:"status"`
}

// Outcome is the body of a payment webhook.
type Outcome struct {
	PaymentID  string       `json:"payment_id"`
	OrderID    uuid.UUID    `json:"order_id"`
	Status     string       `json:"status"` // StatusSuccess or StatusFailed
	Amount     money.Amount `json:"amount"`
	OccurredAt time.Time    `json:"occurred_at"`
}
