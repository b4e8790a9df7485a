package process

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/payment"
)

// The attributes of the process manager's spans.
const (
	attrStep          = attribute.Key("step.kind")
	attrAttempt       = attribute.Key("step.attempt")
	attrOrder         = attribute.Key("order.id")
	attrCorrelation   = attribute.Key("correlation_id")
	attrPayment       = attribute.Key("payment.id")
	attrPaymentStatus = attribute.Key("payment.status")
)

// startStep starts the span of one run of step t: a child of the trace
// context recorded in the event that scheduled it, so that every step of
// an order's saga, whichever instance runs it and however often it is
// retried, is in the trace of the request or webhook that led to it.
// Without tracing it returns ctx and the no-op span it holds.
func (m *Manager) startStep(ctx context.Context, t task) (context.Context, trace.Span) {
	if m.opts.TracerProvider == nil {
		return ctx, trace.SpanFromContext(ctx)
	}
	ctx = tracing.RestoreContext(ctx, t.Traceparent, t.Tracestate)
	ctx = context.WithValue(ctx, stepOrderKey{}, t.OrderID)
	return m.tracer.Start(ctx, "step "+t.Kind, trace.WithAttributes(
		attrStep.String(t.Kind), attrOrder.String(t.OrderID.String()), attrAttempt.Int(t.Attempts+1),
		attrCorrelation.String(t.CorrelationID)))
}

// stepOrderKey holds, in a traced step's context, the id of the step's
// order: for the spans of provider calls that name no order (a refund
// names the payment).
type stepOrderKey struct{}

// tracedProvider gives every call to the payment provider a span, a child
// of the step's; the provider (the fake's webhook delivery, the HTTP
// client's request) carries the trace on.
type tracedProvider struct {
	Provider
	tracer trace.Tracer
}

func (p tracedProvider) start(ctx context.Context, name string, orderID uuid.UUID) (context.Context, trace.Span) {
	return p.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrOrder.String(orderID.String())))
}

func (p tracedProvider) InitiatePayment(ctx context.Context, req payment.Request, key string) (payment.Payment, error) {
	ctx, span := p.start(ctx, "provider initiate_payment", req.OrderID)
	pay, err := p.Provider.InitiatePayment(ctx, req, key)
	if err == nil {
		span.SetAttributes(attrPayment.String(pay.ID), attrPaymentStatus.String(pay.Status))
	}
	tracing.End(span, err)
	return pay, err
}

func (p tracedProvider) Refund(ctx context.Context, paymentID, key string) (payment.Refund, error) {
	attrs := []attribute.KeyValue{attrPayment.String(paymentID)}
	if orderID, ok := ctx.Value(stepOrderKey{}).(uuid.UUID); ok {
		attrs = append(attrs, attrOrder.String(orderID.String()))
	}
	ctx, span := p.tracer.Start(ctx, "provider refund", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	r, err := p.Provider.Refund(ctx, paymentID, key)
	tracing.End(span, err)
	return r, err
}

func (p tracedProvider) PaymentByOrder(ctx context.Context, orderID uuid.UUID) (payment.Payment, error) {
	ctx, span := p.start(ctx, "provider payment_by_order", orderID)
	pay, err := p.Provider.PaymentByOrder(ctx, orderID)
	switch {
	case err == nil:
		span.SetAttributes(attrPayment.String(pay.ID), attrPaymentStatus.String(pay.Status))
		span.End()
	case errors.Is(err, payment.ErrNotFound):
		span.SetAttributes(attrPaymentStatus.String("none")) // an answer, not a failure
		span.End()
	default:
		tracing.End(span, err)
	}
	return pay, err
}
