package tracing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/memory"
	"github.com/orders-reference/orders/internal/tracing"
)

// recorder is a tracer provider whose ended spans the test reads.
func recorder(t *testing.T) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, rec
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func named(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// A request's trace context goes into the metadata of the events it
// appends, is stored and read back with them (as JSON, as every adapter
// keeps metadata), and the work an event causes continues that trace as a
// child of the span that wrote it. Events stored before tracing have none
// and change nothing.
func TestTraceContextRoundTripsThroughEventMetadata(t *testing.T) {
	tp, rec := recorder(t)
	tracer := tracing.Tracer(tp)
	store := tracing.Store(memory.New(), tp)
	ctx, request := tracer.Start(context.Background(), "POST /orders")
	meta := tracing.Record(ctx, eventstore.Metadata{CorrelationID: "req-1", Actor: "customer"})
	if _, err := store.Append(ctx, "order-1", eventstore.NoStream, eventstore.EventData{Type: "order.placed.v1", Data: json.RawMessage(`{}`), Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	request.End()
	read, err := store.ReadStream(context.Background(), "order-1", eventstore.Forward, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	stored := read[0].Metadata
	want := fmt.Sprintf("00-%s-%s-01", request.SpanContext().TraceID(), request.SpanContext().SpanID())
	if stored.Traceparent != want || stored.CorrelationID != "req-1" {
		t.Fatalf("stored metadata %+v, want traceparent %s beside the correlation id", stored, want)
	}
	raw, _ := json.Marshal(stored)
	var decoded eventstore.Metadata
	if err := json.Unmarshal(raw, &decoded); err != nil || decoded != stored {
		t.Fatalf("metadata through JSON: %s → %+v (%v)", raw, decoded, err)
	}

	_, step := tracer.Start(tracing.Restore(context.Background(), stored), "step initiate_payment")
	step.End()
	got := named(rec.Ended(), "step initiate_payment")[0]
	if got.SpanContext().TraceID() != request.SpanContext().TraceID() || got.Parent().SpanID() != request.SpanContext().SpanID() || !got.Parent().IsRemote() {
		t.Fatalf("the restored step is in trace %s under %s, want a child of the request %s",
			got.SpanContext().TraceID(), got.Parent().SpanID(), request.SpanContext().SpanID())
	}

	// Events of earlier versions: no trace fields, written or read.
	var old eventstore.Metadata
	if err := json.Unmarshal([]byte(`{"correlation_id":"c","causation_id":"c","actor":"admin"}`), &old); err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	if tracing.Restore(bg, old) != bg || tracing.Restore(bg, eventstore.Metadata{Traceparent: "garbage"}) != bg {
		t.Error("metadata without a (valid) trace context changed the context")
	}
	if raw, _ := json.Marshal(tracing.Record(bg, old)); string(raw) != `{"correlation_id":"c","causation_id":"c","actor":"admin"}` {
		t.Errorf("untraced metadata is written as %s", raw)
	}
}

// A caller's tracestate is stored with every event: Record keeps at most
// 512 characters of it, dropping whole list-members, the long ones (over
// 128 characters) first, then from the end.
func TestRecordBoundsTracestate(t *testing.T) {
	member := func(key string, n int) string { return key + "=" + strings.Repeat("v", n-len(key)-1) }
	long1, long2 := member("big1", 200), member("big2", 256)
	var small []string
	for i := range 8 {
		small = append(small, member(fmt.Sprintf("s%d", i), 60))
	}
	// 8 × 60 + 7 commas = 487 characters: the small members fit once the long ones are gone.
	incoming := strings.Join([]string{small[0], long1, small[1], small[2], long2, small[3], small[4], small[5], small[6], small[7]}, ",")
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate":  incoming,
	})
	if got := trace.SpanContextFromContext(ctx).TraceState().Len(); got != 10 {
		t.Fatalf("the propagator kept %d of 10 tracestate members", got)
	}
	meta := tracing.Record(ctx, eventstore.Metadata{})
	if want := strings.Join(small, ","); meta.Tracestate != want {
		t.Errorf("recorded tracestate (%d characters) %q, want the 8 short members (%d characters)", len(meta.Tracestate), meta.Tracestate, len(want))
	}
	if sc := tracing.Parse(meta.Traceparent, meta.Tracestate); !sc.IsValid() || sc.TraceState().Len() != 8 {
		t.Errorf("the recorded trace context does not parse back: %+v", sc)
	}

	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"a=1,b=2", "a=1,b=2"},
		{strings.Repeat("x", 600), ""}, // one member too long to keep
		// Short members only: dropped from the end.
		{strings.Join(append(small, "extra=1"), ",") + "," + small[0], strings.Join(small, ",") + ",extra=1"},
		// A long member goes first, even where dropping short ones would do.
		{strings.Join([]string{long1, small[0], small[1], small[2], small[3], small[4], small[5]}, ","),
			strings.Join(small[:6], ",")},
	} {
		got := tracing.BoundTracestate(c.in)
		if got != c.want {
			t.Errorf("BoundTracestate(%d characters) = %q, want %q", len(c.in), got, c.want)
		}
		if len(got) > tracing.MaxTracestate {
			t.Errorf("BoundTracestate kept %d characters", len(got))
		}
	}
}

