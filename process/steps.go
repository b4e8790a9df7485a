package process

import (
	"context"
	"errors"
	"fmt"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/payment"
)

// errPermanent marks a failure that retrying cannot cure: the step is
// parked at once.
var errPermanent = errors.New("permanent failure")

// execute runs one step.
func (m *Manager) execute(ctx context.Context, t task) error {
	meta := eventstore.Metadata{CorrelationID: t.CorrelationID, CausationID: t.CausationID, Actor: events.ActorSystem}
	var err error
	switch t.Kind {
	case KindCompletePlacement:
		var v command.OrderView
		if v, err = m.orders.CompletePlacement(ctx, t.OrderID, meta); err == nil {
			m.log.InfoContext(ctx, "placement checked", "order_id", t.OrderID, "status", v.Status, "correlation_id", t.CorrelationID)
		}
	case KindReleaseReservation:
		err = m.orders.ReleaseReservation(ctx, t.OrderID, t.ProductID, meta)
	case KindInitiatePayment:
		err = m.initiatePayment(ctx, t, meta)
	case KindPaymentTimeout:
		var v command.OrderView
		if v, err = m.orders.TimeOutPayment(ctx, t.OrderID, meta); err == nil && v.CancelReason == events.CancelPaymentTimeout {
			m.log.InfoContext(ctx, "payment timed out; order canceled", "order_id", t.OrderID, "correlation_id", t.CorrelationID)
		}
	case KindCommitStock:
		err = m.orders.CommitStock(ctx, t.OrderID, meta)
	case KindReleaseStock:
		err = m.orders.ReleaseStock(ctx, t.OrderID, meta)
	case KindRefund:
		err = m.refund(ctx, t, meta)
	default:
		err = fmt.Errorf("%w: unknown step kind %q", errPermanent, t.Kind)
	}
	if errors.Is(err, payment.ErrRefused) || errors.Is(err, order.ErrNotFound) || errors.Is(err, order.ErrIllegalTransition) {
		err = fmt.Errorf("%w: %w", errPermanent, err)
	}
	return err
}

// initiatePayment asks the provider for the order's payment and records
// it. The order id is the idempotency key, so however often this runs
// (retries, a crash between the call and the record), the order has one
// payment.
func (m *Manager) initiatePayment(ctx context.Context, t task, meta eventstore.Metadata) error {
	v, err := m.orders.Order(ctx, t.OrderID)
	if err != nil {
		return fmt.Errorf("read order: %w", err)
	}
	if v.Status != order.StatusReserved {
		return nil // requested already, paid early, or canceled
	}
	p, err := m.provider.InitiatePayment(ctx, payment.Request{
		OrderID: v.ID, Amount: money.Amount(v.Total), Currency: v.Currency, CallbackURL: m.opts.CallbackURL,
	}, v.ID.String())
	if err != nil {
		return fmt.Errorf("initiate payment: %w", err)
	}
	v, err = m.orders.RequestPayment(ctx, t.OrderID, p.ID, meta)
	if err != nil {
		return fmt.Errorf("record payment %s: %w", p.ID, err)
	}
	m.log.InfoContext(ctx, "payment requested", "order_id", t.OrderID, "payment_id", p.ID, "status", v.Status, "correlation_id", t.CorrelationID)
	return nil
}

// refund returns the money of a payment that succeeded after its order
// was canceled, and records the refund.
func (m *Manager) refund(ctx context.Context, t task, meta eventstore.Metadata) error {
	v, err := m.orders.Order(ctx, t.OrderID)
	if err != nil {
		return fmt.Errorf("read order: %w", err)
	}
	if !v.RefundRequested || v.RefundID != "" {
		return nil
	}
	r, err := m.provider.Refund(ctx, v.PaymentID, "refund-"+v.ID.String())
	if err != nil {
		return fmt.Errorf("refund payment %s: %w", v.PaymentID, err)
	}
	if _, err := m.orders.RecordRefund(ctx, t.OrderID, r.ID, meta); err != nil {
		return fmt.Errorf("record refund %s: %w", r.ID, err)
	}
	m.log.InfoContext(ctx, "payment refunded", "order_id", t.OrderID, "payment_id", v.PaymentID, "refund_id", r.ID, "correlation_id", t.CorrelationID)
	return nil
}
