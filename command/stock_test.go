package command_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/snapshot"
	snapshotpg "github.com/orders-reference/orders/snapshot/postgres"
)

// countingStore counts the events read from product streams.
type countingStore struct {
	command.EventStore
	read atomic.Int64
}

func (c *countingStore) ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	evs, err := c.EventStore.ReadStream(ctx, stream, dir, from, limit)
	if len(stream) > len(events.ProductStreamPrefix) && stream[:len(events.ProductStreamPrefix)] == events.ProductStreamPrefix {
		c.read.Add(int64(len(evs)))
	}
	return evs, err
}

func newPoolAndStore(t *testing.T) (*pgxpool.Pool, *postgres.Store) {
	t.Helper()
	pool := pgtest.NewPool(t, 12)
	s := postgres.New(pool, postgres.Options{})
	t.Cleanup(s.Close)
	return pool, s
}

// snapshotted waits until product p has a snapshot of at least version v.
func snapshotted(t *testing.T, snaps snapshot.Store, p uuid.UUID, v int64) snapshot.Snapshot {
	t.Helper()
	var got snapshot.Snapshot
	eventually.True(t, fmt.Sprintf("a snapshot of version %d", v), func() bool {
		s, err := snaps.Load(context.Background(), events.ProductStream(p))
		got = s
		return err == nil && s.Version >= v
	})
	return got
}

