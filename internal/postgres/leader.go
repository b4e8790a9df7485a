package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LockKey returns the advisory lock key for a named role.
func LockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64() & math.MaxInt64)
}

// Lead makes this process the one leader of key across instances, then runs
// fn with the connection that holds the leadership, until fn returns or ctx
// ends. Leadership is a session advisory lock on a connection taken out of
// the pool for good: whoever runs work on that connection loses the lock
// and the work together if the connection dies. While another instance
// leads, Lead waits, trying every poll.
//
// On the way out the lock is released explicitly before the connection is
// closed, so a standby takes over at once rather than when the closed
// session's backend has exited.
func Lead(ctx context.Context, pool *pgxpool.Pool, key int64, poll time.Duration, fn func(ctx context.Context, conn *pgx.Conn) error) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("leader connection: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if !conn.Conn().IsClosed() {
			_, _ = conn.Exec(closeCtx, `SELECT pg_advisory_unlock($1)`, key)
		}
		_ = conn.Hijack().Close(closeCtx)
	}()
	for {
		var leader bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&leader); err != nil {
			return fmt.Errorf("leader lock: %w", err)
		}
		if leader {
			break
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return fn(ctx, conn.Conn())
}
