package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/internal/tracing/otlp"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
)

// One order's saga is one trace, whichever the event store: the placing
// request (continuing the caller's W3C traceparent) and its appends (the
// product's through the batch of stock decisions that served it); the
// projections' and the scheduler's batches, continuing it or linked to it;
// the process manager's steps, each a child of the context recorded in the
// event that caused it; the provider call under its step; the fake
// provider's webhook delivery under the call; the webhook's request under
// the delivery, with its appends; and the step that commits the stock
// under the webhook. The events' metadata, as the audit trail shows it,
// carries the trace context next to the correlation id.
func TestOneTraceFollowsTheSaga(t *testing.T) {
	t.Parallel()
	onEachEventStore(t, testOneTraceFollowsTheSaga)
}

func testOneTraceFollowsTheSaga(t *testing.T, es string) {
	tel, exporter := inMemoryTracing(t)
	s := startTracedServer(t, tel, es, "FAKE_PAYMENT_SUCCESS_RATE=1", "FAKE_PAYMENT_DELAY=10ms")
	spans, request, orderID := traceSaga(t, s, exporter)
	initiate := spans.one("step initiate_payment", orderID)
	spans.wantChild(initiate, request)
	call := spans.one("provider initiate_payment", orderID)
	spans.wantChild(call, initiate)
	delivery := spans.one("webhook delivery", "")
	spans.wantChild(delivery, call)
	spans.wantWebhook(delivery, orderID)

	// The latency histograms name the saga's trace as an exemplar.
	scrape := s.do(t, "GET", "/metrics", "", "Accept", "application/openmetrics-text; version=1.0.0")
	for _, metric := range []string{"http_request_duration_seconds_bucket", "eventstore_append_duration_seconds_bucket"} {
		if !slices.ContainsFunc(strings.Split(scrape.Raw, "\n"), func(line string) bool {
			return strings.HasPrefix(line, metric+"{") && strings.Contains(line, `# {trace_id="`+spans.trace+`"}`)
		}) {
			t.Errorf("no %s with the saga's trace as an exemplar in:\n%s", metric, scrape.Raw)
		}
	}
}

// The JSON log lines of a traced saga carry its trace: the placing
// request's access line and each step's lines name the trace_id of the
// saga's spans and the span_id of the request's or the step's span (or
// one under it), so a trace found in Jaeger finds its lines and a line
// finds its trace.
func TestLogsCarryTheSagasTraceID(t *testing.T) {
	t.Parallel()
	tel, exporter := inMemoryTracing(t)
	logs := &logLines{}
	s := startLoggedServer(t, tel, logs, "FAKE_PAYMENT_SUCCESS_RATE=1", "FAKE_PAYMENT_DELAY=10ms", "LOG_LEVEL=INFO")
	spans, request, orderID := traceSaga(t, s, exporter)

	placed := logs.find(t, func(r map[string]any) bool {
		return r["msg"] == "request" && r["route"] == "/orders" && r["method"] == "POST" && r["order_id"] == orderID
	})
	if len(placed) != 1 || placed[0]["trace_id"] != spans.trace || placed[0]["span_id"] != request.SpanContext.SpanID().String() {
		t.Errorf("the placing request's access line %v, want trace_id %s and span_id %s", placed, spans.trace, request.SpanContext.SpanID())
	}
	for _, kind := range []string{"initiate_payment", "commit_stock"} {
		step := spans.one("step "+kind, orderID)
		lines := logs.find(t, func(r map[string]any) bool { return r["step"] == kind && r["order_id"] == orderID })
		if len(lines) == 0 {
			t.Errorf("no log line of step %s", kind)
		}
		for _, rec := range lines {
			// The step's span, or one under it (the embedded provider logs in its call's).
			var in *tracetest.SpanStub
			for i, span := range spans.all {
				if span.SpanContext.SpanID().String() == rec["span_id"] {
					in = &spans.all[i]
				}
			}
			if rec["trace_id"] != spans.trace || in == nil || (in.SpanContext.SpanID() != step.SpanContext.SpanID() && !spans.under(*in, step)) {
				t.Errorf("step %s logged %v, want trace_id %s and the span %s or one under it", kind, rec, spans.trace, step.SpanContext.SpanID())
			}
		}
	}
}

