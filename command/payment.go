package command

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/logging"
)

// The payment saga's commands. Each records a decision on the order stream
// (the commit point) or makes the products follow one; each is idempotent,
// so the process manager may run any of them again after a crash.

// Order returns the order as its stream has it; an unknown one is
// order.ErrNotFound.
func (s *Service) Order(ctx context.Context, id uuid.UUID) (OrderView, error) {
	st, err := s.loadOrder(ctx, id)
	if err != nil {
		return OrderView{}, err
	}
	if st.Status == order.StatusNew {
		return OrderView{}, fmt.Errorf("%w: %s", order.ErrNotFound, id)
	}
	return orderView(st, eventstore.Position{}), nil
}

// RequestPayment records that payment paymentID was initiated for the
// order. An order that moved on meanwhile (paid by an early webhook,
// canceled) is returned unchanged.
func (s *Service) RequestPayment(ctx context.Context, id uuid.UUID, paymentID string, meta eventstore.Metadata) (OrderView, error) {
	st, pos, err := s.decideOrder(ctx, id, nil, meta, "", func(o *order.State) ([]events.Event, error) {
		return o.RequestPayment(paymentID)
	})
	if err != nil {
		return OrderView{}, err
	}
	return orderView(st, pos), nil
}

// RecordPayment records what the payment provider reported (see
// order.State.RecordPayment). The events' ids are derived from the
// provider's message id, so a message is recorded at most once even when
// deliveries race each other or arrive after a restart. Stock follows
// asynchronously: CommitStock and ReleaseStock.
func (s *Service) RecordPayment(ctx context.Context, id uuid.UUID, outcome order.PaymentOutcome, meta eventstore.Metadata) (OrderView, error) {
	// The outcome continues the order's story: it carries the correlation
	// id of the request that placed the order (the provider's message is
	// its causation), so everything the order caused is found by one id.
	o, err := s.cachedOrder(ctx, id)
	if err != nil {
		return OrderView{}, err
	}
	if o.correlation != "" {
		meta.CorrelationID = o.correlation
		// The caller's log lines (a webhook's request) continue the
		// order's story too.
		logging.Add(ctx, "correlation_id", o.correlation)
	}
	seed := ""
	if outcome.WebhookID != "" {
		seed = WebhookSeed(id, outcome.WebhookID)
	}
	st, pos, err := s.decideOrder(ctx, id, &o, meta, seed, func(o *order.State) ([]events.Event, error) {
		return o.RecordPayment(outcome)
	})
	if errors.Is(err, eventstore.ErrDuplicateEventID) {
		// This very message was recorded already.
		return s.Order(ctx, id)
	}
	if err != nil {
		return OrderView{}, err
	}
	return orderView(st, pos), nil
}

// TimeOutPayment cancels an order whose payment did not complete in time
// and returns its stock; an order that completed meanwhile is returned
// unchanged.
func (s *Service) TimeOutPayment(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) (OrderView, error) {
	st, pos, err := s.decideOrder(ctx, id, nil, meta, "", func(o *order.State) ([]events.Event, error) {
		return o.TimeOutPayment()
	})
	if err != nil {
		return OrderView{}, err
	}
	if st.Status == order.StatusCanceled {
		released, err := s.releaseAll(ctx, st, meta, releaseReason(st))
		if err != nil {
			return OrderView{}, err
		}
		pos = eventstore.MaxPosition(pos, released)
	}
	return orderView(st, pos), nil
}

// RecordRefund records that the provider refunded the order's payment.
func (s *Service) RecordRefund(ctx context.Context, id uuid.UUID, refundID string, meta eventstore.Metadata) (OrderView, error) {
	st, pos, err := s.decideOrder(ctx, id, nil, meta, "", func(o *order.State) ([]events.Event, error) {
		return o.RecordRefund(refundID)
	})
	if err != nil {
		return OrderView{}, err
	}
	return orderView(st, pos), nil
}

