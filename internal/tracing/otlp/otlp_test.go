package otlp_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/orders-reference/orders/internal/tracing/otlp"
)

// Tracing is off unless an OTLP endpoint (or OTEL_TRACES_EXPORTER=otlp)
// asks for it, and off whenever the standard variables say none.
func TestLoad(t *testing.T) {
	for _, c := range []struct {
		environ []string
		want    otlp.Config
		err     string
	}{
		{nil, otlp.Config{}, ""},
		{[]string{"OTEL_SERVICE_NAME=x", "OTEL_TRACES_SAMPLER=always_off"}, otlp.Config{}, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318"},
			otlp.Config{Enabled: true, Protocol: otlp.ProtocolHTTPProtobuf, Endpoint: "http://jaeger:4318"}, ""},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=https://collector/v1/traces", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"},
			otlp.Config{Enabled: true, Protocol: otlp.ProtocolGRPC, Endpoint: "https://collector/v1/traces"}, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://a:4317", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json"},
			otlp.Config{Enabled: true, Protocol: otlp.ProtocolHTTPJSON, Endpoint: "http://a:4317"}, ""},
		{[]string{"OTEL_TRACES_EXPORTER=otlp"}, otlp.Config{Enabled: true, Protocol: otlp.ProtocolHTTPProtobuf}, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318", "OTEL_TRACES_EXPORTER=none"}, otlp.Config{}, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318", "OTEL_SDK_DISABLED=true"}, otlp.Config{}, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318", "OTEL_EXPORTER_OTLP_ENDPOINT="}, otlp.Config{}, ""}, // the last wins
		{[]string{"OTEL_TRACES_EXPORTER=zipkin"}, otlp.Config{}, "OTEL_TRACES_EXPORTER"},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=jaeger:4318"}, otlp.Config{}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://user:secret@jaeger:4318"},
			otlp.Config{Enabled: true, Protocol: otlp.ProtocolHTTPProtobuf, Endpoint: "http://user:xxxxx@jaeger:4318"}, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318", "OTEL_EXPORTER_OTLP_PROTOCOL=thrift"}, otlp.Config{}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		// The sampler: the specification's names, a ratio from 0 to 1.
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318", "OTEL_TRACES_SAMPLER=ParentBased_TraceIDRatio", "OTEL_TRACES_SAMPLER_ARG=0.25"},
			otlp.Config{Enabled: true, Protocol: otlp.ProtocolHTTPProtobuf, Endpoint: "http://jaeger:4318"}, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318", "OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=1"},
			otlp.Config{Enabled: true, Protocol: otlp.ProtocolHTTPProtobuf, Endpoint: "http://jaeger:4318"}, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318", "OTEL_TRACES_SAMPLER=always_on", "OTEL_TRACES_SAMPLER_ARG=abc"}, // not read
			otlp.Config{Enabled: true, Protocol: otlp.ProtocolHTTPProtobuf, Endpoint: "http://jaeger:4318"}, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318", "OTEL_TRACES_SAMPLER=bogus"}, otlp.Config{}, `OTEL_TRACES_SAMPLER: "bogus" is not a sampler`},
		{[]string{"OTEL_TRACES_SAMPLER=bogus"}, otlp.Config{}, "OTEL_TRACES_SAMPLER"}, // even with tracing off
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318", "OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=abc"},
			otlp.Config{}, `OTEL_TRACES_SAMPLER_ARG: "abc"`},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318", "OTEL_TRACES_SAMPLER=parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG=1.5"},
			otlp.Config{}, "OTEL_TRACES_SAMPLER_ARG"},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318", "OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=NaN"},
			otlp.Config{}, "OTEL_TRACES_SAMPLER_ARG"},
		// An endpoint without its scheme is shown, redacted.
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=localhost:4318"}, otlp.Config{}, "OTEL_EXPORTER_OTLP_ENDPOINT: localhost:4318 is not an http:// or https:// URL"},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=user:secret@collector:4318"}, otlp.Config{}, "user:xxxxx@collector:4318 is not"},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=ftp://user:secret@collector"}, otlp.Config{}, "ftp://user:xxxxx@collector is not"},
	} {
		got, err := otlp.Load(c.environ)
		switch {
		case c.err != "" && (err == nil || !errors.Is(err, otlp.ErrConfig) || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%v: error %v, want one naming %s", c.environ, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%v: %v", c.environ, err)
		case err != nil && strings.Contains(err.Error(), "secret"):
			t.Errorf("%v: the error shows a password: %v", c.environ, err)
		case c.err == "" && got != c.want:
			t.Errorf("%v: %+v, want %+v", c.environ, got, c.want)
		}
	}
}

