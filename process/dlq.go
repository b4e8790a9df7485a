package process

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/projections"
)

// ErrNotParked: no parked step has that id.
var ErrNotParked = errors.New("no parked step with that id")

// DeadLetter is a parked step: it failed on every attempt and waits for an
// operator to retry or discard it.
type DeadLetter struct {
	ID            uuid.UUID `json:"id"`
	Kind          string    `json:"kind"`
	OrderID       uuid.UUID `json:"order_id"`
	Attempts      int       `json:"attempts"`
	LastError     string    `json:"last_error"`
	CorrelationID string    `json:"correlation_id"`
	CreatedAt     time.Time `json:"created_at"`
	ParkedAt      time.Time `json:"parked_at"`
}

// DeadLetters lists parked steps, oldest first.
func DeadLetters(ctx context.Context, pool *pgxpool.Pool, limit int) ([]DeadLetter, error) {
	rows, err := pool.Query(ctx, `
		SELECT id, kind, order_id, attempts, last_error, correlation_id, created_at, updated_at
		  FROM process_tasks WHERE state = 'parked' ORDER BY updated_at, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeadLetter, error) {
		var d DeadLetter
		err := row.Scan(&d.ID, &d.Kind, &d.OrderID, &d.Attempts, &d.LastError, &d.CorrelationID, &d.CreatedAt, &d.ParkedAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return list, nil
}

// RetryDeadLetter makes a parked step due at now. It runs once more: if it
// fails again, it is parked again at once.
func RetryDeadLetter(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID, now time.Time) error {
	tag, err := pool.Exec(ctx, `
		UPDATE process_tasks SET state = 'pending', due_at = $2, lease_id = NULL, lease_until = NULL, updated_at = now()
		 WHERE id = $1 AND state = 'parked'`, id, now)
	if err != nil {
		return fmt.Errorf("retry dead letter %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %s", ErrNotParked, id)
	}
	return nil
}

// DiscardDeadLetter deletes a parked step for good and returns it.
func DiscardDeadLetter(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID) (DeadLetter, error) {
	var d DeadLetter
	err := pool.QueryRow(ctx, `
		DELETE FROM process_tasks WHERE id = $1 AND state = 'parked'
		RETURNING id, kind, order_id, attempts, last_error, correlation_id, created_at, updated_at`, id).
		Scan(&d.ID, &d.Kind, &d.OrderID, &d.Attempts, &d.LastError, &d.CorrelationID, &d.CreatedAt, &d.ParkedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return DeadLetter{}, fmt.Errorf("%w: %s", ErrNotParked, id)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("discard dead letter %s: %w", id, err)
	}
	return d, nil
}

// Backlog counts the work list.
type Backlog struct {
	// Due is the steps due now or waiting to be retried.
	Due int64
	// Scheduled is the steps due later that are not retries (payment
	// timeouts of open orders).
	Scheduled int64
	// Parked is the dead-letter list.
	Parked int64
	// OldestDue is the due time of the step due longest (waiting or
	// running); zero when none is due.
	OldestDue time.Time
}

// ReadBacklog counts the work list as of now.
func ReadBacklog(ctx context.Context, pool *pgxpool.Pool, now time.Time) (Backlog, error) {
	var (
		b      Backlog
		oldest *time.Time
	)
	err := pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE state = 'pending' AND (due_at <= $1 OR attempts > 0)),
		       count(*) FILTER (WHERE state = 'pending' AND due_at > $1 AND attempts = 0),
		       count(*) FILTER (WHERE state = 'parked'),
		       min(due_at) FILTER (WHERE state = 'pending' AND due_at <= $1)
		  FROM process_tasks`, now).Scan(&b.Due, &b.Scheduled, &b.Parked, &oldest)
	if err != nil {
		return Backlog{}, fmt.Errorf("read backlog: %w", err)
	}
	if oldest != nil {
		b.OldestDue = *oldest
	}
	return b, nil
}

// dueStepsSQL counts the steps of lanes $3 due at $1 and not running, up to
// $2.
const dueStepsSQL = `SELECT count(*) FROM (SELECT 1 FROM process_tasks
	 WHERE lane = ANY($3::smallint[]) AND state = 'pending' AND due_at <= $1
	   AND (lease_until IS NULL OR lease_until < now())
	 ORDER BY lane, due_at LIMIT $2) d`

// DueSteps counts the steps due at now and not running, up to limit (a
// range of the lanes' index): work the process manager has yet to do, for
// backpressure.
func DueSteps(ctx context.Context, pool *pgxpool.Pool, now time.Time, limit int) (int, error) {
	var n int
	err := pool.QueryRow(ctx, dueStepsSQL, now, limit, []int16{laneProvider, laneStore}).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count due steps: %w", err)
	}
	return n, nil
}

// ErrNotIdle: StartAt found work in the process manager's work list.
var ErrNotIdle = errors.New("the process manager has work in its list")

// StartAt makes a process manager that has never run begin after pos, a
// position in an event store of kind eventStore (see projections.Start),
// as if it had scheduled and run the reactions to every event up to pos
// (a history written in bulk whose sagas are all complete). It refuses
// one that has a checkpoint (projections.ErrCheckpointExists) or any step
// or open placement (ErrNotIdle).
func StartAt(ctx context.Context, pool *pgxpool.Pool, eventStore string, pos eventstore.Position) error {
	var busy bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM process_tasks) OR EXISTS (SELECT 1 FROM process_open_placements)`).Scan(&busy); err != nil {
		return fmt.Errorf("process manager work list: %w", err)
	}
	if busy {
		return ErrNotIdle
	}
	return projections.Start(ctx, pool, Name, eventStore, pos)
}
