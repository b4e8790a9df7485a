package projections

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
)

// OrderStockTable is the live order_stock index.
const OrderStockTable = "read_order_stock_events"

// OrderStock indexes the stock events of orders: for every
// product.stock_reserved, reservation_released and reservation_committed
// event, one row (order_id, position_commit, position_prepare, stream_id,
// stream_version) in OrderStockTable (unless Table says otherwise, as a
// rebuild's shadow table does). The event itself stays in the event store;
// the audit trail of an order reads its rows and then exactly those events,
// so its cost follows the order's own events, not its products' histories.
//
// An event the projector cannot read (an unknown type, a payload that does
// not decode, a stock event without an order) fails the batch, like the other projectors:
// the runner retries it and then stops the projection as failed, and the
// event is never skipped.
type OrderStock struct {
	Table string
}

var _ Rebuildable = OrderStock{}

// Name implements Projector.
func (OrderStock) Name() string { return "order_stock" }

// Filter implements Projector: every event of the product streams, not only
// the stock types it indexes, so that an event type it does not know (a new
// version of a stock event, say) stops it instead of going unindexed.
func (OrderStock) Filter() eventstore.Filter {
	return eventstore.Filter{StreamPrefixes: []string{events.ProductStreamPrefix}}
}

func (s OrderStock) table() string {
	if s.Table == "" {
		return OrderStockTable
	}
	return s.Table
}

// WithTable implements Rebuildable.
func (s OrderStock) WithTable(table string) Projector { return OrderStock{Table: table} }

// Tables implements Rebuildable.
func (s OrderStock) Tables() []string { return []string{s.table()} }

// Apply implements Projector: one INSERT for the whole batch. A row that is
// already there (the same event indexed twice) is left as it is.
func (s OrderStock) Apply(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
	n := len(evs)
	var (
		orderIDs         = make([]uuid.UUID, 0, n)
		commits, prepare = make([]int64, 0, n), make([]int64, 0, n)
		streams          = make([]string, 0, n)
		versions         = make([]int64, 0, n)
	)
	for _, rec := range evs {
		if _, ok := events.StreamID(rec.StreamID, events.ProductStreamPrefix); !ok {
			continue
		}
		id, ok, err := stockOrder(rec)
		if err != nil {
			return fmt.Errorf("%s@%d: %w", rec.StreamID, rec.Version, err)
		}
		if !ok {
			continue // a product event that concerns no order
		}
		orderIDs, streams, versions = append(orderIDs, id), append(streams, rec.StreamID), append(versions, rec.Version)
		commits, prepare = append(commits, int64(rec.Position.Commit)), append(prepare, int64(rec.Position.Prepare))
	}
	if len(orderIDs) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+pgx.Identifier{s.table()}.Sanitize()+` (order_id, position_commit, position_prepare, stream_id, stream_version)
	     SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[])
	     ON CONFLICT (order_id, position_commit, position_prepare) DO NOTHING`,
		orderIDs, commits, prepare, streams, versions)
	if err != nil {
		return fmt.Errorf("index stock events: %w", err)
	}
	return nil
}

// stockOrder returns the order a stock event belongs to; ok is false for a
// product event that belongs to none.
func stockOrder(rec eventstore.RecordedEvent) (id uuid.UUID, ok bool, err error) {
	e, err := events.Decode(rec.Type, rec.Data)
	if err != nil {
		return uuid.Nil, false, err
	}
	switch e := e.(type) {
	case events.ProductStockReserved:
		id = e.OrderID
	case events.ProductReservationReleased:
		id = e.OrderID
	case events.ProductReservationCommitted:
		id = e.OrderID
	default:
		return uuid.Nil, false, nil
	}
	if id == uuid.Nil {
		return uuid.Nil, false, fmt.Errorf("%s without an order_id", rec.Type)
	}
	return id, true, nil
}
