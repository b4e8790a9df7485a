// Package events is the contract between the write side, the projections
// and the process manager: stream names, stable event type names and the
// versioned JSON payloads. A payload, once released, never changes shape: a
// new shape is a new type name with the next version suffix, and Decode keeps
// reading the old one.
//
// Money is integer minor units (money.Amount, serialised as a decimal
// string); ids are UUIDs.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/money"
)

// Stream name prefixes. A product's stream is "product-<uuid>", an order's
// "order-<uuid>".
const (
	ProductStreamPrefix = "product-"
	OrderStreamPrefix   = "order-"
)

// ProductStream returns the stream of product id.
func ProductStream(id uuid.UUID) string { return ProductStreamPrefix + id.String() }

// OrderStream returns the stream of order id.
func OrderStream(id uuid.UUID) string { return OrderStreamPrefix + id.String() }

// Event type names. They are stored with every event and must never change.
const (
	TypeProductCreated              = "product.created.v1"
	TypeProductDetailsChanged       = "product.details_changed.v1"
	TypeProductStockAdjusted        = "product.stock_adjusted.v1"
	TypeProductStockReserved        = "product.stock_reserved.v1"
	TypeProductReservationReleased  = "product.reservation_released.v1"
	TypeProductReservationCommitted = "product.reservation_committed.v1"

	TypeOrderPlaced           = "order.placed.v1"
	TypeOrderReserved         = "order.reserved.v1"
	TypeOrderRejected         = "order.rejected.v1"
	TypeOrderPaymentRequested = "order.payment_requested.v1"
	TypeOrderPaid             = "order.paid.v1"
	TypeOrderPaymentFailed    = "order.payment_failed.v1"
	TypeOrderCanceled         = "order.canceled.v1"
	TypeOrderRefundRequested  = "order.refund_requested.v1"
	TypeOrderRefunded         = "order.refunded.v1"
)

// Event is a typed event payload.
type Event interface {
	// EventType returns the stored type name.
	EventType() string
}

