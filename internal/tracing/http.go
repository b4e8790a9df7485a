package tracing

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Middleware returns the chi middleware that gives every request a server
// span, continuing the trace of an incoming W3C traceparent, named by the
// route pattern that served it ("POST /orders", "GET /orders/{id}"; the
// method alone when none did). Use it first in a chi router: the pattern
// is known once the router has served the request. Probes and scrapes
// (/healthz, /readyz, /metrics) get no span. With t not Enabled it adds
// nothing at all.
func Middleware(t Tracing) func(http.Handler) http.Handler {
	if !t.Enabled() {
		return func(next http.Handler) http.Handler { return next }
	}
	opts := []otelhttp.Option{
		otelhttp.WithTracerProvider(t.Provider), otelhttp.WithPropagators(t.propagator()),
		// Request metrics are Prometheus's (internal/metrics).
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(spanName),
		otelhttp.WithFilter(func(r *http.Request) bool { return !untraced[r.URL.Path] }),
	}
	return func(next http.Handler) http.Handler {
		return otelhttp.NewHandler(routeNamed(next), "http.server", opts...)
	}
}

// spanName names a request's span: its method, and the route pattern
// that served it once one has (otelhttp asks again after serving, when
// the request it holds knows its pattern).
func spanName(_ string, r *http.Request) string {
	if r.Pattern != "" {
		return spanMethod(r.Method) + " " + r.Pattern
	}
	return spanMethod(r.Method)
}

// routeNamed names the request's span by the chi route pattern that
// served it, once it has: the request otelhttp holds does not know its
// pattern when a middleware between them made a copy of it.
func routeNamed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		rc := chi.RouteContext(r.Context())
		if rc == nil {
			return
		}
		if pattern := rc.RoutePattern(); pattern != "" {
			span := trace.SpanFromContext(r.Context())
			span.SetName(spanMethod(r.Method) + " " + pattern)
			span.SetAttributes(semconv.HTTPRoute(pattern))
		}
	})
}

// Transport returns rt with a client span for every request, whose trace
// context it sends in the request's headers (W3C traceparent); rt itself
// when t is not Enabled.
func Transport(rt http.RoundTripper, t Tracing) http.RoundTripper {
	if !t.Enabled() {
		return rt
	}
	return otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(t.Provider), otelhttp.WithPropagators(t.propagator()),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()))
}
