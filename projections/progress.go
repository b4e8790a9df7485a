package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/pause"
)

// NotifyChannel is the LISTEN/NOTIFY channel on which runners announce
// every committed batch (the payload is the projection's name).
const NotifyChannel = "orders_projections"

// Progress lets readers wait until a projection has passed a position
// (read-your-writes). Waiters are woken when a batch commits: at once by
// runners in this process (Applied), and through LISTEN (Run) by runners
// anywhere. A slow poll of the checkpoint covers a lost notification.
type Progress struct {
	pool *pgxpool.Pool
	poll time.Duration

	mu   sync.Mutex
	wake chan struct{} // closed and replaced on every Applied
}

// NewProgress returns a Progress over the read-model database; poll is the
// fallback interval (0 means 500ms).
func NewProgress(pool *pgxpool.Pool, poll time.Duration) *Progress {
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	return &Progress{pool: pool, poll: poll, wake: make(chan struct{})}
}

// Applied is a Runner's Options.OnApplied: it wakes the waiters.
func (p *Progress) Applied(string, eventstore.Position) {
	p.mu.Lock()
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
}

// Run listens for other processes' batches until ctx ends, reconnecting
// after errors; every notification (and every reconnection, since some may
// have been missed) wakes the waiters.
func (p *Progress) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		_ = p.listen(ctx)
		if pause.For(ctx, backoff) != nil {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (p *Progress) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, p.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return err
	}
	p.Applied("", eventstore.Start)
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		p.Applied("", eventstore.Start)
	}
}

// Checkpoint returns where projection name stands.
func (p *Progress) Checkpoint(ctx context.Context, name string) (eventstore.Position, error) {
	var c, pr int64
	err := p.pool.QueryRow(ctx, `SELECT position_commit, position_prepare FROM projection_checkpoints WHERE name = $1`, name).Scan(&c, &pr)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Start, nil
	}
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("checkpoint of %s: %w", name, err)
	}
	return eventstore.Position{Commit: uint64(c), Prepare: uint64(pr)}, nil
}

