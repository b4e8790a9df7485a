package projections_test

import (
	"context"
	"testing"

	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query/products"
)

// Rebuilding the products read model from 1,000,000 stored events (1,000
// products with 1,000 events each). Run with -benchtime 1x.
//
// Grouped: each product's events are stored together, so a batch of 5,000
// touches about five products. Interleaved: the products take turns, so
// every batch touches all 1,000 — the worst case for folding.
func BenchmarkRebuildProducts1MGrouped(b *testing.B)     { benchRebuild(b, "p.n, v") }
func BenchmarkRebuildProducts1MInterleaved(b *testing.B) { benchRebuild(b, "v, p.n") }

func benchRebuild(b *testing.B, order string) {
	pool := pgtest.NewPool(b, 8)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `
		INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
		SELECT gen_random_uuid(), 'product-' || p.id, v,
		       CASE WHEN v = 0 THEN 'product.created.v1'
		            WHEN v % 2 = 1 THEN 'product.stock_reserved.v1'
		            ELSE 'product.reservation_released.v1' END,
		       CASE WHEN v = 0 THEN json_build_object('product_id', p.id, 'name', 'Product', 'description', '',
		                                              'price', '19.99', 'stock', 1000000, 'is_active', true)
		            ELSE json_build_object('order_id', gen_random_uuid(), 'quantity', 1, 'reason', 'x') END,
		       '{"actor":"system"}'
		  FROM (SELECT gen_random_uuid() AS id, n FROM generate_series(1, 1000) n) p,
		       generate_series(0, 999) v
		 ORDER BY `+order); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE events`); err != nil {
		b.Fatal(err)
	}
	store := postgres.New(pool, postgres.Options{})
	defer store.Close()
	var events int64
	b.ResetTimer()
	for b.Loop() {
		res, err := projections.Rebuild(ctx, pool, store, products.Projector{}, projections.RebuildOptions{Restart: true})
		if err != nil {
			b.Fatal(err)
		}
		events += res.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