// ProductCreated: an admin created a product.
type ProductCreated struct {
	ProductID   uuid.UUID    `json:"product_id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Price       money.Amount `json:"price"`
	Stock       int64        `json:"stock"`
	IsActive    bool         `json:"is_active"`
}

// ProductDetailsChanged: an admin changed some of the product's details;
// absent fields did not change.
type ProductDetailsChanged struct {
	Name        *string       `json:"name,omitempty"`
	Description *string       `json:"description,omitempty"`
	Price       *money.Amount `json:"price,omitempty"`
	IsActive    *bool         `json:"is_active,omitempty"`
}

// ProductStockAdjusted: an admin set the stock available to reserve.
type ProductStockAdjusted struct {
	Available int64 `json:"available"`
	Delta     int64 `json:"delta"`
}

// ProductStockReserved: quantity units are held for an order.
type ProductStockReserved struct {
	OrderID  uuid.UUID `json:"order_id"`
	Quantity int64     `json:"quantity"`
}

// Who caused an event (eventstore.Metadata.Actor).
const (
	ActorAdmin    = "admin"
	ActorCustomer = "customer"
	ActorProvider = "provider" // the payment provider's webhook
	ActorSystem   = "system"   // the process manager
)

// Why an order was canceled (OrderCanceled.Reason).
const (
	CancelCustomer       = "customer_canceled"
	CancelPaymentFailed  = "payment_failed"
	CancelPaymentTimeout = "payment_timeout"
)

// Why a placement was rejected (OrderRejected.Reason).
const (
	RejectInsufficientStock  = "insufficient_stock"
	RejectProductUnavailable = "product_unavailable"
)

// Why a reservation went back to stock (ProductReservationReleased.Reason).
// The reason is the cause of this release, never a guess: the order was
// canceled by its customer, its payment failed or timed out, its placement
// was rejected for want of stock or of an available product, an
// interrupted placement was completed by the process manager and could not
// be reserved, or the reservation itself arrived after its order's
// placement had been decided (a completer that lost the race).
const (
	ReleaseCustomerCanceled      = CancelCustomer
	ReleasePaymentFailed         = CancelPaymentFailed
	ReleasePaymentTimeout        = CancelPaymentTimeout
	ReleaseInsufficientStock     = RejectInsufficientStock
	ReleaseProductUnavailable    = RejectProductUnavailable
	ReleasePlacementAbandoned    = "placement_abandoned"
	ReleaseReservationAfterClose = "reservation_after_close"
	// ReleaseRecovery was written by versions before the process manager
	// owned every release, whatever the cause; such events still load and
	// display as they are.
	ReleaseRecovery = "recovery"
)

// ProductReservationReleased: an order's reservation went back to stock,
// for Reason (one of the Release… constants).
type ProductReservationReleased struct {
	OrderID  uuid.UUID `json:"order_id"`
	Quantity int64     `json:"quantity"`
	Reason   string    `json:"reason"`
}

// ProductReservationCommitted: an order's reservation was sold.
type ProductReservationCommitted struct {
	OrderID  uuid.UUID `json:"order_id"`
	Quantity int64     `json:"quantity"`
}

// OrderItem is one line of an order, priced when the order was placed.
type OrderItem struct {
	ProductID uuid.UUID    `json:"product_id"`
	Quantity  int64        `json:"quantity"`
	UnitPrice money.Amount `json:"unit_price"`
	LineTotal money.Amount `json:"line_total"`
}

// OrderPlaced: a customer placed an order; stock is not reserved yet.
type OrderPlaced struct {
	OrderID   uuid.UUID    `json:"order_id"`
	UserEmail string       `json:"user_email"`
	Items     []OrderItem  `json:"items"`
	Total     money.Amount `json:"total"`
	Currency  string       `json:"currency"`
	// RequestHash fingerprints the request that placed the order, so that a
	// replay with the same Idempotency-Key can be told from a different body.
	RequestHash string `json:"request_hash,omitempty"`
}

// OrderReserved: every item's stock is reserved.
type OrderReserved struct{}

// OrderRejected: the order could not be reserved; nothing stays reserved.
type OrderRejected struct {
	Reason       string      `json:"reason"`
	Insufficient []uuid.UUID `json:"insufficient,omitempty"`
	Unavailable  []uuid.UUID `json:"unavailable,omitempty"`
}

// OrderPaymentRequested: payment was initiated with the provider.
type OrderPaymentRequested struct {
	PaymentID string `json:"payment_id"`
}

// OrderPaid: the provider reported a successful payment. WebhookID names
// the provider's message that reported it.
type OrderPaid struct {
	PaymentID string `json:"payment_id"`
	WebhookID string `json:"webhook_id,omitempty"`
}

// OrderPaymentFailed: the provider reported a failed payment.
type OrderPaymentFailed struct {
	PaymentID string `json:"payment_id"`
	Reason    string `json:"reason,omitempty"`
	WebhookID string `json:"webhook_id,omitempty"`
}

// OrderCanceled: the order ended without payment; its stock is released.
type OrderCanceled struct {
	Reason string `json:"reason"`
}

// OrderRefundRequested: the provider reported a successful payment for an
// order that had already been canceled; the money goes back.
type OrderRefundRequested struct {
	PaymentID string `json:"payment_id"`
	WebhookID string `json:"webhook_id,omitempty"`
}

// OrderRefunded: the provider refunded the payment.
type OrderRefunded struct {
	PaymentID string `json:"payment_id"`
	RefundID  string `json:"refund_id"`
}

// EventType implementations.
func (ProductCreated) EventType() string              { return TypeProductCreated }
func (ProductDetailsChanged) EventType() string       { return TypeProductDetailsChanged }
func (ProductStockAdjusted) EventType() string        { return TypeProductStockAdjusted }
func (ProductStockReserved) EventType() string        { return TypeProductStockReserved }
func (ProductReservationReleased) EventType() string  { return TypeProductReservationReleased }
func (ProductReservationCommitted) EventType() string { return TypeProductReservationCommitted }
func (OrderPlaced) EventType() string                 { return TypeOrderPlaced }
func (OrderReserved) EventType() string               { return TypeOrderReserved }
func (OrderRejected) EventType() string               { return TypeOrderRejected }
func (OrderPaymentRequested) EventType() string       { return TypeOrderPaymentRequested }
func (OrderPaid) EventType() string                   { return TypeOrderPaid }
func (OrderPaymentFailed) EventType() string          { return TypeOrderPaymentFailed }
func (OrderCanceled) EventType() string               { return TypeOrderCanceled }
func (OrderRefundRequested) EventType() string        { return TypeOrderRefundRequested }
func (OrderRefunded) EventType() string               { return TypeOrderRefunded }

// ErrUnknownType: Decode met a type name it does not know.
var ErrUnknownType = errors.New("unknown event type")

// decoders maps every type name to the payload it holds.
var decoders = map[string]func([]byte) (Event, error){
	TypeProductCreated:              decodeAs[ProductCreated],
	TypeProductDetailsChanged:       decodeAs[ProductDetailsChanged],
	TypeProductStockAdjusted:        decodeAs[ProductStockAdjusted],
	TypeProductStockReserved:        decodeAs[ProductStockReserved],
	TypeProductReservationReleased:  decodeAs[ProductReservationReleased],
	TypeProductReservationCommitted: decodeAs[ProductReservationCommitted],
	TypeOrderPlaced:                 decodeAs[OrderPlaced],
	TypeOrderReserved:               decodeAs[OrderReserved],
	TypeOrderRejected:               decodeAs[OrderRejected],
	TypeOrderPaymentRequested:       decodeAs[OrderPaymentRequested],
	TypeOrderPaid:                   decodeAs[OrderPaid],
	TypeOrderPaymentFailed:          decodeAs[OrderPaymentFailed],
	TypeOrderCanceled:               decodeAs[OrderCanceled],
	TypeOrderRefundRequested:        decodeAs[OrderRefundRequested],
	TypeOrderRefunded:               decodeAs[OrderRefunded],
}

// Decode reads a stored payload of the given type.
func Decode(typ string, data []byte) (Event, error) {
	dec, ok := decoders[typ]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, typ)
	}
	e, err := dec(data)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", typ, err)
	}
	return e, nil
}

func decodeAs[T Event](data []byte) (Event, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// Encode returns an event's JSON payload.
func Encode(e Event) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
	}
	return b, nil
}

// StreamID returns the id in a stream name with the given prefix, and
// whether the name had the prefix and a valid id.
func StreamID(stream, prefix string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(stream, prefix)
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(rest)
	return id, err == nil
}
