package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/pgtest"
)

// TestReadsDoNotScanTheHistory: what a subscription runs on every page, on
// every idle look and on every backlog check touches a number of buffers
// bounded by the page, not by how many events were ever stored. Each
// statement is explained (ANALYZE, BUFFERS) over 20,000 events, with the
// plan PostgreSQL makes for the given values and with the generic plan it
// switches to after five executions of a prepared statement.
func TestReadsDoNotScanTheHistory(t *testing.T) {
	t.Parallel()
	_, pool := newStore(t, postgres.Options{})
	ctx := context.Background()
	// Statistics appear only where the test says (autovacuum could
	// analyze the table halfway).
	if _, err := pool.Exec(ctx, `ALTER TABLE events SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	// 40 transactions of 500 events the size of an order's (the planner
	// weighs a table's pages): a history with many transaction ids.
	data := fmt.Sprintf(`{"items":[{"product_id":"%s","quantity":1,"price":"10.00"}],"user_email":"%s"}`, strings.Repeat("p", 36), strings.Repeat("u", 150))
	meta := fmt.Sprintf(`{"correlation_id":"%s","causation_id":"%s"}`, strings.Repeat("c", 36), strings.Repeat("c", 36))
	for i := 0; i < 40; i++ {
		if _, err := pool.Exec(ctx, `INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
			SELECT gen_random_uuid(), 'order-' || $1::int || '-' || g, 0, 'OrderPlaced', $2, $3
			  FROM generate_series(1, 500) g`, i, data, meta); err != nil {
			t.Fatal(err)
		}
	}
	var first, middle, last uint64
	if err := pool.QueryRow(ctx, `SELECT min(tx_id)::text::bigint, (array_agg(DISTINCT tx_id::text::bigint))[20], max(tx_id)::text::bigint FROM events`).
		Scan(&first, &middle, &last); err != nil {
		t.Fatal(err)
	}

	const maxBuffers = 150 // a page of 256 events reads about 40
	cases := []struct {
		name, sql, types, args string
	}{
		{"read all: the first page", postgres.ReadAllSQL, "xid8, bigint, int, text[], text[]", "'0', 0, 256, NULL, NULL"},
		{"read all: a page in the middle", postgres.ReadAllSQL, "xid8, bigint, int, text[], text[]", fmt.Sprintf("'%d', 0, 256, NULL, NULL", middle)},
		{"read all: at the end (an idle look)", postgres.ReadAllSQL, "xid8, bigint, int, text[], text[]", fmt.Sprintf("'%d', 1000000, 256, NULL, NULL", last)},
		{"read all: filtered, at the end", postgres.ReadAllSQL, "xid8, bigint, int, text[], text[]", fmt.Sprintf("'%d', 1000000, 256, '{order-%%}', '{OrderPaid}'", last)},
		{"backlog: from the start", postgres.BacklogSQL, "xid8, bigint, int", "'0', 0, 100"},
		{"backlog: at the end", postgres.BacklogSQL, "xid8, bigint, int", fmt.Sprintf("'%d', 1000000, 100", last)},
		{"head", postgres.HeadSQL, "", ""},
	}
	// A new deployment's table has no statistics yet (the planner guesses
	// from its size); a running one's are refreshed by autovacuum.
	for _, stats := range []string{"no statistics", "analyzed"} {
		if stats == "analyzed" {
			if _, err := pool.Exec(ctx, `ANALYZE events`); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range cases {
			for _, mode := range []string{pgtest.CustomPlan, pgtest.GenericPlan} {
				t.Run(stats+"/"+c.name+"/"+mode, func(t *testing.T) {
					n, plan := pgtest.Buffers(t, pool, mode, c.sql, c.types, c.args)
					if n > maxBuffers {
						t.Errorf("touches %d buffers over a history of 20,000 events, want at most %d; plan:\n%s", n, maxBuffers, plan)
					}
				})
			}
		}
	}
}
