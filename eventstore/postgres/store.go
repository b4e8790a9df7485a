// Package postgres is the PostgreSQL adapter of the event store port. The
// schema (table events and function es_append) comes from package
// migrations; docs/ARCHITECTURE.md explains the ordering technique.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/eventstore"
)

// Defaults for Options.
const (
	DefaultBatchSize     = 512
	DefaultPollInterval  = 500 * time.Millisecond
	DefaultNotifyChannel = "orders_events"
)

// Options tunes a Store. The zero value uses the defaults.
type Options struct {
	// BatchSize is the default page size of subscriptions.
	BatchSize int
	// PollInterval is how often an idle subscription looks for new events
	// when no notification arrives; notifications make it the upper bound on
	// delivery latency only when one is lost.
	PollInterval time.Duration
	// NotifyChannel is the LISTEN/NOTIFY channel that wakes subscribers.
	NotifyChannel string
	// Logger receives errors of the background notifier and listener.
	Logger *slog.Logger
	// AppendObserver, if set, is called after every Append with its duration
	// and error (for metrics).
	AppendObserver func(d time.Duration, err error)

	// beforeCommit, set only by tests, runs inside the append transaction
	// after the events are written and before the commit.
	beforeCommit func(ctx context.Context)
}

// Store is the PostgreSQL event store.
type Store struct {
	pool     *pgxpool.Pool
	opts     Options
	log      *slog.Logger
	notifier *notifier
	listener *listener
}

var _ eventstore.Store = (*Store)(nil)

// New returns a Store on pool, whose database must be migrated. Call Close
// to stop its background work.
func New(pool *pgxpool.Pool, opts Options) *Store {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.NotifyChannel == "" {
		opts.NotifyChannel = DefaultNotifyChannel
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{
		pool:     pool,
		opts:     opts,
		log:      log,
		notifier: newNotifier(pool, opts.NotifyChannel, log),
		listener: newListener(pool, opts.NotifyChannel, log),
	}
}

// Close waits for background notifications to finish. Subscriptions end
// with their contexts.
func (s *Store) Close() {
	s.notifier.wait()
}

// Outcomes reported by es_append.
const (
	outcomeAppended     = "appended"
	outcomeIdempotent   = "idempotent"
	outcomeWrongVersion = "wrong_version"
	outcomeDuplicate    = "duplicate"
)

// expectedCode encodes an ExpectedVersion for es_append.
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

const appendSQL = `SELECT outcome, stream_version, tx_id, seq FROM es_append($1, $2, $3, $4, $5, $6)`

// Append implements eventstore.Store. The whole append is one statement, so
// one round trip and one implicit transaction.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (res eventstore.AppendResult, err error) {
	if s.opts.AppendObserver != nil {
		start := time.Now()
		defer func() { s.opts.AppendObserver(time.Since(start), err) }()
	}
	events, err = eventstore.PrepareAppend(stream, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	ids := make([]uuid.UUID, len(events))
	types := make([]string, len(events))
	data := make([]json.RawMessage, len(events))
	meta := make([]json.RawMessage, len(events))
	for i, e := range events {
		ids[i], types[i], data[i] = e.ID, e.Type, e.Data
		if meta[i], err = json.Marshal(e.Metadata); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("append to %q: metadata: %w", stream, err)
		}
	}

	var (
		outcome string
		version int64
		txID    *uint64
		seq     *int64
	)
	args := []any{stream, expectedCode(expected), ids, types, data, meta}
	if s.opts.beforeCommit == nil {
		err = s.pool.QueryRow(ctx, appendSQL, args...).Scan(&outcome, &version, &txID, &seq)
	} else {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, appendSQL, args...).Scan(&outcome, &version, &txID, &seq); err != nil {
				return err
			}
			s.opts.beforeCommit(ctx)
			return nil
		})
	}
	if err != nil {
		return eventstore.AppendResult{}, translateAppendError(stream, expected, err)
	}

	switch outcome {
	case outcomeAppended, outcomeIdempotent:
		if outcome == outcomeAppended {
			s.notifier.poke()
		}
		return eventstore.AppendResult{
			Version:  version,
			Position: eventstore.Position{Commit: *txID, Prepare: uint64(*seq)},
		}, nil
	case outcomeWrongVersion:
		return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{StreamID: stream, Expected: expected, Actual: version}
	case outcomeDuplicate:
		return eventstore.AppendResult{}, fmt.Errorf("append to %q: %w: the events are stored but not as this append would store them", stream, eventstore.ErrDuplicateEventID)
	}
	return eventstore.AppendResult{}, fmt.Errorf("append to %q: unexpected outcome %q", stream, outcome)
}

// translateAppendError maps database errors to the port's errors.
func translateAppendError(stream string, expected eventstore.ExpectedVersion, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		switch pgErr.ConstraintName {
		case "events_event_id_key":
			return fmt.Errorf("append to %q: %w: %s", stream, eventstore.ErrDuplicateEventID, pgErr.Detail)
		case "events_stream_version_key":
			// Unreachable while es_append holds the stream lock; kept so
			// that the database's guarantee reaches callers as the right error.
			return &eventstore.WrongExpectedVersionError{StreamID: stream, Expected: expected, Actual: eventstore.NoVersion}
		}
	}
	return fmt.Errorf("append to %q: %w", stream, err)
}

const eventColumns = `event_id, stream_id, stream_version, tx_id, seq, event_type, data, metadata, recorded_at`

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("read stream %q: limit must be positive", stream)
	}
	var sql string
	if dir == eventstore.Backward {
		if from < 0 {
			from = math.MaxInt64
		}
		sql = `SELECT ` + eventColumns + ` FROM events
		        WHERE stream_id = $1 AND stream_version <= $2
		        ORDER BY stream_version DESC LIMIT $3`
	} else {
		from = max(from, 0)
		sql = `SELECT ` + eventColumns + ` FROM events
		        WHERE stream_id = $1 AND stream_version >= $2
		        ORDER BY stream_version LIMIT $3`
	}
	rows, err := s.pool.Query(ctx, sql, stream, from, limit)
	if err != nil {
		return nil, fmt.Errorf("read stream %q: %w", stream, err)
	}
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("read stream %q: %w", stream, err)
	}
	if len(events) == 0 {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE stream_id = $1)`, stream).Scan(&exists); err != nil {
			return nil, fmt.Errorf("read stream %q: %w", stream, err)
		}
		if !exists {
			return nil, fmt.Errorf("read stream %q: %w", stream, eventstore.ErrStreamNotFound)
		}
	}
	return events, nil
}

func scanEvent(row pgx.CollectableRow) (eventstore.RecordedEvent, error) {
	var (
		e    eventstore.RecordedEvent
		seq  int64
		meta []byte
	)
	if err := row.Scan(&e.ID, &e.StreamID, &e.Version, &e.Position.Commit, &seq, &e.Type, &e.Data, &meta, &e.RecordedAt); err != nil {
		return e, err
	}
	e.Position.Prepare = uint64(seq)
	if err := json.Unmarshal(meta, &e.Metadata); err != nil {
		return e, fmt.Errorf("event %s: metadata: %w", e.ID, err)
	}
	return e, nil
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	var (
		p   eventstore.Position
		seq int64
	)
	err := s.pool.QueryRow(ctx, `SELECT tx_id, seq FROM events
	     WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
	     ORDER BY tx_id DESC, seq DESC LIMIT 1`).Scan(&p.Commit, &seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Start, nil
	}
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("head: %w", err)
	}
	p.Prepare = uint64(seq)
	return p, nil
}
