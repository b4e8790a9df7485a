// Package payment is the protocol between Orders and its payment provider:
// what a payment request, a payment, a refund and a webhook look like (see
// the external contract), and how webhooks are signed and verified
// (Standard Webhooks). The fake provider, the provider's HTTP client and
// the webhook endpoint all speak it.
package payment

import (
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/money"
)

// Payment and refund statuses.
const (
	StatusPending  = "pending"
	StatusSuccess  = "success"
	StatusFailed   = "failed"
	StatusRefunded = "refunded"
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
)

// Request asks the provider to take a payment for an order. The provider
// reports the outcome to CallbackURL.
type Request struct {
	OrderID     uuid.UUID    `json:"order_id"`
	Amount      money.Amount `json:"amount"`
	Currency    string       `json:"currency"`
	CallbackURL string       `json:"callback_url"`
}

// Payment is the provider's answer to a Request.
type Payment struct {
	ID     string `json:"payment_id"`
	Status string `json:"status"`
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
