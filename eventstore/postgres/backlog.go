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
	if from.Commit > math.MaxInt64 { // beyond any transaction id
		return eventstore.Backlog{}, fmt.Errorf("backlog: %w: %s is beyond any transaction id", eventstore.ErrPositionNotInStore, from)
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
	if b.Events == 0 {
		if err := s.checkInStore(ctx, from); err != nil {
			return eventstore.Backlog{}, fmt.Errorf("backlog: %w", err)
		}
	}
	return b, nil
}

// reachSQL reads how far a reader of this store can have got: the read
// fence (a reader that read everything below it continues from (fence, 0),
// see readAllSQL) and the last committed event (an append returns its
// position, above the fence too).
const reachSQL = `SELECT pg_snapshot_xmin(pg_current_snapshot()), e.tx_id, e.seq
  FROM (SELECT 1) one
  LEFT JOIN LATERAL (SELECT tx_id, seq FROM events ORDER BY tx_id DESC, seq DESC LIMIT 1) e ON true`

// checkInStore returns eventstore.ErrPositionNotInStore if pos lies beyond
// both the read fence and the last event stored: no reader got it from
// this store (the database lost data, for instance was restored from an
// older backup, or is another one). It checks nothing when that cannot be
// read.
func (s *Store) checkInStore(ctx context.Context, pos eventstore.Position) error {
	if pos == eventstore.Start {
		return nil
	}
	var (
		fence uint64
		txID  *uint64
		seq   *int64
	)
	if err := s.pool.QueryRow(ctx, reachSQL).Scan(&fence, &txID, &seq); err != nil {
		return nil
	}
	reach := eventstore.Position{Commit: fence}
	if txID != nil && seq != nil {
		reach = eventstore.MaxPosition(reach, eventstore.Position{Commit: *txID, Prepare: uint64(*seq)})
	}
	if !reach.Less(pos) {
		return nil
	}
	return fmt.Errorf("%w: %s is beyond the last event stored and the read fence, %s", eventstore.ErrPositionNotInStore, pos, reach)
}
