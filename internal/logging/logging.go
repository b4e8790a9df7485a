// Package logging is the one way the service's log lines get the ids that
// tie them together, and the one rule for how they show durations.
//
// Ids travel in the context, not in each call: code that learns an id puts
// it into the context once, and every record logged with that context (the
// ctx-aware methods: InfoContext, WarnContext, ErrorContext, Log,
// LogAttrs) carries it, whoever logs it and however deep. The handler
// (NewHandler) adds them, and the trace_id and span_id of the context's
// OpenTelemetry span when it has a valid one:
//
//   - With derives a context whose records carry the given attributes: the
//     process manager gives each step's context its step, order_id and
//     correlation_id.
//   - Scope opens a unit of work whose attributes are filled as it goes
//     (Add): an HTTP request's scope is opened first (httpx.RequestID,
//     with its request_id and correlation_id), and the order id the
//     handler learns after routing or decoding is added to it, so the
//     request's access line, logged by the outermost middleware after the
//     handler returned, carries it too.
//
// An attribute the caller passes itself wins over the context's of the same
// key (no key is written twice); the innermost context wins over outer
// ones. Empty string values are left out.
//
// Durations are float milliseconds under a key ending in _ms (Millis):
// "duration_ms": 4.221. New's handler renders any time.Duration that is
// logged as it is the same way (and gives its key the _ms suffix), so no
// line shows a number without its unit.
//
// Nothing here knows HTTP, PostgreSQL or Redis: any package may use it.
package logging

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// New returns the JSON logger of the binaries: records at level and above
// to w, with the ids of their context (NewHandler) and durations in
// milliseconds.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(NewHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr})))
}

// Millis is a duration as log lines show it: float milliseconds, to the
// microsecond. By convention key ends in _ms ("duration_ms", "retry_in_ms").
func Millis(key string, d time.Duration) slog.Attr {
	return slog.Float64(key, millis(d))
}

func millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// replaceAttr renders a time.Duration logged as it is (slog.Duration, or a
// time.Duration argument) as Millis does, adding _ms to its key unless the
// key has it already.
func replaceAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindDuration {
		return a
	}
	key := a.Key
	if !strings.HasSuffix(key, "_ms") {
		key += "_ms"
	}
	return Millis(key, a.Value.Duration())
}

// node is one link of the chain of attributes a context carries: either
// fixed attributes (With) or a scope that Add fills.
type node struct {
	parent *node
	attrs  []slog.Attr
	scope  *scope
}

type scope struct {
	mu    sync.Mutex
	attrs []slog.Attr
}

type nodeKey struct{}

func nodeOf(ctx context.Context) *node {
	n, _ := ctx.Value(nodeKey{}).(*node)
	return n
}

// With returns a context whose records carry args (key-value pairs or
// slog.Attr values, as slog's methods take them), besides what ctx carries
// already; for a key ctx carries, args win.
func With(ctx context.Context, args ...any) context.Context {
	attrs := toAttrs(args)
	if len(attrs) == 0 {
		return ctx
	}
	return context.WithValue(ctx, nodeKey{}, &node{parent: nodeOf(ctx), attrs: attrs})
}

// Scope returns a context that opens a unit of work (a request): Add fills
// it, and every record logged with a context of the scope, this one or any
// derived from it, carries what was added, from then on.
func Scope(ctx context.Context) context.Context {
	return context.WithValue(ctx, nodeKey{}, &node{parent: nodeOf(ctx), scope: &scope{}})
}

// Add adds args to the innermost scope of ctx (see Scope), replacing what
// it holds under the same keys. Outside a scope it does nothing: use With.
// It is safe for concurrent use.
func Add(ctx context.Context, args ...any) {
	attrs := toAttrs(args)
	if len(attrs) == 0 {
		return
	}
	for n := nodeOf(ctx); n != nil; n = n.parent {
		if s := n.scope; s != nil {
			s.mu.Lock()
			s.attrs = merge(s.attrs, attrs)
			s.mu.Unlock()
			return
		}
	}
}

// merge returns to with from's attributes added, each replacing one of to's
// with its key. It does not modify to's backing array.
func merge(to, from []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, 0, len(to)+len(from))
	for _, a := range to {
		if !hasKey(from, a.Key) {
			out = append(out, a)
		}
	}
	return append(out, from...)
}

func hasKey(attrs []slog.Attr, key string) bool {
	for _, a := range attrs {
		if a.Key == key {
			return true
		}
	}
	return false
}

// toAttrs reads args as slog does: slog.Attr values, or a string key and
// the value after it. A key without a value is dropped, as is an empty
// string value. A later duplicate key replaces an earlier one.
func toAttrs(args []any) []slog.Attr {
	var attrs []slog.Attr
	for len(args) > 0 {
		var a slog.Attr
		switch x := args[0].(type) {
		case slog.Attr:
			a, args = x, args[1:]
		case string:
			if len(args) < 2 {
				return attrs
			}
			a, args = slog.Any(x, args[1]), args[2:]
		default:
			a, args = slog.Any("!BADKEY", x), args[1:]
		}
		if a.Key == "" || a.Value.Kind() == slog.KindString && a.Value.String() == "" {
			continue
		}
		attrs = merge(attrs, []slog.Attr{a})
	}
	return attrs
}

// String returns the value ctx's records carry under key (see With and
// Add) as a string; "" when they carry none. A client uses it to pass an
// id on (the correlation id, as a request's X-Request-ID).
func String(ctx context.Context, key string) string {
	for _, a := range attrsOf(ctx) {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}

// attrsOf returns what ctx carries: every node's attributes, the innermost
// winning for a key; outer ones first.
func attrsOf(ctx context.Context) []slog.Attr {
	var chain []*node
	for n := nodeOf(ctx); n != nil; n = n.parent {
		chain = append(chain, n)
	}
	var out []slog.Attr
	for i := len(chain) - 1; i >= 0; i-- {
		n := chain[i]
		attrs := n.attrs
		if n.scope != nil {
			n.scope.mu.Lock()
			attrs = n.scope.attrs
			n.scope.mu.Unlock()
		}
		if len(attrs) > 0 {
			out = merge(out, attrs)
		}
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		out = merge(out, []slog.Attr{slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String())})
	}
	return out
}
