package process

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/payment"
)

// errPermanent marks a failure that retrying cannot cure: the step is
// parked at once.
var errPermanent = errors.New("permanent failure")

// errUnreconciled marks a step that asked the provider how a payment stands
// and got no answer: it is retried (never parked at once, whatever the
// provider's error, since the payment may exist).
var errUnreconciled = errors.New("payment not reconciled with the provider")

// execute runs one step. Its context carries the step's ids for the log
// (see Manager.run): the lines below do not repeat them.
func (m *Manager) execute(ctx context.Context, t task) error {
	// The events the step appends carry its trace on to the next.
	meta := tracing.Record(ctx, eventstore.Metadata{CorrelationID: t.CorrelationID, CausationID: t.CausationID, Actor: events.ActorSystem})
	var err error
	switch t.Kind {
	case KindCompletePlacement:
		var v command.OrderView
		if v, err = m.orders.CompletePlacement(ctx, t.OrderID, meta); err == nil {
			m.log.InfoContext(ctx, "placement checked", "status", v.Status)
		}
	case KindReleaseReservation:
		err = m.orders.ReleaseReservation(ctx, t.OrderID, t.ProductID, meta)
	case KindInitiatePayment:
		err = m.initiatePayment(ctx, t, meta)
	case KindPaymentTimeout:
		err = m.timeOutPayment(ctx, t, meta)
	case KindCommitStock:
		err = m.orders.CommitStock(ctx, t.OrderID, meta)
	case KindReleaseStock:
		err = m.orders.ReleaseStock(ctx, t.OrderID, meta)
	case KindRefund:
		err = m.refund(ctx, t, meta)
	case KindReconcilePayment:
		err = m.reconcileAfterCancel(ctx, t, meta)
	default:
		err = fmt.Errorf("%w: unknown step kind %q", errPermanent, t.Kind)
	}
	if errors.Is(err, payment.ErrRefused) || errors.Is(err, order.ErrNotFound) || errors.Is(err, order.ErrIllegalTransition) {
		err = fmt.Errorf("%w: %w", errPermanent, err)
	}
	return err
}

// Reconciliation. The provider's answer to a payment request can be lost
// (a timeout, a 5xx, a cut connection, an instance killed mid-call) or be a
// refusal of a request it already took (a 409 from a provider that
// fingerprints more than the business request). Then the process manager
// asks the provider how the order's payment stands (PaymentByOrder; the
// order id is also the idempotency key) instead of guessing:
//
//   - initiate_payment, when the request fails in any way: a payment that
//     exists is recorded (order.payment_requested) and, if the provider
//     decided it, so is its outcome, through Service.RecordPayment as a
//     webhook would (message id ReconcileWebhookID: a webhook of the same
//     outcome later decides nothing); the step is then done, not retried
//     or parked. No payment: the failure stands (retried with backoff,
//     parked after the last retry, a refusal parked at once). No answer:
//     the failure stands and is retried; a 409 with no answer is retried,
//     never parked at once, since its payment exists.
//   - payment_timeout, before canceling: succeeded → recorded, the order is
//     paid, nothing canceled; failed → recorded, the order canceled as
//     payment_failed; pending → recorded, the request sent again (the same
//     payment, so a provider that honours the newest callback URL delivers
//     the outcome to a live instance), then the order canceled: when the
//     success comes, the order's refund path returns the money
//     (order.refund_requested → refund); refunded → recorded, canceled; no
//     payment → canceled. No answer: the timeout is retried after each
//     delay of Options.Backoff and, once they are used up, cancels without
//     knowing (a success reported later is refunded by the same path).
//
// So a charged customer ends with a paid order, or with a canceled one
// whose success, reported by webhook or found by reconciliation, is
// refunded.

// ReconcileWebhookID is the message id under which the process manager
// records a payment outcome that it learned by asking the provider:
// "reconcile/<payment id>/<status>". It is deterministic, so reconciling
// again records nothing twice.
func ReconcileWebhookID(paymentID, status string) string {
	return "reconcile/" + paymentID + "/" + status
}

// request is the payment request of order v, its outcome to be delivered
// to this instance's callback URL.
func (m *Manager) request(v command.OrderView) payment.Request {
	return payment.Request{OrderID: v.ID, Amount: money.Amount(v.Total), Currency: v.Currency, CallbackURL: m.opts.CallbackURL}
}

