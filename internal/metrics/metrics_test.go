package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/trace"
)

// exemplars observes v on a new histogram under ctx and returns the
// exemplars the histogram then exports.
func exemplars(t *testing.T, ctx context.Context, v float64) []*dto.Exemplar {
	t.Helper()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x_seconds", Help: "x", Buckets: []float64{1, 2}})
	Observe(ctx, h, v)
	var out dto.Metric
	if err := h.Write(&out); err != nil {
		t.Fatal(err)
	}
	if got := out.GetHistogram().GetSampleCount(); got != 1 {
		t.Fatalf("%d samples, want 1", got)
	}
	var ex []*dto.Exemplar
	for _, b := range out.GetHistogram().GetBucket() {
		if b.GetExemplar() != nil {
			ex = append(ex, b.GetExemplar())
		}
	}
	return ex
}

// A sampled span's trace id rides along as the observation's exemplar;
// without one (or unsampled) the value is observed alone.
func TestObserveAddsTheTraceIDAsExemplar(t *testing.T) {
	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	span := trace.SpanContextConfig{TraceID: traceID, SpanID: trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}}

	sampled := span
	sampled.TraceFlags = trace.FlagsSampled
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(sampled))
	ex := exemplars(t, ctx, 1.5)
	if len(ex) != 1 || len(ex[0].GetLabel()) != 1 || ex[0].GetLabel()[0].GetName() != "trace_id" ||
		ex[0].GetLabel()[0].GetValue() != traceID.String() || ex[0].GetValue() != 1.5 {
		t.Fatalf("exemplars %v, want one with trace_id %s and value 1.5", ex, traceID)
	}

	unsampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(span))
	for name, ctx := range map[string]context.Context{"no span": context.Background(), "unsampled span": unsampled} {
		if ex := exemplars(t, ctx, 1.5); len(ex) != 0 {
			t.Errorf("%s: exemplars %v, want none", name, ex)
		}
	}
}

// The saga, step, queue and group commit metrics are registered under
// their names, the saga's outcomes and the primed steps visible at once.
func TestNewExportsTheSagaAndQueueMetrics(t *testing.T) {
	m := New()
	m.Prime(nil, nil, []string{"initiate_payment"}, []string{"done"})
	m.ObserveAppendBatch(3)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`orders_saga_duration_seconds_count{outcome="paid"} 0`,
		`orders_saga_duration_seconds_count{outcome="canceled"} 0`,
		`process_manager_step_duration_seconds_count{step="initiate_payment"} 0`,
		"process_manager_queue_age_seconds 0",
		"eventstore_append_batch_appends_sum 3",
		`eventstore_append_batch_appends_bucket{le="4"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics has no line %q", want)
		}
	}
}
