package postgres_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orders-reference/orders/internal/pgtest"
	pg "github.com/orders-reference/orders/internal/postgres"
)

// A statement pgx prepares and caches (its default) gets a generic plan
// after five calls; made while its table was small, that plan is a
// sequential scan, kept as the table grows. The same statement run with
// PlanForValues is planned for its values at every call: on the grown
// table, an index lookup.
func TestPlanForValuesOutlivesASmallTable(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, 1)
	ctx := t.Context()
	if _, err := pool.Exec(ctx, `CREATE TABLE plan_probe (id uuid PRIMARY KEY, a text, b text, c text, d text, e jsonb, f jsonb) WITH (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	grow := func(n int) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO plan_probe (id, a) SELECT gen_random_uuid(), repeat('x', 100) FROM generate_series(1, $1::int)`, n); err != nil {
			t.Fatal(err)
		}
	}
	// scans runs the lookup of a few ids and returns the sequential scans
	// of the table it made: counted in one transaction, which the
	// backend's statistics are not reported in the middle of.
	scans := func(mode ...any) int64 {
		t.Helper()
		var n int64
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			count := func() (c int64, err error) {
				err = tx.QueryRow(ctx, `SELECT pg_stat_get_xact_numscans('plan_probe'::regclass)`).Scan(&c)
				return c, err
			}
			before, err := count()
			if err != nil {
				return err
			}
			args := append(mode, []uuid.UUID{uuid.New(), uuid.New(), uuid.New()})
			rows, err := tx.Query(ctx, `SELECT id, a, b, c, d, e, f FROM plan_probe WHERE id = ANY($1)`, args...)
			if err != nil {
				return err
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			after, err := count()
			n = after - before
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Rows as wide as a read model's: on a small table a scan is the
	// cheaper plan, for the values and generically.
	for range 8 {
		grow(1)
		scans()
		scans(pg.PlanForValues)
	}
	grow(20_000)
	if n := scans(); n == 0 {
		t.Skip("the cached statement did not scan the grown table: this PostgreSQL does not keep the generic plan the test relies on")
	}
	if n := scans(pg.PlanForValues); n != 0 {
		t.Errorf("PlanForValues scanned the table %d times after it grew, want an index lookup", n)
	}
}
