package process

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orders-reference/orders/internal/pgtest"
)

// TestRenewReportsOnlyLostLeases: a renewal reports as lost the steps held
// under another lease or under this one expired, never a step whose row
// is gone (its run finished and deleted it before forgetting it), which a
// worker used to cancel and report as an ERROR.
func TestRenewReportsOnlyLostLeases(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, 2)
	ctx := context.Background()
	lease := uuid.New()
	step := func(leaseID uuid.UUID, until time.Duration) uuid.UUID {
		id := uuid.New()
		if _, err := pool.Exec(ctx, `INSERT INTO process_tasks (id, kind, order_id, product_id, due_at, lane, lease_id, lease_until)
			VALUES ($1, $2, $3, $4, now(), $5, $6, clock_timestamp() + $7::interval)`,
			id, KindInitiatePayment, uuid.New(), noProduct, laneOf(KindInitiatePayment), leaseID, until.String()); err != nil {
			t.Fatal(err)
		}
		return id
	}
	held := step(lease, time.Second)
	expired := step(lease, -time.Second)
	taken := step(uuid.New(), time.Second)
	finished := uuid.New() // deleted by its run: no row
	rows, err := pool.Query(ctx, renewSQL, lease, leaseFor.String(), []uuid.UUID{held, expired, taken, finished})
	if err != nil {
		t.Fatal(err)
	}
	lost, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(lost, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	want := []uuid.UUID{expired, taken}
	slices.SortFunc(want, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	if !slices.Equal(lost, want) {
		t.Fatalf("lost %v, want the expired %s and the taken %s (held %s, finished %s)", lost, expired, taken, held, finished)
	}
	var until time.Time
	if err := pool.QueryRow(ctx, `SELECT lease_until FROM process_tasks WHERE id = $1`, held).Scan(&until); err != nil {
		t.Fatal(err)
	}
	if time.Until(until) < leaseFor/2 {
		t.Errorf("the held step's lease ends in %s, want it renewed for %s", time.Until(until), leaseFor)
	}
}
