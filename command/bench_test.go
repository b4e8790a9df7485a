package command_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/pgtest"
	snapshotpg "github.com/orders-reference/orders/snapshot/postgres"
)

// benchPlacement places single-item orders from many goroutines over the
// given number of products and reports orders/s.
func benchPlacement(b *testing.B, products int) {
	store := postgres.New(pgtest.NewPool(b, 64), postgres.Options{})
	defer store.Close()
	svc := command.NewService(store, command.Options{})
	ctx := context.Background()
	ids := make([]uuid.UUID, products)
	for i := range ids {
		v, err := svc.CreateProduct(ctx, command.CreateProduct{Name: fmt.Sprintf("p%d", i), Price: 1999, Stock: 1_000_000_000})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = v.ID
	}
	var placed atomic.Int64
	b.SetParallelism(32) // 64 concurrent customers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := placed.Add(1)
			_, err := svc.PlaceOrder(ctx, command.PlaceOrder{
				UserEmail: fmt.Sprintf("c%d@example.com", n),
				Lines:     []order.Line{{ProductID: ids[rand.IntN(len(ids))], Quantity: 1}},
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(placed.Load())/b.Elapsed().Seconds(), "orders/s")
}

// Orders spread over 1,000 products.
func BenchmarkPlaceOrder1000Products(b *testing.B) { benchPlacement(b, 1000) }

// Every order for the same product.
func BenchmarkPlaceOrderHotProduct(b *testing.B) { benchPlacement(b, 1) }

// history appends a product's history straight through the store, 1,000
// events per append: orders that reserve one unit and then commit or
// release it (a hot product's stream, its open reservations few).
type history struct {
	b       *testing.B
	store   *postgres.Store
	product uuid.UUID
	version int64
	pending []uuid.UUID
	batch   []eventstore.EventData
}

// add appends n events; the last open of them are reservations left open.
func (h *history) add(n, open int) {
	ctx := context.Background()
	for i := range n {
		var e events.Event
		switch {
		case i >= n-open || len(h.pending) == 0 || i%2 == 0:
			o := uuid.New()
			e = events.ProductStockReserved{OrderID: o, Quantity: 1}
			h.pending = append(h.pending, o)
		case i%4 == 1:
			e = events.ProductReservationCommitted{OrderID: h.pending[0], Quantity: 1}
			h.pending = h.pending[1:]
		default:
			e = events.ProductReservationReleased{OrderID: h.pending[0], Quantity: 1, Reason: events.ReleaseCustomerCanceled}
			h.pending = h.pending[1:]
		}
		data, err := events.Encode(e)
		if err != nil {
			h.b.Fatal(err)
		}
		h.batch = append(h.batch, eventstore.EventData{ID: uuid.New(), Type: e.EventType(), Data: data})
		if len(h.batch) == 1000 || i == n-1 {
			res, err := h.store.Append(ctx, events.ProductStream(h.product), eventstore.Exact(h.version), h.batch...)
			if err != nil {
				h.b.Fatal(err)
			}
			h.version, h.batch = res.Version, h.batch[:0]
		}
	}
}

// snapshot saves product p's snapshot at its current version, as a
// running ordersd would (a load with snapshots on offers one, the product
// being SnapshotEvery events past its last; Close waits for the save).
func snapshotNow(b *testing.B, store *postgres.Store, snaps command.SnapshotStore, p uuid.UUID, version int64) {
	b.Helper()
	ctx := context.Background()
	svc := command.NewService(store, command.Options{Stock: command.StockOptions{Snapshots: snaps, SnapshotEvery: 1}})
	if _, err := svc.Stock().View(ctx, p); err != nil {
		b.Fatal(err)
	}
	svc.Close(ctx)
	if s, err := snaps.Load(ctx, events.ProductStream(p)); err != nil || s.Version != version {
		b.Fatalf("snapshot: version %d, want %d: %v", s.Version, version, err)
	}
}

// BenchmarkColdLoad loads a product with a 200,000-event stream (500
// reservations open) into an empty cache, as after a restart or an
// eviction: from the whole stream; from a snapshot SnapshotEvery-1 (499)
// events behind the head, the most a product that takes orders lags its
// snapshot by; and from a snapshot at the head.
func BenchmarkColdLoad(b *testing.B) {
	const n, behind = 200_000, 499
	ctx := context.Background()
	pool := pgtest.NewPool(b, 8)
	store := postgres.New(pool, postgres.Options{})
	defer store.Close()
	snaps := snapshotpg.New(pool)
	v, err := command.NewService(store, command.Options{}).CreateProduct(ctx, command.CreateProduct{Name: "hot", Price: 1999, Stock: 1_000_000_000})
	if err != nil {
		b.Fatal(err)
	}
	h := &history{b: b, store: store, product: v.ID, version: v.Version}
	h.add(n-behind, 500)
	snapshotNow(b, store, snaps, v.ID, n-behind)
	h.add(behind, 0) // half of them settle open reservations, half reserve
	load := func(b *testing.B, opts command.StockOptions) {
		for b.Loop() {
			got, err := command.NewService(store, command.Options{Stock: opts}).Stock().View(ctx, v.ID)
			if err != nil || got.Version != n {
				b.Fatalf("%+v, %v", got, err)
			}
		}
	}
	b.Run("events=200k/snapshot=none", func(b *testing.B) { load(b, command.StockOptions{}) })
	// SnapshotEvery above 499, so that the loads do not save a new one.
	b.Run("events=200k/snapshot=499_behind", func(b *testing.B) { load(b, command.StockOptions{Snapshots: snaps, SnapshotEvery: 1000}) })
	snapshotNow(b, store, snaps, v.ID, n)
	b.Run("events=200k/snapshot=head", func(b *testing.B) { load(b, command.StockOptions{Snapshots: snaps, SnapshotEvery: 1000}) })
}
