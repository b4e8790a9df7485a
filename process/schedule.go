package process

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/projections"
)

// scheduler turns events into steps. It is a projection whose read model is
// the work list: the steps and the checkpoint commit together, so every
// event's reaction is scheduled exactly once and never skipped.
type scheduler struct{ m *Manager }

var _ projections.Projector = scheduler{}

func (scheduler) Name() string { return Name }

func (scheduler) Filter() eventstore.Filter {
	return eventstore.Filter{
		StreamPrefixes: []string{events.OrderStreamPrefix, events.ProductStreamPrefix},
		EventTypes: []string{
			events.TypeOrderPlaced, events.TypeOrderReserved, events.TypeOrderRejected,
			events.TypeOrderPaid, events.TypeOrderCanceled, events.TypeOrderRefundRequested,
			events.TypeProductStockReserved,
		},
	}
}

// noProduct is the product id of steps that concern a whole order.
var noProduct = uuid.Nil

// plan is what one batch of events adds to and removes from the work list.
type plan struct {
	ids, orders, products       []uuid.UUID
	kinds, correlations, causes []string
	due                         []time.Time
	scheduled                   map[stepKey]bool

	ended   []uuid.UUID // orders that ended: drop their payment steps
	decided []uuid.UUID // placements decided: untrack them, drop their completion
	// placed are the order.placed events of this batch; open tells, at the
	// current point of the batch, whether an order's placement is open.
	placed map[uuid.UUID]eventstore.RecordedEvent
	open   map[uuid.UUID]bool
}

type stepKey struct {
	kind           string
	order, product uuid.UUID
}

func (p *plan) add(kind string, order, product uuid.UUID, at time.Time, cause eventstore.RecordedEvent) {
	key := stepKey{kind, order, product}
	if p.scheduled[key] {
		return // once per batch: the statement may touch each row only once
	}
	p.scheduled[key] = true
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}
	p.ids, p.kinds, p.orders, p.products, p.due = append(p.ids, id), append(p.kinds, kind), append(p.orders, order), append(p.products, product), append(p.due, at)
	p.correlations, p.causes = append(p.correlations, cause.Metadata.CorrelationID), append(p.causes, cause.ID.String())
}

// close marks order's placement decided.
func (p *plan) close(order uuid.UUID) {
	if _, placedHere := p.placed[order]; !placedHere {
		p.decided = append(p.decided, order)
	}
	p.open[order] = false
}

