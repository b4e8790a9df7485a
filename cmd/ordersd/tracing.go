package main

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/internal/tracing/otlp"
)

// startTracing sets up the tracing cfg asks for (off unless an OTLP
// endpoint is configured, see package otlp) and returns it with the
// function that flushes the spans still buffered, to call before exiting.
// With tracing on it is also OpenTelemetry's global provider and
// propagator (for libraries that look for them: Orders passes it along
// itself), and the SDK's errors (an unreachable collector, dropped spans)
// are logged as warnings, at most one a minute.
func startTracing(ctx context.Context, cfg otlp.Config, logger *slog.Logger) (tracing.Tracing, func(), error) {
	tel, shutdown, err := otlp.New(ctx, cfg, otlp.Options{ServiceName: "ordersd"})
	if err != nil {
		return tracing.Tracing{}, nil, err
	}
	if tel.Enabled() {
		otel.SetTracerProvider(tel.Provider)
		otel.SetTextMapPropagator(tel.Propagator)
		otel.SetErrorHandler(otlp.ErrorHandler(logger, time.Minute))
		logger.Info("tracing", "protocol", cfg.Protocol, "endpoint", cfg.Endpoint)
	}
	return tel, func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			logger.Warn("tracing: spans not flushed", "error", err)
		}
	}, nil
}
