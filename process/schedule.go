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

// scheduler turns order events into steps. It is a projection whose read
// model is the work list: the steps and the checkpoint commit together.
type scheduler struct{ m *Manager }

var _ projections.Projector = scheduler{}

func (scheduler) Name() string { return Name }

func (scheduler) Filter() eventstore.Filter {
	return eventstore.Filter{
		StreamPrefixes: []string{events.OrderStreamPrefix},
		EventTypes:     []string{events.TypeOrderReserved, events.TypeOrderPaid, events.TypeOrderCanceled, events.TypeOrderRefundRequested},
	}
}

// Apply schedules the steps the events call for. Steps are unique per kind
// and order, so an order's step is scheduled once however often its event
// is seen; an order that ended drops the steps that only an open order
// needs (within a batch, stream order puts the end after the reservation).
func (s scheduler) Apply(ctx context.Context, tx pgx.Tx, recorded []eventstore.RecordedEvent) error {
	var (
		ids, orders                 []uuid.UUID
		kinds, correlations, causes []string
		due                         []time.Time
		ended                       []uuid.UUID
	)
	add := func(kind string, order uuid.UUID, at time.Time, r eventstore.RecordedEvent) {
		id, err := uuid.NewV7()
		if err != nil {
			id = uuid.New()
		}
		ids, kinds, orders, due = append(ids, id), append(kinds, kind), append(orders, order), append(due, at)
		correlations, causes = append(correlations, r.Metadata.CorrelationID), append(causes, r.ID.String())
	}
	now := s.m.opts.Now()
	for _, r := range recorded {
		order, ok := events.StreamID(r.StreamID, events.OrderStreamPrefix)
		if !ok {
			continue
		}
		switch r.Type {
		case events.TypeOrderReserved:
			add(KindInitiatePayment, order, now, r)
			// From when the saga starts, on the one clock of due times: a
			// scheduler that comes back from an outage gives every order
			// its full time to pay rather than canceling it on the spot.
			add(KindPaymentTimeout, order, now.Add(s.m.opts.PaymentTimeout), r)
		case events.TypeOrderPaid:
			add(KindCommitStock, order, now, r)
			ended = append(ended, order)
		case events.TypeOrderCanceled:
			add(KindReleaseStock, order, now, r)
			ended = append(ended, order)
		case events.TypeOrderRefundRequested:
			add(KindRefund, order, now, r)
		}
	}
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, `
			INSERT INTO process_tasks (id, kind, order_id, due_at, correlation_id, causation_id)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::timestamptz[], $5::text[], $6::text[])
			ON CONFLICT (kind, order_id) DO NOTHING`, ids, kinds, orders, due, correlations, causes); err != nil {
			return fmt.Errorf("schedule steps: %w", err)
		}
	}
	if len(ended) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM process_tasks WHERE order_id = ANY($1) AND kind IN ($2, $3)`,
			ended, KindInitiatePayment, KindPaymentTimeout); err != nil {
			return fmt.Errorf("drop steps of ended orders: %w", err)
		}
	}
	return nil
}
