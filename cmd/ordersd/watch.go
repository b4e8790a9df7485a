package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/internal/metrics"
	"github.com/orders-reference/orders/process"
	"github.com/orders-reference/orders/projections"
)

// watchEvery is how often the watcher reads the projections and the
// process manager's backlog, and evaluates readiness.
const watchEvery = 5 * time.Second

// watcher keeps the lag and backlog metrics current and remembers the
// projections' last state for /readyz; it also has readiness evaluated as
// often, for the readiness gauges.
type watcher struct {
	pool  *pgxpool.Pool
	store projections.BacklogReader
	// opts names the kind of event store and caps each count of events
	// behind (a KurrentDB store counts by reading them).
	opts projections.StatusOptions
	m    *metrics.Metrics
	log  *slog.Logger
	// backlog: read the projections and the backlog (processes that serve
	// or move them); after, if set, runs after every read (readiness).
	backlog bool
	after   func(context.Context)

	mu   sync.Mutex
	last []projections.Status
	at   time.Time
}

func newWatcher(pool *pgxpool.Pool, store projections.BacklogReader, opts projections.StatusOptions, m *metrics.Metrics, log *slog.Logger) *watcher {
	return &watcher{pool: pool, store: store, opts: opts, m: m, log: log}
}

// Run reads every watchEvery until ctx ends.
func (w *watcher) Run(ctx context.Context) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		if w.backlog {
			w.read(ctx)
		}
		if w.after != nil {
			w.after(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Projections returns the projections' state as last read, and when.
func (w *watcher) Projections() ([]projections.Status, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.at
}

func (w *watcher) read(ctx context.Context) {
	list, err := projections.Statuses(ctx, w.pool, w.store, w.opts)
	if err != nil {
		if ctx.Err() == nil {
			w.log.WarnContext(ctx, "reading projection lag failed", "error", err)
		}
		return
	}
	var live []projections.Status
	var unscheduled int64
	for _, s := range list {
		if strings.Contains(s.Name, "#") { // a rebuild in progress, not a live projection
			continue
		}
		live = append(live, s)
		if s.Name == process.Name {
			unscheduled = s.Behind
		}
		w.m.ProjectionLag.WithLabelValues(s.Name).Set(float64(s.Behind))
		w.m.ProjectionLagSeconds.WithLabelValues(s.Name).Set(lagSeconds(s))
		failed := 0.0
		if s.State == projections.StateFailed || s.EventStore != w.opts.EventStore {
			failed = 1 // stopped until an operator acts
		}
		w.m.ProjectionFailed.WithLabelValues(s.Name).Set(failed)
	}
	w.mu.Lock()
	w.last, w.at = live, time.Now()
	w.mu.Unlock()
	if backlog, err := process.ReadBacklog(ctx, w.pool, time.Now()); err == nil {
		w.m.OutboxPending.Set(float64(unscheduled + backlog.Due))
		w.m.DeadLetters.Set(float64(backlog.Parked))
		w.m.QueueAge.Set(queueAge(backlog.OldestDue))
	} else if ctx.Err() == nil {
		w.log.WarnContext(ctx, "reading the process manager backlog failed", "error", err)
	}
}

// lagSeconds is the age of the oldest event a projection has not applied.
func lagSeconds(s projections.Status) float64 {
	if s.OldestPending.IsZero() {
		return 0
	}
	return time.Since(s.OldestPending).Seconds()
}

// queueAge is how long the oldest due step has been due.
func queueAge(oldestDue time.Time) float64 {
	if oldestDue.IsZero() {
		return 0
	}
	return max(time.Since(oldestDue).Seconds(), 0)
}
