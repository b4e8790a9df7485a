package logging_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/logging/logtest"
)

// newLogger is a logger as the binaries build it, writing into a sink.
func newLogger() (*slog.Logger, *logtest.Sink) {
	c := &logtest.Sink{}
	return logging.New(c, slog.LevelDebug), c
}

// one returns the only record logged, failing unless there is exactly one.
func one(t *testing.T, c *logtest.Sink) (string, map[string]any) {
	t.Helper()
	raw, recs := c.Lines(), c.Records(t)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1:\n%s", len(recs), strings.Join(raw, "\n"))
	}
	return raw[0], recs[0]
}

// count is how often key appears as a key in the line.
func count(line, key string) int { return strings.Count(line, `"`+key+`":`) }

// What a context carries is on every record logged with it (and with the
// contexts derived from it), at the top level; the innermost value of a
// key wins.
func TestContextAttributesOnEveryRecord(t *testing.T) {
	t.Parallel()
	log, c := newLogger()
	ctx := logging.With(context.Background(), "order_id", "o-1", "correlation_id", "c-1")
	ctx = logging.With(ctx, "step", "commit_stock", slog.String("correlation_id", "c-2"))
	log.InfoContext(ctx, "step done", "attempt", 1)
	_, rec := one(t, c)
	for k, want := range map[string]any{"msg": "step done", "order_id": "o-1", "correlation_id": "c-2", "step": "commit_stock", "attempt": 1.0} {
		if rec[k] != want {
			t.Errorf("%s = %v, want %v: %v", k, rec[k], want, rec)
		}
	}
}

// A key the caller passes itself, or the logger carries (slog.Logger.With),
// is written once, with the caller's value.
func TestNoKeyTwice(t *testing.T) {
	t.Parallel()
	log, c := newLogger()
	ctx := logging.With(context.Background(), "order_id", "from-ctx", "correlation_id", "c-ctx", "step", "s-ctx")
	log.With("step", "s-logger").InfoContext(ctx, "payment requested", "order_id", "from-call")
	line, rec := one(t, c)
	for _, k := range []string{"order_id", "correlation_id", "step"} {
		if n := count(line, k); n != 1 {
			t.Errorf("%s written %d times: %s", k, n, line)
		}
	}
	if rec["order_id"] != "from-call" || rec["step"] != "s-logger" || rec["correlation_id"] != "c-ctx" {
		t.Errorf("%v", rec)
	}
}

// A scope's attributes, added by the layers inside it, are on the records
// every context of the scope logs afterwards, the outermost included (a
// request's access line, logged after its handler returned).
func TestScopeCarriesWhatItsInnerLayersAdd(t *testing.T) {
	t.Parallel()
	log, c := newLogger()
	outer := logging.Scope(context.Background())
	logging.Add(outer, "request_id", "r-1", "correlation_id", "r-1")
	inner := logging.With(outer, "route", "/orders/{id}")
	logging.Add(inner, "order_id", "o-9")
	logging.Add(inner, "correlation_id", "c-of-the-order")
	log.InfoContext(outer, "request")
	_, rec := one(t, c)
	for k, want := range map[string]any{"request_id": "r-1", "order_id": "o-9", "correlation_id": "c-of-the-order"} {
		if rec[k] != want {
			t.Errorf("%s = %v, want %v: %v", k, rec[k], want, rec)
		}
	}
	if _, ok := rec["route"]; ok {
		t.Errorf("an inner With leaked to the outer context: %v", rec)
	}

	// Outside a scope Add does nothing, and changes no context.
	log2, c2 := newLogger()
	plain := logging.With(context.Background(), "order_id", "o-1")
	logging.Add(plain, "order_id", "o-2", "extra", "x")
	log2.InfoContext(plain, "line")
	if _, rec := one(t, c2); rec["order_id"] != "o-1" || rec["extra"] != nil {
		t.Errorf("%v", rec)
	}
}

