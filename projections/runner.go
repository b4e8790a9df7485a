// Package projections turns the event stream into PostgreSQL read models.
//
// A Runner keeps one projection up to date: it subscribes to all events from
// the projection's checkpoint and applies them in batches, writing the
// read-model rows and the checkpoint in the same transaction, so a crash at
// any point neither loses nor double-applies an event. Exactly one Runner per
// projection is active across instances: leadership is a PostgreSQL advisory
// lock held by a dedicated connection, and the batches run on that very
// connection, so losing the connection loses the lock and the transaction
// together. The checkpoint update is also a compare-and-set on the previous
// position: a deposed leader cannot move it, backwards or forwards.
package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/pause"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/internal/tracing"
)

// Projector applies events to one read model.
type Projector interface {
	// Name identifies the projection (its checkpoint row and leader lock).
	Name() string
	// Filter selects the events the projection needs.
	Filter() eventstore.Filter
	// Apply applies events, in order, within tx.
	Apply(ctx context.Context, tx pgx.Tx, events []eventstore.RecordedEvent) error
}

// Subscriber is what a Runner needs from the event store.
type Subscriber interface {
	Subscribe(ctx context.Context, from eventstore.Position, opts eventstore.SubscribeOptions, handle eventstore.BatchHandler) error
}

// Errors callers branch on.
var (
	// ErrDeposed: another runner moved the checkpoint; this one is no longer
	// the leader.
	ErrDeposed = errors.New("projection checkpoint moved by another runner")
	// ErrPoisoned: a batch kept failing; the projection is stopped and
	// marked failed.
	ErrPoisoned = errors.New("projection stopped on an event that keeps failing")
)

// Options tunes a Runner.
type Options struct {
	// BatchSize caps the events per transaction (default 500).
	BatchSize int
	// Attempts is how often a failing batch is tried before the projection
	// stops (default 5), with backoff from RetryDelay (default 100ms).
	Attempts   int
	RetryDelay time.Duration
	// LeaderPoll is how often a standby tries to become leader (default 1s).
	LeaderPoll time.Duration
	Logger     *slog.Logger
	// OnApplied, if set, is told the checkpoint after every committed batch.
	OnApplied func(name string, checkpoint eventstore.Position)
	// OnFailed, if set, is told when the projection stops on a poison event.
	OnFailed func(name string, err error)
	// EventStore is the kind of event store the runner subscribes to
	// ("" means DefaultEventStore), recorded with a new checkpoint. A
	// checkpoint of another kind is a position that means nothing here:
	// the runner refuses it (ErrOtherEventStore) until a rebuild gives the
	// projection a checkpoint of this kind.
	EventStore string
	// TracerProvider, if set, gives every batch a span, continuing the
	// trace its events were written in or linked to theirs
	// (tracing.StartBatch).
	TracerProvider trace.TracerProvider
}

// Runner runs one projection.
type Runner struct {
	pool   *pgxpool.Pool
	store  Subscriber
	proj   Projector
	opts   Options
	log    *slog.Logger
	tracer trace.Tracer
	// stopped is set by Run (its goroutine only) while the projection
	// stays stopped: lead then looks at it again every few polls without
	// announcing it each time.
	stopped bool
}

// NewRunner returns a Runner of proj over the read-model database pool and
// the event store.
func NewRunner(pool *pgxpool.Pool, store Subscriber, proj Projector, opts Options) *Runner {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = 100 * time.Millisecond
	}
	if opts.LeaderPoll <= 0 {
		opts.LeaderPoll = time.Second
	}
	opts.EventStore = eventStoreOr(opts.EventStore)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{pool: pool, store: store, proj: proj, opts: opts, log: log.With("projection", proj.Name()), tracer: tracing.Tracer(opts.TracerProvider)}
}

// lockKey is the advisory lock that makes a runner the projection's leader.
func lockKey(name string) int64 { return pg.LockKey("orders.projection." + name) }

