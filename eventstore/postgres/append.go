package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orders-reference/orders/eventstore"
	pg "github.com/orders-reference/orders/internal/postgres"
)

// Appends are group-committed (package internal/batch): concurrent Append
// calls are combined into one es_append_batch statement, one transaction and
// one WAL flush, while each append keeps its own expected-version check and
// result. At most Options.MaxInFlight batches run at once; a caller whose
// append is queued behind them waits, and its append goes into the next one.

// Defaults for the group commit.
const (
	DefaultMaxBatch    = 128
	DefaultMaxInFlight = 2
	// batchTimeout bounds one batch statement; it does not depend on any one
	// caller's context, since other callers' appends ride in the same batch.
	batchTimeout = 30 * time.Second
)

// Outcomes reported by es_append_locked.
const (
	outcomeAppended     = "appended"
	outcomeIdempotent   = "idempotent"
	outcomeWrongVersion = "wrong_version"
	outcomeDuplicate    = "duplicate"
)

// now() is the transaction's start: the recorded_at of every event the
// batch stores (its column default).
const appendBatchSQL = `SELECT idx, outcome, stream_version, tx_id, seq, now()
  FROM es_append_batch($1, $2, $3, $4, $5, $6, $7)`

// appendRequest is one Append waiting for its batch.
type appendRequest struct {
	stream   string
	expected eventstore.ExpectedVersion
	events   []eventstore.EventData
	meta     []json.RawMessage

	res  eventstore.AppendResult
	err  error
	done chan struct{}
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (res eventstore.AppendResult, err error) {
	if s.opts.AppendObserver != nil {
		start := time.Now()
		defer func() { s.opts.AppendObserver(ctx, time.Since(start), err) }()
	}
	events, err = eventstore.PrepareAppend(stream, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	req := &appendRequest{stream: stream, expected: expected, events: events, done: make(chan struct{})}
	req.meta = make([]json.RawMessage, len(events))
	for i, e := range events {
		if req.meta[i], err = json.Marshal(e.Metadata); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("append to %q: metadata: %w", stream, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %q: %w", stream, err)
	}

	s.combiner.Submit(req)
	select {
	case <-req.done:
		return req.res, req.err
	case <-ctx.Done():
		// The batch may still commit this append: the outcome is unknown,
		// as after any lost reply. Retrying with the same event ids is safe.
		return eventstore.AppendResult{}, fmt.Errorf("append to %q: outcome unknown: %w", stream, ctx.Err())
	}
}

// execBatch runs batch as one statement and completes every request. If
// the statement fails as a whole (say a duplicate event id in one append
// aborts the transaction), each append is retried alone so that only the
// offending one fails; not when the database is unavailable (the statement
// timed out, the connection failed): each would fail the same way, one
// timeout after another, while every caller waits.
func (s *Store) execBatch(batch []*appendRequest) {
	if s.opts.BatchObserver != nil {
		s.opts.BatchObserver(len(batch))
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	err := s.runBatch(ctx, batch)
	defer func() {
		// Idempotent re-appends make a spare wake-up; no harm done.
		s.listener.broadcast()
		s.notifier.poke()
	}()
	if err != nil && len(batch) > 1 && !pg.Unavailable(err) {
		for _, r := range batch {
			if err := s.runBatch(ctx, []*appendRequest{r}); err != nil {
				r.err = translateAppendError(r.stream, r.expected, err)
			}
			close(r.done)
		}
		return
	}
	for _, r := range batch {
		if err != nil {
			r.err = translateAppendError(r.stream, r.expected, err)
		}
		close(r.done)
	}
}

// runBatch executes es_append_batch for batch and stores each request's
// result or check failure in it. The returned error is a failure of the
// statement as a whole.
func (s *Store) runBatch(ctx context.Context, batch []*appendRequest) error {
	var (
		streams  = make([]string, len(batch))
		expected = make([]int64, len(batch))
		counts   = make([]int32, len(batch))
		ids      []uuid.UUID
		types    []string
		data     []json.RawMessage
		meta     []json.RawMessage
	)
	for i, r := range batch {
		streams[i], expected[i], counts[i] = r.stream, expectedCode(r.expected), int32(len(r.events))
		for j, e := range r.events {
			ids, types, data, meta = append(ids, e.ID), append(types, e.Type), append(data, e.Data), append(meta, r.meta[j])
		}
	}
	args := []any{streams, expected, counts, ids, types, data, meta}

	scan := func(q interface {
		Query(context.Context, string, ...any) (pgx.Rows, error)
	}) error {
		rows, err := q.Query(ctx, appendBatchSQL, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				idx     int32
				outcome string
				version int64
				txID    *uint64
				seq     *int64
				at      time.Time
			)
			if err := rows.Scan(&idx, &outcome, &version, &txID, &seq, &at); err != nil {
				return err
			}
			if idx < 1 || int(idx) > len(batch) {
				return fmt.Errorf("es_append_batch returned append %d of %d", idx, len(batch))
			}
			r := batch[idx-1]
			r.res, r.err = appendOutcome(r, outcome, version, txID, seq)
			if r.err == nil && !r.res.Replayed {
				r.res.RecordedAt = at
			}
		}
		return rows.Err()
	}

	if s.opts.beforeCommit == nil {
		return scan(s.pool)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := scan(tx); err != nil {
			return err
		}
		s.opts.beforeCommit(ctx)
		return nil
	})
}

// appendOutcome turns one es_append_locked row into Append's result.
func appendOutcome(r *appendRequest, outcome string, version int64, txID *uint64, seq *int64) (eventstore.AppendResult, error) {
	switch outcome {
	case outcomeAppended, outcomeIdempotent:
		if txID == nil || seq == nil {
			return eventstore.AppendResult{}, fmt.Errorf("append to %q: %s without a position", r.stream, outcome)
		}
		return eventstore.AppendResult{
			Version:  version,
			Position: eventstore.Position{Commit: *txID, Prepare: uint64(*seq)},
			Replayed: outcome == outcomeIdempotent,
		}, nil
	case outcomeWrongVersion:
		return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{StreamID: r.stream, Expected: r.expected, Actual: version}
	case outcomeDuplicate:
		return eventstore.AppendResult{}, fmt.Errorf("append to %q: %w: the events are stored but not as this append would store them", r.stream, eventstore.ErrDuplicateEventID)
	}
	return eventstore.AppendResult{}, fmt.Errorf("append to %q: unexpected outcome %q", r.stream, outcome)
}

// expectedCode encodes an ExpectedVersion for es_append_locked.
func expectedCode(e eventstore.ExpectedVersion) int64 {
	if v, ok := e.ExactVersion(); ok {
		return v
	}
	switch {
	case e.IsNoStream():
		return -2
	case e.IsStreamExists():
		return -3
	}
	return -1
}

// translateAppendError maps database errors to the port's errors.
func translateAppendError(stream string, expected eventstore.ExpectedVersion, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		switch pgErr.ConstraintName {
		case "events_event_id_key":
			return fmt.Errorf("append to %q: %w: %s", stream, eventstore.ErrDuplicateEventID, pgErr.Detail)
		case "events_stream_version_key":
			// Unreachable while the stream lock is held; kept so that the
			// database's own guarantee reaches callers as the right error.
			return &eventstore.WrongExpectedVersionError{StreamID: stream, Expected: expected, Actual: eventstore.NoVersion}
		}
	}
	return fmt.Errorf("append to %q: %w", stream, err)
}
