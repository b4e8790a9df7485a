package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
	// read and how many there were to read when the rebuild began.
	Progress func(done, total int64)
	Logger   *slog.Logger

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
func Rebuild(ctx context.Context, pool *pgxpool.Pool, store AllReader, proj Rebuildable, opts RebuildOptions) (RebuildResult, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 5000
	}
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
	if opts.Restart {
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
			return RebuildResult{}, fmt.Errorf("rebuild %s: restart: %w", name, err)
		}
	}
	// A fresh shadow gets a fresh name, so that the index names PostgreSQL
	// derives from it never collide with those of an earlier rebuild.
	fresh := fmt.Sprintf("%s_rb_%d", live, time.Now().UnixNano())
	if _, err := conn.Exec(ctx, `INSERT INTO projection_checkpoints (name, shadow_table) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		shadowName, fresh); err != nil {
		return RebuildResult{}, err
	}
	var (
		c, p   int64
		shadow string
	)
	if err := conn.QueryRow(ctx, `SELECT position_commit, position_prepare, shadow_table FROM projection_checkpoints WHERE name = $1`,
		shadowName).Scan(&c, &p, &shadow); err != nil {
		return RebuildResult{}, err
	}
	shadowID := pgx.Identifier{shadow}.Sanitize()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+shadowID+` (LIKE `+liveID+` INCLUDING ALL)`); err != nil {
		return RebuildResult{}, fmt.Errorf("shadow table: %w", err)
	}
	pos := eventstore.Position{Commit: uint64(c), Prepare: uint64(p)}
	if pos != eventstore.Start {
		log.InfoContext(ctx, "resuming rebuild", "projection", name, "from", pos.String(), "shadow", shadow)
	}
	ahead, err := store.Backlog(ctx, pos, math.MaxInt32)
	if err != nil {
		return RebuildResult{}, err
	}
	total := ahead.Events

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
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return applyPage(tx, page) }); err != nil {
			return RebuildResult{}, err
		}
		pos, done = page.Next, done+int64(page.Scanned)
		if opts.Progress != nil {
			opts.Progress(done, max(total, done))
		}
		if page.AtEnd {
			break
		}
	}

	if opts.beforeSwap != nil {
		opts.beforeSwap(ctx)
	}
	// 2. Swap under a short exclusive lock.
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE `+liveID+` IN ACCESS EXCLUSIVE MODE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, name); err != nil {
			return err
		}
		var lc, lp int64
		if err := tx.QueryRow(ctx, `SELECT position_commit, position_prepare FROM projection_checkpoints WHERE name = $1 FOR UPDATE`, name).Scan(&lc, &lp); err != nil {
			return err
		}
		liveAt := eventstore.Position{Commit: uint64(lc), Prepare: uint64(lp)}
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
		       SET position_commit = $2, position_prepare = $3, generation = generation + 1, state = 'running', error = '', updated_at = now()
		     WHERE name = $1`, name, int64(pos.Commit), int64(pos.Prepare)); err != nil {
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
		opts.Progress(done, max(total, done))
	}
	return RebuildResult{Events: done, Duration: time.Since(start), Checkpoint: pos}, nil
}
