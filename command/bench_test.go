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
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/pgtest"
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
