package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/batch"
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
// StockOptions.SnapshotEvery events.
type Stock struct {
	store       EventStore
	maxAttempts int
	opts        StockOptions
	snapshots   *snapshotWriter

	mu       sync.Mutex
	products *lru.Cache[uuid.UUID, *stockEntry]
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
	// gets a new one (default 500; negative: never).
	SnapshotEvery int
	// OnCache is told "hit", "miss" or "eviction" (for metrics);
	// OnSnapshot of every snapshot saved (err nil) or failed.
	OnCache    func(event string)
	OnSnapshot func(err error)
	Logger     *slog.Logger
}

// Cache events reported to StockOptions.OnCache.
const (
	CacheHit      = "hit"
	CacheMiss     = "miss"
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
	s := &Stock{store: store, maxAttempts: 50, opts: opts}
	cache, err := lru.NewWithEvict(opts.CacheSize, func(uuid.UUID, *stockEntry) { opts.OnCache(CacheEviction) })
	if err != nil {
		panic(err) // only for a size <= 0, excluded above
	}
	s.products = cache
	if opts.Snapshots != nil && opts.SnapshotEvery > 0 {
		s.snapshots = newSnapshotWriter(opts.Snapshots, opts.OnSnapshot, opts.Logger)
	}
	return s
}

// Close stops the snapshot writer, saving what it holds first (bounded by
// ctx).
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
	// snapshotted is the version of the state's latest snapshot (-1: none).
	snapshotted int64
	combiner    *batch.Combiner[*stockOp]
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

// entry returns product id's cache entry, creating it if needed. An
// entry evicted while a batch of it runs may coexist for a moment with its
// successor: both append at the version they know, so the event store's
// version check keeps them honest (the loser reads the tail and decides
// again).
func (s *Stock) entry(id uuid.UUID) *stockEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.products.Get(id)
	if ok {
		s.opts.OnCache(CacheHit)
	} else {
		s.opts.OnCache(CacheMiss)
		e = &stockEntry{id: id, snapshotted: -1}
		e.combiner = &batch.Combiner[*stockOp]{
			Exec:        func(ops []*stockOp) { s.run(e, ops) },
			MaxBatch:    256,
			MaxInFlight: 1, // one batch per product at a time: each sees the last one's result
		}
		s.products.Add(id, e)
	}
	return e
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
	_, v, err := s.Do(ctx, id, eventstore.Metadata{}, func(p *product.State) ([]events.Event, error) {
		if !p.Exists() {
			return nil, fmt.Errorf("%w: %s", product.ErrNotFound, id)
		}
		return nil, nil
	})
	return v, err
}

// Cached returns how many products are in the cache.
func (s *Stock) Cached() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.products.Len()
}

// forget drops e from the cache (the caller holds e.mu).
func (s *Stock) forget(e *stockEntry) {
	e.state = nil
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.products.Peek(e.id); ok && cur == e {
		s.products.Remove(e.id)
	}
}

// Peek returns the product as this process last saw it, without asking
// the event store unless the product was never loaded. It may be a moment
// behind another instance's writes: good for pricing an order, not for
// deciding (decisions go through Do, which the store's version check
// guards).
func (s *Stock) Peek(ctx context.Context, id uuid.UUID) (ProductView, error) {
	if v := s.entry(id).last.Load(); v != nil && v.Version >= 0 {
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
	e.mu.Lock()
	defer e.mu.Unlock()
	defer func() {
		for _, op := range ops {
			close(op.done)
		}
	}()
	fail := func(err error) {
		for _, op := range ops {
			op.decided, op.err = nil, err
		}
	}

	if e.state == nil {
		if err := s.load(ctx, e); err != nil {
			fail(err)
			return
		}
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
			}
			data = append(data, encoded...)
			op.view = viewOf(st)
		}
		if len(data) == 0 {
			// Nothing to append, so no version check will catch a stale
			// cache: make sure no other instance wrote since, or decide again.
			st.Rollback()
			pos, err := readStreamAt(ctx, s.store, stream, st.Version+1, st.Apply)
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
			if !st.Exists() {
				// Do not keep entries for ids that name no product.
				s.forget(e)
			}
			s.views(e, st, ops)
			return
		}
		res, err := s.store.Append(ctx, stream, expectedAt(base), data...)
		if err == nil {
			st.Keep()
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
		pos, err := readStreamAt(ctx, s.store, stream, st.Version+1, st.Apply)
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

// load reads product e from its latest snapshot (if any, of the schema this
// code knows) and the events after it.
func (s *Stock) load(ctx context.Context, e *stockEntry) error {
	stream := events.ProductStream(e.id)
	st, from, current := product.New(e.id), int64(0), eventstore.Start
	if s.snapshots != nil {
		snap, err := s.opts.Snapshots.Load(ctx, stream)
		switch {
		case err == nil:
			restored, rerr := product.RestoreSnapshot(e.id, snap.Schema, snap.Data)
			if rerr != nil {
				s.opts.Logger.WarnContext(ctx, "product snapshot ignored; folding the stream", "product_id", e.id, "error", rerr)
				break
			}
			st, from, current = restored, snap.Version+1, snap.Position
			e.snapshotted = snap.Version
		case !errors.Is(err, snapshot.ErrNotFound):
			// A cache that is away costs speed, not correctness.
			s.opts.Logger.WarnContext(ctx, "loading a product snapshot failed; folding the stream", "product_id", e.id, "error", err)
		}
	}
	pos, err := readStreamAt(ctx, s.store, stream, from, st.Apply)
	if err != nil {
		return err
	}
	e.state, e.current = st, eventstore.MaxPosition(current, pos)
	s.snapshot(e)
	return nil
}

// snapshot hands e's state to the snapshot writer once it is SnapshotEvery
// events past its last snapshot. The state is encoded here, under the
// entry's lock (its size is the open reservations); the save happens off
// the request path.
func (s *Stock) snapshot(e *stockEntry) {
	st := e.state
	if s.snapshots == nil || !st.Exists() || st.Version-e.snapshotted < int64(s.opts.SnapshotEvery) {
		return
	}
	data, err := st.MarshalSnapshot()
	if err != nil {
		s.snapshots.report(fmt.Errorf("encode product %s: %w", e.id, err))
		return
	}
	if s.snapshots.offer(snapshot.Snapshot{Stream: events.ProductStream(e.id), Version: st.Version,
		Schema: product.SnapshotSchema, Position: e.current, Data: data}) {
		e.snapshotted = st.Version
	}
}