// CommitStock sells a paid order's reservations; for an order that is not
// paid it does nothing. A reservation is committed at most once, and a
// stray one (made after the placement was decided) never: run again after
// the sale, CommitStock finds nothing to sell.
func (s *Service) CommitStock(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) error {
	// A cached order that is paid is paid for good, and where its placement
	// was decided never changes; anything else is read again.
	o, ok := s.orders.get(id)
	if !ok || o.st.Status != order.StatusPaid || o.decided == eventstore.Start {
		var err error
		if o, err = s.readOrder(ctx, id); err != nil {
			return err
		}
	}
	st, decided := o.st, o.decided
	if st.Status != order.StatusPaid {
		return nil
	}
	for _, it := range st.Items {
		_, _, err := s.stock.Do(ctx, it.ProductID, meta, func(p *product.State) ([]events.Event, error) {
			return p.Commit(st.ID, decided), nil
		})
		if err != nil {
			return fmt.Errorf("commit order %s on product %s: %w", st.ID, it.ProductID, err)
		}
	}
	return nil
}

// ReleaseStock returns a canceled or rejected order's reservations to
// stock (the compensation of a failed payment, a customer's cancel, a
// rejected placement), with the reason the order closed; for any other
// order it does nothing. A reservation is released at most once: what a
// command already released synchronously is not released again.
func (s *Service) ReleaseStock(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) error {
	// A cached order that is closed stays closed, with the same items and
	// reason; anything else is read again.
	o, ok := s.orders.get(id)
	if !ok || !closedUnpaid(o.st.Status) {
		var err error
		if o, err = s.readOrder(ctx, id); err != nil {
			return err
		}
	}
	st := o.st
	if !closedUnpaid(st.Status) {
		return nil
	}
	_, err := s.releaseAll(ctx, st, meta, releaseReason(st))
	return err
}

// CompletePlacement finishes a placement that was interrupted (its process
// died after order.placed), exactly as PlaceOrder would have: every item
// reserved and the order reserved, or the order rejected and what it held
// released with reason placement_abandoned. An order already decided is
// returned as it is (its stock follows its outcome through ReleaseStock).
// A rejected completion is not an error here: the view says rejected.
func (s *Service) CompletePlacement(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) (OrderView, error) {
	o, err := s.readOrder(ctx, id)
	if err != nil {
		return OrderView{}, err
	}
	st := o.st
	switch st.Status {
	case order.StatusNew:
		return OrderView{}, fmt.Errorf("%w: %s", order.ErrNotFound, id)
	case order.StatusCreated:
	default:
		return orderView(st, eventstore.Position{}), nil
	}
	v, err := s.completeFrom(ctx, o, meta, events.ReleasePlacementAbandoned)
	var rejected *RejectedError
	if errors.As(err, &rejected) {
		return rejected.Order, nil
	}
	return v, err
}

// ReleaseReservation settles the reservation that product holds for an
// order that the process manager saw reserved after the order's placement
// was decided. The product tells where the reservation stands
// (product.State.Stray): one made after the decision (a completer that lost
// the race) is released with reason reservation_after_close, whatever the
// order's status; one that is the placement's own is left to the order's
// own steps, unless the order is rejected or canceled, when it is released
// with the order's reason. An order still being placed is left alone.
func (s *Service) ReleaseReservation(ctx context.Context, orderID, productID uuid.UUID, meta eventstore.Metadata) error {
	o, err := s.readOrder(ctx, orderID)
	if err != nil {
		return err
	}
	st, decided := o.st, o.decided
	if st.Status == order.StatusCreated {
		return nil
	}
	_, _, err = s.stock.Do(ctx, productID, meta, func(p *product.State) ([]events.Event, error) {
		switch {
		case p.Stray(orderID, decided), st.Status == order.StatusNew: // no order: nothing will ever settle it
			return p.Release(orderID, events.ReleaseReservationAfterClose), nil
		case closedUnpaid(st.Status):
			return p.Release(orderID, releaseReason(st)), nil
		}
		return nil, nil
	})
	if err != nil && !errors.Is(err, product.ErrNotFound) {
		return fmt.Errorf("release order %s on product %s: %w", orderID, productID, err)
	}
	return nil
}
