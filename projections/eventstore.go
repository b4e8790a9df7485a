package projections

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/eventstore"
)

// Which event store a checkpoint belongs to. A checkpoint is a position in
// one event store's global order, and the same numbers mean nothing in
// another (PostgreSQL's are transaction ids and sequence numbers,
// KurrentDB's byte offsets in its log), so every checkpoint records the
// kind of event store it was taken in (column event_store) and everything
// that reads a checkpoint as a position is told the kind it reads:
// Options.EventStore, RebuildOptions.EventStore, StatusOptions.EventStore,
// and the eventStore arguments below. The kind is a name such as
// "postgres" or "kurrentdb"; the empty name means DefaultEventStore.

// DefaultEventStore is the kind of event store of checkpoints written
// before the kind was recorded, and of callers that name none: PostgreSQL.
const DefaultEventStore = "postgres"

func eventStoreOr(kind string) string {
	if kind == "" {
		return DefaultEventStore
	}
	return kind
}

// ErrOtherEventStore: a checkpoint is a position in another kind of event
// store than the one the caller reads. Its errors are
// *OtherEventStoreError.
var ErrOtherEventStore = errors.New("checkpoint of another event store")

// OtherEventStoreError names a projection whose checkpoint belongs to
// another kind of event store than the configured one.
type OtherEventStoreError struct {
	// Name is the projection's.
	Name string
	// Recorded is the kind of event store the checkpoint belongs to,
	// Configured the kind the caller reads.
	Recorded, Configured string
}

func (e *OtherEventStoreError) Error() string {
	return fmt.Sprintf("projection %s: its checkpoint is a position in the %s event store, not in the %s one configured",
		e.Name, e.Recorded, e.Configured)
}

// Unwrap makes the error ErrOtherEventStore.
func (e *OtherEventStoreError) Unwrap() error { return ErrOtherEventStore }

// CheckEventStore returns an *OtherEventStoreError (several joined, in
// name order) for each of the named projections whose checkpoint belongs
// to another kind of event store than eventStore, or nil. Names without a
// checkpoint are fine: their runners start one of eventStore's.
func CheckEventStore(ctx context.Context, pool *pgxpool.Pool, eventStore string, names []string) error {
	eventStore = eventStoreOr(eventStore)
	rows, err := pool.Query(ctx, `SELECT name, event_store FROM projection_checkpoints
	   WHERE name = ANY($1) AND event_store <> $2 ORDER BY name`, names, eventStore)
	if err != nil {
		return fmt.Errorf("projection checkpoints: %w", err)
	}
	others, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*OtherEventStoreError, error) {
		e := &OtherEventStoreError{Configured: eventStore}
		return e, row.Scan(&e.Name, &e.Recorded)
	})
	if err != nil {
		return fmt.Errorf("projection checkpoints: %w", err)
	}
	errs := make([]error, len(others))
	for i, e := range others {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// ErrSameEventStore: Switch found the projection's checkpoint in the
// configured event store already.
var ErrSameEventStore = errors.New("the checkpoint belongs to the configured event store already")

// HeadReader tells where the event store's global order ends.
type HeadReader interface {
	Head(ctx context.Context) (eventstore.Position, error)
}

// Switched is what Switch did.
type Switched struct {
	// From is the checkpoint as it was, in the FromEventStore kind of
	// event store; To is the head of the configured one, where the
	// projection now carries on.
	From, To       eventstore.Position
	FromEventStore string
}

// Switch moves a projection whose checkpoint belongs to another kind of
// event store to the head of store, of kind eventStore, without replaying
// anything: as if it had applied every event of store. That holds only
// when the projection had applied every event of its old store and store
// holds the same events (they were copied over and nothing was written
// since), which the caller must make sure of. It is meant for the process
// manager, which cannot be rebuilt (that would run every saga again);
// read models are rebuilt instead. Switch bumps the checkpoint's
// generation, so a runner still reading the old store cannot move it. A
// projection without a checkpoint is ErrNoCheckpoint; one of eventStore's
// already is ErrSameEventStore.
func Switch(ctx context.Context, pool *pgxpool.Pool, store HeadReader, name, eventStore string) (Switched, error) {
	eventStore = eventStoreOr(eventStore)
	head, err := store.Head(ctx)
	if err != nil {
		return Switched{}, fmt.Errorf("switch %s: head of the event store: %w", name, err)
	}
	var sw Switched
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var c, p int64
		err := tx.QueryRow(ctx, `SELECT position_commit, position_prepare, event_store FROM projection_checkpoints WHERE name = $1 FOR UPDATE`,
			name).Scan(&c, &p, &sw.FromEventStore)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrNoCheckpoint, name)
		}
		if err != nil {
			return err
		}
		sw.From = eventstore.Position{Commit: uint64(c), Prepare: uint64(p)}
		if sw.FromEventStore == eventStore {
			return fmt.Errorf("%w: %s is at %s in %s", ErrSameEventStore, name, sw.From, eventStore)
		}
		sw.To = head
		_, err = tx.Exec(ctx, `UPDATE projection_checkpoints
		       SET position_commit = $2, position_prepare = $3, event_store = $4, generation = generation + 1, updated_at = now()
		     WHERE name = $1`, name, int64(head.Commit), int64(head.Prepare), eventStore)
		if err != nil {
			return err
		}
		// Wake read-your-writes waiters: the checkpoint moved.
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, name)
		return err
	})
	if err != nil {
		return Switched{}, fmt.Errorf("switch %s to %s: %w", name, eventStore, err)
	}
	return sw, nil
}

// ErrNoCheckpoint: the projection has no checkpoint.
var ErrNoCheckpoint = errors.New("no checkpoint of that name")
