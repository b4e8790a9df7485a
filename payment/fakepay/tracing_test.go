package fakepay_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
)

// A payment's webhook continues the trace of the request that asked for
// it: each delivery attempt is a span under the request's, and the
// webhook carries that span's context (W3C traceparent) to the receiver.
func TestDeliveryContinuesTheRequestsTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	signer, err := payment.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	received := make(chan trace.SpanContext, 4)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		received <- trace.SpanContextFromContext(ctx)
		if len(received) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // the first attempt fails
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hooks.Close)
	p := fakepay.New(fakepay.Options{SuccessRate: 1, Signer: signer, RetryBase: 5 * time.Millisecond, TracerProvider: tp})
	t.Cleanup(p.Close)

	ctx, call := tp.Tracer("test").Start(context.Background(), "provider initiate_payment")
	if _, err := p.InitiatePayment(ctx, request(hooks.URL), "key-1"); err != nil {
		t.Fatal(err)
	}
	call.End()
	var deliveries []sdktrace.ReadOnlySpan
	eventually.True(t, "two delivery attempts to end", func() bool {
		deliveries = deliveries[:0]
		for _, s := range rec.Ended() {
			if s.Name() == "webhook delivery" {
				deliveries = append(deliveries, s)
			}
		}
		return len(deliveries) == 2
	})
	for i, d := range deliveries {
		sent := <-received
		if d.Parent().SpanID() != call.SpanContext().SpanID() || d.SpanContext().TraceID() != call.SpanContext().TraceID() {
			t.Errorf("attempt %d is not a child of the request's span", i+1)
		}
		if sent.SpanID() != d.SpanContext().SpanID() || sent.TraceID() != call.SpanContext().TraceID() {
			t.Errorf("attempt %d sent trace context %s/%s, want its own span %s", i+1, sent.TraceID(), sent.SpanID(), d.SpanContext().SpanID())
		}
	}
	if failed := deliveries[0]; failed.Status().Description == "" {
		t.Errorf("the refused attempt's span is not a failure: %v", failed.Status())
	}
}
