package process

import (
	"context"
	"fmt"
	"slices"
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
	traceparents, tracestates   []string // the causes' trace contexts
	lanes                       []int16
	due                         []time.Time
	scheduled                   map[stepKey]bool

	ended []uuid.UUID // orders that ended: drop their payment steps
	// placements tells, at the current point of the batch, what is known of
	// the placements of the orders the batch touches (loaded from
	// process_open_placements, then followed event by event).
	placements map[uuid.UUID]*placement
}

// placement is the scheduler's view of one order's placement.
type placement struct {
	tracked  bool // the scheduler saw it placed (in the table or this batch)
	inTable  bool // it has a row in process_open_placements
	open     bool // placed and not decided yet
	held     bool // a reservation was made for it while open
	heldNew  bool // held became true in this batch
	placedAt time.Time
	placed   eventstore.RecordedEvent // its order.placed, if in this batch
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
	p.traceparents, p.tracestates = append(p.traceparents, cause.Metadata.Traceparent), append(p.tracestates, cause.Metadata.Tracestate)
	p.lanes = append(p.lanes, laneOf(kind))
}

func (p *plan) placement(order uuid.UUID) *placement {
	pl := p.placements[order]
	if pl == nil {
		pl = &placement{}
		p.placements[order] = pl
	}
	return pl
}

// Apply schedules the steps the events call for:
//
//	order.placed                  → complete_placement (now + PlacementGrace), dropped when the placement is decided
//	order.reserved                → initiate_payment (now), payment_timeout (now + PaymentTimeout)
//	order.rejected                → release_stock, if the placement reserved anything (or the scheduler cannot tell)
//	order.paid                    → commit_stock; initiate_payment and payment_timeout dropped
//	order.canceled                → release_stock; likewise
//	order.refund_requested        → refund
//	order.canceled by the payment timeout
//	                              → reconcile_payment (now + ReconcileAfter)
//	product.stock_reserved for an order whose placement was already
//	decided (a completer that lost the race)
//	                              → release_reservation of that product
//
// Steps are unique per kind, order and product, so a step is scheduled once
// however often its event is seen. A reservation is legitimate only while
// its order's placement is open: every party that completes a placement
// reserves before it records the outcome, so in the global order a
// placement's own reservations come before its outcome, and whatever comes
// after it is stray. The same order lets a rejection that reserved nothing
// (the common refusal of a sold-out product) cost no step at all.
func (s scheduler) Apply(ctx context.Context, tx pgx.Tx, recorded []eventstore.RecordedEvent) error {
	p := plan{scheduled: map[stepKey]bool{}, placements: map[uuid.UUID]*placement{}}
	if err := p.load(ctx, tx, recorded); err != nil {
		return err
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
			pl := p.placement(e.OrderID)
			switch {
			case !pl.open:
				p.add(KindReleaseReservation, e.OrderID, productID, now, r)
			case !pl.held:
				pl.held, pl.heldNew = true, true
			}
			continue
		}
		order, ok := events.StreamID(r.StreamID, events.OrderStreamPrefix)
		if !ok {
			continue
		}
		pl := p.placement(order)
		switch r.Type {
		case events.TypeOrderPlaced:
			pl.tracked, pl.open, pl.placedAt, pl.placed = true, true, r.RecordedAt, r
		case events.TypeOrderReserved:
			pl.open = false
			p.add(KindInitiatePayment, order, noProduct, now, r)
			// From when the saga starts, on the one clock of due times: a
			// scheduler that comes back from an outage gives every order
			// its full time to pay rather than canceling it on the spot.
			p.add(KindPaymentTimeout, order, noProduct, now.Add(s.m.opts.PaymentTimeout), r)
		case events.TypeOrderRejected:
			if pl.held || !pl.tracked {
				p.add(KindReleaseStock, order, noProduct, now, r)
			}
			pl.open = false
		case events.TypeOrderPaid:
			p.add(KindCommitStock, order, noProduct, now, r)
			p.ended = append(p.ended, order)
		case events.TypeOrderCanceled:
			pl.open = false // a customer may cancel while the order is being placed
			p.add(KindReleaseStock, order, noProduct, now, r)
			p.ended = append(p.ended, order)
			e, err := events.Decode(r.Type, r.Data)
			if err != nil {
				return fmt.Errorf("%s@%d: %w", r.StreamID, r.Version, err)
			}
			if e.(events.OrderCanceled).Reason == events.CancelPaymentTimeout {
				// Its payment may still succeed, and its webhook may go
				// where no instance listens: ask the provider later.
				p.add(KindReconcilePayment, order, noProduct, now.Add(s.m.opts.ReconcileAfter), r)
			}
		case events.TypeOrderRefundRequested:
			p.add(KindRefund, order, noProduct, now, r)
		}
	}
	for id, pl := range p.placements {
		if pl.open && !pl.inTable {
			p.add(KindCompletePlacement, id, noProduct, now.Add(s.m.opts.PlacementGrace), pl.placed)
		}
	}
	if err := p.write(ctx, tx); err != nil {
		return err
	}
	if slices.ContainsFunc(p.due, func(at time.Time) bool { return !at.After(now) }) {
		s.m.dueNow.Store(true) // the worker is woken once this commits
	}
	return nil
}