// A cold load reads the latest snapshot and only the events after it;
// snapshots are a cache: with them deleted, or of another schema, the
// product loads the same from its stream.
func TestSnapshotsAreACache(t *testing.T) {
	t.Parallel()
	pool, store := newPoolAndStore(t)
	snaps := snapshotpg.New(pool)
	withSnapshots := func(es command.EventStore) *command.Service {
		return command.NewService(es, command.Options{Stock: command.StockOptions{Snapshots: snaps, SnapshotEvery: 10}})
	}
	// readOnly reads snapshots and never writes one (a writer's reads
	// would be counted with the load's).
	readOnly := func(es command.EventStore) *command.Service {
		return command.NewService(es, command.Options{Stock: command.StockOptions{Snapshots: snaps, SnapshotEvery: 1 << 30}})
	}
	writer := withSnapshots(store)
	p := newProduct(t, writer, 1000)
	for i := range 35 {
		if _, err := place(writer, ctxT(t), fmt.Sprint("k", i), "snap@example.com", order.Line{ProductID: p, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
	writer.Close(ctxT(t))
	// Due every 10 events, and every half as many as are open: at versions
	// 9 and 19 (at 29 the product holds 29 open reservations).
	snap := snapshotted(t, snaps, p, 19)
	// The snapshot is the state folded from the events it covers, byte for
	// byte (times included: the store's, not the deciding process's).
	if folded := foldedTo(t, store, p, snap.Version); string(snap.Data) != string(folded) {
		t.Fatalf("snapshot of version %d:\n%s\nfolded from its events:\n%s", snap.Version, snap.Data, folded)
	}

	load := func(svc *command.Service) command.ProductView {
		t.Helper()
		v, err := svc.Stock().View(ctxT(t), p)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// want is the product loaded from its events alone.
	want := load(command.NewService(store, command.Options{}))
	check := func(what string, v command.ProductView) {
		t.Helper()
		if !sameView(v, want) {
			t.Fatalf("%s:\n%+v\nfrom the events alone:\n%+v", what, v, want)
		}
	}
	counting := &countingStore{EventStore: store}
	check("from the snapshot", load(readOnly(counting)))
	// The events after the snapshot, and its own last one (checked to be
	// where the snapshot says it is).
	if n := counting.read.Load(); n != want.Version-snap.Version+1 {
		t.Fatalf("read %d events with a snapshot of version %d (stream at %d)", n, snap.Version, want.Version)
	}
	// Decisions on the restored state hold: the reservations it knows are open.
	cold := withSnapshots(store)
	first := pickOrder(t, store, p)
	if _, _, err := cold.Stock().Do(ctxT(t), p, customer, func(st *product.State) ([]events.Event, error) {
		if _, held := st.ReservedFor(first); !held {
			return nil, fmt.Errorf("order %s not open after restore", first)
		}
		return st.Release(first, events.ReleaseCustomerCanceled), nil
	}); err != nil {
		t.Fatal(err)
	}
	cold.Close(ctxT(t)) // its snapshots saved before the ones below are spoiled
	want = load(command.NewService(store, command.Options{}))

	if _, err := pool.Exec(ctxT(t), `UPDATE snapshots SET schema_version = 99`); err != nil {
		t.Fatal(err)
	}
	counting = &countingStore{EventStore: store}
	check("with a snapshot of another schema", load(readOnly(counting)))
	if n := counting.read.Load(); n != want.Version+1 {
		t.Fatalf("read %d events ignoring the snapshot, want the whole stream (%d)", n, want.Version+1)
	}
	if _, err := pool.Exec(ctxT(t), `DELETE FROM snapshots`); err != nil {
		t.Fatal(err)
	}
	check("without snapshots", load(withSnapshots(store)))
	check("without a snapshot store", load(command.NewService(store, command.Options{})))
}

// sameView reports whether two views show the same product (times
// compared as instants).
func sameView(a, b command.ProductView) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) || !a.UpdatedAt.Equal(b.UpdatedAt) {
		return false
	}
	a.CreatedAt, a.UpdatedAt, b.CreatedAt, b.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b
}

// foldedTo returns the snapshot encoding of product p folded from its
// events up to version v.
func foldedTo(t *testing.T, store command.EventStore, p uuid.UUID, v int64) []byte {
	t.Helper()
	recorded, err := store.ReadStream(ctxT(t), events.ProductStream(p), eventstore.Forward, 0, int(v)+1)
	if err != nil {
		t.Fatal(err)
	}
	st := product.New(p)
	for _, r := range recorded {
		e, err := events.Decode(r.Type, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		st.Apply(e, r.Version, r.RecordedAt)
		if res, ok := e.(events.ProductStockReserved); ok {
			st.ReservedAt(res.OrderID, r.Position)
		}
	}
	data, err := st.MarshalSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// pickOrder returns an order that holds a reservation of p.
func pickOrder(t *testing.T, store command.EventStore, p uuid.UUID) uuid.UUID {
	t.Helper()
	recorded, err := store.ReadStream(ctxT(t), events.ProductStream(p), eventstore.Backward, eventstore.FromEnd, 1)
	if err != nil {
		t.Fatal(err)
	}
	e, err := events.Decode(recorded[0].Type, recorded[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	return e.(events.ProductStockReserved).OrderID
}

// A cache smaller than the products in use evicts and reloads them, and
// every decision stays right: concurrent placements over more products
// than the cache holds conserve stock exactly.
func TestBoundedCacheEvicts(t *testing.T) {
	t.Parallel()
	_, store := newPoolAndStore(t)
	var hits, misses, evictions atomic.Int64
	svc := command.NewService(store, command.Options{Stock: command.StockOptions{CacheSize: 2, OnCache: func(e string) {
		switch e {
		case command.CacheHit:
			hits.Add(1)
		case command.CacheMiss:
			misses.Add(1)
		case command.CacheEviction:
			evictions.Add(1)
		}
	}}})
	products := make([]uuid.UUID, 5)
	for i := range products {
		products[i] = newProduct(t, svc, 20)
	}
	var wg sync.WaitGroup
	var placed [5]atomic.Int64
	for w := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 6 {
				k := (w + i) % len(products)
				_, err := place(svc, ctxT(t), "", fmt.Sprintf("c%d@example.com", w), order.Line{ProductID: products[k], Quantity: 1})
				if err != nil {
					t.Error(err)
					return
				}
				placed[k].Add(1)
			}
		}()
	}
	wg.Wait()
	if svc.Stock().Cached() > 2 {
		t.Fatalf("%d products cached, limit 2", svc.Stock().Cached())
	}
	if evictions.Load() == 0 || misses.Load() == 0 || hits.Load() == 0 {
		t.Fatalf("hits %d, misses %d, evictions %d: the cache did not work as a bounded cache", hits.Load(), misses.Load(), evictions.Load())
	}
	for k, p := range products {
		st := stockOf(t, store, p)
		if st.Reserved != placed[k].Load() || st.Available+st.Reserved != 20 {
			t.Fatalf("product %d: available %d reserved %d, placed %d", k, st.Available, st.Reserved, placed[k].Load())
		}
	}
}

// cacheCounts counts a Stock's cache events.
type cacheCounts struct{ hits, misses, evictions atomic.Int64 }

func (c *cacheCounts) observe(e string) {
	switch e {
	case command.CacheHit:
		c.hits.Add(1)
	case command.CacheMiss:
		c.misses.Add(1)
	case command.CacheEviction:
		c.evictions.Add(1)
	}
}

// Ids that name no product never enter the cache, so a flood of them (anyone
// can put one in an order) evicts no product.
func TestUnknownIdsEvictNothing(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	var counts cacheCounts
	svc := command.NewService(store, command.Options{Stock: command.StockOptions{CacheSize: 2, OnCache: counts.observe}})
	a, b := newProduct(t, svc, 5), newProduct(t, svc, 5)
	for range 50 {
		if _, err := svc.Stock().View(ctxT(t), uuid.New()); !errors.Is(err, product.ErrNotFound) {
			t.Fatalf("unknown product: %v", err)
		}
	}
	if _, err := place(svc, ctxT(t), "", "u@example.com", order.Line{ProductID: uuid.New(), Quantity: 1}); err == nil {
		t.Fatal("an order for an unknown product was accepted")
	}
	if n := counts.evictions.Load(); n != 0 {
		t.Fatalf("unknown ids evicted %d products", n)
	}
	misses := counts.misses.Load()
	for _, p := range []uuid.UUID{a, b} {
		if _, err := svc.Stock().View(ctxT(t), p); err != nil {
			t.Fatal(err)
		}
	}
	if counts.misses.Load() != misses || svc.Stock().Cached() != 2 {
		t.Fatalf("the products were reloaded (%d misses more), %d cached", counts.misses.Load()-misses, svc.Stock().Cached())
	}
}

// With a cache of one product, decisions on three products evict entries
// while their batches run, and a second instance writes too: every
// reservation is decided once and stock adds up, since every append is
// checked against the stream's version whichever entry made it.
func TestEvictionWhileBatchesRun(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	var counts cacheCounts
	tiny := command.NewService(store, command.Options{Stock: command.StockOptions{CacheSize: 1, OnCache: counts.observe}})
	other := command.NewService(store, command.Options{})
	const stock = 1000
	products := []uuid.UUID{newProduct(t, tiny, stock), newProduct(t, tiny, stock), newProduct(t, tiny, stock)}
	var (
		wg       sync.WaitGroup
		reserved [3]atomic.Int64
	)
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := tiny
			if w%4 == 3 {
				svc = other
			}
			for i := range 25 {
				k := (w + i) % len(products)
				decided, _, err := svc.Stock().Do(ctxT(t), products[k], customer, func(st *product.State) ([]events.Event, error) {
					return st.Reserve(uuid.New(), 1)
				})
				if err != nil {
					t.Error(err)
					return
				}
				reserved[k].Add(int64(len(decided)))
			}
		}()
	}
	wg.Wait()
	if counts.evictions.Load() == 0 {
		t.Fatal("nothing was evicted")
	}
	if n := tiny.Stock().Cached(); n != 1 {
		t.Fatalf("%d products cached, limit 1", n)
	}
	for k, p := range products {
		st := stockOf(t, store, p)
		if st.Reserved != reserved[k].Load() || st.Available+st.Reserved != stock || st.Version != reserved[k].Load() {
			t.Fatalf("product %d: available %d, reserved %d, version %d; %d reservations decided", k, st.Available, st.Reserved, st.Version, reserved[k].Load())
		}
		// And the cache agrees with the stream after reloading.
		v, err := tiny.Stock().View(ctxT(t), p)
		if err != nil || v.Reserved != st.Reserved || v.Version != st.Version {
			t.Fatalf("product %d reloaded: %+v, %v", k, v, err)
		}
	}
	t.Logf("hits %d, misses %d, evictions %d", counts.hits.Load(), counts.misses.Load(), counts.evictions.Load())
}

// A snapshot that does not match its stream (ahead of it, or its last event
// elsewhere, as when the snapshots were restored apart from the events) is
// ignored, and decisions go on from the stream.
func TestSnapshotNotMatchingTheStreamIsIgnored(t *testing.T) {
	t.Parallel()
	pool, store := newPoolAndStore(t)
	snaps := snapshotpg.New(pool)
	svc := command.NewService(store, command.Options{})
	p := newProduct(t, svc, 10)
	for range 3 {
		if _, _, err := svc.Stock().Do(ctxT(t), p, customer, func(st *product.State) ([]events.Event, error) { return st.Reserve(uuid.New(), 1) }); err != nil {
			t.Fatal(err)
		}
	}
	want := stockOf(t, store, p)
	last, err := store.ReadStream(ctxT(t), events.ProductStream(p), eventstore.Backward, eventstore.FromEnd, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		version  int64
		position eventstore.Position
	}{
		{"ahead of the stream", want.Version + 5, last[0].Position},
		{"last event elsewhere", want.Version, eventstore.Position{Commit: last[0].Position.Commit + 1}},
	} {
		// A state that would refuse every reservation if it were believed.
		bogus := product.New(p)
		bogus.Apply(events.ProductCreated{ProductID: p, Name: "Bogus", Price: 1, Stock: 0, IsActive: false}, 0, time.Now())
		bogus.Version = c.version
		data, err := bogus.MarshalSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctxT(t), `DELETE FROM snapshots`); err != nil {
			t.Fatal(err)
		}
		if err := snaps.Save(ctxT(t), snapshot.Snapshot{Stream: events.ProductStream(p), Version: c.version,
			Schema: product.SnapshotSchema, Position: c.position, Data: data}); err != nil {
			t.Fatal(err)
		}
		cold := command.NewService(store, command.Options{Stock: command.StockOptions{Snapshots: snaps, SnapshotEvery: 1 << 30}})
		v, err := cold.Stock().View(ctxT(t), p)
		if err != nil || v.Name != "Laptop" || v.Version != want.Version || v.Reserved != want.Reserved {
			t.Fatalf("%s: %+v, %v", c.name, v, err)
		}
		if _, _, err := cold.Stock().Do(ctxT(t), p, customer, func(st *product.State) ([]events.Event, error) { return st.Reserve(uuid.New(), 1) }); err != nil {
			t.Fatalf("%s: reserve: %v", c.name, err)
		}
		want = stockOf(t, store, p)
		last, err = store.ReadStream(ctxT(t), events.ProductStream(p), eventstore.Backward, eventstore.FromEnd, 1)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A snapshot costs the product's open reservations, so a product holding
// many of them is snapshotted less often: the reservations copied and
// encoded stay in proportion to the events decided, however many orders
// hold the product; once they are released, snapshots come every
// SnapshotEvery events again.
func TestSnapshotCostPerEventIsBounded(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	snaps := &recordingSnapshots{}
	const every = 5
	svc := command.NewService(store, command.Options{Stock: command.StockOptions{Snapshots: snaps, SnapshotEvery: every}})
	p := newProduct(t, svc, 10_000)
	const n = 400
	orders := make([]uuid.UUID, n)
	for i := range orders {
		orders[i] = uuid.New()
		if _, _, err := svc.Stock().Do(ctxT(t), p, customer, func(st *product.State) ([]events.Event, error) { return st.Reserve(orders[i], 1) }); err != nil {
			t.Fatal(err)
		}
	}
	// Everything reserved is still open: a snapshot every SnapshotEvery
	// events would copy 1+2+…+n/5 reservations in all (~16,000).
	svc.Close(ctxT(t))
	copied, saves := snaps.totals()
	if saves == 0 || copied > 2*n+every {
		t.Fatalf("%d snapshots copied %d open reservations for %d events; want at most %d", saves, copied, n, 2*n+every)
	}

	svc = command.NewService(store, command.Options{Stock: command.StockOptions{Snapshots: snaps, SnapshotEvery: every}})
	for _, id := range orders {
		if _, _, err := svc.Stock().Do(ctxT(t), p, customer, func(st *product.State) ([]events.Event, error) {
			return st.Release(id, events.ReleaseCustomerCanceled), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	const more = 100 // short-lived reservations: none left open for long
	for range more {
		id := uuid.New()
		if _, _, err := svc.Stock().Do(ctxT(t), p, customer, func(st *product.State) ([]events.Event, error) { return st.Reserve(id, 1) }); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.Stock().Do(ctxT(t), p, customer, func(st *product.State) ([]events.Event, error) {
			return st.Release(id, events.ReleaseCustomerCanceled), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	svc.Close(ctxT(t))
	_, after := snaps.totals()
	// The releases took the open count down from 400, so snapshots came
	// back to every 5 events at the latest once 10 remained open; the
	// last 200 events (100 reserve-release pairs) alone are 40 of them.
	if got := after - saves; got < (2*more)/every {
		t.Fatalf("%d snapshots over %d events after the releases, want at least %d", got, n+2*more, (2*more)/every)
	}
}

// recordingSnapshots is a snapshot store that keeps nothing and counts
// what it was asked to save.
type recordingSnapshots struct {
	mu     sync.Mutex
	saves  int
	copied int // open reservations in all snapshots saved
}

func (r *recordingSnapshots) Load(ctx context.Context, stream string) (snapshot.Snapshot, error) {
	return snapshot.Snapshot{}, snapshot.ErrNotFound
}

func (r *recordingSnapshots) Save(ctx context.Context, s snapshot.Snapshot) error {
	id, err := uuid.Parse(strings.TrimPrefix(s.Stream, events.ProductStreamPrefix))
	if err != nil {
		return err
	}
	st, err := product.RestoreSnapshot(id, s.Schema, s.Data)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.saves++
	r.copied += st.OpenReservations()
	return nil
}

func (r *recordingSnapshots) totals() (copied, saves int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.copied, r.saves
}

// failingSnapshots is a snapshot store that is away: every load and save
// fails. Saves can also be made to hang until released.
type failingSnapshots struct {
	saves   atomic.Int64
	hang    chan struct{} // saves wait for it to close, if not nil
	started chan struct{} // told of each save that started, if not nil
}

func (f *failingSnapshots) Load(ctx context.Context, stream string) (snapshot.Snapshot, error) {
	return snapshot.Snapshot{}, fmt.Errorf("snapshot store away")
}

func (f *failingSnapshots) Save(ctx context.Context, s snapshot.Snapshot) error {
	f.saves.Add(1)
	if f.started != nil {
		select {
		case f.started <- struct{}{}:
		default:
		}
	}
	if f.hang != nil {
		select {
		case <-f.hang:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("snapshot store away")
}

// A snapshot store that fails costs no decision: loads fold the stream,
// failed saves are reported once each and not retried before the product
// has moved SnapshotEvery events again.
func TestFailingSnapshotStoreFailsNoDecision(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	snaps := &failingSnapshots{}
	var failed atomic.Int64
	svc := command.NewService(store, command.Options{Stock: command.StockOptions{Snapshots: snaps, SnapshotEvery: 5,
		OnSnapshot: func(err error) {
			if err != nil {
				failed.Add(1)
			}
		}}})
	p := newProduct(t, svc, 100)
	const n = 40
	for range n {
		if _, _, err := svc.Stock().Do(ctxT(t), p, customer, func(st *product.State) ([]events.Event, error) { return st.Reserve(uuid.New(), 1) }); err != nil {
			t.Fatal(err)
		}
	}
	svc.Close(ctxT(t))
	if s := snaps.saves.Load(); s == 0 || s > n/5 || failed.Load() != s {
		t.Fatalf("%d saves for %d events every 5, %d failures reported", s, n, failed.Load())
	}
	// After Close decisions go on, without snapshots.
	if _, _, err := svc.Stock().Do(ctxT(t), p, customer, func(st *product.State) ([]events.Event, error) { return st.Reserve(uuid.New(), 1) }); err != nil {
		t.Fatal(err)
	}
	if st := stockOf(t, store, p); st.Reserved != n+1 {
		t.Fatalf("reserved %d, want %d", st.Reserved, n+1)
	}
}

// A snapshot store that hangs blocks no decision: the writer's queue fills,
// further snapshots are not taken (reported as ErrSnapshotQueueFull), and
// Close gives up on the rest when its context ends.
func TestHangingSnapshotStoreBlocksNoDecision(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	snaps := &failingSnapshots{hang: make(chan struct{}), started: make(chan struct{}, 1)}
	var full atomic.Int64
	svc := command.NewService(store, command.Options{Stock: command.StockOptions{Snapshots: snaps, SnapshotEvery: 1, CacheSize: 1000,
		OnSnapshot: func(err error) {
			if errors.Is(err, command.ErrSnapshotQueueFull) {
				full.Add(1)
			}
		}}})
	// Many products, so that each takes a snapshot after its creation
	// (version 0 is one event past none): more than the queue holds.
	const products = 300
	var wg sync.WaitGroup
	for i := range products {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := svc.CreateProduct(ctxT(t), command.CreateProduct{Name: fmt.Sprint("p", i), Price: 100, Stock: 1, Meta: customer}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	<-snaps.started
	if full.Load() == 0 {
		t.Fatalf("%d snapshots offered to a queue of 256 behind a hanging save, none refused", products)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel() // give up at once: the hanging save is canceled, the rest dropped
	svc.Close(ctx)
	if s := snaps.saves.Load(); s != 1 {
		t.Fatalf("%d saves attempted after giving up, want only the hanging one", s)
	}
	close(snaps.hang)
}
