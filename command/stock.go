package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/batch"
	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/snapshot"
)

// Stock runs decisions on products. Products stay loaded in memory, so a
// decision never replays a product's whole history: after a version conflict
// (another instance wrote) only the stream's tail is read. Concurrent
// decisions on one product are combined into one append (group commit)
// instead of racing each other: a hot product costs one write per batch of
// orders, not a retry storm.
//
// Correctness never depends on this process: every append is checked against
// the product's stream version by the event store, and a batch that decides
// nothing (a release of nothing, a refusal for lack of stock) first reads the
// stream's tail, since no append will check it.
//
// The cache is bounded (StockOptions.CacheSize, least recently used
// evicted), and a cold load reads the product's latest snapshot plus the
// events after it; snapshots are written off the request path every
// StockOptions.SnapshotEvery events. Ids that name no product never enter
// the cache, so they can evict nothing.
type Stock struct {
	store       EventStore
	maxAttempts int
	opts        StockOptions
	snapshots   *snapshotWriter

	// products holds the entries of products known to exist; loading
	// holds entries until their first batch tells whether the id names a
	// product (guarded by mu, as is every entry's cached flag).
	products *lru.Cache[uuid.UUID, *stockEntry]
	mu       sync.Mutex
	loading  map[uuid.UUID]*stockEntry
}

// SnapshotStore is what Stock needs from a snapshot store.
type SnapshotStore interface {
	Load(ctx context.Context, stream string) (snapshot.Snapshot, error)
	Save(ctx context.Context, s snapshot.Snapshot) error
}

// StockOptions tunes a Stock. The zero value is ready to use: a cache of
// 10,000 products and no snapshots.
type StockOptions struct {
	// CacheSize is how many products stay in memory (default 10,000).
	CacheSize int
	// Snapshots, if set, keeps snapshots of the products' states.
	Snapshots SnapshotStore
	// SnapshotEvery is how many events after its last snapshot a product
	// gets a new one (default 500; negative: never), at least: a product
	// with many open reservations waits longer (see Stock.snapshot).
	SnapshotEvery int
	// OnCache, if set, is told of every CacheHit, CacheMiss and
	// CacheEviction (for metrics).
	OnCache func(event string)
	// OnSnapshot, if set, is told of every snapshot saved (nil) and of
	// every one that was not: a failed save, or ErrSnapshotQueueFull.
	OnSnapshot func(err error)
	// Logger receives failed snapshot loads and saves; nil discards them.
	Logger *slog.Logger
	// TracerProvider, if set, gives every batch of decisions on a product
	// a span, in the trace of the orders it decides for (or linked to
	// theirs, when it serves many); its reads and append are under it.
	TracerProvider trace.TracerProvider
}

// The attributes of a stock batch's span.
const (
	attrProduct   = attribute.Key("product.id")
	attrDecisions = attribute.Key("stock.decisions")
)

// Cache events reported to StockOptions.OnCache.
const (
	// CacheHit: a batch of decisions (or a Peek) found its product in
	// memory.
	CacheHit = "hit"
	// CacheMiss: a product was loaded from the stores (its snapshot and
	// the events after it, or its whole stream); ids that name no product
	// count too.
	CacheMiss = "miss"
	// CacheEviction: a product left the full cache to make room.
	CacheEviction = "eviction"
)

