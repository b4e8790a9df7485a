package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/orders-reference/orders/eventstore"
)

// backlogSQL counts the events after a position, up to a limit (an index
// range scan on the primary key that stops at the limit), and reads when
// the first of them was recorded. Events above the read fence count too:
// they are committed, only not deliverable yet, and a reader is behind them.
// The count's ORDER BY keeps it on the index: without it the planner,
// guessing a third of the table matches, scans the table for the first
// rows, which when the reader is caught up is the whole history
// (TestReadsDoNotScanTheHistory).
const backlogSQL = `
SELECT (SELECT count(*) FROM (SELECT 1 FROM events
                               WHERE (tx_id, seq) > ($1::xid8, $2::bigint)
                               ORDER BY tx_id, seq
                               LIMIT $3) b),
       (SELECT recorded_at FROM events
         WHERE (tx_id, seq) > ($1::xid8, $2::bigint)
         ORDER BY tx_id, seq LIMIT 1)`

// Backlog implements eventstore.Store.
func (s *Store) Backlog(ctx context.Context, from eventstore.Position, limit int) (eventstore.Backlog, error) {
	if limit <= 0 {
		return eventstore.Backlog{}, fmt.Errorf("backlog: limit must be positive")
	}
	if from.Commit > math.MaxInt64 { // beyond any transaction id: nothing follows
		return eventstore.Backlog{}, nil
	}
	if from.Prepare > math.MaxInt64 { // seq is a bigint: (c, huge) is (c+1, 0)
		from = eventstore.Position{Commit: from.Commit + 1}
	}
	var (
		b      eventstore.Backlog
		oldest *time.Time
	)
	if err := s.pool.QueryRow(ctx, backlogSQL, from.Commit, int64(from.Prepare), limit).Scan(&b.Events, &oldest); err != nil {
		return eventstore.Backlog{}, fmt.Errorf("backlog after %s: %w", from, err)
	}
	if oldest != nil {
		b.Oldest = *oldest
	}
	return b, nil
}