// With the provider as a separate service, the trace crosses it: the
// provider call's HTTP request carries its context, the provider's request
// continues it, and so do its webhook and what follows.
func TestOneTraceCrossesTheSeparateProvider(t *testing.T) {
	t.Parallel()
	tel, exporter := inMemoryTracing(t)
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	signer, err := payment.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	// As cmd/fakepay serves it, exporting to the same collector.
	provider := fakepay.New(fakepay.Options{SuccessRate: 1, Delay: 10 * time.Millisecond, Signer: signer,
		TracerProvider: tel.Provider, Propagator: tel.Propagator})
	t.Cleanup(provider.Close)
	r := chi.NewRouter()
	r.Use(tracing.Middleware(tel))
	r.Mount("/", provider.Handler())
	api := httptest.NewServer(r)
	t.Cleanup(api.Close)
	s := startTracedServer(t, tel, "FAKE_PAYMENT_ENABLED=false", "PAYMENT_PROVIDER_URL="+api.URL, "PAYMENT_WEBHOOK_SECRET="+secret,
		"PAYMENT_CALLBACK_URL=http://{addr}/webhooks/payment")
	spans, request, orderID := traceSaga(t, s, exporter)
	initiate := spans.one("step initiate_payment", orderID)
	spans.wantChild(initiate, request)
	call := spans.one("provider initiate_payment", orderID)
	spans.wantChild(call, initiate)
	var client *tracetest.SpanStub
	for i, span := range spans.all {
		if span.SpanKind == trace.SpanKindClient && span.Parent.SpanID() == call.SpanContext.SpanID() {
			client = &spans.all[i]
		}
	}
	if client == nil {
		t.Fatal("no HTTP client span under the provider call")
	}
	served := spans.one("POST /payments", "")
	spans.wantChild(served, *client)
	delivery := spans.one("webhook delivery", "")
	spans.wantChild(delivery, served)
	spans.wantWebhook(delivery, orderID)
}

