// Package query reads the PostgreSQL read models that package projections
// maintains. It never reads the event store, except for an order's audit
// history.
package query

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/money"
)

// Errors callers branch on.
var (
	ErrNotFound      = errors.New("not found")
	ErrInvalidCursor = errors.New("invalid cursor")
)

// Product is a product as the read model has it.
type Product struct {
	ID          uuid.UUID    `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Price       money.Amount `json:"price"`
	Stock       int64        `json:"stock"`
	Reserved    int64        `json:"reserved"`
	IsActive    bool         `json:"is_active"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
	Version     int64        `json:"version"`
}

// OrderItem is one line of an order.
type OrderItem struct {
	ProductID string       `json:"product_id"`
	Quantity  int64        `json:"quantity"`
	UnitPrice money.Amount `json:"unit_price"`
	LineTotal money.Amount `json:"line_total"`
}

// Order is an order as the read model has it.
type Order struct {
	ID           uuid.UUID    `json:"id"`
	UserEmail    string       `json:"user_email"`
	Status       string       `json:"status"`
	Items        []OrderItem  `json:"items"`
	TotalAmount  money.Amount `json:"total_amount"`
	Currency     string       `json:"currency"`
	PaymentID    *string      `json:"payment_id"`
	CancelReason *string      `json:"cancel_reason"`
	CreatedAt    time.Time    `json:"created_at"`
	UpdatedAt    time.Time    `json:"updated_at"`
	Version      int64        `json:"version"`
}

// Page is one page of a list and the cursor of the next ("" at the end).
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// Reader reads the read models.
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

// Product returns one product.
func (r *Reader) Product(ctx context.Context, id uuid.UUID) (Product, error) {
	rows, _ := r.pool.Query(ctx, `SELECT `+productColumns+` FROM read_products WHERE id = $1`, id)
	p, err := pgx.CollectExactlyOneRow(rows, scanProduct)
	if errors.Is(err, pgx.ErrNoRows) {
		return Product{}, fmt.Errorf("product %s: %w", id, ErrNotFound)
	}
	return p, err
}

// Products lists products in a stable order (by id), optionally only active
// or inactive ones, limit at a time.
func (r *Reader) Products(ctx context.Context, active *bool, limit int, cursor string) (Page[Product], error) {
	after := uuid.Nil
	if cursor != "" {
		var c struct {
			ID uuid.UUID `json:"id"`
		}
		if err := decodeCursor(cursor, &c); err != nil {
			return Page[Product]{}, err
		}
		after = c.ID
	}
	rows, _ := r.pool.Query(ctx, `SELECT `+productColumns+` FROM read_products
	     WHERE ($1::boolean IS NULL OR is_active = $1) AND id > $2
	     ORDER BY id LIMIT $3`, active, after, limit+1)
	items, err := pgx.CollectRows(rows, scanProduct)
	if err != nil {
		return Page[Product]{}, fmt.Errorf("list products: %w", err)
	}
	page := Page[Product]{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		page.NextCursor = encodeCursor(struct {
			ID uuid.UUID `json:"id"`
		}{items[limit-1].ID})
	}
	return page, nil
}

const orderColumns = `id, user_email, status, items, total_amount, currency, payment_id, cancel_reason, created_at, updated_at, version`

func scanOrder(row pgx.CollectableRow) (Order, error) {
	var (
		o     Order
		items []byte
		total int64
	)
	if err := row.Scan(&o.ID, &o.UserEmail, &o.Status, &items, &total, &o.Currency, &o.PaymentID, &o.CancelReason, &o.CreatedAt, &o.UpdatedAt, &o.Version); err != nil {
		return o, err
	}
	o.TotalAmount = money.Amount(total)
	var stored []struct {
		ProductID string `json:"product_id"`
		Quantity  int64  `json:"quantity"`
		UnitPrice int64  `json:"unit_price"`
		LineTotal int64  `json:"line_total"`
	}
	if err := json.Unmarshal(items, &stored); err != nil {
		return o, fmt.Errorf("order %s items: %w", o.ID, err)
	}
	o.Items = make([]OrderItem, len(stored))
	for i, it := range stored {
		o.Items[i] = OrderItem{ProductID: it.ProductID, Quantity: it.Quantity, UnitPrice: money.Amount(it.UnitPrice), LineTotal: money.Amount(it.LineTotal)}
	}
	return o, nil
}

// Order returns one order.
func (r *Reader) Order(ctx context.Context, id uuid.UUID) (Order, error) {
	rows, _ := r.pool.Query(ctx, `SELECT `+orderColumns+` FROM read_orders WHERE id = $1`, id)
	o, err := pgx.CollectExactlyOneRow(rows, scanOrder)
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, fmt.Errorf("order %s: %w", id, ErrNotFound)
	}
	return o, err
}

type orderCursor struct {
	CreatedAt time.Time `json:"t"`
	ID        uuid.UUID `json:"id"`
}

// Orders lists orders newest first, optionally for one email and/or status.
func (r *Reader) Orders(ctx context.Context, email, status string, limit int, cursor string) (Page[Order], error) {
	var (
		c   orderCursor
		has bool
	)
	if cursor != "" {
		if err := decodeCursor(cursor, &c); err != nil {
			return Page[Order]{}, err
		}
		has = true
	}
	rows, _ := r.pool.Query(ctx, `SELECT `+orderColumns+` FROM read_orders
	     WHERE ($1 = '' OR user_email = $1) AND ($2 = '' OR status = $2)
	       AND (NOT $3 OR (created_at, id) < ($4, $5))
	     ORDER BY created_at DESC, id DESC LIMIT $6`, email, status, has, c.CreatedAt, c.ID, limit+1)
	items, err := pgx.CollectRows(rows, scanOrder)
	if err != nil {
		return Page[Order]{}, fmt.Errorf("list orders: %w", err)
	}
	page := Page[Order]{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		last := items[limit-1]
		page.NextCursor = encodeCursor(orderCursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	return page, nil
}

func encodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, v) != nil {
		return ErrInvalidCursor
	}
	return nil
}
