package otlp_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

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
	} {
		got, err := otlp.Load(c.environ)
		switch {
		case c.err != "" && (err == nil || !errors.Is(err, otlp.ErrConfig) || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%v: error %v, want one naming %s", c.environ, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%v: %v", c.environ, err)
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
	h = otlp.ErrorHandler(slog.New(slog.NewTextHandler(&logs, nil)), 0)
	h.Handle(errors.New("again"))
	h.Handle(errors.New("again"))
	if n := strings.Count(logs.String(), "again"); n != 2 {
		t.Fatalf("%d lines for 2 errors with no interval, want 2", n)
	}
}
