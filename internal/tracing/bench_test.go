package tracing_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/tracing"
)

type ctxKey int

// requestContext is a context as deep as a request's by the time its
// handler makes metadata (router, request id, log scope, deadline).
func requestContext() context.Context {
	ctx := context.Background()
	for i := range 6 {
		ctx = context.WithValue(ctx, ctxKey(i), i)
	}
	return ctx
}

// What recording the trace context costs every command: off (no span in
// the context: tracing off) it must cost no allocation.
func BenchmarkRecord(b *testing.B) {
	meta := eventstore.Metadata{CorrelationID: "req", CausationID: "req", Actor: "customer"}
	b.Run("off", func(b *testing.B) {
		ctx := requestContext()
		b.ReportAllocs()
		for b.Loop() {
			_ = tracing.Record(ctx, meta)
		}
		if n := testing.AllocsPerRun(100, func() { _ = tracing.Record(ctx, meta) }); n != 0 {
			b.Fatalf("%v allocations with tracing off, want 0", n)
		}
	})
	b.Run("on", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider()
		defer func() { _ = tp.Shutdown(context.Background()) }()
		ctx, span := tracing.Tracer(tp).Start(requestContext(), "request")
		defer span.End()
		b.ReportAllocs()
		for b.Loop() {
			_ = tracing.Record(ctx, meta)
		}
	})
}
