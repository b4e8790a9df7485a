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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/batch"
)

// Defaults for Options.
const (
	DefaultBatchSize      = 512
	DefaultPollInterval   = 500 * time.Millisecond
	DefaultNotifyChannel  = "orders_events"
	DefaultNotifyInterval = 5 * time.Millisecond
)

// Options tunes a Store. The zero value uses the defaults.
type Options struct {
	// BatchSize is the default page size of subscriptions.
	BatchSize int
	// PollInterval is how often an idle subscription looks for new events
	// when no notification arrives; notifications make it the upper bound on
	// delivery latency only when one is lost. It is at least
	// DeliveryInterval.
	PollInterval time.Duration
	// NotifyChannel is the LISTEN/NOTIFY channel that wakes subscribers.
	NotifyChannel string
	// NotifyInterval is the least time between two NOTIFYs: the longest an
	// append waits before subscribers in other processes hear of it.
	NotifyInterval time.Duration
	// DeliveryInterval is the least time between two wake-ups of this
	// Store's caught-up subscriptions, by its own appends and by
	// notifications alike (default eventstore.DefaultDeliveryInterval):
	// each wake-up reads a page of what arrived since the last one.
	DeliveryInterval time.Duration
	// Logger receives errors of the background notifier and listener.
	Logger *slog.Logger
	// AppendObserver, if set, is called after every Append with its
	// context, duration and error (for metrics and their exemplars).
	AppendObserver func(ctx context.Context, d time.Duration, err error)
	// BatchObserver, if set, is told how many appends each group commit
	// combined into one statement (for metrics).
	BatchObserver func(appends int)

	// MaxBatch caps the appends combined into one transaction.
	MaxBatch int
	// MaxInFlight caps the append transactions running at once.
	MaxInFlight int

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
	combiner *batch.Combiner[*appendRequest]
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
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.NotifyInterval <= 0 {
		opts.NotifyInterval = DefaultNotifyInterval
	}
	if opts.DeliveryInterval <= 0 {
		opts.DeliveryInterval = eventstore.DefaultDeliveryInterval
	}
	// A caught-up subscription reads at most once per DeliveryInterval,
	// by its poll too.
	opts.PollInterval = max(opts.PollInterval, opts.DeliveryInterval)
	if opts.NotifyChannel == "" {
		opts.NotifyChannel = DefaultNotifyChannel
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Names this Store's notifications (and those of its WithPool
	// siblings, which share its notifier and listener).
	origin := uuid.NewString()
	s := &Store{
		pool:     pool,
		opts:     opts,
		log:      log,
		notifier: newNotifier(pool, opts.NotifyChannel, origin, opts.NotifyInterval, log),
		listener: newListener(pool, opts.NotifyChannel, origin, opts.DeliveryInterval, log),
	}
	s.combiner = &batch.Combiner[*appendRequest]{Exec: s.execBatch, MaxBatch: opts.MaxBatch, MaxInFlight: opts.MaxInFlight}
	return s
}

// WithPool returns a Store that runs its statements (appends, reads) on
// pool, another pool on the same database (one whose connections have a
// statement_timeout for the request path, say), and shares s's
// notifications: an append through either wakes the subscribers of both
// at once and notifies other processes through s's notifier. Closing
// either closes the notifier.
func (s *Store) WithPool(pool *pgxpool.Pool) *Store {
	t := &Store{pool: pool, opts: s.opts, log: s.log, notifier: s.notifier, listener: s.listener}
	t.combiner = &batch.Combiner[*appendRequest]{Exec: t.execBatch, MaxBatch: s.opts.MaxBatch, MaxInFlight: s.opts.MaxInFlight}
	return t
}

// Close waits for background notifications to finish; appends after it
// notify no other process. Subscriptions end with their contexts.
func (s *Store) Close() {
	s.notifier.close()
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

// headSQL reads the position of the last event below the read fence (see
// readAllSQL): a backward scan of the primary key.
const headSQL = `SELECT tx_id, seq FROM events
 WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY tx_id DESC, seq DESC LIMIT 1`

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	var (
		p   eventstore.Position
		seq int64
	)
	err := s.pool.QueryRow(ctx, headSQL).Scan(&p.Commit, &seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Start, nil
	}
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("head: %w", err)
	}
	p.Prepare = uint64(seq)
	return p, nil
}