// Run keeps the projection up to date until ctx ends; it always returns
// nil then. While another instance leads, it waits as a standby; when the
// leader's connection dies, it takes over. A poisoned projection stays
// stopped (OnFailed has been told) until its checkpoint is reset, which a
// rebuild does; the runner then carries on by itself. So does one whose
// checkpoint belongs to another event store (ErrOtherEventStore), once a
// rebuild has given it one of this runner's.
func (r *Runner) Run(ctx context.Context) error {
	reported := false
	var failing logging.Repeats
	for {
		began := time.Now()
		r.stopped = reported
		err := r.lead(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(began) >= logging.RepeatInterval {
			failing.Reset() // it worked for a while: a new failure is news
		}
		delay := r.opts.LeaderPoll
		switch {
		case errors.Is(err, ErrDeposed):
			r.log.InfoContext(ctx, "projection runner deposed; starting over", "error", err)
			continue
		case errors.Is(err, ErrPoisoned):
			if !reported {
				r.log.ErrorContext(ctx, "projection stopped; rebuild it after fixing the cause", "error", err)
				reported = true
			}
			delay = 5 * r.opts.LeaderPoll
		case errors.Is(err, ErrOtherEventStore):
			if !reported {
				r.log.ErrorContext(ctx, "projection stopped: its checkpoint belongs to another event store; rebuild it from this one", "error", err)
				reported = true
			}
			delay = 5 * r.opts.LeaderPoll
		case errors.Is(err, eventstore.ErrPositionNotInStore):
			// Marked failed (lead): from now on the checkpoint reads as
			// ErrPoisoned, reported here once.
			if !reported {
				r.log.ErrorContext(ctx, "projection stopped: its checkpoint is not in the event store's log", "error", err)
				reported = true
			}
			delay = 5 * r.opts.LeaderPoll
		case err != nil:
			reported = false
			failing.Failed(ctx, r.log, "projection runner lost its footing; retrying", "error", err)
		}
		if pause.For(ctx, delay) != nil {
			return nil
		}
	}
}

// lead waits for leadership, then applies events until something fails.
func (r *Runner) lead(ctx context.Context) error {
	return pg.Lead(ctx, r.pool, lockKey(r.proj.Name()), r.opts.LeaderPoll, func(ctx context.Context, conn *pgx.Conn) error {
		level := slog.LevelInfo
		if r.stopped {
			level = slog.LevelDebug // leading a stopped projection again, to see whether a rebuild has reset it
		}
		r.log.Log(ctx, level, "projection leader")
		from, gen, err := r.checkpoint(ctx, conn)
		if err != nil {
			return err
		}
		err = r.store.Subscribe(ctx, from, eventstore.SubscribeOptions{Filter: r.proj.Filter(), BatchSize: r.opts.BatchSize},
			func(ctx context.Context, b eventstore.Batch) error {
				err := r.applyTraced(ctx, conn, from, gen, b)
				if err == nil {
					from = b.Checkpoint
					if r.opts.OnApplied != nil {
						r.opts.OnApplied(r.proj.Name(), b.Checkpoint)
					}
				}
				return err
			})
		if errors.Is(err, eventstore.ErrPositionNotInStore) && ctx.Err() == nil {
			return r.failNotInStore(ctx, conn, from, gen, err)
		}
		return err
	})
}

// NotInStoreMessage is the error recorded for, and shown of, a projection
// whose checkpoint the event store does not hold
// (eventstore.ErrPositionNotInStore).
func NotInStoreMessage(checkpoint eventstore.Position) string {
	return fmt.Sprintf("checkpoint %s is beyond the event store's head or not in its log: "+
		"the store lost data or EVENTSTORE_URL points at another store; rebuild the projection", checkpoint)
}

// failNotInStore marks the projection failed at from, a checkpoint the
// event store does not hold: carrying on would skip events or fail
// forever. Like a poison event it waits for an operator (a rebuild), and
// OnFailed is told.
func (r *Runner) failNotInStore(ctx context.Context, conn *pgx.Conn, from eventstore.Position, gen int64, err error) error {
	msg := NotInStoreMessage(from)
	if ferr := r.markFailed(ctx, conn, from, gen, msg, err); ferr != nil {
		return ferr
	}
	return fmt.Errorf("projection %s: %s: %w", r.proj.Name(), msg, err)
}

// markFailed records that the projection stopped at from (of generation
// gen) with msg, by compare-and-set, and tells OnFailed of err. It fails
// with ErrDeposed when someone else moved the projection on (a rebuild
// swapped it in): this runner's failure no longer describes it.
func (r *Runner) markFailed(ctx context.Context, conn *pgx.Conn, from eventstore.Position, gen int64, msg string, err error) error {
	tag, uerr := conn.Exec(ctx, `UPDATE projection_checkpoints SET state = $2, error = $3, updated_at = now()
	      WHERE name = $1 AND generation = $4 AND position_commit = $5 AND position_prepare = $6 AND state = 'running'`,
		r.proj.Name(), StateFailed, msg, gen, int64(from.Commit), int64(from.Prepare))
	if uerr != nil {
		return fmt.Errorf("projection %s could not record its failure (%v): %w", r.proj.Name(), uerr, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%w: %s is no longer at %s: %v", ErrDeposed, r.proj.Name(), from, err)
	}
	if r.opts.OnFailed != nil {
		r.opts.OnFailed(r.proj.Name(), err)
	}
	return nil
}

// checkpoint reads (creating if needed) the projection's checkpoint; a
// failed projection stays stopped until an operator resets it, and one of
// another event store until a rebuild replaces it.
func (r *Runner) checkpoint(ctx context.Context, conn *pgx.Conn) (eventstore.Position, int64, error) {
	var (
		commit, prepare, gen   int64
		state, msg, eventStore string
	)
	if _, err := conn.Exec(ctx, `INSERT INTO projection_checkpoints (name, event_store) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		r.proj.Name(), r.opts.EventStore); err != nil {
		return eventstore.Position{}, 0, fmt.Errorf("projection %s: %w", r.proj.Name(), err)
	}
	if err := conn.QueryRow(ctx, `SELECT position_commit, position_prepare, generation, state, error, event_store FROM projection_checkpoints WHERE name = $1`,
		r.proj.Name()).Scan(&commit, &prepare, &gen, &state, &msg, &eventStore); err != nil {
		return eventstore.Position{}, 0, fmt.Errorf("projection %s: %w", r.proj.Name(), err)
	}
	if eventStore != r.opts.EventStore {
		return eventstore.Position{}, 0, &OtherEventStoreError{Name: r.proj.Name(), Recorded: eventStore, Configured: r.opts.EventStore}
	}
	if state == StateFailed {
		return eventstore.Position{}, 0, fmt.Errorf("%w: %s (stopped earlier: %s)", ErrPoisoned, r.proj.Name(), msg)
	}
	return eventstore.Position{Commit: uint64(commit), Prepare: uint64(prepare)}, gen, nil
}

// Projection states.
const (
	StateRunning = "running"
	StateFailed  = "failed"
)

// applyTraced is applyWithRetry in a span of its own (tracing.StartBatch)
// when the batch has events: those of one order continue its trace, a
// batch of many links to theirs.
func (r *Runner) applyTraced(ctx context.Context, conn *pgx.Conn, from eventstore.Position, gen int64, b eventstore.Batch) error {
	if len(b.Events) == 0 || r.opts.TracerProvider == nil {
		return r.applyWithRetry(ctx, conn, from, gen, b)
	}
	ctx, span := tracing.StartBatch(ctx, r.tracer, "projection "+r.proj.Name(), b.Events, trace.WithAttributes(
		attrProjection.String(r.proj.Name()), tracing.AttrEvents.Int(len(b.Events)), attrCheckpoint.String(b.Checkpoint.String())))
	err := r.applyWithRetry(ctx, conn, from, gen, b)
	tracing.End(span, err)
	return err
}

// The attributes of a batch's span.
const (
	attrProjection = attribute.Key("projection.name")
	attrCheckpoint = attribute.Key("projection.checkpoint")
)

// applyWithRetry applies a batch, retrying a failing one. Failures of the
// database itself (connection, deadlock, timeout, resources) are retried
// for as long as they last; any other failure is retried a few times and
// then marks the projection failed.
func (r *Runner) applyWithRetry(ctx context.Context, conn *pgx.Conn, from eventstore.Position, gen int64, b eventstore.Batch) error {
	delay := r.opts.RetryDelay
	var err error
	for attempt := 1; ; {
		err = r.apply(ctx, conn, from, gen, b)
		if err == nil || errors.Is(err, ErrDeposed) || ctx.Err() != nil || conn.IsClosed() {
			return err
		}
		r.log.WarnContext(ctx, "projection batch failed", "attempt", attempt, "from", from.String(), "error", err)
		if !transient(err) {
			if attempt >= r.opts.Attempts {
				break
			}
			attempt++
		}
		if perr := pause.For(ctx, delay); perr != nil {
			return perr
		}
		delay = min(2*delay, 5*time.Second)
	}
	first := ""
	if len(b.Events) > 0 {
		first = fmt.Sprintf(" (batch starts at %s@%d, %s)", b.Events[0].StreamID, b.Events[0].Version, b.Events[0].Type)
	}
	msg := fmt.Sprintf("after %s%s: %v", from, first, err)
	if ferr := r.markFailed(ctx, conn, from, gen, msg, err); ferr != nil {
		return ferr
	}
	return fmt.Errorf("%w: %s %s", ErrPoisoned, r.proj.Name(), msg)
}

// transient reports whether err is the database's trouble rather than the
// batch's: worth retrying for as long as it lasts.
func transient(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code[:2] {
	case "08", // connection exception
		"40", // transaction rollback: deadlock, serialization
		"53", // insufficient resources: disk full, out of memory, too many connections
		"55", // object not in prerequisite state: lock not available
		"57": // operator intervention: statement timeout, shutdown
		return true
	}
	return false
}

// batchTimeout bounds one batch's transaction. A batch under way when the
// runner is stopped is finished, not abandoned (a graceful shutdown).
const batchTimeout = 30 * time.Second

// apply runs one batch and moves the checkpoint from from to the batch's,
// in one transaction: a round trip to begin it, the projection's
// statements, one to move the checkpoint, one to commit. A batch without
// events (the store read only events the filter skips) is the checkpoint's
// statement alone.
func (r *Runner) apply(ctx context.Context, conn *pgx.Conn, from eventstore.Position, gen int64, b eventstore.Batch) error {
	ctx, cancel := context.WithTimeout(withLogger(context.WithoutCancel(ctx), r.log), batchTimeout)
	defer cancel()
	if len(b.Events) == 0 {
		return r.moveCheckpoint(ctx, conn, from, gen, b.Checkpoint)
	}
	return pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{BeginQuery: batchBegin}, func(tx pgx.Tx) error {
		if err := r.proj.Apply(ctx, tx, b.Events); err != nil {
			return err
		}
		return r.moveCheckpoint(ctx, tx, from, gen, b.Checkpoint)
	})
}

// batchBegin begins a batch's transaction, in one round trip, with the
// settings its statements run under:
//
//   - The batch and its checkpoint commit without waiting for the WAL to
//     reach the disk: a crash of PostgreSQL may undo the last batches of
//     every projection, each with its checkpoint (commits are lost as a
//     suffix of the WAL, never one without the other), and the runner
//     applies them again from the event store. Waiting for the flush would
//     add an fsync per batch of each projection to the ones the appends of
//     the request path queue behind.
//   - Every statement is planned for its values. A read model starts empty;
//     a statement prepared while its table was small keeps a generic plan
//     that reads the whole table (a lookup of a batch's rows by id became a
//     sequential scan of 9 ms on 9,000 orders a minute after a deployment)
//     until autovacuum first analyzes the table. A batch runs a few
//     statements, so planning each costs little.
const batchBegin = `BEGIN; SET LOCAL synchronous_commit = off; SET LOCAL plan_cache_mode = force_custom_plan`

// checkpointSQL moves the checkpoint of projection $1 from ($4, $5) of
// generation $6 to ($2, $3) and notifies channel $7 of it, waking
// read-your-writes waiters in every process once it commits (one
// notifying transaction per batch of one projection: the notification
// lock it takes at commit is not contended). Alone, as the statement of a
// batch without events, it commits without waiting for the WAL flush too
// (see batchBegin). It returns no row when another runner moved the
// checkpoint.
const checkpointSQL = `
	WITH moved AS (
	    UPDATE projection_checkpoints
	       SET position_commit = $2, position_prepare = $3, updated_at = now()
	     WHERE name = $1 AND position_commit = $4 AND position_prepare = $5 AND generation = $6 AND state = 'running'
	 RETURNING name)
	SELECT pg_notify($7, name), set_config('synchronous_commit', 'off', true) FROM moved`

// execer is what moveCheckpoint runs on: the leader's connection or a
// batch's transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// moveCheckpoint runs checkpointSQL; ErrDeposed if another runner moved
// the checkpoint.
func (r *Runner) moveCheckpoint(ctx context.Context, db execer, from eventstore.Position, gen int64, to eventstore.Position) error {
	tag, err := db.Exec(ctx, checkpointSQL, r.proj.Name(), int64(to.Commit), int64(to.Prepare),
		int64(from.Commit), int64(from.Prepare), gen, NotifyChannel)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%w: %s expected at %s", ErrDeposed, r.proj.Name(), from)
	}
	return nil
}
