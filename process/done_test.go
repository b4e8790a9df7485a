package process

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/pgtest"
)

// TestDoneRearmsAStepMarkedWhileItWaited: the scheduler marks a running
// step for a rerun, and commits, while the statement recording the step
// done waits for its row. That statement neither deletes the step (the row
// it re-reads is marked) nor re-arms it (its snapshot had no mark); the
// finisher records it again, and the step is due, free of its lease,
// rather than held by a lease no one renews until that runs out.
func TestDoneRearmsAStepMarkedWhileItWaited(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, 4)
	ctx := context.Background()
	lease, step := uuid.New(), uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO process_tasks (id, kind, order_id, product_id, due_at, lane, lease_id, lease_until)
		VALUES ($1, $2, $3, $4, now(), $5, $6, clock_timestamp() + interval '1 minute')`,
		step, KindCommitStock, uuid.New(), noProduct, laneOf(KindCommitStock), lease); err != nil {
		t.Fatal(err)
	}
	// The scheduler's mark, not committed yet: it holds the row.
	scheduler, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = scheduler.Rollback(ctx) }()
	if _, err := scheduler.Exec(ctx, `UPDATE process_tasks SET rerun = true WHERE id = $1`, step); err != nil {
		t.Fatal(err)
	}

	m := New(pool, nil, nil, nil, Options{})
	f := newFinisher(m, lease)
	done := make(chan error, 1)
	go func() { done <- f.done(ctx, task{ID: step, lease: lease}) }()
	eventually.True(t, "the record to wait for the row", func() bool {
		var waiting bool
		err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		     WHERE NOT l.granted AND l.locktype = 'transactionid' AND a.datname = current_database())`).Scan(&waiting)
		return err == nil && waiting
	})
	if err := scheduler.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the step was not recorded done")
	}
	var (
		leased, rerun bool
		attempts      int
	)
	if err := pool.QueryRow(ctx, `SELECT lease_id IS NOT NULL, rerun, attempts FROM process_tasks WHERE id = $1`, step).Scan(&leased, &rerun, &attempts); err != nil {
		t.Fatalf("the step marked for a rerun: %v", err)
	}
	if leased || rerun {
		t.Errorf("the step marked for a rerun is leased %t, marked %t; want it due again, free", leased, rerun)
	}
}
