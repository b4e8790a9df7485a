// Package orders is the orders read model, in one place: the table it
// fills (read_orders, see migrations), its statuses, the projector that
// fills it from the order streams, and the queries that read it.
package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/net/idna"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query"
)

// OrderItem is one line of an order.
type OrderItem struct {
	ProductID string
	Quantity  int64
	UnitPrice money.Amount
	LineTotal money.Amount
}

// Order is an order as the read model has it.
type Order struct {
	ID           uuid.UUID
	UserEmail    string
	Status       string
	Items        []OrderItem
	TotalAmount  money.Amount
	Currency     string
	PaymentID    *string
	CancelReason *string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Version      int64
}

// Table is the live orders read model.
const Table = "read_orders"

// Name is the projection's name: its checkpoint, and what ordersctl calls it.
const Name = "orders"

// Statuses an order shows (the contract's; a rejected placement shows as
// canceled with the rejection's reason).
const (
	StatusCreated        = "created"
	StatusReserved       = "reserved"
	StatusPaymentPending = "payment_pending"
	StatusPaid           = "paid"
	StatusCanceled       = "canceled"
)

// Projector projects order streams into an orders table (Table unless
// Table says otherwise). A batch is folded in memory: the rows it touches
// are read once, every event is applied to them in Go, and they are
// written back with one statement.
//
// A rejected order (its stock could not be reserved) is shown as canceled
// with the rejection's reason, since the contract's statuses end in paid or
// canceled.
//
// Beside the address as the order's placement has it (user_email), a row
// keeps its canonical form as this version computes it (email_canonical,
// EmailKey), which the admin filter matches: every row the projector
// writes gets it, a row written before migration 00010 included, so a
// rebuild gives every order the form of the version that runs it.
type Projector struct {
	Table string
}

var _ projections.Rebuildable = Projector{}

// Name implements projections.Projector.
func (Projector) Name() string { return Name }

// Filter implements projections.Projector.
func (Projector) Filter() eventstore.Filter {
	return eventstore.Filter{StreamPrefixes: []string{events.OrderStreamPrefix}}
}

func (o Projector) table() string {
	if o.Table == "" {
		return Table
	}
	return o.Table
}

// WithTable implements projections.Rebuildable.
func (o Projector) WithTable(table string) projections.Projector { return Projector{Table: table} }

// Tables implements projections.Rebuildable.
func (o Projector) Tables() []string { return []string{o.table()} }

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
	// emailKey is the row's email_canonical: read with it, or computed
	// (EmailKey, which is not cheap) when the row is new or an earlier
	// version left it empty.
	emailKey *string
}