// Appends and reads in a traced context are spans under the caller's,
// with the stream, the expected version and the batch size; calls
// without a span, and a missing stream, are no failures and no spans.
func TestStoreSpans(t *testing.T) {
	tp, rec := recorder(t)
	store := tracing.Store(memory.New(), tp)
	if tracing.Store(store, nil) != store {
		t.Error("a store without a tracer provider was wrapped")
	}
	bg := context.Background()
	if _, err := store.Append(bg, "order-0", eventstore.Any, eventstore.EventData{Type: "t", Data: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	ctx, parent := tracing.Tracer(tp).Start(bg, "request")
	events := []eventstore.EventData{{Type: "a", Data: json.RawMessage(`{}`)}, {Type: "b", Data: json.RawMessage(`{}`)}}
	if _, err := store.Append(ctx, "order-1", eventstore.NoStream, events...); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, "order-1", eventstore.Exact(7), events[0]); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("conflicting append: %v", err)
	}
	if _, err := store.ReadStream(ctx, "order-1", eventstore.Forward, 0, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ReadStream(ctx, "order-none", eventstore.Forward, 0, 10); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatal(err)
	}
	if _, err := store.ReadAll(ctx, eventstore.Start, 10, eventstore.Filter{}); err != nil {
		t.Fatal(err)
	}
	parent.End()
	appends := named(rec.Ended(), tracing.SpanAppend)
	if len(appends) != 2 {
		t.Fatalf("%d append spans, want 2 (none for the untraced append)", len(appends))
	}
	ok, conflict := appends[0], appends[1]
	if ok.Parent().SpanID() != parent.SpanContext().SpanID() || attr(ok, tracing.AttrStream).AsString() != "order-1" ||
		attr(ok, tracing.AttrExpected).AsString() != "no_stream" || attr(ok, tracing.AttrExpectedVersion).Type() != attribute.INVALID ||
		attr(ok, tracing.AttrEvents).AsInt64() != 2 ||
		attr(ok, tracing.AttrVersion).AsInt64() != 1 || ok.Status().Code == codes.Error {
		t.Errorf("append span: parent %s, %v, %v", ok.Parent().SpanID(), ok.Attributes(), ok.Status())
	}
	// A conflict is an expected outcome (the caller reads and decides
	// again): an event and attributes, not an error.
	if conflict.Status().Code == codes.Error || attr(conflict, tracing.AttrExpected).AsString() != "exact" ||
		attr(conflict, tracing.AttrExpectedVersion).Type() != attribute.INT64 || attr(conflict, tracing.AttrExpectedVersion).AsInt64() != 7 ||
		!attr(conflict, tracing.AttrConflict).AsBool() || attr(conflict, tracing.AttrActualVersion).AsInt64() != 1 ||
		len(conflict.Events()) != 1 || conflict.Events()[0].Name != "wrong expected version" {
		t.Errorf("conflicting append span: %v, %v, %v", conflict.Attributes(), conflict.Status(), conflict.Events())
	}
	reads := named(rec.Ended(), tracing.SpanReadStream)
	if len(reads) != 2 {
		t.Fatalf("%d read spans, want 2", len(reads))
	}
	if attr(reads[0], tracing.AttrEvents).AsInt64() != 2 || attr(reads[0], tracing.AttrStream).AsString() != "order-1" {
		t.Errorf("read span: %v", reads[0].Attributes())
	}
	if missing := reads[1]; attr(missing, tracing.AttrFound).Type() != attribute.BOOL || attr(missing, tracing.AttrFound).AsBool() ||
		missing.Status().Code == codes.Error {
		t.Errorf("a missing stream is an answer, not a failure: %v %v", missing.Attributes(), missing.Status())
	}
	if all := named(rec.Ended(), tracing.SpanReadAll); len(all) != 1 || attr(all[0], tracing.AttrEvents).AsInt64() != 3 {
		t.Errorf("read all spans: %v", all)
	}
}

// recorded returns an event whose metadata records the context of a span
// started (and ended) now in trace parent's, or a new trace when parent
// is nil.
func recorded(tracer trace.Tracer, parent context.Context) (eventstore.RecordedEvent, trace.SpanContext) {
	if parent == nil {
		parent = context.Background()
	}
	ctx, span := tracer.Start(parent, "request")
	span.End()
	return eventstore.RecordedEvent{Metadata: tracing.Record(ctx, eventstore.Metadata{})}, span.SpanContext()
}

