package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/pgtest"
)

// A pool through a proxy works; a cut fails its connections at once and
// refuses new ones; a partition makes them wait for their timeouts; a
// restore lets new connections through again.
func TestProxy(t *testing.T) {
	t.Parallel()
	base := pgtest.NewPool(t, 2)
	p := pgtest.NewProxy(t)
	pool := pgtest.NewPoolVia(t, p, base, 2)
	ping := func(timeout time.Duration) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		var one int
		err := pool.QueryRow(ctx, `SELECT 1`).Scan(&one)
		return time.Since(start), err
	}
	if _, err := ping(10 * time.Second); err != nil {
		t.Fatal(err)
	}

	p.Cut()
	for range 3 { // the pooled connection fails, and so do new ones
		if took, err := ping(10 * time.Second); err == nil || took > 5*time.Second {
			t.Fatalf("through a cut: %v after %v", err, took)
		}
	}
	p.Restore()
	if _, err := ping(10 * time.Second); err != nil {
		// The pool may hand out one connection that died in the cut.
		if _, err := ping(10 * time.Second); err != nil {
			t.Fatalf("after the restore: %v", err)
		}
	}

	p.Partition()
	if took, err := ping(300 * time.Millisecond); err == nil || took < 250*time.Millisecond {
		t.Fatalf("through a partition: %v after %v, want a timeout", err, took)
	}
	p.Restore()
	eventually := time.Now().Add(10 * time.Second)
	for {
		_, err := ping(10 * time.Second)
		if err == nil {
			break
		}
		if time.Now().After(eventually) {
			t.Fatalf("after the partition: %v", err)
		}
	}

	// The server's sessions of a cut connection end: a session lock goes.
	conn, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_lock(42)`); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	conn.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := base.Exec(ctx, `SELECT pg_advisory_lock(42)`); err != nil {
		t.Fatalf("the lock of the cut session: %v", err)
	}
}