// Off, New costs nothing; with an exporter (tests) it traces.
func TestNew(t *testing.T) {
	ctx := context.Background()
	off, stop, err := otlp.New(ctx, otlp.Config{}, otlp.Options{ServiceName: "ordersd"})
	if err != nil || off.Enabled() || stop(ctx) != nil {
		t.Fatalf("off: %+v %v", off, err)
	}
	exporter := tracetest.NewInMemoryExporter()
	on, stop, err := otlp.New(ctx, otlp.Config{}, otlp.Options{ServiceName: "ordersd", Exporter: exporter, Sync: true})
	if err != nil || !on.Enabled() {
		t.Fatalf("with an exporter: %+v %v", on, err)
	}
	_, span := on.Provider.Tracer("test").Start(ctx, "work")
	span.SetAttributes(attribute.String("url.path", "/"+strings.Repeat("x", 1_000_000)))
	span.End()
	spans := exporter.GetSpans()
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
	if len(spans) != 1 || spans[0].Name != "work" {
		t.Fatalf("exported %v", spans)
	}
	for _, kv := range spans[0].Attributes {
		if kv.Key == "url.path" && len(kv.Value.AsString()) != otlp.MaxAttributeValue {
			t.Errorf("an attribute of 1,000,001 characters kept %d, want %d", len(kv.Value.AsString()), otlp.MaxAttributeValue)
		}
	}
	for _, kv := range spans[0].Resource.Attributes() {
		if kv.Key == "service.name" && kv.Value.AsString() != "ordersd" {
			t.Errorf("service.name %q", kv.Value.AsString())
		}
	}
}

// The propagator reads and writes W3C Trace Context only: Orders uses no
// baggage, and a caller's baggage header (however large) is not parsed.
func TestPropagatorIgnoresBaggage(t *testing.T) {
	ctx := context.Background()
	on, stop, err := otlp.New(ctx, otlp.Config{}, otlp.Options{ServiceName: "ordersd", Exporter: tracetest.NewInMemoryExporter(), Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stop(ctx) }()
	if got := on.Propagator.Fields(); !slices.Equal(got, []string{"traceparent", "tracestate"}) {
		t.Errorf("the propagator handles %v, want traceparent and tracestate", got)
	}
	got := on.Propagator.Extract(ctx, propagation.MapCarrier{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"baggage":     "k=" + strings.Repeat("v", 50_000),
	})
	if !trace.SpanContextFromContext(got).IsValid() || baggage.FromContext(got).Len() != 0 {
		t.Errorf("extracted span context %v and baggage %v", trace.SpanContextFromContext(got), baggage.FromContext(got))
	}
}

// A collector that is away is logged once, then at most once an interval,
// with the number of errors kept quiet.
func TestErrorHandlerLogsNowAndThen(t *testing.T) {
	var logs strings.Builder
	h := otlp.ErrorHandler(slog.New(slog.NewTextHandler(&logs, nil)), time.Hour)
	for range 3 {
		h.Handle(errors.New("connection refused"))
	}
	if n := strings.Count(logs.String(), "connection refused"); n != 1 {
		t.Fatalf("%d lines for 3 errors within the interval, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `msg="tracing error" error="connection refused"`) {
		t.Errorf("the line does not say it is a tracing error, with the error:\n%s", logs.String())
	}
	h = otlp.ErrorHandler(slog.New(slog.NewTextHandler(&logs, nil)), 0)
	h.Handle(errors.New("again"))
	h.Handle(errors.New("again"))
	if n := strings.Count(logs.String(), "again"); n != 2 {
		t.Fatalf("%d lines for 2 errors with no interval, want 2", n)
	}
}
