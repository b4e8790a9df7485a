// Package orderstock is the order_stock read model, in one place: an index
// of the stock events of every order (read_order_stock_events, see
// migrations), the projector that fills it from the product streams, and
// the query that the audit trail (query.OrderHistory) finds an order's
// stock events with.
package orderstock

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query"
)

// Table is the live order_stock index.
const Table = "read_order_stock_events"

// Name is the projection's name: its checkpoint, and what ordersctl calls it.
const Name = "order_stock"

// Projector indexes the stock events of orders: for every
// product.stock_reserved, reservation_released and reservation_committed
// event, one row (order_id, position_commit, position_prepare, stream_id,
// stream_version) in Table (unless Table says otherwise, as a
// rebuild's shadow table does). The event itself stays in the event store;
// the audit trail of an order reads its rows and then exactly those events,
// so its cost follows the order's own events, not its products' histories.
//
// An event the projector cannot read (an unknown type, a payload that does
// not decode, a stock event without an order) fails the batch, like the other projectors:
// the runner retries it and then stops the projection as failed, and the
// event is never skipped.
type Projector struct {
	Table string
}

var _ projections.Rebuildable = Projector{}

// Name implements projections.Projector.
func (Projector) Name() string { return Name }

// Filter implements projections.Projector: every event of the product streams, not only
// the stock types it indexes, so that an event type it does not know (a new
// version of a stock event, say) stops it instead of going unindexed.
func (Projector) Filter() eventstore.Filter {
	return eventstore.Filter{StreamPrefixes: []string{events.ProductStreamPrefix}}
}

func (s Projector) table() string {
	if s.Table == "" {
		return Table
	}
	return s.Table
}

// WithTable implements projections.Rebuildable.
func (s Projector) WithTable(table string) projections.Projector { return Projector{Table: table} }

// Tables implements projections.Rebuildable.
func (s Projector) Tables() []string { return []string{s.table()} }

// Apply implements projections.Projector: one INSERT for the whole batch. A row that is
// already there (the same event indexed twice) is left as it is.
func (s Projector) Apply(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
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

// Reader reads the index.
type Reader struct {
	pool *pgxpool.Pool
}

var _ query.StockIndex = (*Reader)(nil)

// NewReader returns a Reader over the read-model database.
func NewReader(pool *pgxpool.Pool) *Reader { return &Reader{pool: pool} }

// OrderStockEvents implements query.StockIndex.
// The rows and the checkpoint are read by one statement, so from one
// snapshot: Through is exactly how far Refs go.
func (r *Reader) OrderStockEvents(ctx context.Context, id uuid.UUID) (query.StockEvents, error) {
	rows, _ := r.pool.Query(ctx, `SELECT COALESCE(c.position_commit, 0), COALESCE(c.position_prepare, 0),
	        s.stream_id, s.stream_version, s.position_commit, s.position_prepare
	   FROM (VALUES (1)) AS one (x)
	   LEFT JOIN projection_checkpoints c ON c.name = $2
	   LEFT JOIN `+Table+` s ON s.order_id = $1
	  ORDER BY s.position_commit, s.position_prepare`, id, Name)
	var out query.StockEvents
	for rows.Next() {
		var (
			throughCommit, throughPrepare int64
			stream                        *string
			version, commit, prepare      *int64
		)
		if err := rows.Scan(&throughCommit, &throughPrepare, &stream, &version, &commit, &prepare); err != nil {
			rows.Close()
			return query.StockEvents{}, fmt.Errorf("order_stock index of order %s: %w", id, err)
		}
		out.Through = eventstore.Position{Commit: uint64(throughCommit), Prepare: uint64(throughPrepare)}
		if stream != nil { // the left join's one row when the order has none
			out.Refs = append(out.Refs, query.EventRef{Stream: *stream, Version: *version,
				Position: eventstore.Position{Commit: uint64(*commit), Prepare: uint64(*prepare)}})
		}
	}
	if err := rows.Err(); err != nil {
		return query.StockEvents{}, fmt.Errorf("order_stock index of order %s: %w", id, err)
	}
	return out, nil
}
