package process

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/pgtest"
)

func claimManager(t *testing.T) *Manager {
	pool := pgtest.NewPool(t, 6)
	return New(pool, nil, nil, nil, Options{})
}

func insertStep(t *testing.T, m *Manager, id, orderID uuid.UUID, kind string, due time.Time) {
	t.Helper()
	if _, err := m.pool.Exec(context.Background(), `INSERT INTO process_tasks (id, kind, order_id, product_id, due_at, lane)
		VALUES ($1, $2, $3, $4, $5, $6)`, id, kind, orderID, uuid.New(), due, laneOf(kind)); err != nil {
		t.Fatal(err)
	}
}

// A claim takes the oldest due steps first, whatever their orders' ids
// (it once took the smallest order ids of a window).
func TestClaimTakesOldestDueFirst(t *testing.T) {
	t.Parallel()
	m := claimManager(t)
	ctx := context.Background()
	base := time.Now().Add(-time.Hour)
	var oldest uuid.UUID
	// 8 steps of 8 orders; the oldest due has the largest order id.
	for i := 0; i < 8; i++ {
		o := uuid.UUID{byte(0xF0 - i*0x10)}
		id := uuid.New()
		if i == 0 {
			oldest = id
		}
		insertStep(t, m, id, o, KindCommitStock, base.Add(time.Duration(i)*time.Second))
	}
	claimed, err := m.claim(ctx, uuid.New(), 2, laneStore)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range claimed {
		if c.ID == oldest {
			return
		}
	}
	t.Errorf("claim(2) of 8 due steps did not take the oldest due one; took orders %v %v", claimed[0].OrderID, claimed[1].OrderID)
}

// Steps of a blocked order (one of its steps is leased) at the head of
// the queue do not hide the due steps of other orders.
func TestClaimSkipsBlockedOrders(t *testing.T) {
	t.Parallel()
	m := claimManager(t)
	ctx := context.Background()
	base := time.Now().Add(-time.Hour)
	blocker := uuid.New()
	// order X: one step leased (running), four more due steps after it.
	insertStep(t, m, uuid.New(), blocker, KindReleaseStock, base)
	if _, err := m.pool.Exec(ctx, `UPDATE process_tasks SET lease_id = $1, lease_until = now() + interval '1 minute'`, uuid.New()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		insertStep(t, m, uuid.New(), blocker, KindReleaseReservation, base.Add(time.Duration(i+1)*time.Second))
	}
	free := uuid.New()
	insertStep(t, m, uuid.New(), free, KindCommitStock, base.Add(time.Minute))
	claimed, err := m.claim(ctx, uuid.New(), 1, laneStore)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) == 0 {
		t.Errorf("claim(1) took nothing although order %s has a due, unblocked step", free)
	}
}

// A claim that waited for the claim lock longer than a lease still gets a
// whole lease (it starts when the claim takes it, not when its
// transaction began waiting), so the next claimer does not take the same
// step.
func TestClaimLeaseStartsWhenTaken(t *testing.T) {
	t.Parallel()
	m := claimManager(t)
	ctx := context.Background()
	insertStep(t, m, uuid.New(), uuid.New(), KindCommitStock, time.Now().Add(-time.Minute))
	holder, err := m.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, claimLock); err != nil {
		t.Fatal(err)
	}
	type res struct {
		got []task
		err error
	}
	done := make(chan res, 1)
	a := uuid.New()
	go func() {
		got, err := m.claim(ctx, a, 10, laneStore)
		done <- res{got, err}
	}()
	eventually.True(t, "A's claim to wait for the lock", func() bool {
		var waiting bool
		err := m.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`).Scan(&waiting)
		return err == nil && waiting
	})
	// Another instance's claim holds the lock for longer than a lease.
	time.Sleep(leaseFor + 100*time.Millisecond)
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock($1)`, claimLock); err != nil {
		t.Fatal(err)
	}
	holder.Release()
	r := <-done
	if r.err != nil || len(r.got) != 1 {
		t.Fatalf("A's claim: %v %v", r.got, r.err)
	}
	// A now runs the step. B claims right away:
	got, err := m.claim(ctx, uuid.New(), 10, laneStore)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > 0 {
		t.Errorf("B claimed step %s that A claimed a moment ago: it runs twice at once", got[0].ID)
	}
}

// DueSteps counts the due steps no one runs, up to its limit.
func TestDueSteps(t *testing.T) {
	t.Parallel()
	m := claimManager(t)
	ctx := context.Background()
	now := time.Now()
	for range 3 {
		insertStep(t, m, uuid.New(), uuid.New(), KindInitiatePayment, now.Add(-time.Second)) // due
	}
	insertStep(t, m, uuid.New(), uuid.New(), KindCommitStock, now.Add(-time.Second))   // due, the other lane
	insertStep(t, m, uuid.New(), uuid.New(), KindPaymentTimeout, now.Add(time.Minute)) // not yet due
	running, expired, parked := uuid.New(), uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{running, expired, parked} {
		insertStep(t, m, id, uuid.New(), KindReleaseStock, now.Add(-time.Second))
	}
	if _, err := m.pool.Exec(ctx, `UPDATE process_tasks SET lease_id = gen_random_uuid(), lease_until = now() + interval '1 minute' WHERE id = $1`, running); err != nil {
		t.Fatal(err)
	}
	if _, err := m.pool.Exec(ctx, `UPDATE process_tasks SET lease_id = gen_random_uuid(), lease_until = now() - interval '1 second' WHERE id = $1`, expired); err != nil {
		t.Fatal(err)
	}
	if _, err := m.pool.Exec(ctx, `UPDATE process_tasks SET state = 'parked' WHERE id = $1`, parked); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ limit, want int }{{100, 5}, {3, 3}} {
		got, err := DueSteps(ctx, m.pool, now, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("limit %d: %d due, want %d", c.limit, got, c.want)
		}
	}
}
