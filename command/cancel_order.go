package command

import (
	"context"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
)

// CancelOrder cancels an order that is not paid yet and returns its stock,
// exactly once however often it is called. Canceling a canceled order, or
// a rejected placement (which clients see as canceled), returns it
// unchanged; a paid one is order.ErrIllegalTransition, an unknown one
// order.ErrNotFound.
func (s *Service) CancelOrder(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) (OrderView, error) {
	st, pos, err := s.decideOrder(ctx, id, nil, meta, "", func(o *order.State) ([]events.Event, error) {
		return o.Cancel(events.CancelCustomer)
	})
	if err != nil {
		return OrderView{}, err
	}
	// The stock goes back at once, so the answer's position covers the
	// releases too and a read that waits for it sees the stock back (the
	// process manager's release_stock step then finds nothing left).
	released, err := s.releaseAll(ctx, st, meta, releaseReason(st))
	if err != nil {
		return OrderView{}, err
	}
	return orderView(st, eventstore.MaxPosition(pos, released)), nil
}