// Apply schedules the steps the events call for:
//
//	order.placed                  → complete_placement (placed + PlacementGrace), dropped when the placement is decided
//	order.reserved                → initiate_payment (now), payment_timeout (now + PaymentTimeout)
//	order.rejected                → release_stock
//	order.paid                    → commit_stock; initiate_payment and payment_timeout dropped
//	order.canceled                → release_stock; likewise
//	order.refund_requested        → refund
//	product.stock_reserved for an order whose placement was already
//	decided (a completer that lost the race)
//	                              → release_reservation of that product
//
// Steps are unique per kind, order and product, so a step is scheduled once
// however often its event is seen. A reservation is legitimate only while
// its order's placement is open: every party that completes a placement
// reserves before it records the outcome, so in the global order a
// placement's own reservations come before its outcome, and whatever comes
// after it is stray.
func (s scheduler) Apply(ctx context.Context, tx pgx.Tx, recorded []eventstore.RecordedEvent) error {
	p := plan{scheduled: map[stepKey]bool{}, placed: map[uuid.UUID]eventstore.RecordedEvent{}, open: map[uuid.UUID]bool{}}
	// Which orders with reservations in this batch were open before it.
	var reservedOrders []uuid.UUID
	for _, r := range recorded {
		if r.Type == events.TypeProductStockReserved {
			e, err := decodeReservation(r)
			if err != nil {
				return err
			}
			reservedOrders = append(reservedOrders, e.OrderID)
		}
	}
	if len(reservedOrders) > 0 {
		rows, err := tx.Query(ctx, `SELECT order_id FROM process_open_placements WHERE order_id = ANY($1)`, reservedOrders)
		if err != nil {
			return fmt.Errorf("read open placements: %w", err)
		}
		open, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return fmt.Errorf("read open placements: %w", err)
		}
		for _, id := range open {
			p.open[id] = true
		}
	}

	now := s.m.opts.Now()
	for _, r := range recorded {
		if r.Type == events.TypeProductStockReserved {
			productID, ok := events.StreamID(r.StreamID, events.ProductStreamPrefix)
			if !ok {
				continue
			}
			e, err := decodeReservation(r)
			if err != nil {
				return err
			}
			if !p.open[e.OrderID] {
				p.add(KindReleaseReservation, e.OrderID, productID, now, r)
			}
			continue
		}
		order, ok := events.StreamID(r.StreamID, events.OrderStreamPrefix)
		if !ok {
			continue
		}
		switch r.Type {
		case events.TypeOrderPlaced:
			p.open[order] = true
			p.placed[order] = r
		case events.TypeOrderReserved:
			p.close(order)
			p.add(KindInitiatePayment, order, noProduct, now, r)
			// From when the saga starts, on the one clock of due times: a
			// scheduler that comes back from an outage gives every order
			// its full time to pay rather than canceling it on the spot.
			p.add(KindPaymentTimeout, order, noProduct, now.Add(s.m.opts.PaymentTimeout), r)
		case events.TypeOrderRejected:
			p.close(order)
			p.add(KindReleaseStock, order, noProduct, now, r)
		case events.TypeOrderPaid:
			p.add(KindCommitStock, order, noProduct, now, r)
			p.ended = append(p.ended, order)
		case events.TypeOrderCanceled:
			p.close(order) // a customer may cancel while the order is being placed
			p.add(KindReleaseStock, order, noProduct, now, r)
			p.ended = append(p.ended, order)
		case events.TypeOrderRefundRequested:
			p.add(KindRefund, order, noProduct, now, r)
		}
	}
	// Placements opened and decided within the batch never reach the
	// table; those still open get their completion step.
	var openIDs []uuid.UUID
	var openAt []time.Time
	for id, r := range p.placed {
		if p.open[id] {
			openIDs, openAt = append(openIDs, id), append(openAt, r.RecordedAt)
			p.add(KindCompletePlacement, id, noProduct, now.Add(s.m.opts.PlacementGrace), r)
		}
	}
	return p.write(ctx, tx, openIDs, openAt)
}

func (p *plan) write(ctx context.Context, tx pgx.Tx, openIDs []uuid.UUID, openAt []time.Time) error {
	if len(openIDs) > 0 {
		if _, err := tx.Exec(ctx, `
			INSERT INTO process_open_placements (order_id, placed_at)
			SELECT * FROM unnest($1::uuid[], $2::timestamptz[]) ON CONFLICT DO NOTHING`, openIDs, openAt); err != nil {
			return fmt.Errorf("track open placements: %w", err)
		}
	}
	if len(p.decided) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM process_open_placements WHERE order_id = ANY($1)`, p.decided); err != nil {
			return fmt.Errorf("untrack decided placements: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM process_tasks WHERE order_id = ANY($1) AND kind = $2`,
			p.decided, KindCompletePlacement); err != nil {
			return fmt.Errorf("drop completions of decided placements: %w", err)
		}
	}
	if len(p.ids) > 0 {
		// A step scheduled again while it runs (a second stray reservation
		// of one order and product) runs once more rather than being lost.
		if _, err := tx.Exec(ctx, `
			INSERT INTO process_tasks (id, kind, order_id, product_id, due_at, correlation_id, causation_id)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::timestamptz[], $6::text[], $7::text[])
			ON CONFLICT (kind, order_id, product_id) DO UPDATE SET rerun = process_tasks.lease_id IS NOT NULL`,
			p.ids, p.kinds, p.orders, p.products, p.due, p.correlations, p.causes); err != nil {
			return fmt.Errorf("schedule steps: %w", err)
		}
	}
	if len(p.ended) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM process_tasks WHERE order_id = ANY($1) AND kind IN ($2, $3)`,
			p.ended, KindInitiatePayment, KindPaymentTimeout); err != nil {
			return fmt.Errorf("drop steps of ended orders: %w", err)
		}
	}
	return nil
}

func decodeReservation(r eventstore.RecordedEvent) (events.ProductStockReserved, error) {
	e, err := events.Decode(r.Type, r.Data)
	if err != nil {
		return events.ProductStockReserved{}, fmt.Errorf("%s@%d: %w", r.StreamID, r.Version, err)
	}
	return e.(events.ProductStockReserved), nil
}
