package tracing

import (
	"context"
	"strings"

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
// when ctx holds no span context (tracing off, untraced work). The
// tracestate, which a caller chooses, is kept to MaxTracestate characters
// (see BoundTracestate): it is stored with every event the work appends.
func Record(ctx context.Context, meta eventstore.Metadata) eventstore.Metadata {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return meta
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	meta.Traceparent, meta.Tracestate = c["traceparent"], BoundTracestate(c["tracestate"])
	return meta
}

// MaxTracestate is the most characters of a tracestate Record keeps, and
// maxTracestateMember the length beyond which a list-member is dropped
// first: W3C Trace Context (§3.3.1.5, tracestate limits) lets a vendor
// truncate a tracestate to 512 characters by dropping whole list-members.
const (
	MaxTracestate       = 512
	maxTracestateMember = 128
)

// BoundTracestate returns tracestate cut to at most MaxTracestate
// characters as W3C Trace Context recommends: whole list-members are
// dropped, those longer than 128 characters first, then from the end of
// the list (the members last updated stay); tracestate itself when short
// enough.
func BoundTracestate(tracestate string) string {
	if len(tracestate) <= MaxTracestate {
		return tracestate
	}
	var members []string
	for m := range strings.SplitSeq(tracestate, ",") {
		if m = strings.TrimSpace(m); m != "" {
			members = append(members, m)
		}
	}
	size := func() int {
		n := max(len(members)-1, 0) // the commas
		for _, m := range members {
			n += len(m)
		}
		return n
	}
	for i := len(members) - 1; i >= 0 && size() > MaxTracestate; i-- {
		if len(members[i]) > maxTracestateMember {
			members = append(members[:i], members[i+1:]...)
		}
	}
	for len(members) > 0 && size() > MaxTracestate {
		members = members[:len(members)-1]
	}
	return strings.Join(members, ",")
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
