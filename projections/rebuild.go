package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/eventstore"
)

// Rebuildable is a projector that can build its read model into another
// table, so that a rebuild never touches the live one until the swap.
type Rebuildable interface {
	Projector
	// WithTable returns the same projector writing to table.
	WithTable(table string) Projector
	// Tables returns the live table(s) the projector writes.
	Tables() []string
}

// AllReader reads the global event log, and how much of it lies ahead (for
// the progress bar).
type AllReader interface {
	ReadAll(ctx context.Context, from eventstore.Position, limit int, filter eventstore.Filter) (eventstore.Page, error)
	BacklogReader
}

// ErrRebuildRunning: another rebuild of the projection holds its lock.
var ErrRebuildRunning = errors.New("a rebuild of this projection is already running")

// RebuildOptions tunes a rebuild.
type RebuildOptions struct {
	// BatchSize is how many events are read and applied per transaction
	// (default 5000).
	BatchSize int
	// Restart drops an interrupted rebuild's work instead of resuming it.
	Restart bool
	// Progress, if set, is told after every batch how many events have been
	// read and how many there were to read when the rebuild began, or -1
	// for total while that is unknown: more than MaxCount (the last call,
	// once the rebuild has read everything, always has a total).
	Progress func(done, total int64)
	// MaxCount caps the count of the events to read that gives Progress
	// its total (default DefaultMaxBehind), so that the count costs the
	// same however long the history: an event store that counts by
	// reading the events (KurrentDB) would otherwise read the whole log
	// twice. Without Progress nothing is counted.
	MaxCount int
	// EventStore is the kind of event store that store is ("" means
	// DefaultEventStore). The rebuilt projection's checkpoint belongs to
	// it, whatever the live one's did: a rebuild is how a projection moves
	// to another event store. An interrupted rebuild of another kind of
	// event store starts over.
	EventStore string
	Logger     *slog.Logger

	// beforeSwap, set only by tests, runs once the shadow has reached the
	// head, just before the swap.
	beforeSwap func(ctx context.Context)
}

// RebuildResult describes a finished rebuild.
type RebuildResult struct {
	Events   int64
	Duration time.Duration
	// Checkpoint is where the live projection carries on from.
	Checkpoint eventstore.Position
}

