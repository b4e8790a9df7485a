package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/pgtest"
)

// A payload the size of an order event.
var benchPayload = json.RawMessage(`{"order_id":"0b7e7a54-3f0c-4f5e-9f55-3d1f0c7e8a11","user_email":"customer@example.com","items":[{"product_id":"5d2c1a3e-7b8f-4c6d-9e0a-1b2c3d4e5f60","quantity":2,"unit_price":150000}],"total":300000,"currency":"USD"}`)

func benchEvent() eventstore.EventData {
	return eventstore.EventData{
		ID:       uuid.New(),
		Type:     "order.placed.v1",
		Data:     benchPayload,
		Metadata: eventstore.Metadata{CorrelationID: "bench", Actor: "customer"},
	}
}

func benchStore(b *testing.B) *postgres.Store {
	b.Helper()
	pool := pgtest.NewPool(b, 40)
	s := postgres.New(pool, postgres.Options{})
	b.Cleanup(s.Close)
	return s
}

func reportEventsPerSecond(b *testing.B, events int64) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// One event to a new stream, one writer.
func BenchmarkAppendOneEventNewStream(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("order-%d", i), eventstore.NoStream, benchEvent()); err != nil {
			b.Fatal(err)
		}
	}
	reportEventsPerSecond(b, int64(b.N))
}

// Ten events per append to one stream, one writer.
func BenchmarkAppendTenEventsOneStream(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	version := eventstore.NoVersion
	batch := make([]eventstore.EventData, 10)
	for b.Loop() {
		for j := range batch {
			batch[j] = benchEvent()
		}
		res, err := s.Append(ctx, "order-hot", eventstore.Exact(version), batch...)
		if err != nil {
			b.Fatal(err)
		}
		version = res.Version
	}
	reportEventsPerSecond(b, int64(b.N)*10)
}

// One event to a new stream from each of 16 concurrent writers.
func BenchmarkAppendOneEvent16Writers(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(max(1, 16/runtimeProcs()))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Append(ctx, fmt.Sprintf("order-%d", n.Add(1)), eventstore.NoStream, benchEvent()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportEventsPerSecond(b, n.Load())
}

// Catch-up: a subscription from the start reads stored events until it
// reaches the head.
func BenchmarkCatchUpSubscription(b *testing.B) {
	const stored = 200_000
	pool := pgtest.NewPool(b, 10)
	ctx := context.Background()
	// Load directly: the benchmark measures reading, not appending.
	if _, err := pool.Exec(ctx, `
		INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
		SELECT gen_random_uuid(), 'order-' || (g / 10), g % 10, 'order.placed.v1', $1::json, '{"actor":"customer"}'
		  FROM generate_series(0, $2 - 1) AS g`, string(benchPayload), stored); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE events`); err != nil {
		b.Fatal(err)
	}
	s := postgres.New(pool, postgres.Options{BatchSize: 1000})
	defer s.Close()
	head, err := s.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for b.Loop() {
		subCtx, cancel := context.WithCancel(ctx)
		err := s.Subscribe(subCtx, eventstore.Start, eventstore.SubscribeOptions{}, func(_ context.Context, batch eventstore.Batch) error {
			total += int64(len(batch.Events))
			if !batch.Checkpoint.Less(head) {
				cancel()
			}
			return nil
		})
		cancel()
		if err != nil && subCtx.Err() == nil {
			b.Fatal(err)
		}
	}
	if total != int64(b.N)*stored {
		b.Fatalf("read %d events in %d rounds, want %d per round", total, b.N, stored)
	}
	reportEventsPerSecond(b, total)
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
