package orders

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/query"
)

// TestListDoesNotScanTheHistory: the admin list touches a number of buffers
// bounded by its page (with an email and a status: by that customer's
// orders), not by how many orders were ever placed, for every combination
// of filters, with the plan PostgreSQL makes for the values (List runs an
// unnamed statement). A catch-all predicate such as "$2 = ” OR status =
// $2" scanned the table here.
func TestListDoesNotScanTheHistory(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, 2)
	ctx := t.Context()
	// 20,000 orders of 200 customers, most of them paid; the statuses the
	// admin polls for (created, payment_pending) are rare.
	if _, err := pool.Exec(ctx, `INSERT INTO `+Table+` (id, user_email, status, items, total_amount, currency,
	        created_at, updated_at, version, email_canonical)
	    SELECT gen_random_uuid(), 'c' || (g % 200) || '@example.com',
	           CASE WHEN g % 1000 = 0 THEN 'payment_pending' WHEN g % 5 = 0 THEN 'canceled' ELSE 'paid' END,
	           '[{"product_id":"00000000-0000-0000-0000-000000000001","quantity":1,"price":"10.00"}]',
	           1000, 'USD', now() - g * interval '1 second', now(), 3, 'c' || (g % 200) || '@example.com'
	      FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE `+Table); err != nil {
		t.Fatal(err)
	}
	cursor := &orderCursor{CreatedAt: time.Now().Add(-time.Hour), ID: uuid.New()}
	// A page of 51 orders by an index reads about 20 buffers; a customer's
	// 100 orders, filtered by status, about 100 (one heap page each).
	const maxBuffers, maxCustomerBuffers = 60, 120
	for _, email := range []string{"", "C7@Example.com"} {
		for _, status := range []string{"", "paid", "payment_pending", "created"} {
			for _, after := range []*orderCursor{nil, cursor} {
				sql, args := listSQL(email, status, after, 51)
				types, literals := sqlLiterals(t, args)
				limit := maxBuffers
				if email != "" && status != "" {
					limit = maxCustomerBuffers
				}
				t.Run(fmt.Sprintf("email=%q/status=%q/cursor=%t", email, status, after != nil), func(t *testing.T) {
					n, plan := pgtest.Buffers(t, pool, pgtest.CustomPlan, sql, types, literals)
					if n > limit {
						t.Errorf("touches %d buffers over 20,000 orders, want at most %d; plan:\n%s", n, limit, plan)
					}
				})
			}
		}
	}
}

// sqlLiterals returns the parameter types and SQL literals of listSQL's
// arguments, for PREPARE and EXECUTE.
func sqlLiterals(t *testing.T, args []any) (types, literals string) {
	t.Helper()
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	var ts, ls []string
	for _, a := range args {
		switch v := a.(type) {
		case string:
			ts, ls = append(ts, "text"), append(ls, quote(v))
		case []string:
			q := make([]string, len(v))
			for i, s := range v {
				q[i] = `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
			}
			ts, ls = append(ts, "text[]"), append(ls, quote("{"+strings.Join(q, ",")+"}"))
		case time.Time:
			ts, ls = append(ts, "timestamptz"), append(ls, quote(v.Format(time.RFC3339Nano)))
		case uuid.UUID:
			ts, ls = append(ts, "uuid"), append(ls, quote(v.String()))
		case int:
			ts, ls = append(ts, "int"), append(ls, fmt.Sprint(v))
		default:
			t.Fatalf("no literal for %T", a)
		}
	}
	return strings.Join(ts, ", "), strings.Join(ls, ", ")
}

// TestListIsPlannedForItsValues: List runs its statement unnamed, so that
// PostgreSQL plans it for the filter's values each time instead of
// switching, after five runs of a named prepared statement, to a generic
// plan that reads a rare status's orders by walking the whole history.
func TestListIsPlannedForItsValues(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, 1) // List and the check share the connection
	r := NewReader(pool)
	for range 6 {
		for _, email := range []string{"", "a@example.com"} {
			if _, err := r.List(t.Context(), email, "payment_pending", 10, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	var named []string
	rows, _ := pool.Query(t.Context(), `SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%'||$1||'%'`, Table)
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		named = append(named, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(named) > 0 {
		t.Errorf("List left named prepared statements, which switch to a generic plan: %q", named)
	}
}

// A cursor is taken only as List writes it: a time in UTC, in whole
// microseconds, in a year PostgreSQL holds; a hand-made one in another
// form is refused, and List's own cursors go round.
func TestListTakesOnlyItsOwnCursors(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, 2)
	r := NewReader(pool)
	id := uuid.New()
	for name, at := range map[string]string{
		"another zone": "2026-12-01T11:58:12.371198+14:00",
		"nanoseconds":  "2026-12-01T11:58:12.3711981Z",
		"year 0":       "0000-01-01T00:00:00Z",
	} {
		c := base64.RawURLEncoding.EncodeToString([]byte(`{"t":"` + at + `","id":"` + id.String() + `"}`))
		if _, err := r.List(t.Context(), "", "", 10, c); !errors.Is(err, query.ErrInvalidCursor) {
			t.Errorf("%s: %v, want ErrInvalidCursor", name, err)
		}
	}
	for i := range 3 {
		if _, err := pool.Exec(t.Context(), `INSERT INTO `+Table+` (id, user_email, status, items, total_amount, currency, created_at, updated_at, version)
		     VALUES ($1, 'c@example.com', 'paid', '[]', 100, 'USD', now() - $2 * interval '1 second', now(), 1)`, uuid.New(), i); err != nil {
			t.Fatal(err)
		}
	}
	page, err := r.List(t.Context(), "", "", 2, "")
	if err != nil || page.NextCursor == "" {
		t.Fatalf("first page: %v %+v", err, page)
	}
	if next, err := r.List(t.Context(), "", "", 2, page.NextCursor); err != nil || len(next.Items) != 1 {
		t.Fatalf("the next page: %v %+v", err, next)
	}
}