// Rebuild rebuilds proj's read model with zero downtime:
//
//  1. it builds a shadow table (<table>_rb_<n>) from the first event, with
//     its own checkpoint, while the live projection keeps serving;
//  2. once the shadow has caught up with the head, it locks the live table
//     briefly, applies what the live projection got to in the meantime,
//     swaps the tables by renaming and hands the live checkpoint the
//     shadow's position, all in one transaction: readers see the old model
//     or the new one, never a half-built one;
//  3. the live runner carries on from there (the swap bumps the checkpoint's
//     generation, so a runner of the old generation cannot move it).
//
// An interrupted rebuild resumes where it stopped; two at once are refused
// with ErrRebuildRunning.
//
// When the live checkpoint belongs to another kind of event store than
// store (opts.EventStore), the swap does not compare positions with it:
// the live runner, which reads the other store, has refused to run since
// (ErrOtherEventStore), or is deposed by the swap.
func Rebuild(ctx context.Context, pool *pgxpool.Pool, store AllReader, proj Rebuildable, opts RebuildOptions) (RebuildResult, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 5000
	}
	if opts.MaxCount <= 0 {
		opts.MaxCount = DefaultMaxBehind
	}
	eventStore := eventStoreOr(opts.EventStore)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	name := proj.Name()
	ctx = withLogger(ctx, log.With("projection", name, "rebuild", true))
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return RebuildResult{}, err
	}
	defer func() { _ = conn.Hijack().Close(context.WithoutCancel(ctx)) }()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey("rebuild:"+name)).Scan(&locked); err != nil {
		return RebuildResult{}, err
	}
	if !locked {
		return RebuildResult{}, fmt.Errorf("%w: %s", ErrRebuildRunning, name)
	}
	// Unlock explicitly before the connection closes: the server drops a
	// closed session's locks only once its backend has exited, a moment
	// later, and a rebuild resumed at once must not find the lock still held.
	defer func() {
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(unlockCtx, `SELECT pg_advisory_unlock($1)`, lockKey("rebuild:"+name))
	}()

	live := proj.Tables()[0]
	shadowName := name + "#rebuild"
	liveID := pgx.Identifier{live}.Sanitize()
	// dropShadow drops an interrupted rebuild's work.
	dropShadow := func() error {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var previous string
			err := tx.QueryRow(ctx, `DELETE FROM projection_checkpoints WHERE name = $1 RETURNING shadow_table`, shadowName).Scan(&previous)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && previous == "") {
				return nil
			}
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{previous}.Sanitize())
			return err
		})
		if err != nil {
			return fmt.Errorf("rebuild %s: restart: %w", name, err)
		}
		return nil
	}
	if opts.Restart {
		if err := dropShadow(); err != nil {
			return RebuildResult{}, err
		}
	}
	var (
		c, p                     int64
		shadow, shadowEventStore string
	)
	// openShadow reads the shadow's checkpoint, creating it if there is
	// none. A fresh shadow gets a fresh name, so that the index names
	// PostgreSQL derives from it never collide with those of an earlier
	// rebuild.
	openShadow := func() error {
		fresh := fmt.Sprintf("%s_rb_%d", live, time.Now().UnixNano())
		if _, err := conn.Exec(ctx, `INSERT INTO projection_checkpoints (name, shadow_table, event_store) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
			shadowName, fresh, eventStore); err != nil {
			return err
		}
		return conn.QueryRow(ctx, `SELECT position_commit, position_prepare, shadow_table, event_store FROM projection_checkpoints WHERE name = $1`,
			shadowName).Scan(&c, &p, &shadow, &shadowEventStore)
	}
	if err := openShadow(); err != nil {
		return RebuildResult{}, err
	}
	if shadowEventStore != eventStore {
		// Its position means nothing in this event store.
		log.InfoContext(ctx, "an interrupted rebuild read another event store: starting over", "projection", name,
			"interrupted_event_store", shadowEventStore, "event_store", eventStore)
		if err := dropShadow(); err != nil {
			return RebuildResult{}, err
		}
		if err := openShadow(); err != nil {
			return RebuildResult{}, err
		}
	}
	shadowID := pgx.Identifier{shadow}.Sanitize()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+shadowID+` (LIKE `+liveID+` INCLUDING ALL)`); err != nil {
		return RebuildResult{}, fmt.Errorf("shadow table: %w", err)
	}
	pos := eventstore.Position{Commit: uint64(c), Prepare: uint64(p)}
	if pos != eventstore.Start {
		log.InfoContext(ctx, "resuming rebuild", "projection", name, "from", pos.String(), "shadow", shadow)
	}
	// total is how many events there are to read, -1 when more than
	// MaxCount (unknown).
	var total int64 = -1
	if opts.Progress != nil {
		ahead, err := store.Backlog(ctx, pos, opts.MaxCount)
		if err != nil {
			return RebuildResult{}, err
		}
		if ahead.Events < int64(opts.MaxCount) {
			total = ahead.Events
		}
	}

	target := proj.WithTable(shadow)
	var done int64
	// applyPage applies one page to the shadow inside tx and records the
	// shadow's checkpoint there too.
	applyPage := func(tx pgx.Tx, page eventstore.Page) error {
		if len(page.Events) > 0 {
			if err := target.Apply(ctx, tx, page.Events); err != nil {
				return fmt.Errorf("rebuild %s after %s: %w", name, pos, err)
			}
		}
		_, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET position_commit = $2, position_prepare = $3, updated_at = now() WHERE name = $1`,
			shadowName, int64(page.Next.Commit), int64(page.Next.Prepare))
		return err
	}

	// 1. Build the shadow up to the head.
	for {
		page, err := store.ReadAll(ctx, pos, opts.BatchSize, target.Filter())
		if err != nil {
			return RebuildResult{}, err
		}
		// Planned for their values and committed without waiting for the
		// flush, as the runner's batches are (batchBegin): the shadow
		// grows from empty, and a plan fixed while it was small would
		// read all of it for every page.
		if err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{BeginQuery: batchBegin}, func(tx pgx.Tx) error { return applyPage(tx, page) }); err != nil {
			return RebuildResult{}, err
		}
		pos, done = page.Next, done+int64(page.Scanned)
		if opts.Progress != nil {
			if total < 0 {
				opts.Progress(done, -1)
			} else {
				opts.Progress(done, max(total, done))
			}
		}
		if page.AtEnd {
			break
		}
	}

	if opts.beforeSwap != nil {
		opts.beforeSwap(ctx)
	}
	// 2. Swap under a short exclusive lock, its catch-up pages planned for
	// their values too (the swap itself commits durably).
	err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{BeginQuery: swapBegin}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE `+liveID+` IN ACCESS EXCLUSIVE MODE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO projection_checkpoints (name, event_store) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
			name, eventStore); err != nil {
			return err
		}
		var (
			lc, lp         int64
			liveEventStore string
		)
		if err := tx.QueryRow(ctx, `SELECT position_commit, position_prepare, event_store FROM projection_checkpoints WHERE name = $1 FOR UPDATE`,
			name).Scan(&lc, &lp, &liveEventStore); err != nil {
			return err
		}
		liveAt := eventstore.Position{Commit: uint64(lc), Prepare: uint64(lp)}
		if liveEventStore != eventStore {
			// A position in another event store: nothing to catch up with.
			log.InfoContext(ctx, "rebuild moves the projection to another event store", "projection", name,
				"from_event_store", liveEventStore, "from", liveAt.String(), "event_store", eventStore)
			liveAt = eventstore.Start
		}
		for pos.Less(liveAt) { // the live projection got further meanwhile
			page, err := store.ReadAll(ctx, pos, opts.BatchSize, target.Filter())
			if err != nil {
				return err
			}
			if err := applyPage(tx, page); err != nil {
				return err
			}
			pos, done = page.Next, done+int64(page.Scanned)
			if page.AtEnd && pos.Less(liveAt) {
				return fmt.Errorf("rebuild %s: the log ends at %s, before the live checkpoint %s", name, pos, liveAt)
			}
		}
		old := pgx.Identifier{live + "_old"}.Sanitize()
		for _, stmt := range []string{
			`DROP TABLE IF EXISTS ` + old,
			`ALTER TABLE ` + liveID + ` RENAME TO ` + pgx.Identifier{live + "_old"}.Sanitize(),
			`ALTER TABLE ` + shadowID + ` RENAME TO ` + liveID,
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE projection_checkpoints
		       SET position_commit = $2, position_prepare = $3, event_store = $4, generation = generation + 1, state = 'running', error = '', updated_at = now()
		     WHERE name = $1`, name, int64(pos.Commit), int64(pos.Prepare), eventStore); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM projection_checkpoints WHERE name = $1`, shadowName); err != nil {
			return err
		}
		// Wake read-your-writes waiters: the live model just jumped ahead.
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, name)
		return err
	})
	if err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild %s: swap: %w", name, err)
	}
	// Queries that waited on the old table finish against it; drop it after.
	if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{live + "_old"}.Sanitize()); err != nil {
		log.WarnContext(ctx, "rebuild: could not drop the old table", "table", live+"_old", "error", err)
	}
	if opts.Progress != nil {
		opts.Progress(done, done)
	}
	return RebuildResult{Events: done, Duration: time.Since(start), Checkpoint: pos}, nil
}

// swapBegin begins a rebuild's swap: its statements planned for their
// values, as batches are (batchBegin), and its commit waiting for the WAL
// flush like any other.
const swapBegin = `BEGIN; SET LOCAL plan_cache_mode = force_custom_plan`
