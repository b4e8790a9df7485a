package process

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/pgtest"
)

// slowCommit is Orders whose CommitStock takes a while.
type slowCommit struct {
	Orders
	took time.Duration
}

func (s slowCommit) CommitStock(ctx context.Context, _ uuid.UUID, _ eventstore.Metadata) error {
	select {
	case <-time.After(s.took):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// OnStepDuration is told how long each run of a step took, with its kind.
func TestOnStepDurationTimesEachRun(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		runs []time.Duration
		kind string
	)
	m := New(pgtest.NewPool(t, 4), nil, slowCommit{took: 30 * time.Millisecond}, nil, Options{
		OnStepDuration: func(_ context.Context, k string, took time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			kind = k
			runs = append(runs, took)
		},
	})
	insertStep(t, m, uuid.New(), uuid.New(), KindCommitStock, time.Now().Add(-time.Second))
	lease := uuid.New()
	claimed, err := m.claim(context.Background(), lease, 1, laneStore)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	m.run(context.Background(), claimed[0], newFinisher(m, lease))
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != 1 || kind != KindCommitStock || runs[0] < 30*time.Millisecond {
		t.Fatalf("OnStepDuration was told %v of %q, want one run of %s of at least 30ms", runs, kind, KindCommitStock)
	}
}

// ReadBacklog reports when the oldest due step became due, whether it
// waits or runs, and nothing for steps due later or parked.
func TestReadBacklogOldestDue(t *testing.T) {
	t.Parallel()
	m := claimManager(t)
	ctx := context.Background()
	now := time.Now()
	b, err := ReadBacklog(ctx, m.pool, now)
	if err != nil || !b.OldestDue.IsZero() {
		t.Fatalf("empty work list: oldest due %v, %v", b.OldestDue, err)
	}
	insertStep(t, m, uuid.New(), uuid.New(), KindCommitStock, now.Add(time.Minute))   // due later
	insertStep(t, m, uuid.New(), uuid.New(), KindReleaseStock, now.Add(-time.Minute)) // due
	parked := uuid.New()
	insertStep(t, m, parked, uuid.New(), KindRefund, now.Add(-time.Hour))
	if _, err := m.pool.Exec(ctx, `UPDATE process_tasks SET state = 'parked' WHERE id = $1`, parked); err != nil {
		t.Fatal(err)
	}
	b, err = ReadBacklog(ctx, m.pool, now)
	if err != nil {
		t.Fatal(err)
	}
	if d := b.OldestDue.Sub(now.Add(-time.Minute)); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("oldest due %v, want %v", b.OldestDue, now.Add(-time.Minute))
	}
	if b.Due != 1 || b.Scheduled != 1 || b.Parked != 1 {
		t.Fatalf("backlog %+v, want 1 due, 1 scheduled, 1 parked", b)
	}
}
