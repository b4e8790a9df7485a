package projections_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/logging/logtest"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query/orders"
)

// scanCounting is a projector that records how many sequential scans of
// table each batch's Apply made (the backend's count not yet reported to
// the statistics, before and after).
type scanCounting struct {
	projections.Projector
	table string

	mu    sync.Mutex
	scans []int64
}

func (s *scanCounting) Apply(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
	count := func() (n int64, err error) {
		err = tx.QueryRow(ctx, `SELECT pg_stat_get_xact_numscans($1::regclass)`, s.table).Scan(&n)
		return n, err
	}
	before, err := count()
	if err != nil {
		return err
	}
	if err := s.Projector.Apply(ctx, tx, evs); err != nil {
		return err
	}
	after, err := count()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.scans = append(s.scans, after-before)
	s.mu.Unlock()
	return nil
}

func (s *scanCounting) applied() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.scans...)
}

// fed is a Subscriber that hands over the batches the test sends it.
type fed chan eventstore.Batch

func (f fed) Subscribe(ctx context.Context, _ eventstore.Position, _ eventstore.SubscribeOptions, handle eventstore.BatchHandler) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case b := <-f:
			if err := handle(ctx, b); err != nil {
				return err
			}
		}
	}
}

// TestBatchesArePlannedForTheirValues: a read model's table starts empty,
// and PostgreSQL keeps the generic plan of a statement prepared while the
// table was small, a sequential scan, until autovacuum first analyzes the
// table. Under load a minute after a deployment, the orders projection's
// lookup of a batch's orders read 9,000 rows for 9 ms. The runner plans
// every statement of a batch for its values: after many batches on a small
// table, batches on a grown one scan nothing.
func TestBatchesArePlannedForTheirValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	// Statistics stay as a new deployment has them.
	if _, err := e.pool.Exec(ctx, `ALTER TABLE `+orders.Table+` SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	prod, err := e.svc.CreateProduct(ctx, command.CreateProduct{Name: "p", Price: 1000, Stock: 1000, Meta: customer})
	if err != nil {
		t.Fatal(err)
	}
	batches := fed(make(chan eventstore.Batch))
	p := &scanCounting{Projector: orders.Projector{}, table: orders.Table}
	run(t, projections.NewRunner(e.pool, batches, p, projections.Options{}))

	// apply places five orders and hands their events to the runner as one
	// batch, as a subscription under load would.
	from := eventstore.Start
	apply := func(round int) {
		t.Helper()
		for i := range 5 {
			if _, err := e.svc.PlaceOrder(ctx, command.PlaceOrder{UserEmail: fmt.Sprintf("c%d.%d@example.com", round, i),
				Lines: []order.Line{{ProductID: prod.ID, Quantity: 1}}, Meta: customer}); err != nil {
				t.Fatal(err)
			}
		}
		e.waitVisible(t)
		page, err := e.store.ReadAll(ctx, from, 1000, p.Filter())
		if err != nil {
			t.Fatal(err)
		}
		from = page.Next
		n := len(p.applied())
		batches <- eventstore.Batch{Events: page.Events, Checkpoint: page.Next}
		eventually.True(t, "the batch is applied", func() bool { return len(p.applied()) > n })
	}
	// More batches than PostgreSQL plans for their values before it
	// weighs a generic plan (five), on a table of a few rows.
	for round := range 8 {
		apply(round)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO `+orders.Table+` (id, user_email, status, items, total_amount, currency,
	        created_at, updated_at, version, email_canonical)
	    SELECT gen_random_uuid(), 'c' || g || '@example.com', 'paid', '[]', 1000, 'USD', now(), now(), 3, 'c' || g || '@example.com'
	      FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	small := len(p.applied())
	for round := range 3 {
		apply(100 + round)
	}
	for i, n := range p.applied()[small:] {
		if n != 0 {
			t.Errorf("batch %d on 20,000 orders made %d sequential scans of %s, want none", i+1, n, orders.Table)
		}
	}
}

// A runner whose checkpoint another runner moved is deposed at its next
// batch, whether the batch has events (moved in the batch's transaction,
// which rolls back: none of its rows stay) or has none (moved by one
// statement): the checkpoint stays where the other put it.
func TestDeposedRunnerMovesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	prod, err := e.svc.CreateProduct(ctx, command.CreateProduct{Name: "p", Price: 1000, Stock: 10, Meta: customer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PlaceOrder(ctx, command.PlaceOrder{UserEmail: "c@example.com",
		Lines: []order.Line{{ProductID: prod.ID, Quantity: 1}}, Meta: customer}); err != nil {
		t.Fatal(err)
	}
	e.waitVisible(t)
	page, err := e.store.ReadAll(ctx, eventstore.Start, 1000, orders.Projector{}.Filter())
	if err != nil || len(page.Events) == 0 {
		t.Fatalf("the order's events: %d, %v", len(page.Events), err)
	}

	var logs logtest.Sink
	batches := fed(make(chan eventstore.Batch))
	applied := make(chan eventstore.Position, 10)
	run(t, projections.NewRunner(e.pool, batches, orders.Projector{}, projections.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), OnApplied: func(_ string, p eventstore.Position) { applied <- p }}))
	// The runner has led since it took its first batch.
	first := eventstore.Position{Commit: 1, Prepare: 1}
	batches <- eventstore.Batch{Checkpoint: first}
	if got := <-applied; got != first {
		t.Fatalf("applied %s, want %s", got, first)
	}

	for i, b := range []eventstore.Batch{
		{Checkpoint: eventstore.Position{Commit: 2, Prepare: 2}},
		{Events: page.Events, Checkpoint: page.Next},
	} {
		moved := eventstore.Position{Commit: uint64(1000 * (i + 1)), Prepare: uint64(1000 * (i + 1))}
		if _, err := e.pool.Exec(ctx, `UPDATE projection_checkpoints SET position_commit = $2, position_prepare = $3 WHERE name = $1`,
			orders.Name, int64(moved.Commit), int64(moved.Prepare)); err != nil {
			t.Fatal(err)
		}
		deposed := strings.Count(logs.String(), "projection runner deposed")
		batches <- b
		eventually.True(t, "the runner is deposed", func() bool {
			return strings.Count(logs.String(), "projection runner deposed") > deposed
		})
		if cp, _, _ := e.checkpoint(t, orders.Name); cp != moved {
			t.Errorf("batch %d (%d events): checkpoint %s, want %s where the other runner put it", i+1, len(b.Events), cp, moved)
		}
		select {
		case p := <-applied:
			t.Errorf("batch %d (%d events): reported applied at %s", i+1, len(b.Events), p)
		default:
		}
	}
	var rows int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM `+orders.Table).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("the deposed batch left %d rows (%v), want none", rows, err)
	}
}