// inMemoryTracing is tracing into an exporter the test reads.
func inMemoryTracing(t *testing.T) (tracing.Tracing, *tracetest.InMemoryExporter) {
	t.Helper()
	exporter := tracetest.NewInMemoryExporter()
	tel, _, err := otlp.New(context.Background(), otlp.Config{}, otlp.Options{ServiceName: "ordersd", Exporter: exporter, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	return tel, exporter
}

// traceSaga places an order in a trace of the caller's and waits for its
// saga to end (the stock committed). It checks what does not depend on
// where the provider runs, and returns the trace's spans, the placing
// request's span and the order's id: the request, continuing the caller's
// trace, and its appends (the product's through the batch of stock
// decisions that served it); the projections' and the scheduler's
// batches, continuing it or linked to it; and the events' metadata, which
// the audit trail shows with the trace context next to the correlation
// id.
func traceSaga(t *testing.T, s *server, exporter *tracetest.InMemoryExporter) (*traceSpans, tracetest.SpanStub, string) {
	t.Helper()
	admin := []string{"X-Admin-Secret", adminSecret}
	created := s.do(t, "POST", "/admin/products", `{"name":"traced","price":"2.50","stock":5}`, admin...)
	if created.Status != http.StatusCreated {
		t.Fatalf("create product: %d %s", created.Status, created.Raw)
	}
	const callerTrace, callerSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	placed := s.do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":"trace@example.com","items":[{"product_id":%q,"quantity":2}]}`, created.Body["id"]),
		"traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	if placed.Status != http.StatusCreated {
		t.Fatalf("place: %d %s", placed.Status, placed.Raw)
	}
	orderID := placed.Body["id"].(string)
	eventually.True(t, "the order to be paid", func() bool {
		return s.do(t, "GET", "/orders/"+orderID, "").Body["status"] == "paid"
	})
	spans := &traceSpans{t: t, exporter: exporter, trace: callerTrace}
	eventually.True(t, "the stock commit's step to end", func() bool { return spans.load().find("step commit_stock", orderID) != nil })

	request := spans.one("POST /orders", "")
	if request.SpanKind != trace.SpanKindServer || request.Parent.SpanID().String() != callerSpan || !request.Parent.IsRemote() {
		t.Errorf("POST /orders: kind %v, parent %s; want a server span under the caller's %s", request.SpanKind, request.Parent.SpanID(), callerSpan)
	}
	spans.wantAppendUnder(request, "order-"+orderID)
	spans.wantAppendUnder(request, fmt.Sprint("product-", created.Body["id"])) // the stock batch that reserved the items
	for _, projection := range []string{"orders", "order_stock", "process_manager"} {
		spans.wantBatch("projection "+projection, request)
	}

	history := s.do(t, "GET", "/admin/orders/"+orderID+"/history", "", admin...)
	if history.Status != http.StatusOK {
		t.Fatalf("history: %d %s", history.Status, history.Raw)
	}
	for _, e := range history.Body["events"].([]any) {
		e := e.(map[string]any)
		meta := e["metadata"].(map[string]any)
		if tp, _ := meta["traceparent"].(string); !strings.Contains(tp, callerTrace) || meta["correlation_id"] == "" {
			t.Errorf("%s %s: metadata %v, want the order's trace context beside its correlation id", e["stream"], e["type"], meta)
		}
	}
	return spans, request, orderID
}

// wantWebhook fails unless the webhook's request is delivery's child,
// appends to the order under it, and the stock commit that follows is its
// child.
func (s *traceSpans) wantWebhook(delivery tracetest.SpanStub, orderID string) {
	s.t.Helper()
	webhook := s.one("POST /webhooks/payment", "")
	s.wantChild(webhook, delivery)
	s.wantAppendUnder(webhook, "order-"+orderID)
	s.wantChild(s.one("step commit_stock", orderID), webhook)
}

// traceSpans are the exported spans, as a test asks about one trace.
type traceSpans struct {
	t        *testing.T
	exporter *tracetest.InMemoryExporter
	trace    string
	all      tracetest.SpanStubs
	byID     map[trace.SpanID]tracetest.SpanStub
}

func (s *traceSpans) load() *traceSpans {
	s.all = s.exporter.GetSpans()
	s.byID = map[trace.SpanID]tracetest.SpanStub{}
	for _, span := range s.all {
		s.byID[span.SpanContext.SpanID()] = span
	}
	return s
}

func attrOf(span tracetest.SpanStub, key attribute.Key) string {
	for _, kv := range span.Attributes {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// find returns the span of the trace with the name (and, if orderID is
// set, the order.id attribute), nil if none.
func (s *traceSpans) find(name, orderID string) *tracetest.SpanStub {
	for i, span := range s.all {
		if span.Name == name && span.SpanContext.TraceID().String() == s.trace && (orderID == "" || attrOf(span, "order.id") == orderID) {
			return &s.all[i]
		}
	}
	return nil
}

func (s *traceSpans) one(name, orderID string) tracetest.SpanStub {
	s.t.Helper()
	span := s.find(name, orderID)
	if span == nil {
		var names []string
		for _, span := range s.all {
			if span.SpanContext.TraceID().String() == s.trace {
				names = append(names, span.Name)
			}
		}
		s.t.Fatalf("no span %q in the order's trace, which has %q", name, names)
	}
	return *span
}

// wantChild fails unless span's parent is parent.
func (s *traceSpans) wantChild(span, parent tracetest.SpanStub) {
	s.t.Helper()
	if span.Parent.SpanID() != parent.SpanContext.SpanID() {
		s.t.Errorf("%s is under %s, want %s (%s)", span.Name, span.Parent.SpanID(), parent.Name, parent.SpanContext.SpanID())
	}
}

// under reports whether ancestor is span's parent, or its parent's...
func (s *traceSpans) under(span, ancestor tracetest.SpanStub) bool {
	for id := span.Parent.SpanID(); id.IsValid(); {
		if id == ancestor.SpanContext.SpanID() {
			return true
		}
		p, ok := s.byID[id]
		if !ok {
			return false
		}
		id = p.Parent.SpanID()
	}
	return false
}

// wantAppendUnder fails unless an append to stream is under ancestor.
func (s *traceSpans) wantAppendUnder(ancestor tracetest.SpanStub, stream string) {
	s.t.Helper()
	for _, span := range s.all {
		if span.Name == tracing.SpanAppend && attrOf(span, tracing.AttrStream) == stream && s.under(span, ancestor) &&
			attrOf(span, tracing.AttrEvents) != "" && attrOf(span, tracing.AttrExpected) != "" {
			return
		}
	}
	s.t.Errorf("no append to %s under %s", stream, ancestor.Name)
}

// wantBatch fails unless a batch span of the name continues the trace
// under request, or links to it.
func (s *traceSpans) wantBatch(name string, request tracetest.SpanStub) {
	s.t.Helper()
	for _, span := range s.all {
		if span.Name != name {
			continue
		}
		if span.SpanContext.TraceID().String() == s.trace && s.under(span, request) {
			return
		}
		for _, l := range span.Links {
			if l.SpanContext.TraceID().String() == s.trace {
				return
			}
		}
	}
	s.t.Errorf("no %s batch in the order's trace or linked to it", name)
}