// WaitFor returns once projection name has passed pos, or ctx's error.
func (p *Progress) WaitFor(ctx context.Context, name string, pos eventstore.Position) error {
	for {
		p.mu.Lock()
		wake := p.wake
		p.mu.Unlock()
		cp, err := p.Checkpoint(ctx, name)
		if err != nil {
			return err
		}
		if !cp.Less(pos) {
			return nil
		}
		t := time.NewTimer(p.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Status is a projection's state as ordersctl shows it.
type Status struct {
	Name       string
	Checkpoint eventstore.Position
	// EventStore is the kind of event store the checkpoint belongs to.
	EventStore string
	State      string
	Error      string
	UpdatedAt  time.Time
	// Behind is how many events after the checkpoint are in the store
	// (of any stream: the projection may skip some), counted up to
	// StatusOptions.MaxBehind; zero for a checkpoint of another event
	// store, which nothing here can count (Error says whose it is), and
	// for one the store does not hold.
	Behind int64
	// NotInStore: the event store does not hold the checkpoint
	// (eventstore.ErrPositionNotInStore): it lost data or is another
	// store. State is then StateFailed and Error says so, whether or not
	// the runner has recorded it yet.
	NotInStore bool
	// OldestPending is when the first event after the checkpoint was
	// recorded (zero when there is none): the lag in time.
	OldestPending time.Time
}

// BacklogReader tells how far behind a reader at a position is (the event
// store port's Backlog).
type BacklogReader interface {
	Backlog(ctx context.Context, from eventstore.Position, limit int) (eventstore.Backlog, error)
}

// DefaultMaxBehind caps the count of events behind a checkpoint, so that a
// projection far behind costs a bounded query.
const DefaultMaxBehind = 1_000_000

// StatusOptions tunes Statuses.
type StatusOptions struct {
	// EventStore is the kind of event store the backlog is read from (""
	// means DefaultEventStore); checkpoints of another kind are listed
	// without one.
	EventStore string
	// MaxBehind caps each count of events behind a checkpoint (default
	// DefaultMaxBehind). An event store that counts by reading the events
	// (KurrentDB) wants a lower cap: every status read costs up to that
	// many events read per projection.
	MaxBehind int
}

func (o StatusOptions) maxBehind() int {
	if o.MaxBehind <= 0 {
		return DefaultMaxBehind
	}
	return o.MaxBehind
}

// Statuses lists every projection that has a checkpoint, and every rebuild
// in progress (named "<projection>#rebuild"), with how far behind the event
// store each is.
func Statuses(ctx context.Context, pool *pgxpool.Pool, store BacklogReader, opts StatusOptions) ([]Status, error) {
	rows, err := pool.Query(ctx, `SELECT name, position_commit, position_prepare, event_store, state, error, updated_at
	   FROM projection_checkpoints ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("projection statuses: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Status, error) {
		var s Status
		var c, p int64
		err := row.Scan(&s.Name, &c, &p, &s.EventStore, &s.State, &s.Error, &s.UpdatedAt)
		s.Checkpoint = eventstore.Position{Commit: uint64(c), Prepare: uint64(p)}
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("projection statuses: %w", err)
	}
	eventStore := eventStoreOr(opts.EventStore)
	for i := range list {
		if list[i].EventStore != eventStore {
			if list[i].Error == "" {
				list[i].Error = (&OtherEventStoreError{Name: list[i].Name, Recorded: list[i].EventStore, Configured: eventStore}).Error()
			}
			continue
		}
		b, err := store.Backlog(ctx, list[i].Checkpoint, opts.maxBehind())
		if errors.Is(err, eventstore.ErrPositionNotInStore) {
			// Stopped, whether or not its runner has marked it yet.
			list[i].State, list[i].Error, list[i].NotInStore = StateFailed, NotInStoreMessage(list[i].Checkpoint), true
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("projection %s: %w", list[i].Name, err)
		}
		list[i].Behind, list[i].OldestPending = b.Events, b.Oldest
	}
	return list, nil
}

// ErrNotFailed: Resume found no failed projection of that name.
var ErrNotFailed = errors.New("no failed projection of that name")

// Resume lets a projection that stopped on a poison event try that event
// again, from where it stopped (after the cause is fixed: a deployment, a
// repaired row). Its runners pick it up by themselves. Unlike a rebuild it
// keeps the checkpoint, which is the only way on for a projection that must
// not be replayed, such as the process manager's scheduler.
func Resume(ctx context.Context, pool *pgxpool.Pool, name string) error {
	tag, err := pool.Exec(ctx, `UPDATE projection_checkpoints SET state = $2, error = '', updated_at = now() WHERE name = $1 AND state = $3`,
		name, StateRunning, StateFailed)
	if err != nil {
		return fmt.Errorf("resume %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %s", ErrNotFailed, name)
	}
	return nil
}

// ErrCheckpointExists: Start found the projection with a checkpoint already.
var ErrCheckpointExists = errors.New("the projection has a checkpoint already")

// Start gives a projection that has never run a checkpoint at pos, a
// position in an event store of kind eventStore ("" means
// DefaultEventStore), so that it begins after pos instead of at the first
// event (for a history written in bulk that the projection is known to
// have seen; the process manager's StartAt). A projection with a
// checkpoint is ErrCheckpointExists.
func Start(ctx context.Context, pool *pgxpool.Pool, name, eventStore string, pos eventstore.Position) error {
	tag, err := pool.Exec(ctx, `INSERT INTO projection_checkpoints (name, position_commit, position_prepare, event_store) VALUES ($1, $2, $3, $4)
	       ON CONFLICT (name) DO NOTHING`, name, int64(pos.Commit), int64(pos.Prepare), eventStoreOr(eventStore))
	if err != nil {
		return fmt.Errorf("start %s at %s: %w", name, pos, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%w: %s", ErrCheckpointExists, name)
	}
	return nil
}

// Behind returns, for each of the named projections that runs (has a
// checkpoint and has not failed), how many events after its checkpoint it
// has not applied yet, counted up to limit: what backpressure paces
// placements by. Names are the projections this deployment runs: rows left
// by a projection since renamed or removed, and rebuilds in progress, are
// not asked about; a failed projection waits for an operator
// (projection_failed), not for fewer orders, and so does one whose
// checkpoint the event store does not hold (left out). Likewise a checkpoint of
// another kind of event store than eventStore ("" means
// DefaultEventStore) waits for a rebuild and is not asked about.
func Behind(ctx context.Context, pool *pgxpool.Pool, store BacklogReader, eventStore string, names []string, limit int) (map[string]int, error) {
	rows, err := pool.Query(ctx, `SELECT name, position_commit, position_prepare FROM projection_checkpoints
	   WHERE name = ANY($1) AND state = $2 AND event_store = $3`, names, StateRunning, eventStoreOr(eventStore))
	if err != nil {
		return nil, fmt.Errorf("projection checkpoints: %w", err)
	}
	type checkpoint struct {
		name string
		pos  eventstore.Position
	}
	checkpoints, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (checkpoint, error) {
		var cp checkpoint
		var c, p int64
		err := row.Scan(&cp.name, &c, &p)
		cp.pos = eventstore.Position{Commit: uint64(c), Prepare: uint64(p)}
		return cp, err
	})
	if err != nil {
		return nil, fmt.Errorf("projection checkpoints: %w", err)
	}
	behind := make(map[string]int, len(checkpoints))
	for _, cp := range checkpoints {
		b, err := store.Backlog(ctx, cp.pos, limit)
		if errors.Is(err, eventstore.ErrPositionNotInStore) {
			continue // stopped: its runner marks it failed
		}
		if err != nil {
			return nil, fmt.Errorf("projection %s: backlog after %s: %w", cp.name, cp.pos, err)
		}
		behind[cp.name] = int(b.Events)
	}
	return behind, nil
}