// initiatePayment asks the provider for the order's payment and records
// it. The order id is the idempotency key, so however often this runs
// (retries, a crash between the call and the record), the order has one
// payment. A request that fails is reconciled (see above).
func (m *Manager) initiatePayment(ctx context.Context, t task, meta eventstore.Metadata) error {
	v, err := m.orders.Order(ctx, t.OrderID)
	if err != nil {
		return fmt.Errorf("read order: %w", err)
	}
	if v.Status != order.StatusReserved {
		return nil // requested already, paid early, or canceled
	}
	p, err := m.provider.InitiatePayment(ctx, m.request(v), v.ID.String())
	if err != nil {
		return m.reconcileInitiation(ctx, t, v, meta, fmt.Errorf("initiate payment: %w", err))
	}
	v, err = m.orders.RequestPayment(ctx, t.OrderID, p.ID, meta)
	if err != nil {
		return fmt.Errorf("record payment %s: %w", p.ID, err)
	}
	m.log.InfoContext(ctx, "payment requested", "payment_id", p.ID, "status", v.Status)
	return nil
}

// reconcileInitiation asks the provider for the payment of order v after
// its request failed with cause, and records what it holds. It returns nil
// when the payment was found and recorded, cause when the provider holds
// none, and a retryable error when it cannot tell.
func (m *Manager) reconcileInitiation(ctx context.Context, t task, v command.OrderView, meta eventstore.Metadata, cause error) error {
	if ctx.Err() != nil {
		return cause // fenced or shutting down: the step runs again once its lease has ended
	}
	p, err := m.provider.PaymentByOrder(ctx, v.ID)
	switch {
	case errors.Is(err, payment.ErrNotFound):
		return cause
	case err != nil && errors.Is(cause, payment.ErrConflict):
		// The key names a payment: retry, never park at once (the
		// conflict's refusal is kept as text only for that reason).
		return fmt.Errorf("%w: %v; look up: %v", errUnreconciled, cause, err)
	case err != nil:
		// The request's failure decides (retry, or park a refusal); the
		// lookup's is told, not wrapped, so that a refused lookup does not
		// park a request whose outcome is unknown.
		return fmt.Errorf("%w; look up: %v", cause, err)
	}
	v, err = m.adopt(ctx, v, p, meta)
	if err != nil {
		return fmt.Errorf("%w: %v; record payment %s: %w", errUnreconciled, cause, p.ID, err)
	}
	m.log.WarnContext(ctx, "payment request failed but the provider holds the payment; recorded",
		"payment_id", p.ID, "provider_status", p.Status, "status", v.Status, "error", cause)
	return nil
}

// adopt records payment p, which the provider holds for order v: the
// request while the order is reserved, and the outcome once the provider
// decided it (Service.RecordPayment, as a webhook, with message id
// ReconcileWebhookID). A payment of another order or currency is
// order.ErrPaymentMismatch, permanent.
func (m *Manager) adopt(ctx context.Context, v command.OrderView, p payment.Payment, meta eventstore.Metadata) (command.OrderView, error) {
	if (p.OrderID != uuid.Nil && p.OrderID != v.ID) || (p.Currency != "" && p.Currency != v.Currency) {
		return v, fmt.Errorf("%w: %w: the provider's payment %s is of order %s in %s, not of %s in %s",
			errPermanent, order.ErrPaymentMismatch, p.ID, p.OrderID, p.Currency, v.ID, v.Currency)
	}
	var err error
	if v.Status == order.StatusReserved {
		if v, err = m.orders.RequestPayment(ctx, v.ID, p.ID, meta); err != nil {
			return v, fmt.Errorf("record payment %s: %w", p.ID, err)
		}
	}
	if p.Status != payment.StatusSucceeded && p.Status != payment.StatusFailed {
		return v, nil
	}
	amount := p.Amount
	if amount == 0 { // a provider that does not say: the order's, which the key asked for
		amount = money.Amount(v.Total)
	}
	webhookID := ReconcileWebhookID(p.ID, p.Status)
	v, err = m.orders.RecordPayment(ctx, v.ID, order.PaymentOutcome{
		WebhookID: webhookID, PaymentID: p.ID, Succeeded: p.Status == payment.StatusSucceeded, Amount: amount,
	}, eventstore.Metadata{CorrelationID: meta.CorrelationID, CausationID: webhookID, Actor: events.ActorProvider,
		Traceparent: meta.Traceparent, Tracestate: meta.Tracestate})
	if errors.Is(err, order.ErrPaymentMismatch) {
		err = fmt.Errorf("%w: %w", errPermanent, err)
	}
	if err != nil {
		return v, fmt.Errorf("record outcome %s of payment %s: %w", p.Status, p.ID, err)
	}
	return v, nil
}

