package command_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

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
	writer := withSnapshots(store)
	p := newProduct(t, writer, 1000)
	for i := range 35 {
		if _, err := place(writer, ctxT(t), fmt.Sprint("k", i), "snap@example.com", order.Line{ProductID: p, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
	writer.Close(ctxT(t))
	snap := snapshotted(t, snaps, p, 29)
	want := stockOf(t, store, p)

	load := func(svc *command.Service) command.ProductView {
		t.Helper()
		v, err := svc.Stock().View(ctxT(t), p)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	check := func(what string, v command.ProductView) {
		t.Helper()
		if v.Available != want.Available || v.Reserved != want.Reserved || v.Version != want.Version || v.Name != want.Name {
			t.Fatalf("%s: %+v, want available %d reserved %d version %d", what, v, want.Available, want.Reserved, want.Version)
		}
	}
	counting := &countingStore{EventStore: store}
	check("from the snapshot", load(withSnapshots(counting)))
	if n := counting.read.Load(); n != want.Version-snap.Version {
		t.Fatalf("read %d events after a snapshot of version %d (stream at %d)", n, snap.Version, want.Version)
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
	want = stockOf(t, store, p)

	if _, err := pool.Exec(ctxT(t), `UPDATE snapshots SET schema_version = 99`); err != nil {
		t.Fatal(err)
	}
	counting = &countingStore{EventStore: store}
	check("with a snapshot of another schema", load(withSnapshots(counting)))
	if n := counting.read.Load(); n != want.Version+1 {
		t.Fatalf("read %d events ignoring the snapshot, want the whole stream (%d)", n, want.Version+1)
	}
	if _, err := pool.Exec(ctxT(t), `DELETE FROM snapshots`); err != nil {
		t.Fatal(err)
	}
	check("without snapshots", load(withSnapshots(store)))
	check("without a snapshot store", load(command.NewService(store, command.Options{})))
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
