package command

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/orders-reference/orders/snapshot"
)

// snapshotWriter saves snapshots off the request path: offers go to a
// bounded queue that one goroutine drains; a full queue drops the offer
// (the product offers again after its next batch). A failed save is
// reported and logged, not retried: snapshots are a cache.
type snapshotWriter struct {
	store  SnapshotStore
	report func(err error)
	log    *slog.Logger

	queue chan snapshot.Snapshot
	once  sync.Once
	stop  chan struct{}
	done  chan struct{}
}

// snapshotQueue bounds the snapshots waiting to be saved.
const snapshotQueue = 256

func newSnapshotWriter(store SnapshotStore, onSnapshot func(error), log *slog.Logger) *snapshotWriter {
	if onSnapshot == nil {
		onSnapshot = func(error) {}
	}
	w := &snapshotWriter{store: store, log: log, queue: make(chan snapshot.Snapshot, snapshotQueue),
		stop: make(chan struct{}), done: make(chan struct{})}
	w.report = func(err error) {
		if err != nil {
			log.Warn("product snapshot not saved", "error", err)
		}
		onSnapshot(err)
	}
	return w
}

// offer queues s for saving; false if the queue is full.
func (w *snapshotWriter) offer(s snapshot.Snapshot) bool {
	w.once.Do(func() { go w.run() })
	select {
	case w.queue <- s:
		return true
	default:
		return false
	}
}

func (w *snapshotWriter) run() {
	defer close(w.done)
	for {
		select {
		case s := <-w.queue:
			w.save(s)
		case <-w.stop:
			return
		}
	}
}

func (w *snapshotWriter) save(s snapshot.Snapshot) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w.report(w.store.Save(ctx, s))
}

// close saves what is queued (until ctx ends) and stops the writer.
func (w *snapshotWriter) close(ctx context.Context) {
	started := true
	w.once.Do(func() { started = false })
	if started {
		close(w.stop)
		<-w.done
	}
	for {
		select {
		case s := <-w.queue:
			if ctx.Err() != nil {
				return
			}
			w.save(s)
		default:
			return
		}
	}
}
