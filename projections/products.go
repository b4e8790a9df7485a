package projections

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
)

// Products projects product streams into read_products.
type Products struct{}

var _ Projector = Products{}

// Name implements Projector.
func (Products) Name() string { return "products" }

// Filter implements Projector.
func (Products) Filter() eventstore.Filter {
	return eventstore.Filter{StreamPrefixes: []string{events.ProductStreamPrefix}}
}

// Apply implements Projector: one statement per event, sent to the server
// in one round trip.
func (Products) Apply(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
	b := &pgx.Batch{}
	for _, r := range evs {
		id, ok := streamUUID(r.StreamID, events.ProductStreamPrefix)
		if !ok {
			continue
		}
		e, err := events.Decode(r.Type, r.Data)
		if err != nil {
			return fmt.Errorf("%s@%d: %w", r.StreamID, r.Version, err)
		}
		version := r.Version + 1
		switch e := e.(type) {
		case events.ProductCreated:
			b.Queue(`INSERT INTO read_products (id, name, description, price, stock, reserved, is_active, created_at, updated_at, version)
			         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $7, $8)`,
				id, e.Name, e.Description, int64(e.Price), e.Stock, e.IsActive, r.RecordedAt, version)
		case events.ProductDetailsChanged:
			var price *int64
			if e.Price != nil {
				p := int64(*e.Price)
				price = &p
			}
			b.Queue(`UPDATE read_products SET name = coalesce($2, name), description = coalesce($3, description),
			         price = coalesce($4, price), is_active = coalesce($5, is_active), updated_at = $6, version = $7 WHERE id = $1`,
				id, e.Name, e.Description, price, e.IsActive, r.RecordedAt, version)
		case events.ProductStockAdjusted:
			b.Queue(`UPDATE read_products SET stock = $2, updated_at = $3, version = $4 WHERE id = $1`, id, e.Available, r.RecordedAt, version)
		case events.ProductStockReserved:
			b.Queue(`UPDATE read_products SET stock = stock - $2, reserved = reserved + $2, updated_at = $3, version = $4 WHERE id = $1`,
				id, e.Quantity, r.RecordedAt, version)
		case events.ProductReservationReleased:
			b.Queue(`UPDATE read_products SET stock = stock + $2, reserved = reserved - $2, updated_at = $3, version = $4 WHERE id = $1`,
				id, e.Quantity, r.RecordedAt, version)
		case events.ProductReservationCommitted:
			b.Queue(`UPDATE read_products SET reserved = reserved - $2, updated_at = $3, version = $4 WHERE id = $1`,
				id, e.Quantity, r.RecordedAt, version)
		}
	}
	return tx.SendBatch(ctx, b).Close()
}

// streamUUID parses the id out of a stream name with the given prefix.
func streamUUID(stream, prefix string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(stream, prefix)
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(rest)
	return id, err == nil
}
