package command_test

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/eventstore/memory"
	"github.com/orders-reference/orders/internal/tracing"
)

// A product loaded for the placing request (a cold cache: after a start,
// or an eviction) is loaded in the request's trace: the stock batch that
// reads it is a child of the request's span, not a trace of its own.
func TestColdProductLoadIsInTheRequestsTrace(t *testing.T) {
	t.Parallel()
	store := memory.New()
	p := newProduct(t, command.NewService(store, command.Options{}), 5)

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(ctxT(t)) })
	svc := command.NewService(store, command.Options{Stock: command.StockOptions{TracerProvider: tp}}) // nothing cached
	ctx, request := tracing.Tracer(tp).Start(ctxT(t), "POST /orders")
	if _, err := svc.PlaceOrder(ctx, command.PlaceOrder{UserEmail: "cold@example.com",
		Lines: []order.Line{{ProductID: p, Quantity: 1}}, Meta: tracing.Record(ctx, customer)}); err != nil {
		t.Fatal(err)
	}
	request.End()

	batches := 0
	for _, s := range rec.Ended() {
		if s.Name() != "stock batch" {
			continue
		}
		batches++
		if s.SpanContext().TraceID() != request.SpanContext().TraceID() || s.Parent().SpanID() != request.SpanContext().SpanID() {
			t.Errorf("a stock batch in trace %s under %s, want a child of the request (%s, %s)",
				s.SpanContext().TraceID(), s.Parent().SpanID(), request.SpanContext().TraceID(), request.SpanContext().SpanID())
		}
	}
	if batches < 2 {
		t.Errorf("%d stock batches, want the load's and the reservation's", batches)
	}
}
