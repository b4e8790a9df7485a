package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/snapshot"
)

// ErrSnapshotQueueFull is reported to StockOptions.OnSnapshot for a
// snapshot that was not taken because the writer's queue was full (the
// snapshot store is slow or away). The product is offered again
// SnapshotEvery events later.
var ErrSnapshotQueueFull = errors.New("snapshot queue full")

const (
	// snapshotQueue bounds the snapshots waiting to be saved.
	snapshotQueue = 256
	// snapshotTimeout bounds one save (with its two one-event reads).
	snapshotTimeout = 10 * time.Second
)

// snapshotJob is a product's state, copied under its lock, waiting to be
// saved.
type snapshotJob struct {
	state    *product.State      // a clone: the writer's own
	position eventstore.Position // of the state's last event
}

// snapshotWriter saves product snapshots off the request path: offers go
// to a bounded queue that one goroutine (started by the first offer)
// drains. An offer never waits: a full queue drops it and reports
// ErrSnapshotQueueFull. A failed save is logged and reported, not retried:
// snapshots are a cache.
type snapshotWriter struct {
	snaps  SnapshotStore
	events EventStore
	report func(err error)
	log    *slog.Logger

	queue  chan snapshotJob
	ctx    context.Context // canceled when close gives up waiting
	cancel context.CancelFunc

	start    sync.Once
	stop     sync.Once
	closed   atomic.Bool
	stopping chan struct{}
	done     chan struct{}
}

func newSnapshotWriter(snaps SnapshotStore, store EventStore, onSnapshot func(error), log *slog.Logger) *snapshotWriter {
	if onSnapshot == nil {
		onSnapshot = func(error) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &snapshotWriter{snaps: snaps, events: store, log: log, queue: make(chan snapshotJob, snapshotQueue),
		ctx: ctx, cancel: cancel, stopping: make(chan struct{}), done: make(chan struct{})}
	w.report = func(err error) {
		if err != nil {
			log.Warn("product snapshot not saved", "error", err)
		}
		onSnapshot(err)
	}
	return w
}

// offer queues a copy of st, whose last event is at position, for saving
// (the caller holds the product's lock). It never waits; after close it
// does nothing.
func (w *snapshotWriter) offer(st *product.State, position eventstore.Position) {
	if w.closed.Load() {
		return
	}
	w.start.Do(func() { go w.run() })
	if len(w.queue) == cap(w.queue) { // checked first, to spare the copy
		w.report(fmt.Errorf("product %s at version %d: %w", st.ID, st.Version, ErrSnapshotQueueFull))
		return
	}
	select {
	case w.queue <- snapshotJob{state: st.Clone(), position: position}:
	default:
		w.report(fmt.Errorf("product %s at version %d: %w", st.ID, st.Version, ErrSnapshotQueueFull))
	}
}

// run saves queued snapshots until close, then what is left in the queue.
func (w *snapshotWriter) run() {
	defer close(w.done)
	for {
		select {
		case j := <-w.queue:
			w.report(w.save(j))
		case <-w.stopping:
			dropped := 0
			for {
				select {
				case j := <-w.queue:
					if w.ctx.Err() != nil {
						dropped++
						continue
					}
					w.report(w.save(j))
				default:
					if dropped > 0 {
						w.log.Warn("product snapshots dropped at shutdown", "count", dropped)
					}
					return
				}
			}
		}
	}
}

// save encodes j's state and saves it. The state's times are those of the
// process that decided its events, a moment off the times the store
// recorded; a snapshot must hold exactly what folding the stream gives,
// so they are taken from the stored events (the first and the last the
// state covers). The last event must be where the state says it is.
func (w *snapshotWriter) save(j snapshotJob) error {
	ctx, cancel := context.WithTimeout(w.ctx, snapshotTimeout)
	defer cancel()
	st := j.state
	stream := events.ProductStream(st.ID)
	first, err := eventAt(ctx, w.events, stream, 0)
	if err != nil {
		return fmt.Errorf("snapshot of product %s: %w", st.ID, err)
	}
	last := first
	if st.Version > 0 {
		if last, err = eventAt(ctx, w.events, stream, st.Version); err != nil {
			return fmt.Errorf("snapshot of product %s: %w", st.ID, err)
		}
	}
	if last.Position != j.position {
		return fmt.Errorf("snapshot of product %s: event %d is at %s, the state says %s", st.ID, st.Version, last.Position, j.position)
	}
	st.CreatedAt, st.UpdatedAt = first.RecordedAt, last.RecordedAt
	data, err := st.MarshalSnapshot()
	if err != nil {
		return fmt.Errorf("snapshot of product %s: %w", st.ID, err)
	}
	return w.snaps.Save(ctx, snapshot.Snapshot{Stream: stream, Version: st.Version, Schema: product.SnapshotSchema, Position: j.position, Data: data})
}

// close saves what is queued and stops the writer; when ctx ends first,
// the save in progress is canceled and the rest dropped. Offers after
// close do nothing.
func (w *snapshotWriter) close(ctx context.Context) {
	w.stop.Do(func() {
		w.closed.Store(true)
		w.start.Do(func() { go w.run() })
		close(w.stopping)
	})
	select {
	case <-w.done:
	case <-ctx.Done():
		w.cancel()
		<-w.done
	}
	w.cancel()
}

// eventAt reads the event at version of stream.
func eventAt(ctx context.Context, store EventStore, stream string, version int64) (eventstore.RecordedEvent, error) {
	recorded, err := store.ReadStream(ctx, stream, eventstore.Forward, version, 1)
	if err != nil {
		return eventstore.RecordedEvent{}, fmt.Errorf("read %s@%d: %w", stream, version, err)
	}
	if len(recorded) == 0 || recorded[0].Version != version {
		return eventstore.RecordedEvent{}, fmt.Errorf("read %s@%d: %w", stream, version, eventstore.ErrStreamNotFound)
	}
	return recorded[0], nil
}