// load reads the tracked placements of the orders that the batch touches.
func (p *plan) load(ctx context.Context, tx pgx.Tx, recorded []eventstore.RecordedEvent) error {
	var ids []uuid.UUID
	for _, r := range recorded {
		switch r.Type {
		case events.TypeProductStockReserved:
			e, err := decodeReservation(r)
			if err != nil {
				return err
			}
			ids = append(ids, e.OrderID)
		case events.TypeOrderReserved, events.TypeOrderRejected, events.TypeOrderCanceled:
			if id, ok := events.StreamID(r.StreamID, events.OrderStreamPrefix); ok {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT order_id, reserved FROM process_open_placements WHERE order_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("read open placements: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var held bool
		if err := rows.Scan(&id, &held); err != nil {
			return fmt.Errorf("read open placements: %w", err)
		}
		p.placements[id] = &placement{tracked: true, inTable: true, open: true, held: held}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read open placements: %w", err)
	}
	return nil
}

func (p *plan) write(ctx context.Context, tx pgx.Tx) error {
	var (
		openIDs, heldIDs, decidedIDs []uuid.UUID
		openAt                       []time.Time
		openHeld                     []bool
	)
	for id, pl := range p.placements {
		switch {
		case pl.open && !pl.inTable:
			openIDs, openAt, openHeld = append(openIDs, id), append(openAt, pl.placedAt), append(openHeld, pl.held)
		case pl.open && pl.heldNew:
			heldIDs = append(heldIDs, id)
		case !pl.open && pl.inTable:
			decidedIDs = append(decidedIDs, id)
		}
	}
	if len(openIDs) > 0 {
		if _, err := tx.Exec(ctx, `
			INSERT INTO process_open_placements (order_id, placed_at, reserved)
			SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::boolean[]) ON CONFLICT DO NOTHING`, openIDs, openAt, openHeld); err != nil {
			return fmt.Errorf("track open placements: %w", err)
		}
	}
	if len(heldIDs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE process_open_placements SET reserved = true WHERE order_id = ANY($1)`, heldIDs); err != nil {
			return fmt.Errorf("track reservations of open placements: %w", err)
		}
	}
	if len(decidedIDs) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM process_open_placements WHERE order_id = ANY($1)`, decidedIDs); err != nil {
			return fmt.Errorf("untrack decided placements: %w", err)
		}
		if _, err := tx.Exec(ctx, dropStepsSQL, decidedIDs, []string{KindCompletePlacement}); err != nil {
			return fmt.Errorf("drop completions of decided placements: %w", err)
		}
	}
	if len(p.ids) > 0 {
		// A step scheduled again while it runs (a second stray reservation
		// of one order and product) runs once more rather than being lost.
		if _, err := tx.Exec(ctx, scheduleStepsSQL,
			p.ids, p.kinds, p.orders, p.products, p.due, p.correlations, p.causes, p.lanes, p.traceparents, p.tracestates); err != nil {
			return fmt.Errorf("schedule steps: %w", err)
		}
	}
	if len(p.ended) > 0 {
		// A step that runs now is left to finish (its run deletes it): its
		// lease keeps the order's next step from running alongside it.
		if _, err := tx.Exec(ctx, dropStepsSQL, p.ended, []string{KindInitiatePayment, KindPaymentTimeout}); err != nil {
			return fmt.Errorf("drop steps of ended orders: %w", err)
		}
	}
	return nil
}

// The scheduler's statements on the work list. Each names the orders of
// the batch, so the unique key (order_id, kind, product_id) serves it
// whatever else the list holds (TestWorkListStatementsDoNotScan).
const (
	// scheduleStepsSQL inserts steps $1… (arrays of one length); a step
	// already scheduled for the same order, kind and product is kept, and
	// runs once more if it is running now.
	scheduleStepsSQL = `
		INSERT INTO process_tasks (id, kind, order_id, product_id, due_at, correlation_id, causation_id, lane, traceparent, tracestate)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::timestamptz[], $6::text[], $7::text[], $8::smallint[], $9::text[], $10::text[])
		ON CONFLICT (order_id, kind, product_id) DO UPDATE SET rerun = process_tasks.lease_id IS NOT NULL`
	// dropStepsSQL deletes the steps of kinds $2 of orders $1 that no one
	// runs now.
	dropStepsSQL = `
		DELETE FROM process_tasks WHERE order_id = ANY($1::uuid[]) AND kind = ANY($2::text[])
		   AND (lease_until IS NULL OR lease_until < now())`
)

func decodeReservation(r eventstore.RecordedEvent) (events.ProductStockReserved, error) {
	e, err := events.Decode(r.Type, r.Data)
	if err != nil {
		return events.ProductStockReserved{}, fmt.Errorf("%s@%d: %w", r.StreamID, r.Version, err)
	}
	return e.(events.ProductStockReserved), nil
}
