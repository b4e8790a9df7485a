package httpx

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/orders-reference/orders/internal/logging"
)

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Observer is told about every request: its context (whose span, when
// traced, a latency exemplar names), its method, the route pattern that
// served it ("unmatched" if none: never the raw path, whose ids would make
// unbounded metric labels), the status and the duration.
type Observer func(ctx context.Context, method, route string, status int, d time.Duration)

// Observe logs every request (with the ids its log scope holds, see
// RequestID; its duration as duration_ms) and reports it to observe. Mount
// it inside a chi router, after RequestID.
func Observe(log *slog.Logger, observe Observer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			d := time.Since(start)
			route := "unmatched"
			if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
				route = rc.RoutePattern()
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			if observe != nil {
				observe(r.Context(), method(r.Method), route, sw.status, d)
			}
			level := slog.LevelInfo
			if quiet[route] && sw.status < 400 {
				level = slog.LevelDebug // probes and scrapes, every few seconds
			}
			if !log.Enabled(r.Context(), level) {
				return // probes and scrapes at INFO: nothing to build
			}
			// The method and path are the client's: Clip bounds them.
			log.LogAttrs(r.Context(), level, "request", slog.String("method", Clip(r.Method)), slog.String("route", route),
				slog.String("path", Clip(r.URL.Path)), slog.Int("status", sw.status), logging.Millis("duration_ms", d))
		})
	}
}

// quiet are the routes whose successful requests are logged at debug level.
var quiet = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// method is r.Method as a metric label: any token is a valid method, so
// anything but the standard ones is "OTHER", to keep the label bounded.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// Recover answers a handler's panic with a 500 problem (logged with its
// stack) instead of a dropped connection. Mount it inside Observe, so the
// request is still timed and logged.
func Recover(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.ErrorContext(r.Context(), "handler panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
					WriteProblem(w, Problem{Type: TypeInternal, Detail: InternalDetail})
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
