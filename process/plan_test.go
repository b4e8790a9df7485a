package process

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/pgtest"
)

// TestWorkListStatementsDoNotScan: what the scheduler and the workers run
// on every batch touches a number of buffers bounded by the batch, not by
// what else the work list holds. The list holds 10,000 payment timeouts
// due later (an order waiting for its payment has one) and the dead rows
// of 20,000 done payment steps; each statement is explained for 20 other orders
// (or steps), before and after the table has statistics, with custom and
// generic plans (the claim: custom only, see claimSQL).
func TestWorkListStatementsDoNotScan(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, 4)
	ctx := context.Background()
	// Statistics appear only where the test says (autovacuum could
	// analyze the table halfway).
	if _, err := pool.Exec(ctx, `ALTER TABLE process_tasks SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	fill := func(kind string) {
		if _, err := pool.Exec(ctx, `INSERT INTO process_tasks (id, kind, order_id, product_id, due_at, lane)
			SELECT gen_random_uuid(), $1, gen_random_uuid(), $2, now() + interval '15 minutes', $3
			  FROM generate_series(1, 10000)`, kind, noProduct, laneOf(kind)); err != nil {
			t.Fatal(err)
		}
	}
	fill(KindInitiatePayment) // done: dead rows
	fill(KindPaymentTimeout)
	if _, err := pool.Exec(ctx, `DELETE FROM process_tasks`); err != nil {
		t.Fatal(err)
	}
	fill(KindPaymentTimeout) // waiting
	// 20 orders of the batch, each with a step of its own, running under
	// one lease.
	lease := uuid.New()
	var orders, steps []string
	for range 20 {
		o, s := uuid.New(), uuid.New()
		if _, err := pool.Exec(ctx, `INSERT INTO process_tasks (id, kind, order_id, product_id, due_at, lane, lease_id, lease_until)
			VALUES ($1, $2, $3, $4, now(), $5, $6, now() + interval '1 second')`,
			s, KindInitiatePayment, o, noProduct, laneOf(KindInitiatePayment), lease); err != nil {
			t.Fatal(err)
		}
		orders, steps = append(orders, o.String()), append(steps, s.String())
	}
	uuids := func(ids []string) string { return "'{" + strings.Join(ids, ",") + "}'" }
	texts := func(n int, v string) string { return "'{" + strings.TrimSuffix(strings.Repeat(v+",", n), ",") + "}'" }
	now := "'" + time.Now().UTC().Format(time.RFC3339Nano) + "'"

	// 20 orders' steps take about 80 buffers to find; inserting or
	// updating 20 steps about 300 (a row and its entry in each index).
	cases := []struct {
		name, sql, types, args string
		maxBuffers             int
		customOnly             bool
	}{
		{"schedule", scheduleStepsSQL, "uuid[], text[], uuid[], uuid[], timestamptz[], text[], text[], smallint[], text[], text[]",
			fmt.Sprintf("%s, %s, %s, %s, %s, %s, %s, %s, %s, %s", uuids(newIDs(20)), texts(20, KindPaymentTimeout), uuids(orders), texts(20, noProduct.String()),
				texts(20, `"`+time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)+`"`), texts(20, "c"), texts(20, "c"), texts(20, "0"),
				texts(20, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), texts(20, `""`)), 400, false},
		{"drop steps of ended orders", dropStepsSQL, "uuid[], text[]",
			fmt.Sprintf("%s, '{%s,%s}'", uuids(orders), KindInitiatePayment, KindPaymentTimeout), 150, false},
		{"claim", claimSQL, "timestamptz, int, uuid, interval, smallint",
			fmt.Sprintf("%s, 64, '%s', '1.5s', %d", now, uuid.New(), laneOf(KindPaymentTimeout)), 150, true},
		{"due steps (backpressure)", dueStepsSQL, "timestamptz, int, smallint[]", fmt.Sprintf("%s, 10000, '{0,1}'", now), 150, false},
		{"renew", renewSQL, "uuid, interval, uuid[]", fmt.Sprintf("'%s', '1.5s', %s", lease, uuids(steps)), 400, false},
		{"done", doneSQL, "uuid[], uuid, timestamptz", fmt.Sprintf("%s, '%s', %s", uuids(steps), lease, now), 400, false},
	}
	for _, stats := range []string{"no statistics", "analyzed"} {
		if stats == "analyzed" {
			if _, err := pool.Exec(ctx, `ANALYZE process_tasks`); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range cases {
			for _, mode := range []string{pgtest.CustomPlan, pgtest.GenericPlan} {
				if c.customOnly && mode == pgtest.GenericPlan {
					// The claim's generic plan costs more than its
					// custom ones, so it is never chosen (see claimSQL).
					continue
				}
				t.Run(stats+"/"+c.name+"/"+mode, func(t *testing.T) {
					n, plan := pgtest.Buffers(t, pool, mode, c.sql, c.types, c.args)
					if n > c.maxBuffers {
						t.Errorf("touches %d buffers over a work list of 30,000 rows, want at most %d; plan:\n%s", n, c.maxBuffers, plan)
					}
				})
			}
		}
	}
}

func newIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	return ids
}
