// Package eventstores opens the event store an Orders deployment is
// configured with: PostgreSQL, in the database that also holds the read
// models (EVENTSTORE_URL empty), or KurrentDB/EventStoreDB (an esdb:// or
// kurrentdb:// connection string). Both sit behind the eventstore.Store
// port; what differs between them, and is decided here once for ordersd
// and ordersctl, is how the request path reaches the store, how appends
// are timed for metrics, how subscriptions filter, to what precision
// times are kept, and how many events a count may read.
package eventstores

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/kurrentdb"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/projections"
)

// The kinds of event store, as checkpoints record them (see
// projections.Options.EventStore).
const (
	Postgres  = projections.DefaultEventStore
	KurrentDB = "kurrentdb"
)

// KurrentDBMaxCount is Backend.MaxCount for KurrentDB, which counts a
// backlog only by reading its events (PostgreSQL counts on an index, up to
// projections.DefaultMaxBehind).
const KurrentDBMaxCount = 10_000

// ErrURL: a URL of no event store scheme.
var ErrURL = errors.New("not an event store URL")

// Kind returns the kind of event store url selects: Postgres for the empty
// URL, KurrentDB for esdb://, esdb+discover://, kurrentdb:// and
// kurrentdb+discover://. Its errors wrap ErrURL and never hold the URL.
func Kind(url string) (string, error) {
	if url == "" {
		return Postgres, nil
	}
	scheme, _, ok := strings.Cut(url, "://")
	switch strings.ToLower(scheme) {
	case "esdb", "esdb+discover", "kurrentdb", "kurrentdb+discover":
		if ok {
			return KurrentDB, nil
		}
	}
	return "", fmt.Errorf("%w: want esdb://, esdb+discover://, kurrentdb:// or kurrentdb+discover://, or none for PostgreSQL", ErrURL)
}

// Options tunes Open.
type Options struct {
	// Requests, if set, is a second pool on the database for the request
	// path (one whose connections have a statement_timeout): the
	// PostgreSQL event store runs the requests' statements on it.
	Requests *pgxpool.Pool
	// AppendObserver, if set, is told every append's duration and error.
	AppendObserver func(ctx context.Context, d time.Duration, err error)
	// BatchObserver, if set, is told how many appends each group commit
	// of the PostgreSQL event store combined (KurrentDB has none).
	BatchObserver func(appends int)
	// DeliveryInterval is the least time between two batches of a
	// caught-up subscription, whichever the store (zero:
	// eventstore.DefaultDeliveryInterval).
	DeliveryInterval time.Duration
	Logger           *slog.Logger
	// TracerProvider, if set, gives every append and read made in a
	// traced context a span (tracing.Store), whichever the store.
	TracerProvider trace.TracerProvider
}

// Backend is an open event store.
type Backend struct {
	// Kind is Postgres or KurrentDB.
	Kind string
	// Store serves background work: projections, the process manager,
	// rebuilds, lag.
	Store eventstore.Store
	// Requests serves the request path (the write side, the audit trail):
	// for PostgreSQL, Store on Options.Requests (Store itself without
	// one); for KurrentDB, Store itself, whose calls end with the
	// request's deadline.
	Requests eventstore.Store
	// MaxCount is the most events a count of a backlog should read (lag
	// metrics, readiness, ordersctl projections list, rebuild progress).
	MaxCount int

	close func()
}

// Close closes the store.
func (b *Backend) Close() { b.close() }

// Open opens the event store url selects (see Kind). The PostgreSQL event
// store lives in pool's database, which must be migrated; a KurrentDB
// store is connected to and checked within ctx. Errors never hold a
// password.
func Open(ctx context.Context, url string, pool *pgxpool.Pool, opts Options) (*Backend, error) {
	kind, err := Kind(url)
	if err != nil {
		return nil, err
	}
	b := &Backend{Kind: kind, MaxCount: projections.DefaultMaxBehind}
	switch kind {
	case Postgres:
		store := postgres.New(pool, postgres.Options{Logger: opts.Logger, AppendObserver: opts.AppendObserver, BatchObserver: opts.BatchObserver,
			DeliveryInterval: opts.DeliveryInterval})
		b.Store, b.Requests, b.close = store, store, store.Close
		if opts.Requests != nil {
			b.Requests = store.WithPool(opts.Requests)
		}
	case KurrentDB:
		store, err := kurrentdb.New(ctx, url, kurrentdb.Options{Logger: opts.Logger, DeliveryInterval: opts.DeliveryInterval})
		if err != nil {
			return nil, err
		}
		var s eventstore.Store = kurrent{store}
		if opts.AppendObserver != nil {
			s = observed{Store: s, observe: opts.AppendObserver}
		}
		b.Store, b.Requests, b.close, b.MaxCount = s, s, store.Close, KurrentDBMaxCount
	}
	b.Store, b.Requests = tracing.Store(b.Store, opts.TracerProvider), tracing.Store(b.Requests, opts.TracerProvider)
	return b, nil
}

// observed tells observe every append's duration and error.
type observed struct {
	eventstore.Store
	observe func(ctx context.Context, d time.Duration, err error)
}

func (o observed) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	start := time.Now()
	res, err := o.Store.Append(ctx, stream, expected, events...)
	o.observe(ctx, time.Since(start), err)
	return res, err
}

// kurrent is the KurrentDB store as Orders uses it, with its read models
// in PostgreSQL.
//
// Subscriptions filter in the process. KurrentDB filters a subscription
// on the server, and tells the subscriber where it has got in the events
// it skipped only every so many events it considered (a checkpoint per
// search window). A projection whose events are rare would then keep a
// checkpoint behind the last event it skipped until that many more were
// written: while idle it would look behind (lag, readiness) and never pass
// the position of a write it did not apply (a read-your-writes wait for an
// order's product, say, would time out). Unfiltered, the subscription
// hands over a checkpoint for every event, as the PostgreSQL store does;
// the price is that every subscriber receives every event.
//
// Times are kept to the microsecond. KurrentDB records 100-ns ticks,
// PostgreSQL (the read models, snapshots) microseconds; an answer built
// from an append must show the time a later read of a read model shows.
type kurrent struct {
	eventstore.Store
}

func (k kurrent) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := k.Store.Append(ctx, stream, expected, events...)
	res.RecordedAt = microseconds(res.RecordedAt)
	return res, err
}

func (k kurrent) ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	events, err := k.Store.ReadStream(ctx, stream, dir, from, limit)
	inMicroseconds(events)
	return events, err
}

func (k kurrent) ReadAll(ctx context.Context, from eventstore.Position, limit int, filter eventstore.Filter) (eventstore.Page, error) {
	page, err := k.Store.ReadAll(ctx, from, limit, filter)
	inMicroseconds(page.Events)
	return page, err
}

func (k kurrent) Subscribe(ctx context.Context, from eventstore.Position, opts eventstore.SubscribeOptions, handle eventstore.BatchHandler) error {
	filter := opts.Filter
	opts.Filter = eventstore.Filter{}
	return k.Store.Subscribe(ctx, from, opts, func(ctx context.Context, b eventstore.Batch) error {
		kept := b.Events[:0:0]
		for _, e := range b.Events {
			if filter.Match(e.StreamID, e.Type) {
				e.RecordedAt = microseconds(e.RecordedAt)
				kept = append(kept, e)
			}
		}
		return handle(ctx, eventstore.Batch{Events: kept, Checkpoint: b.Checkpoint})
	})
}

func microseconds(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

func inMicroseconds(events []eventstore.RecordedEvent) {
	for i := range events {
		events[i].RecordedAt = microseconds(events[i].RecordedAt)
	}
}