// Adding to a scope while its records are logged is safe (go test -race).
func TestScopeConcurrentUse(t *testing.T) {
	t.Parallel()
	log, c := newLogger()
	ctx := logging.Scope(context.Background())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			logging.Add(ctx, "order_id", "o", "n", i)
			log.InfoContext(ctx, "line")
		})
	}
	wg.Wait()
	if recs := c.Records(t); len(recs) != 8 {
		t.Fatalf("%d records", len(recs))
	}
}

// trace_id and span_id come from the context's span only when its span
// context is valid.
func TestTraceIDsOnlyOfAValidSpan(t *testing.T) {
	t.Parallel()
	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID := trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	for _, c := range []struct {
		name  string
		sc    trace.SpanContext
		shown bool
	}{
		{"valid, sampled", trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled}), true},
		{"valid, not sampled", trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID}), true},
		{"no span id", trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID}), false},
		{"empty", trace.SpanContext{}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			log, out := newLogger()
			ctx := trace.ContextWithSpanContext(context.Background(), c.sc)
			log.InfoContext(logging.With(ctx, "order_id", "o-1"), "line")
			line, rec := one(t, out)
			if !c.shown {
				if count(line, "trace_id")+count(line, "span_id") != 0 {
					t.Fatalf("ids of an invalid span: %s", line)
				}
				return
			}
			if rec["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || rec["span_id"] != "00f067aa0ba902b7" || rec["order_id"] != "o-1" {
				t.Fatalf("%s", line)
			}
		})
	}
}

// Groups a logger opens hold the record's attributes; the context's stay at
// the top level, where a search for order_id finds them.
func TestGroupsLeaveContextAttributesAtTheTop(t *testing.T) {
	t.Parallel()
	log, c := newLogger()
	ctx := logging.With(context.Background(), "order_id", "o-1")
	log.With("component", "x").WithGroup("g").With("a", 1).InfoContext(ctx, "line", "order_id", "inner")
	line, rec := one(t, c)
	g, _ := rec["g"].(map[string]any)
	if rec["order_id"] != "o-1" || rec["component"] != "x" || g["a"] != 1.0 || g["order_id"] != "inner" {
		t.Fatalf("%s", line)
	}
	// An empty group is left out, as slog does.
	log2, c2 := newLogger()
	log2.WithGroup("empty").InfoContext(ctx, "line")
	if line, _ := one(t, c2); strings.Contains(line, "empty") || count(line, "order_id") != 1 {
		t.Fatalf("%s", line)
	}
}

// Empty values add nothing (a step of a task without a correlation id
// does not log "correlation_id":"").
func TestEmptyValuesLeftOut(t *testing.T) {
	t.Parallel()
	log, c := newLogger()
	ctx := logging.With(context.Background(), "order_id", "o-1", "correlation_id", "", "dangling")
	log.InfoContext(ctx, "line")
	if line, _ := one(t, c); count(line, "correlation_id") != 0 || strings.Contains(line, "dangling") || count(line, "order_id") != 1 {
		t.Fatalf("%s", line)
	}
}

// Durations are float milliseconds under a key ending in _ms, whether
// logged with Millis or as a time.Duration.
func TestDurationsInMilliseconds(t *testing.T) {
	t.Parallel()
	log, c := newLogger()
	log.Info("line", logging.Millis("duration_ms", 4221337*time.Nanosecond), slog.Duration("took", 1500*time.Millisecond),
		"retry_in_ms", 2*time.Second, slog.Group("g", slog.Duration("wait", time.Microsecond)))
	line, rec := one(t, c)
	g, _ := rec["g"].(map[string]any)
	if rec["duration_ms"] != 4.221 || rec["took_ms"] != 1500.0 || rec["retry_in_ms"] != 2000.0 || g["wait_ms"] != 0.001 {
		t.Fatalf("%s", line)
	}
	if count(line, "took")+count(line, "retry_in") != 0 {
		t.Fatalf("a duration without its unit: %s", line)
	}
}

// A record logged without a context, or with one that carries nothing,
// is written as it is.
func TestNothingToAdd(t *testing.T) {
	t.Parallel()
	log, c := newLogger()
	log.Info("line", "k", "v")
	if line, rec := one(t, c); rec["k"] != "v" || len(rec) != 4 {
		t.Fatalf("%s", line)
	}
}
