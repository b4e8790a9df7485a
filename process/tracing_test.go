package process

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/payment"
)

// answeringProvider answers every call with pay (or refund) and err.
type answeringProvider struct {
	pay    payment.Payment
	refund payment.Refund
	err    error
}

func (p answeringProvider) InitiatePayment(context.Context, payment.Request, string) (payment.Payment, error) {
	return p.pay, p.err
}
func (p answeringProvider) Refund(context.Context, string, string) (payment.Refund, error) {
	return p.refund, p.err
}
func (p answeringProvider) PaymentByOrder(context.Context, uuid.UUID) (payment.Payment, error) {
	return p.pay, p.err
}

func spanAttr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// Every provider call is a client span under its step's, naming the
// step's order (a refund too, which the provider knows by its payment);
// a failed call is an error, an order the provider knows no payment of is
// an answer.
func TestTracedProviderCalls(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	m := &Manager{opts: Options{TracerProvider: tp}, tracer: tracing.Tracer(tp)}
	orderID := uuid.New()
	down := errors.New("provider down")

	for _, c := range []struct {
		name     string
		provider answeringProvider
		call     func(ctx context.Context, p tracedProvider) error
		span     string
		failed   bool
		payment  string
		status   string
	}{
		{"refund", answeringProvider{refund: payment.Refund{ID: "re_1"}},
			func(ctx context.Context, p tracedProvider) error {
				_, err := p.Refund(ctx, "pay_1", "refund-x")
				return err
			},
			"provider refund", false, "pay_1", ""},
		{"refund failing", answeringProvider{err: down},
			func(ctx context.Context, p tracedProvider) error {
				_, err := p.Refund(ctx, "pay_1", "refund-x")
				return err
			},
			"provider refund", true, "pay_1", ""},
		{"payment by order", answeringProvider{pay: payment.Payment{ID: "pay_2", Status: payment.StatusSucceeded}},
			func(ctx context.Context, p tracedProvider) error {
				_, err := p.PaymentByOrder(ctx, orderID)
				return err
			},
			"provider payment_by_order", false, "pay_2", payment.StatusSucceeded},
		{"payment by order: none", answeringProvider{err: payment.ErrNotFound},
			func(ctx context.Context, p tracedProvider) error {
				_, err := p.PaymentByOrder(ctx, orderID)
				return err
			},
			"provider payment_by_order", false, "", "none"},
		{"payment by order failing", answeringProvider{err: payment.ErrUnavailable},
			func(ctx context.Context, p tracedProvider) error {
				_, err := p.PaymentByOrder(ctx, orderID)
				return err
			},
			"provider payment_by_order", true, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(rec.Ended())
			ctx, step := m.startStep(context.Background(), task{Kind: "refund_payment", OrderID: orderID, CorrelationID: "req-1"})
			err := c.call(ctx, tracedProvider{Provider: c.provider, tracer: m.tracer})
			step.End()
			if !errors.Is(err, c.provider.err) {
				t.Fatalf("the traced call answered %v, want the provider's %v", err, c.provider.err)
			}
			spans := rec.Ended()[before:]
			if len(spans) != 2 || spans[0].Name() != c.span {
				t.Fatalf("spans %v, want %s then the step", spans, c.span)
			}
			call, stepSpan := spans[0], spans[1]
			if call.Parent().SpanID() != stepSpan.SpanContext().SpanID() {
				t.Errorf("%s is not under its step", c.span)
			}
			if got := spanAttr(call, attrOrder); got != orderID.String() {
				t.Errorf("%s: order.id %q, want %s", c.span, got, orderID)
			}
			if got := spanAttr(call, attrPayment); got != c.payment {
				t.Errorf("%s: payment.id %q, want %q", c.span, got, c.payment)
			}
			if got := spanAttr(call, attrPaymentStatus); got != c.status {
				t.Errorf("%s: payment.status %q, want %q", c.span, got, c.status)
			}
			if failed := call.Status().Code == codes.Error; failed != c.failed {
				t.Errorf("%s: status %v, want failed %v", c.span, call.Status(), c.failed)
			}
		})
	}
}
