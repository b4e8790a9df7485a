package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query"
	"github.com/orders-reference/orders/query/orderstock"
)

// The audit of one paid order on a hot product that 1,000 or 100,000 other
// orders also bought (each leaves a reservation and a commit on the
// product's stream, half before the order, half after): "index" is
// query.OrderHistory through the order_stock index, "scan" reads the
// product's whole stream and filters it, as the audit did before the index.
// events-read/op counts the events the store handed over.
//
//	go test -run '^$' -bench OrderHistory -benchtime 2s ./query/
func BenchmarkOrderHistory(b *testing.B) {
	for _, others := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("others=%d", others), func(b *testing.B) {
			pool := pgtest.NewPool(b, 4)
			store := postgres.New(pool, postgres.Options{})
			defer store.Close()
			id, product := seedHotProduct(b, pool, others)
			res, err := projections.Rebuild(context.Background(), pool, store, orderstock.Projector{}, projections.RebuildOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("order_stock built from %d events in %s (%.0f events/s)", res.Events, res.Duration.Round(time.Millisecond),
				float64(res.Events)/res.Duration.Seconds())
			for _, table := range []string{"events", orderstock.Table} {
				if _, err := pool.Exec(context.Background(), `VACUUM ANALYZE `+table); err != nil {
					b.Fatal(err)
				}
			}
			reader := orderstock.NewReader(pool)
			b.Run("index", func(b *testing.B) {
				c := &counting{EventReader: store}
				for b.Loop() {
					h, err := query.OrderHistory(context.Background(), c, reader, id)
					if err != nil || len(h.Events) != 6 {
						b.Fatalf("history: %v, %d events", err, len(h.Events))
					}
				}
				b.ReportMetric(float64(c.events.Load())/float64(b.N), "events-read/op")
			})
			b.Run("scan", func(b *testing.B) {
				c := &counting{EventReader: store}
				for b.Loop() {
					if n := scanHistory(b, c, id, product); n != 6 {
						b.Fatalf("scan found %d events", n)
					}
				}
				b.ReportMetric(float64(c.events.Load())/float64(b.N), "events-read/op")
			})
		})
	}
}

// seedHotProduct stores, with plain SQL, a product, the reservations and
// commits of others orders on it, and in their middle one paid order (four
// order events, a reservation and a commit). It returns the order and the
// product.
func seedHotProduct(b *testing.B, pool *pgxpool.Pool, others int) (uuid.UUID, uuid.UUID) {
	b.Helper()
	ctx := context.Background()
	id, product := uuid.New(), uuid.New()
	productStream, orderStream := events.ProductStream(product), events.OrderStream(id)
	version := int64(0)
	insert := func(stream string, v int64, typ string, data any) {
		raw, err := json.Marshal(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
		     VALUES ($1, $2, $3, $4, $5, '{"actor":"system"}')`, uuid.New(), stream, v, typ, string(raw)); err != nil {
			b.Fatal(err)
		}
	}
	// pairs stores n other orders' reservations and commits in one statement.
	pairs := func(n int) {
		if _, err := pool.Exec(ctx, `INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
		     SELECT gen_random_uuid(), $1, $2 + i,
		            CASE WHEN i % 2 = 0 THEN 'product.stock_reserved.v1' ELSE 'product.reservation_committed.v1' END,
		            json_build_object('order_id', md5($1 || ($2 + i / 2)::text)::uuid, 'quantity', 1),
		            '{"actor":"system"}'
		       FROM generate_series(0, 2 * $3::bigint - 1) i ORDER BY i`, productStream, version, n); err != nil {
			b.Fatal(err)
		}
		version += int64(2 * n)
	}
	insert(productStream, version, events.TypeProductCreated, map[string]any{"product_id": product, "name": "Hot", "description": "",
		"price": "19.99", "stock": 1_000_000_000, "is_active": true})
	version++
	pairs(others / 2)
	insert(orderStream, 0, events.TypeOrderPlaced, map[string]any{"order_id": id, "user_email": "a@example.com", "currency": "USD", "total": "19.99",
		"items": []map[string]any{{"product_id": product, "quantity": 1, "unit_price": "19.99", "line_total": "19.99"}}})
	insert(productStream, version, events.TypeProductStockReserved, events.ProductStockReserved{OrderID: id, Quantity: 1})
	version++
	insert(orderStream, 1, events.TypeOrderReserved, struct{}{})
	insert(orderStream, 2, events.TypeOrderPaymentRequested, events.OrderPaymentRequested{PaymentID: "pay-1"})
	pairs(others - others/2)
	insert(orderStream, 3, events.TypeOrderPaid, events.OrderPaid{PaymentID: "pay-1"})
	insert(productStream, version, events.TypeProductReservationCommitted, events.ProductReservationCommitted{OrderID: id, Quantity: 1})
	return id, product
}

// scanHistory is the audit without the index: the order's stream and the
// product's whole stream, filtered by order_id. It returns how many events
// it found.
func scanHistory(b *testing.B, store query.EventReader, id, product uuid.UUID) int {
	var found []eventstore.RecordedEvent
	for _, stream := range []string{events.OrderStream(id), events.ProductStream(product)} {
		for from := int64(0); ; {
			page, err := store.ReadStream(context.Background(), stream, eventstore.Forward, from, 1000)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range page {
				var ref struct {
					OrderID uuid.UUID `json:"order_id"`
				}
				if stream == events.OrderStream(id) || (json.Unmarshal(r.Data, &ref) == nil && ref.OrderID == id) {
					found = append(found, r)
				}
			}
			if len(page) < 1000 {
				break
			}
			from = page[len(page)-1].Version + 1
		}
	}
	slices.SortFunc(found, func(a, b eventstore.RecordedEvent) int { return a.Position.Compare(b.Position) })
	return len(found)
}
