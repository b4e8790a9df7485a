package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
)

// ProductsTable is the live products read model.
const ProductsTable = "read_products"

// Products projects product streams into a products table (ProductsTable
// unless Table says otherwise, as a rebuild's shadow table does).
//
// A batch is folded in memory: the rows it touches are read once, every
// event is applied to them in Go, and they are written back with one
// statement, however many events the batch holds.
type Products struct {
	Table string
}

var _ Projector = Products{}

// Name implements Projector.
func (Products) Name() string { return "products" }

// Filter implements Projector.
func (Products) Filter() eventstore.Filter {
	return eventstore.Filter{StreamPrefixes: []string{events.ProductStreamPrefix}}
}

func (p Products) table() string {
	if p.Table == "" {
		return ProductsTable
	}
	return p.Table
}

// WithTable implements Rebuildable.
func (p Products) WithTable(table string) Projector { return Products{Table: table} }

// Tables implements Rebuildable.
func (p Products) Tables() []string { return []string{p.table()} }

type productRow struct {
	id                     uuid.UUID
	name, description      string
	price, stock, reserved int64
	active                 bool
	createdAt, updatedAt   time.Time
	version                int64
}

// Apply implements Projector.
func (p Products) Apply(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
	table := pgx.Identifier{p.table()}.Sanitize()
	ids := touched(evs, events.ProductStreamPrefix)
	if len(ids) == 0 {
		return nil
	}
	rows := map[uuid.UUID]*productRow{}
	existing, err := tx.Query(ctx, `SELECT id, name, description, price, stock, reserved, is_active, created_at, updated_at, version
	     FROM `+table+` WHERE id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	for existing.Next() {
		r := &productRow{}
		if err := existing.Scan(&r.id, &r.name, &r.description, &r.price, &r.stock, &r.reserved, &r.active, &r.createdAt, &r.updatedAt, &r.version); err != nil {
			existing.Close()
			return err
		}
		rows[r.id] = r
	}
	if err := existing.Err(); err != nil {
		return err
	}

	for _, rec := range evs {
		id, ok := events.StreamID(rec.StreamID, events.ProductStreamPrefix)
		if !ok {
			continue
		}
		e, err := events.Decode(rec.Type, rec.Data)
		if err != nil {
			return fmt.Errorf("%s@%d: %w", rec.StreamID, rec.Version, err)
		}
		r := rows[id]
		if created, ok := e.(events.ProductCreated); ok {
			r = &productRow{id: id, name: created.Name, description: created.Description, price: int64(created.Price),
				stock: created.Stock, active: created.IsActive, createdAt: rec.RecordedAt}
			rows[id] = r
		}
		if r == nil {
			return fmt.Errorf("%s@%d: %s for a product the read model does not have", rec.StreamID, rec.Version, rec.Type)
		}
		switch e := e.(type) {
		case events.ProductDetailsChanged:
			if e.Name != nil {
				r.name = *e.Name
			}
			if e.Description != nil {
				r.description = *e.Description
			}
			if e.Price != nil {
				r.price = int64(*e.Price)
			}
			if e.IsActive != nil {
				r.active = *e.IsActive
			}
		case events.ProductStockAdjusted:
			r.stock = e.Available
		case events.ProductStockReserved:
			r.stock, r.reserved = r.stock-e.Quantity, r.reserved+e.Quantity
		case events.ProductReservationReleased:
			r.stock, r.reserved = r.stock+e.Quantity, r.reserved-e.Quantity
		case events.ProductReservationCommitted:
			r.reserved -= e.Quantity
		}
		r.updatedAt, r.version = rec.RecordedAt, rec.Version+1
	}

	n := len(rows)
	var (
		rid                 = make([]uuid.UUID, 0, n)
		name, desc          = make([]string, 0, n), make([]string, 0, n)
		price, stock, resvd = make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
		active              = make([]bool, 0, n)
		created, updated    = make([]time.Time, 0, n), make([]time.Time, 0, n)
		version             = make([]int64, 0, n)
	)
	for _, r := range rows {
		rid, name, desc = append(rid, r.id), append(name, r.name), append(desc, r.description)
		price, stock, resvd = append(price, r.price), append(stock, r.stock), append(resvd, r.reserved)
		active, created, updated, version = append(active, r.active), append(created, r.createdAt), append(updated, r.updatedAt), append(version, r.version)
	}
	_, err = tx.Exec(ctx, `INSERT INTO `+table+` AS t (id, name, description, price, stock, reserved, is_active, created_at, updated_at, version)
	     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::boolean[], $8::timestamptz[], $9::timestamptz[], $10::bigint[])
	     ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description, price = excluded.price,
	        stock = excluded.stock, reserved = excluded.reserved, is_active = excluded.is_active,
	        updated_at = excluded.updated_at, version = excluded.version`,
		rid, name, desc, price, stock, resvd, active, created, updated, version)
	return err
}

// touched returns the distinct ids of the streams with prefix in evs.
func touched(evs []eventstore.RecordedEvent, prefix string) []uuid.UUID {
	seen := map[uuid.UUID]bool{}
	var out []uuid.UUID
	for _, r := range evs {
		if id, ok := events.StreamID(r.StreamID, prefix); ok && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
