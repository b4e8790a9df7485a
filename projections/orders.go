package projections

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
)

// Orders projects order streams into read_orders.
//
// A rejected order (its stock could not be reserved) is shown as canceled
// with the rejection's reason, since the contract's statuses end in paid or
// canceled.
type Orders struct{}

var _ Projector = Orders{}

// Name implements Projector.
func (Orders) Name() string { return "orders" }

// Filter implements Projector.
func (Orders) Filter() eventstore.Filter {
	return eventstore.Filter{StreamPrefixes: []string{events.OrderStreamPrefix}}
}

// orderItem is an item as stored in read_orders.items.
type orderItem struct {
	ProductID string `json:"product_id"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
	LineTotal int64  `json:"line_total"`
}

// Apply implements Projector.
func (Orders) Apply(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
	b := &pgx.Batch{}
	for _, r := range evs {
		id, ok := streamUUID(r.StreamID, events.OrderStreamPrefix)
		if !ok {
			continue
		}
		e, err := events.Decode(r.Type, r.Data)
		if err != nil {
			return fmt.Errorf("%s@%d: %w", r.StreamID, r.Version, err)
		}
		version := r.Version + 1
		set := func(sql string, args ...any) {
			b.Queue(`UPDATE read_orders SET `+sql+`, updated_at = $2, version = $3 WHERE id = $1`,
				append([]any{id, r.RecordedAt, version}, args...)...)
		}
		switch e := e.(type) {
		case events.OrderPlaced:
			items := make([]orderItem, len(e.Items))
			for i, it := range e.Items {
				items[i] = orderItem{ProductID: it.ProductID.String(), Quantity: it.Quantity, UnitPrice: int64(it.UnitPrice), LineTotal: int64(it.LineTotal)}
			}
			itemsJSON, err := json.Marshal(items)
			if err != nil {
				return err
			}
			b.Queue(`INSERT INTO read_orders (id, user_email, status, items, total_amount, currency, created_at, updated_at, version)
			         VALUES ($1, $2, 'created', $3, $4, $5, $6, $6, $7)`,
				id, e.UserEmail, itemsJSON, int64(e.Total), e.Currency, r.RecordedAt, version)
		case events.OrderReserved:
			set(`status = 'reserved'`)
		case events.OrderRejected:
			set(`status = 'canceled', cancel_reason = $4`, e.Reason)
		case events.OrderPaymentRequested:
			set(`status = 'payment_pending', payment_id = $4`, e.PaymentID)
		case events.OrderPaid:
			set(`status = 'paid', payment_id = $4`, e.PaymentID)
		case events.OrderPaymentFailed:
			set(`payment_id = $4`, e.PaymentID)
		case events.OrderCanceled:
			set(`status = 'canceled', cancel_reason = $4`, e.Reason)
		}
	}
	return tx.SendBatch(ctx, b).Close()
}