// Apply implements projections.Projector.
func (o Projector) Apply(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
	table := pgx.Identifier{o.table()}.Sanitize()
	ids := projections.StreamIDs(evs, events.OrderStreamPrefix)
	if len(ids) == 0 {
		return nil
	}
	rows := map[uuid.UUID]*orderRow{}
	existing, err := tx.Query(ctx, `SELECT id, user_email, status, items, total_amount, currency, payment_id, cancel_reason, created_at, updated_at, version, email_canonical
	     FROM `+table+` WHERE id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	for existing.Next() {
		r := &orderRow{}
		if err := existing.Scan(&r.id, &r.email, &r.status, &r.items, &r.total, &r.currency, &r.paymentID, &r.cancelReason, &r.createdAt, &r.updatedAt, &r.version, &r.emailKey); err != nil {
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
			r = &orderRow{id: id, email: projections.StorableText(ctx, rec, "user_email", placed.UserEmail), status: StatusCreated,
				items: raw, total: int64(placed.Total), currency: projections.StorableText(ctx, rec, "currency", placed.Currency),
				createdAt: rec.RecordedAt}
			rows[id] = r
		}
		if r == nil {
			return fmt.Errorf("%s@%d: %s for an order the read model does not have", rec.StreamID, rec.Version, rec.Type)
		}
		// Text from the event, as a column can hold it.
		text := func(field, s string) *string {
			s = projections.StorableText(ctx, rec, field, s)
			return &s
		}
		switch e := e.(type) {
		case events.OrderReserved:
			r.status = StatusReserved
		case events.OrderRejected:
			r.status, r.cancelReason = StatusCanceled, text("cancel_reason", e.Reason)
		case events.OrderPaymentRequested:
			r.status, r.paymentID = StatusPaymentPending, text("payment_id", e.PaymentID)
		case events.OrderPaid:
			r.status, r.paymentID = StatusPaid, text("payment_id", e.PaymentID)
		case events.OrderPaymentFailed:
			r.paymentID = text("payment_id", e.PaymentID)
		case events.OrderRefundRequested:
			// A payment that succeeded after the order was canceled (maybe
			// before its request was even recorded): the order has it.
			r.paymentID = text("payment_id", e.PaymentID)
		case events.OrderCanceled:
			r.status, r.cancelReason = StatusCanceled, text("cancel_reason", e.Reason)
		}
		r.updatedAt, r.version = rec.RecordedAt, rec.Version+1
	}

	n := len(rows)
	var (
		rid                     = make([]uuid.UUID, 0, n)
		email, status, currency = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		emailKey                = make([]string, 0, n)
		items                   = make([]string, 0, n)
		total, version          = make([]int64, 0, n), make([]int64, 0, n)
		paymentID, cancelReason = make([]*string, 0, n), make([]*string, 0, n)
		created, updated        = make([]time.Time, 0, n), make([]time.Time, 0, n)
	)
	for _, r := range rows {
		rid, email, status, currency = append(rid, r.id), append(email, r.email), append(status, r.status), append(currency, r.currency)
		if r.emailKey == nil {
			k := EmailKey(r.email)
			r.emailKey = &k
		}
		emailKey = append(emailKey, *r.emailKey)
		items, total, version = append(items, string(r.items)), append(total, r.total), append(version, r.version)
		paymentID, cancelReason = append(paymentID, r.paymentID), append(cancelReason, r.cancelReason)
		created, updated = append(created, r.createdAt), append(updated, r.updatedAt)
	}
	_, err = tx.Exec(ctx, `INSERT INTO `+table+` AS t (id, user_email, email_canonical, status, items, total_amount, currency, payment_id, cancel_reason, created_at, updated_at, version)
	     SELECT u.id, u.email, u.email_key, u.status, u.items::jsonb, u.total, u.currency, u.payment_id, u.cancel_reason, u.created_at, u.updated_at, u.version
	       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::bigint[], $12::text[])
	            AS u(id, email, status, items, total, currency, payment_id, cancel_reason, created_at, updated_at, version, email_key)
	     ON CONFLICT (id) DO UPDATE SET status = excluded.status, payment_id = excluded.payment_id,
	        cancel_reason = excluded.cancel_reason, updated_at = excluded.updated_at, version = excluded.version,
	        email_canonical = excluded.email_canonical`,
		rid, email, status, items, total, currency, paymentID, cancelReason, created, updated, version, emailKey)
	return err
}

// EmailKey is the form of an address the admin filter matches: its
// canonical form (order.CanonicalEmail), or, for an address without one
// (a filter that is no address, or one stored by an earlier version that
// this one refuses), the address trimmed and lower-cased
// (order.NormalizeEmail). Computed when an event is projected, and for the
// filter when it is read.
func EmailKey(email string) string { return order.NormalizeEmail(email) }

// storedForms are the forms in which versions before email_canonical may
// have stored an address that the filter email (whose EmailKey is key)
// names, for the rows they wrote that have no email_canonical yet: the
// filter trimmed and lower-cased, as they stored what a customer typed,
// and the key with its domain in Unicode (user@bücher.example for
// user@xn--bcher-kva.example), as most customers type such a domain.
func storedForms(email, key string) []string {
	forms := []string{strings.ToLower(strings.TrimSpace(email)), key}
	if local, domain, ok := strings.Cut(key, "@"); ok {
		if u, err := idna.Lookup.ToUnicode(domain); err == nil {
			forms = append(forms, local+"@"+u)
		}
	}
	return forms
}

// Reader reads the orders read model.
type Reader struct {
	pool *pgxpool.Pool
}

// NewReader returns a Reader over the read-model database.
func NewReader(pool *pgxpool.Pool) *Reader { return &Reader{pool: pool} }

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

// Get returns one order; an unknown one is query.query.ErrNotFound.
func (r *Reader) Get(ctx context.Context, id uuid.UUID) (Order, error) {
	rows, _ := r.pool.Query(ctx, `SELECT `+orderColumns+` FROM `+Table+` WHERE id = $1`, id)
	o, err := pgx.CollectExactlyOneRow(rows, scanOrder)
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, &query.NotFoundError{Kind: query.KindOrder, ID: id}
	}
	return o, err
}

type orderCursor struct {
	CreatedAt time.Time `json:"t"`
	ID        uuid.UUID `json:"id"`
}

// Valid reports whether the cursor holds a key as List writes it: a time
// as PostgreSQL stores one (UTC, whole microseconds, a year it can hold).
func (c *orderCursor) Valid() bool {
	return c.CreatedAt.Location() == time.UTC && c.CreatedAt.Nanosecond()%1000 == 0 && c.CreatedAt.Year() >= 1
}

// List lists orders newest first, optionally for one email and/or status.
// The email matches every order whose address has the same EmailKey: any
// spelling of one customer's address finds all of their orders. Orders
// projected before migration 00010 that have no key yet (not rebuilt
// since, nor touched by a later event) are found by the forms they were
// stored in (storedForms).
func (r *Reader) List(ctx context.Context, email, status string, limit int, cursor string) (query.Page[Order], error) {
	var after *orderCursor
	if cursor != "" {
		after = new(orderCursor)
		if err := query.DecodeCursor(cursor, after); err != nil {
			return query.Page[Order]{}, err
		}
	}
	sql, args := listSQL(email, status, after, limit+1)
	rows, _ := r.pool.Query(ctx, sql, append([]any{pg.PlanForValues}, args...)...)
	items, err := pgx.CollectRows(rows, scanOrder)
	if err != nil {
		return query.Page[Order]{}, fmt.Errorf("list orders: %w", err)
	}
	page := query.Page[Order]{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		last := items[limit-1]
		page.NextCursor = query.EncodeCursor(orderCursor{CreatedAt: last.CreatedAt.UTC(), ID: last.ID})
	}
	return page, nil
}

// listSQL is List's statement for the filters given (empty: none) and its
// arguments, written so that every filter is served by an index in the
// list's order and a page reads about as many rows as it shows, however
// many orders there are:
//
//   - only the filters given become predicates: a catch-all such as
//     "$2 = ” OR status = $2" has one plan for every value, a scan of the
//     whole table;
//   - an email is looked up by its key and, apart, among the rows written
//     before migration 00010 that have none (see storedForms), each side
//     limited before the two are merged: one OR of both could not read
//     either index in order.
//
// List runs it as an unnamed statement, planned for its values each time:
// a generic plan, which a named prepared statement gets after five runs,
// estimates every status as common and, for a rare one such as
// payment_pending, walks the whole history in created_at order.
func listSQL(email, status string, after *orderCursor, limit int) (string, []any) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if status != "" {
		where = append(where, "status = "+arg(status))
	}
	if after != nil {
		where = append(where, "(created_at, id) < ("+arg(after.CreatedAt)+", "+arg(after.ID)+")")
	}
	n := arg(limit)
	page := func(filter ...string) string {
		sql := `SELECT ` + orderColumns + ` FROM ` + Table
		if w := append(filter, where...); len(w) > 0 {
			sql += ` WHERE ` + strings.Join(w, " AND ")
		}
		return sql + ` ORDER BY created_at DESC, id DESC LIMIT ` + n
	}
	if email == "" {
		return page(), args
	}
	key := EmailKey(email)
	return `(` + page("email_canonical = "+arg(key)) + `) UNION ALL (` +
		page("email_canonical IS NULL", "user_email = ANY("+arg(storedForms(email, key))+")") + `)
	    ORDER BY created_at DESC, id DESC LIMIT ` + n, args
}
