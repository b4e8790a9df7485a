package kurrentdb_test

// Benchmarks of the adapter against the protocol double, shaped like the
// PostgreSQL store's (eventstore/postgres/bench_test.go: same names, same
// payload, same writers, same catch-up size) so that the two can be run
// together and compared from one run to the next. They are for regression
// only: the double is an in-memory log in the benchmark's own process, on
// the same cores, and says nothing about how fast a KurrentDB node is.

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/kurrentdb"
	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
)

// A payload the size of an order event (the PostgreSQL benchmarks' one).
var benchPayload = json.RawMessage(`{"order_id":"0b7e7a54-3f0c-4f5e-9f55-3d1f0c7e8a11","user_email":"customer@example.com","items":[{"product_id":"5d2c1a3e-7b8f-4c6d-9e0a-1b2c3d4e5f60","quantity":2,"unit_price":150000}],"total":300000,"currency":"USD"}`)

func benchEvent() eventstore.EventData {
	return eventstore.EventData{
		ID:       uuid.New(),
		Type:     "order.placed.v1",
		Data:     benchPayload,
		Metadata: eventstore.Metadata{CorrelationID: "bench", Actor: "customer"},
	}
}

// benchStore starts a double and returns the adapter connected to it; both
// are closed when b ends.
func benchStore(b *testing.B, opts kurrentdb.Options) *kurrentdb.Store {
	b.Helper()
	srv := kurrentdbtest.Start(b, kurrentdbtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := kurrentdb.New(ctx, srv.URL(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return s
}

func reportEventsPerSecond(b *testing.B, events int64) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// One event to a new stream, one writer. Each append is two round trips:
// the append and the read-back of its RecordedAt.
func BenchmarkAppendOneEventNewStream(b *testing.B) {
	s := benchStore(b, kurrentdb.Options{})
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("order-%d", i), eventstore.NoStream, benchEvent()); err != nil {
			b.Fatal(err)
		}
	}
	reportEventsPerSecond(b, int64(b.N))
}

// Ten events per append to one stream, one writer.
func BenchmarkAppendTenEventsOneStream(b *testing.B) {
	s := benchStore(b, kurrentdb.Options{})
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
	s := benchStore(b, kurrentdb.Options{})
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
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
// reaches the head (batches of 1,000, as the PostgreSQL benchmark's pages).
func BenchmarkCatchUpSubscription(b *testing.B) {
	const (
		stored    = 200_000
		perStream = 10 // as the PostgreSQL benchmark's load: order-N, versions 0-9
		loaders   = 8
	)
	s := benchStore(b, kurrentdb.Options{BatchSize: 1000})
	ctx := context.Background()
	// Load through the adapter, ten events per append, before the timed
	// loop: the benchmark measures reading, not appending.
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, loaders)
	for range loaders {
		wg.Go(func() {
			batch := make([]eventstore.EventData, perStream)
			for {
				n := next.Add(1) - 1
				if n >= stored/perStream {
					return
				}
				for j := range batch {
					batch[j] = benchEvent()
				}
				if _, err := s.Append(ctx, fmt.Sprintf("order-%d", n), eventstore.NoStream, batch...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
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