// A batch of one trace's events continues it, linked to its other spans;
// a batch of many traces starts its own, linked to each (once, at most
// MaxLinks); a batch without trace context is a plain span.
func TestStartBatch(t *testing.T) {
	tp, rec := recorder(t)
	tracer := tracing.Tracer(tp)

	first, a := recorded(tracer, nil)
	second, b := recorded(tracer, trace.ContextWithSpanContext(context.Background(), a))
	_, span := tracing.StartBatch(context.Background(), tracer, "one order", []eventstore.RecordedEvent{first, first, {}, second, second})
	span.End()
	got := named(rec.Ended(), "one order")[0]
	if got.SpanContext().TraceID() != a.TraceID() || got.Parent().SpanID() != a.SpanID() ||
		len(got.Links()) != 1 || got.Links()[0].SpanContext.SpanID() != b.SpanID() {
		t.Errorf("one trace's batch: trace %s parent %s links %v; want a child of %s linked to %s",
			got.SpanContext().TraceID(), got.Parent().SpanID(), got.Links(), a.SpanID(), b.SpanID())
	}

	var events []eventstore.RecordedEvent
	var traces []trace.SpanContext
	for range tracing.MaxLinks + 5 {
		e, sc := recorded(tracer, nil)
		events, traces = append(events, e, e), append(traces, sc)
	}
	_, span = tracing.StartBatch(context.Background(), tracer, "many orders", events)
	span.End()
	got = named(rec.Ended(), "many orders")[0]
	if got.Parent().IsValid() || len(got.Links()) != tracing.MaxLinks || got.Links()[0].SpanContext.TraceID() != traces[0].TraceID() ||
		attr(got, tracing.AttrLinksDropped).AsInt64() != 5 {
		t.Errorf("many traces' batch: parent %v, %d links, %v", got.Parent(), len(got.Links()), got.Attributes())
	}

	_, span = tracing.StartBatch(context.Background(), tracer, "untraced", []eventstore.RecordedEvent{{}, {}})
	span.End()
	if got = named(rec.Ended(), "untraced")[0]; got.Parent().IsValid() || len(got.Links()) != 0 {
		t.Errorf("untraced batch: parent %v, links %v", got.Parent(), got.Links())
	}
}

// A request that brings a W3C traceparent is served in that trace, its
// span named by the route pattern; probes are not traced; with tracing
// off the middleware is no middleware at all.
func TestMiddlewareContinuesIncomingTraceparent(t *testing.T) {
	tp, rec := recorder(t)
	var inHandler trace.SpanContext
	r := chi.NewRouter()
	r.Use(tracing.Middleware(tracing.Tracing{Provider: tp, Propagator: propagation.TraceContext{}}))
	r.Get("/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		inHandler = trace.SpanContextFromContext(r.Context())
		w.WriteHeader(http.StatusTeapot)
	})
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {})

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req := httptest.NewRequest(http.MethodGet, "/orders/42", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	r.ServeHTTP(httptest.NewRecorder(), req)
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want the request's only (not the probe's)", len(spans))
	}
	s := spans[0]
	if s.Name() != "GET /orders/{id}" || s.SpanKind() != trace.SpanKindServer || s.SpanContext().TraceID().String() != traceID ||
		s.Parent().SpanID().String() != parentID || attr(s, "http.route").AsString() != "/orders/{id}" ||
		attr(s, "http.response.status_code").AsInt64() != http.StatusTeapot {
		t.Errorf("span %q kind %v trace %s parent %s attributes %v", s.Name(), s.SpanKind(), s.SpanContext().TraceID(), s.Parent().SpanID(), s.Attributes())
	}
	if inHandler.SpanID() != s.SpanContext().SpanID() {
		t.Error("the handler's context does not hold the request's span")
	}

	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	if h := tracing.Middleware(tracing.Tracing{})(next); fmt.Sprintf("%p", h) != fmt.Sprintf("%p", next) {
		t.Error("with tracing off the middleware wraps the handler")
	}
}

// The client transport sends the caller's trace context; off, it is the
// transport itself.
func TestTransportSendsTraceparent(t *testing.T) {
	tp, rec := recorder(t)
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("traceparent") }))
	defer srv.Close()
	client := &http.Client{Transport: tracing.Transport(http.DefaultTransport, tracing.Tracing{Provider: tp})}
	ctx, span := tracing.Tracer(tp).Start(context.Background(), "step")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	span.End()
	var clientSpan sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			clientSpan = s
		}
	}
	if clientSpan == nil || clientSpan.Parent().SpanID() != span.SpanContext().SpanID() {
		t.Fatalf("no client span under the caller's: %v", rec.Ended())
	}
	if want := fmt.Sprintf("00-%s-%s-01", span.SpanContext().TraceID(), clientSpan.SpanContext().SpanID()); got != want {
		t.Errorf("the provider got traceparent %q, want %q", got, want)
	}
	if tracing.Transport(http.DefaultTransport, tracing.Tracing{}) != http.DefaultTransport {
		t.Error("with tracing off the transport is wrapped")
	}
}
