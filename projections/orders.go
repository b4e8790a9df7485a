package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
)

// OrdersTable is the live orders read model.
const OrdersTable = "read_orders"

// Orders projects order streams into an orders table (OrdersTable unless
// Table says otherwise). Batches are folded like Products'.
//
// A rejected order (its stock could not be reserved) is shown as canceled
// with the rejection's reason, since the contract's statuses end in paid or
// canceled.
type Orders struct {
	Table string
}

var _ Projector = Orders{}

// Name implements Projector.
func (Orders) Name() string { return "orders" }

// Filter implements Projector.
func (Orders) Filter() eventstore.Filter {
	return eventstore.Filter{StreamPrefixes: []string{events.OrderStreamPrefix}}
}

func (o Orders) table() string {
	if o.Table == "" {
		return OrdersTable
	}
	return o.Table
}

// WithTable implements Rebuildable.
func (o Orders) WithTable(table string) Projector { return Orders{Table: table} }

// Tables implements Rebuildable.
func (o Orders) Tables() []string { return []string{o.table()} }

// orderItem is an item as stored in the items column.
type orderItem struct {
	ProductID string `json:"product_id"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
	LineTotal int64  `json:"line_total"`
}

type orderRow struct {
	id                      uuid.UUID
	email, status, currency string
	items                   []byte
	total                   int64
	paymentID, cancelReason *string
	createdAt, updatedAt    time.Time
	version                 int64
}

// Apply implements Projector.
func (o Orders) Apply(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
	table := pgx.Identifier{o.table()}.Sanitize()
	ids := touched(evs, events.OrderStreamPrefix)
	if len(ids) == 0 {
		return nil
	}
	rows := map[uuid.UUID]*orderRow{}
	existing, err := tx.Query(ctx, `SELECT id, user_email, status, items, total_amount, currency, payment_id, cancel_reason, created_at, updated_at, version
	     FROM `+table+` WHERE id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	for existing.Next() {
		r := &orderRow{}
		if err := existing.Scan(&r.id, &r.email, &r.status, &r.items, &r.total, &r.currency, &r.paymentID, &r.cancelReason, &r.createdAt, &r.updatedAt, &r.version); err != nil {
			existing.Close()
			return err
		}
		rows[r.id] = r
	}
	if err := existing.Err(); err != nil {
		return err
	}

	for _, rec := range evs {
		id, ok := events.StreamID(rec.StreamID, events.OrderStreamPrefix)
		if !ok {
			continue
		}
		e, err := events.Decode(rec.Type, rec.Data)
		if err != nil {
			return fmt.Errorf("%s@%d: %w", rec.StreamID, rec.Version, err)
		}
		r := rows[id]
		if placed, ok := e.(events.OrderPlaced); ok {
			items := make([]orderItem, len(placed.Items))
			for i, it := range placed.Items {
				items[i] = orderItem{ProductID: it.ProductID.String(), Quantity: it.Quantity, UnitPrice: int64(it.UnitPrice), LineTotal: int64(it.LineTotal)}
			}
			raw, err := json.Marshal(items)
			if err != nil {
				return err
			}
			r = &orderRow{id: id, email: placed.UserEmail, status: "created", items: raw, total: int64(placed.Total),
				currency: placed.Currency, createdAt: rec.RecordedAt}
			rows[id] = r
		}
		if r == nil {
			return fmt.Errorf("%s@%d: %s for an order the read model does not have", rec.StreamID, rec.Version, rec.Type)
		}
		switch e := e.(type) {
		case events.OrderReserved:
			r.status = "reserved"
		case events.OrderRejected:
			r.status, r.cancelReason = "canceled", &e.Reason
		case events.OrderPaymentRequested:
			r.status, r.paymentID = "payment_pending", &e.PaymentID
		case events.OrderPaid:
			r.status, r.paymentID = "paid", &e.PaymentID
		case events.OrderPaymentFailed:
			r.paymentID = &e.PaymentID
		case events.OrderCanceled:
			r.status, r.cancelReason = "canceled", &e.Reason
		}
		r.updatedAt, r.version = rec.RecordedAt, rec.Version+1
	}

	n := len(rows)
	var (
		rid                     = make([]uuid.UUID, 0, n)
		email, status, currency = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		items                   = make([]string, 0, n)
		total, version          = make([]int64, 0, n), make([]int64, 0, n)
		paymentID, cancelReason = make([]*string, 0, n), make([]*string, 0, n)
		created, updated        = make([]time.Time, 0, n), make([]time.Time, 0, n)
	)
	for _, r := range rows {
		rid, email, status, currency = append(rid, r.id), append(email, r.email), append(status, r.status), append(currency, r.currency)
		items, total, version = append(items, string(r.items)), append(total, r.total), append(version, r.version)
		paymentID, cancelReason = append(paymentID, r.paymentID), append(cancelReason, r.cancelReason)
		created, updated = append(created, r.createdAt), append(updated, r.updatedAt)
	}
	_, err = tx.Exec(ctx, `INSERT INTO `+table+` AS t (id, user_email, status, items, total_amount, currency, payment_id, cancel_reason, created_at, updated_at, version)
	     SELECT u.id, u.email, u.status, u.items::jsonb, u.total, u.currency, u.payment_id, u.cancel_reason, u.created_at, u.updated_at, u.version
	       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::bigint[])
	            AS u(id, email, status, items, total, currency, payment_id, cancel_reason, created_at, updated_at, version)
	     ON CONFLICT (id) DO UPDATE SET status = excluded.status, payment_id = excluded.payment_id,
	        cancel_reason = excluded.cancel_reason, updated_at = excluded.updated_at, version = excluded.version`,
		rid, email, status, items, total, currency, paymentID, cancelReason, created, updated, version)
	return err
}
