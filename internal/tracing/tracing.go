// Package tracing is how Orders traces its work with OpenTelemetry, in one
// place: what a trace context looks like in an event's metadata (Record,
// Restore), the span of a batch of events that many orders may share
// (StartBatch, with span links), the event store decorator that gives
// every append and read a span (Store), and the HTTP middleware and
// transport that continue a trace across requests (Middleware, Transport).
//
// It speaks the OpenTelemetry API only; the SDK, its exporter and the
// environment that configures them are package otlp's, used by the
// binaries. With tracing off (the zero Tracing, a nil TracerProvider)
// nothing here starts a span: the request path and the event store are
// left as they are, and Record costs a context lookup.
//
// The saga of one order is one trace. A request's server span is the
// parent of the appends it makes, and the events it appends carry its
// trace context in their metadata (Record). A projection's batch continues
// that trace when its events all come from one, and links to each trace
// otherwise (StartBatch). A process manager step is a child of the trace
// context of the event that caused it (Restore), its provider calls are
// its children, the fake provider's webhook delivery a child of the call,
// and the webhook request the delivery's child: the events the webhook
// appends carry the trace on to the next step.
package tracing

import (
	"net/http"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is a tracer provider and the propagator that carries trace
// context in HTTP headers. The zero value is tracing off.
type Tracing struct {
	// Provider is where spans come from; nil: tracing is off.
	Provider trace.TracerProvider
	// Propagator reads and writes trace context in HTTP headers; nil means
	// W3C Trace Context.
	Propagator propagation.TextMapPropagator
}

// Enabled reports whether t traces anything.
func (t Tracing) Enabled() bool { return t.Provider != nil }

func (t Tracing) propagator() propagation.TextMapPropagator {
	if t.Propagator == nil {
		return propagation.TraceContext{}
	}
	return t.Propagator
}

// Scope is the instrumentation scope of the spans Orders makes.
const Scope = "github.com/orders-reference/orders"

// Tracer returns the tracer of tp for Orders' spans; a no-op tracer when
// tp is nil.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return noop.Tracer{}
	}
	return tp.Tracer(Scope)
}

// End ends span, recording err, if any, as its error.
func End(span trace.Span, err error) {
	Fail(span, err)
	span.End()
}

// Fail records err, if any, as span's error.
func Fail(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

// untraced are the paths whose requests get no span: probes and scrapes,
// every few seconds, would bury the requests that matter.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// spanMethod is an HTTP method as a span name: any token is a valid
// method, so anything but the standard ones is "HTTP", to keep names
// bounded.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "HTTP"
}