// timeOutPayment cancels an order whose payment did not complete in time,
// after reconciling with the provider (see above), and returns its stock.
func (m *Manager) timeOutPayment(ctx context.Context, t task, meta eventstore.Metadata) error {
	v, err := m.orders.Order(ctx, t.OrderID)
	if err != nil {
		return fmt.Errorf("read order: %w", err)
	}
	if v.Status != order.StatusReserved && v.Status != order.StatusPaymentPending {
		return nil // paid, failed or canceled meanwhile
	}
	providerStatus := "none"
	p, err := m.provider.PaymentByOrder(ctx, v.ID)
	switch {
	case errors.Is(err, payment.ErrNotFound):
	case err != nil && t.Attempts < len(m.opts.Backoff):
		// Kept as text: a refusal of the lookup must not park the timeout.
		return fmt.Errorf("%w: the timeout waits: %v", errUnreconciled, err)
	case err != nil:
		providerStatus = "unknown"
		m.log.WarnContext(ctx, "payment timeout: the provider still cannot say how the payment stands; canceling, a success reported later is refunded",
			"error", err)
	default:
		providerStatus = p.Status
		if v, err = m.adopt(ctx, v, p, meta); err != nil {
			return fmt.Errorf("reconcile before the timeout: %w", err)
		}
		if p.Status == payment.StatusSucceeded || p.Status == payment.StatusFailed {
			m.log.InfoContext(ctx, "payment timeout: the provider had decided the payment; recorded",
				"payment_id", p.ID, "provider_status", p.Status, "status", v.Status)
			return nil
		}
		if p.Status == payment.StatusPending {
			// The same payment (same key and business request); a provider
			// that honours the newest callback URL now reports to this
			// instance, alive, rather than to one that may be gone.
			if _, err := m.provider.InitiatePayment(ctx, m.request(v), v.ID.String()); err != nil {
				m.log.WarnContext(ctx, "payment timeout: could not send the pending payment's request again",
					"payment_id", p.ID, "error", err)
			}
		}
	}
	if v, err = m.orders.TimeOutPayment(ctx, t.OrderID, meta); err == nil && v.CancelReason == events.CancelPaymentTimeout {
		m.log.InfoContext(ctx, "payment timed out; order canceled", "provider_status", providerStatus)
	}
	return err
}

// errStillPending: the provider has not decided a payment yet; the step
// asks again after its next backoff delay.
var errStillPending = errors.New("the provider has not decided the payment yet")

// reconcileAfterCancel asks the provider, a while after the payment
// timeout canceled the order, how its payment stands, and records a
// success as its webhook would: the order asks for a refund, and the
// refund step returns the money. This closes the window in which a
// payment succeeds after the cancel and its webhook reaches no live
// instance (a callback URL of an instance that died). A payment still
// pending is asked about again after each backoff delay, and after the
// last one for as long as it is pending (a failing lookup parks the step
// after the last delay, as other provider calls do); one that failed, was refunded, or does not exist needs
// nothing.
func (m *Manager) reconcileAfterCancel(ctx context.Context, t task, meta eventstore.Metadata) error {
	v, err := m.orders.Order(ctx, t.OrderID)
	if err != nil {
		return fmt.Errorf("read order: %w", err)
	}
	if v.Status != order.StatusCanceled || v.RefundRequested {
		return nil // not canceled by the timeout after all, or its success is known
	}
	p, err := m.provider.PaymentByOrder(ctx, v.ID)
	switch {
	case errors.Is(err, payment.ErrNotFound):
		return nil
	case err != nil:
		// Kept as text: a refused lookup must not park at once.
		return fmt.Errorf("%w: %v", errUnreconciled, err)
	case p.Status == payment.StatusPending:
		return fmt.Errorf("%w: payment %s of canceled order %s", errStillPending, p.ID, v.ID)
	case p.Status != payment.StatusSucceeded:
		return nil
	}
	if v, err = m.adopt(ctx, v, p, meta); err != nil {
		return fmt.Errorf("record the success of payment %s after the cancel: %w", p.ID, err)
	}
	m.log.WarnContext(ctx, "a payment succeeded after its order was canceled by timeout, and no webhook said so; refund requested",
		"payment_id", p.ID, "refund_requested", v.RefundRequested)
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
	m.log.InfoContext(ctx, "payment refunded", "payment_id", v.PaymentID, "refund_id", r.ID)
	return nil
}
