// Package products is the products read model, in one place: the table it
// fills (read_products, see migrations), the projector that fills it from
// the product streams, and the queries that read it (the Eventuous layout:
// a projection next to the document it fills).
package products

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query"
)

// Product is a product as the read model has it.
type Product struct {
	ID          uuid.UUID
	Name        string
	Description string
	Price       money.Amount
	Stock       int64
	Reserved    int64
	IsActive    bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64
}

// Table is the live products read model.
const Table = "read_products"

// Name is the projection's name: its checkpoint, and what ordersctl calls it.
const Name = "products"

// Projector projects product streams into a products table (Table unless
// Table says otherwise, as a rebuild's shadow table does).
//
// A batch is folded in memory: the rows it touches are read once, every
// event is applied to them in Go, and they are written back with one
// statement, however many events the batch holds.
type Projector struct {
	Table string
}

var _ projections.Rebuildable = Projector{}

// Name implements projections.Projector.
func (Projector) Name() string { return Name }

// Filter implements projections.Projector.
func (Projector) Filter() eventstore.Filter {
	return eventstore.Filter{StreamPrefixes: []string{events.ProductStreamPrefix}}
}

func (p Projector) table() string {
	if p.Table == "" {
		return Table
	}
	return p.Table
}

// WithTable implements projections.Rebuildable.
func (p Projector) WithTable(table string) projections.Projector { return Projector{Table: table} }

// Tables implements projections.Rebuildable.
func (p Projector) Tables() []string { return []string{p.table()} }

type productRow struct {
	id                     uuid.UUID
	name, description      string
	price, stock, reserved int64
	active                 bool
	createdAt, updatedAt   time.Time
	version                int64
}

// Apply implements projections.Projector.
func (p Projector) Apply(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
	table := pgx.Identifier{p.table()}.Sanitize()
	ids := projections.StreamIDs(evs, events.ProductStreamPrefix)
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
			r = &productRow{id: id, name: projections.StorableText(ctx, rec, "name", created.Name),
				description: projections.StorableText(ctx, rec, "description", created.Description), price: int64(created.Price),
				stock: created.Stock, active: created.IsActive, createdAt: rec.RecordedAt}
			rows[id] = r
		}
		if r == nil {
			return fmt.Errorf("%s@%d: %s for a product the read model does not have", rec.StreamID, rec.Version, rec.Type)
		}
		switch e := e.(type) {
		case events.ProductDetailsChanged:
			if e.Name != nil {
				r.name = projections.StorableText(ctx, rec, "name", *e.Name)
			}
			if e.Description != nil {
				r.description = projections.StorableText(ctx, rec, "description", *e.Description)
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

// Reader reads the products read model.
type Reader struct {
	pool *pgxpool.Pool
}

// NewReader returns a Reader over the read-model database.
func NewReader(pool *pgxpool.Pool) *Reader { return &Reader{pool: pool} }

const productColumns = `id, name, description, price, stock, reserved, is_active, created_at, updated_at, version`

func scanProduct(row pgx.CollectableRow) (Product, error) {
	var p Product
	var price int64
	err := row.Scan(&p.ID, &p.Name, &p.Description, &price, &p.Stock, &p.Reserved, &p.IsActive, &p.CreatedAt, &p.UpdatedAt, &p.Version)
	p.Price = money.Amount(price)
	return p, err
}

// Get returns one product; an unknown one is query.query.ErrNotFound.
func (r *Reader) Get(ctx context.Context, id uuid.UUID) (Product, error) {
	rows, _ := r.pool.Query(ctx, `SELECT `+productColumns+` FROM `+Table+` WHERE id = $1`, id)
	p, err := pgx.CollectExactlyOneRow(rows, scanProduct)
	if errors.Is(err, pgx.ErrNoRows) {
		return Product{}, &query.NotFoundError{Kind: query.KindProduct, ID: id}
	}
	return p, err
}

// List lists products in a stable order (by id), optionally only active
// or inactive ones, limit at a time.
func (r *Reader) List(ctx context.Context, active *bool, limit int, cursor string) (query.Page[Product], error) {
	after := uuid.Nil
	if cursor != "" {
		var c struct {
			ID uuid.UUID `json:"id"`
		}
		if err := query.DecodeCursor(cursor, &c); err != nil {
			return query.Page[Product]{}, err
		}
		after = c.ID
	}
	rows, _ := r.pool.Query(ctx, `SELECT `+productColumns+` FROM `+Table+`
	     WHERE ($1::boolean IS NULL OR is_active = $1) AND id > $2
	     ORDER BY id LIMIT $3`, active, after, limit+1)
	items, err := pgx.CollectRows(rows, scanProduct)
	if err != nil {
		return query.Page[Product]{}, fmt.Errorf("list products: %w", err)
	}
	page := query.Page[Product]{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		page.NextCursor = query.EncodeCursor(struct {
			ID uuid.UUID `json:"id"`
		}{items[limit-1].ID})
	}
	return page, nil
}