// NewStock returns a Stock over store. Close stops its snapshot writer.
func NewStock(store EventStore, opts StockOptions) *Stock {
	if opts.CacheSize <= 0 {
		opts.CacheSize = 10_000
	}
	if opts.SnapshotEvery == 0 {
		opts.SnapshotEvery = 500
	}
	if opts.OnCache == nil {
		opts.OnCache = func(string) {}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Stock{store: store, maxAttempts: 50, opts: opts, loading: map[uuid.UUID]*stockEntry{}}
	// Entries leave the cache only by eviction (never Remove), so every
	// call of this is one.
	cache, err := lru.NewWithEvict(opts.CacheSize, func(uuid.UUID, *stockEntry) { opts.OnCache(CacheEviction) })
	if err != nil {
		panic(err) // only for a size <= 0, excluded above
	}
	s.products = cache
	if opts.Snapshots != nil && opts.SnapshotEvery > 0 {
		s.snapshots = newSnapshotWriter(opts.Snapshots, store, opts.OnSnapshot, opts.Logger)
	}
	return s
}

// Close stops the snapshot writer, saving the snapshots it holds first;
// when ctx ends first, the rest are dropped (they are a cache). Decisions
// keep working after Close, without snapshots.
func (s *Stock) Close(ctx context.Context) {
	if s.snapshots != nil {
		s.snapshots.close(ctx)
	}
}

// ProductView is a snapshot of a product as the write model knows it.
type ProductView struct {
	ID          uuid.UUID
	Name        string
	Description string
	Price       money.Amount
	IsActive    bool
	Available   int64
	Reserved    int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64
	// Position is the global position of the batch that wrote this
	// operation's events (zero if it wrote none).
	Position eventstore.Position
	// Current is the global position of the product's last event this
	// view reflects (whoever wrote it): a read that waits for it sees the
	// product at least as it is here.
	Current eventstore.Position
}

// recorded gives the product and the views of a batch just appended the
// time the store recorded the batch, in place of the application's clock
// they were decided with: an answer shows the time a later read shows.
func recorded(st *product.State, ops []*stockOp, base int64, res eventstore.AppendResult) {
	if res.RecordedAt.IsZero() {
		return
	}
	at := res.RecordedAt.UTC()
	st.UpdatedAt = at
	if base < 0 { // created by this batch
		st.CreatedAt = at
	}
	for _, op := range ops {
		if op.decided == nil {
			continue
		}
		op.view.UpdatedAt = at
		if base < 0 {
			op.view.CreatedAt = at
		}
	}
}

func viewOf(s *product.State) ProductView {
	return ProductView{
		ID: s.ID, Name: s.Name, Description: s.Description, Price: s.Price, IsActive: s.IsActive,
		Available: s.Available, Reserved: s.Reserved, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, Version: s.Version,
	}
}

// stockEntry is one product's cached state and its combiner. Only the batch
// that holds the entry's lock reads or changes state.
type stockEntry struct {
	id      uuid.UUID
	mu      sync.Mutex
	state   *product.State      // nil until loaded
	current eventstore.Position // of the state's last event
	// snapshotted is the version of the state's latest snapshot, taken or
	// attempted (-1: none).
	snapshotted int64
	// cached: the entry went into Stock.products (it may have been
	// evicted since). Guarded by Stock.mu.
	cached   bool
	combiner *batch.Combiner[*stockOp]
	// last is the view after the latest batch, for Peek.
	last atomic.Pointer[ProductView]
}

// stockOp is one decision waiting for its product's batch.
type stockOp struct {
	decide func(*product.State) ([]events.Event, error)
	meta   eventstore.Metadata

	decided []events.Event
	view    ProductView
	err     error
	done    chan struct{}
}

// entry returns product id's entry: the cached one, or the one waiting for
// its first batch, or a new one (which joins the cache once its first batch
// shows that the product exists; see settle).
//
// An entry evicted while a batch of it runs, or while callers still hold
// it, may coexist for a moment with its successor. Neither trusts its
// state without a check: both append at the version they know, so the
// event store's version check refuses the stale one (which reads the tail
// and decides again), and a batch that appends nothing reads the tail
// first.
func (s *Stock) entry(id uuid.UUID) *stockEntry {
	if e, ok := s.products.Get(id); ok {
		return e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.products.Get(id); ok { // promoted meanwhile
		return e
	}
	if e, ok := s.loading[id]; ok {
		return e
	}
	e := &stockEntry{id: id, snapshotted: -1}
	e.combiner = &batch.Combiner[*stockOp]{
		Exec:        func(ops []*stockOp) { s.run(e, ops) },
		MaxBatch:    256,
		MaxInFlight: 1, // one batch per product at a time: each sees the last one's result
	}
	s.loading[id] = e
	return e
}

// settle files e after one of its batches (the caller holds e.mu): an
// entry whose product exists joins the cache, evicting the least recently
// used product if it is full; one that names no product, or could not be
// loaded, is let go (callers that still hold it finish on it). So an id
// that names no product is never cached and never evicts one.
func (s *Stock) settle(e *stockEntry) {
	exists := e.state != nil && e.state.Exists()
	if !exists {
		e.state = nil // load again should the product appear
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.cached {
		return
	}
	if s.loading[e.id] == e {
		delete(s.loading, e.id)
	}
	if !exists {
		return
	}
	if _, ok := s.products.Peek(e.id); ok {
		return // a successor was cached first; it stays
	}
	e.cached = true
	s.products.Add(e.id, e)
}

// Do runs decide against product id and appends what it decides. It
// returns the decided events (nil if it decided nothing) and the product as
// it stands after them.
func (s *Stock) Do(ctx context.Context, id uuid.UUID, meta eventstore.Metadata, decide func(*product.State) ([]events.Event, error)) ([]events.Event, ProductView, error) {
	if err := ctx.Err(); err != nil {
		return nil, ProductView{}, err
	}
	op := &stockOp{decide: decide, meta: meta, done: make(chan struct{})}
	s.entry(id).combiner.Submit(op)
	select {
	case <-op.done:
		return op.decided, op.view, op.err
	case <-ctx.Done():
		return nil, ProductView{}, fmt.Errorf("product %s: outcome unknown: %w", id, ctx.Err())
	}
}

// View returns the product as the write model knows it, reading the
// stream's tail first so the answer is current.
func (s *Stock) View(ctx context.Context, id uuid.UUID) (ProductView, error) {
	// The trace context only: the load (a stock batch) then shows in the
	// caller's trace, not as a trace of its own.
	_, v, err := s.Do(ctx, id, tracing.Record(ctx, eventstore.Metadata{}), func(p *product.State) ([]events.Event, error) {
		if !p.Exists() {
			return nil, fmt.Errorf("%w: %s", product.ErrNotFound, id)
		}
		return nil, nil
	})
	return v, err
}

// Cached returns how many products are in the cache (at most
// StockOptions.CacheSize).
func (s *Stock) Cached() int { return s.products.Len() }

// Peek returns the product as this process last saw it, without asking
// the event store unless the product was never loaded. It may be a moment
// behind another instance's writes: good for pricing an order, not for
// deciding (decisions go through Do, which the store's version check
// guards).
func (s *Stock) Peek(ctx context.Context, id uuid.UUID) (ProductView, error) {
	if v := s.entry(id).last.Load(); v != nil && v.Version >= 0 {
		s.opts.OnCache(CacheHit)
		return *v, nil
	}
	return s.View(ctx, id)
}

// run decides a batch of operations on one product and appends all their
// events at once. Each operation sees the effect of the ones before it. On a
// version conflict the stream's tail is read and the batch decided again.
func (s *Stock) run(e *stockEntry, ops []*stockOp) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if s.opts.TracerProvider != nil {
		var span trace.Span
		ctx, span = tracing.StartLinked(ctx, tracing.Tracer(s.opts.TracerProvider), "stock batch", len(ops),
			func(i int) eventstore.Metadata { return ops[i].meta }, trace.WithAttributes(attrProduct.String(e.id.String()), attrDecisions.Int(len(ops))))
		defer span.End()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	defer func() {
		for _, op := range ops {
			close(op.done)
		}
	}()
	defer s.settle(e) // before the callers hear back
	fail := func(err error) {
		for _, op := range ops {
			op.decided, op.err = nil, err
		}
	}

	if e.state == nil {
		s.opts.OnCache(CacheMiss)
		if err := s.load(ctx, e); err != nil {
			fail(err)
			return
		}
	} else {
		s.opts.OnCache(CacheHit)
	}
	st := e.state
	stream := events.ProductStream(e.id)
	for attempt := 1; ; attempt++ {
		base := st.Version
		st.Savepoint()
		var data []eventstore.EventData
		now := time.Now().UTC()
		for _, op := range ops {
			op.decided, op.err = op.decide(st)
			if op.err != nil {
				op.decided = nil
				continue
			}
			encoded, err := encode(op.meta, op.decided, "")
			if err != nil {
				op.decided, op.err = nil, err
				continue
			}
			for _, d := range op.decided {
				st.Apply(d, st.Version+1, now)
				if r, ok := d.(events.ProductStockReserved); ok {
					// Not stored yet: it will come after every decision
					// already recorded, so to later decisions of this batch
					// it is stray for any decided order (Stray), until the
					// append gives it its position below.
					st.ReservedAt(r.OrderID, unstored)
				}
			}
			data = append(data, encoded...)
			op.view = viewOf(st)
		}
		if len(data) == 0 {
			// Nothing to append, so no version check will catch a stale
			// cache: make sure no other instance wrote since, or decide again.
			st.Rollback()
			pos, err := readRecorded(ctx, s.store, stream, st.Version+1, fold(st))
			if err != nil {
				fail(err)
				return
			}
			e.current = eventstore.MaxPosition(e.current, pos)
			if st.Version != base {
				if attempt < s.maxAttempts {
					continue
				}
				fail(fmt.Errorf("product %s: still changing after %d reads", e.id, attempt))
				return
			}
			s.views(e, st, ops)
			return
		}
		res, err := s.store.Append(ctx, stream, expectedAt(base), data...)
		if err == nil {
			st.Keep()
			recorded(st, ops, base, res)
			for _, op := range ops {
				for _, d := range op.decided {
					if r, ok := d.(events.ProductStockReserved); ok {
						st.ReservedAt(r.OrderID, res.Position) // the batch's last position: an upper bound
					}
				}
			}
			e.current = eventstore.MaxPosition(e.current, res.Position)
			s.snapshot(e)
			for _, op := range ops {
				if op.decided != nil {
					op.view.Position = res.Position
				}
				op.view.Current = e.current
			}
			s.views(e, st, ops)
			return
		}
		st.Rollback()
		if !errors.Is(err, eventstore.ErrWrongExpectedVersion) || attempt >= s.maxAttempts {
			if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				err = fmt.Errorf("product %s: still conflicting after %d attempts: %w", e.id, attempt, err)
			}
			fail(err)
			return
		}
		// Another writer got there first: catch up on its events only.
		pos, err := readRecorded(ctx, s.store, stream, st.Version+1, fold(st))
		if err != nil {
			fail(err)
			return
		}
		e.current = eventstore.MaxPosition(e.current, pos)
	}
}

// views gives operations that decided nothing the product's current view,
// and keeps it for Peek.
func (s *Stock) views(e *stockEntry, st *product.State, ops []*stockOp) {
	v := viewOf(st)
	v.Current = e.current
	if st.Exists() {
		e.last.Store(&v)
	}
	for _, op := range ops {
		if op.err == nil && op.decided == nil {
			op.view = v
		}
	}
}

// load reads product e from its latest usable snapshot and the events
// after it, or else its whole stream.
func (s *Stock) load(ctx context.Context, e *stockEntry) error {
	stream := events.ProductStream(e.id)
	st, current := s.restore(ctx, e)
	if st == nil {
		st, current = product.New(e.id), eventstore.Start
	}
	pos, err := readRecorded(ctx, s.store, stream, st.Version+1, fold(st))
	if err != nil {
		return err
	}
	e.state, e.current = st, eventstore.MaxPosition(current, pos)
	s.snapshot(e)
	return nil
}

// restore returns product e's state from its snapshot and the position of
// the snapshot's last event, or nil when there is none this code can use:
// none saved, a snapshot store that is away, another schema, data that
// does not add up, or a snapshot that does not match the stream (its last
// event is not stored where the snapshot says, as after restoring the
// snapshots apart from the events). The caller then folds the stream:
// snapshots cost speed when they fail, never correctness.
func (s *Stock) restore(ctx context.Context, e *stockEntry) (*product.State, eventstore.Position) {
	if s.snapshots == nil {
		return nil, eventstore.Start
	}
	stream := events.ProductStream(e.id)
	snap, err := s.opts.Snapshots.Load(ctx, stream)
	if err != nil {
		if !errors.Is(err, snapshot.ErrNotFound) && ctx.Err() == nil {
			s.opts.Logger.WarnContext(ctx, "loading a product snapshot failed; folding the stream", "product_id", e.id, "error", err)
		}
		return nil, eventstore.Start
	}
	st, err := product.RestoreSnapshot(e.id, snap.Schema, snap.Data)
	if errors.Is(err, product.ErrSnapshotSchema) {
		// Expected after an upgrade: the next snapshot has this schema.
		s.opts.Logger.DebugContext(ctx, "product snapshot of another schema ignored", "product_id", e.id, "error", err)
		return nil, eventstore.Start
	}
	if err == nil && st.Version != snap.Version {
		err = fmt.Errorf("%w: data at version %d, snapshot at %d", product.ErrSnapshotInvalid, st.Version, snap.Version)
	}
	if err == nil {
		var last eventstore.RecordedEvent
		if last, err = eventAt(ctx, s.store, stream, snap.Version); err == nil && last.Position != snap.Position {
			err = fmt.Errorf("the snapshot says event %d is at %s, the store has it at %s", snap.Version, snap.Position, last.Position)
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			s.opts.Logger.WarnContext(ctx, "product snapshot ignored; folding the stream", "product_id", e.id, "version", snap.Version, "error", err)
		}
		return nil, eventstore.Start
	}
	e.snapshotted = snap.Version
	return st, snap.Position
}

// snapshot hands a copy of e's state to the snapshot writer once it is due
// (the caller holds e.mu, after a successful append or a load): SnapshotEvery
// events past its last snapshot, and at least half as many events as the
// product has open reservations. A snapshot costs its open reservations (the
// copy taken here, under the lock, then the encoding and the save), so the
// second rule keeps that cost per event bounded: a hot product holding
// 100,000 unpaid orders is snapshotted every 50,000 events, not every 500,
// and a cold load still reads no more events after its snapshot than the
// snapshot itself holds reservations. Whatever becomes of this snapshot
// (saved, failed, or not taken for a full queue), the next is due as many
// events later: a failing snapshot store costs no work per decision and is
// never retried in a loop.
func (s *Stock) snapshot(e *stockEntry) {
	st := e.state
	if s.snapshots == nil || !st.Exists() {
		return
	}
	due := max(int64(s.opts.SnapshotEvery), int64(st.OpenReservations()/2))
	if st.Version-e.snapshotted < due {
		return
	}
	e.snapshotted = st.Version
	s.snapshots.offer(st, e.current)
}

// fold applies recorded product events to st, recording where each
// reservation stands in the global order (product.State.Stray).
func fold(st *product.State) func(r eventstore.RecordedEvent, e events.Event) {
	return func(r eventstore.RecordedEvent, e events.Event) {
		st.Apply(e, r.Version, r.RecordedAt)
		if res, ok := e.(events.ProductStockReserved); ok {
			st.ReservedAt(res.OrderID, r.Position)
		}
	}
}

// unstored is the position of a reservation decided in the running batch:
// after everything stored.
var unstored = eventstore.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64}
