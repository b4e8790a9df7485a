package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/orders-reference/orders/eventstore"
)

// traceContext is the format of the trace context in event metadata: W3C
// Trace Context, whatever propagator HTTP uses.
var traceContext = propagation.TraceContext{}

// Record returns meta with the trace context of ctx's span (W3C
// traceparent and tracestate), so that the work the event causes, in
// this process or another, continues the trace. meta comes back unchanged
// when ctx holds no span context (tracing off, untraced work).
func Record(ctx context.Context, meta eventstore.Metadata) eventstore.Metadata {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return meta
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	meta.Traceparent, meta.Tracestate = c["traceparent"], c["tracestate"]
	return meta
}

// Restore returns ctx with the trace context recorded in meta as its
// remote parent, so that the spans started in it continue that trace; ctx
// itself when meta records none or one that does not parse (events stored
// before tracing, or written by untraced work).
func Restore(ctx context.Context, meta eventstore.Metadata) context.Context {
	return RestoreContext(ctx, meta.Traceparent, meta.Tracestate)
}

// RestoreContext is Restore for a trace context kept apart from its event
// (a process manager step keeps its cause's).
func RestoreContext(ctx context.Context, traceparent, tracestate string) context.Context {
	sc := Parse(traceparent, tracestate)
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// Parse returns the span context of a W3C traceparent and tracestate; an
// invalid one when traceparent is empty or malformed.
func Parse(traceparent, tracestate string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	c := propagation.MapCarrier{"traceparent": traceparent}
	if tracestate != "" {
		c["tracestate"] = tracestate
	}
	return trace.SpanContextFromContext(traceContext.Extract(context.Background(), c))
}

// MaxLinks bounds the links of a batch's span (the SDK's default limit):
// a batch of 500 events of 500 orders links to the first 128 traces.
const MaxLinks = 128

// AttrLinksDropped counts the trace contexts of a batch's events beyond
// MaxLinks, which its span does not link to.
const AttrLinksDropped = attribute.Key("links.dropped")

// StartBatch starts the span of work on a batch of events that may serve
// many orders (a projection's batch); see StartLinked.
func StartBatch(ctx context.Context, tracer trace.Tracer, name string, events []eventstore.RecordedEvent, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return StartLinked(ctx, tracer, name, len(events), func(i int) eventstore.Metadata { return events[i].Metadata }, opts...)
}

// StartLinked starts the span of work done at once for n items (events of
// a projection's batch, decisions of a product's batch), item i recorded
// with meta(i). When the trace contexts recorded in them all belong to one
// trace (a quiet system: one request's or one step's items), the span
// continues it, as a child of the first item's context, linked to the
// others; otherwise it starts a trace of its own linked to each distinct
// context, up to MaxLinks. Items without a trace context are left out;
// with none at all, the span is a child of ctx's.
func StartLinked(ctx context.Context, tracer trace.Tracer, name string, n int, meta func(i int) eventstore.Metadata, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	var (
		links    []trace.Link
		seen     map[string]bool
		oneTrace = true
		dropped  = 0
	)
	for i := range n {
		m := meta(i)
		if m.Traceparent == "" || seen[m.Traceparent] {
			continue
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		seen[m.Traceparent] = true
		if len(links) == MaxLinks {
			dropped++
			continue
		}
		sc := Parse(m.Traceparent, m.Tracestate)
		if !sc.IsValid() {
			continue
		}
		if len(links) > 0 && sc.TraceID() != links[0].SpanContext.TraceID() {
			oneTrace = false
		}
		links = append(links, trace.Link{SpanContext: sc})
	}
	if len(links) == 0 {
		return tracer.Start(ctx, name, opts...)
	}
	if oneTrace && dropped == 0 {
		ctx = trace.ContextWithRemoteSpanContext(ctx, links[0].SpanContext)
		links = links[1:]
	} else {
		opts = append(opts, trace.WithNewRoot())
	}
	if dropped > 0 {
		opts = append(opts, trace.WithAttributes(AttrLinksDropped.Int(dropped)))
	}
	return tracer.Start(ctx, name, append(opts, trace.WithLinks(links...))...)
}
