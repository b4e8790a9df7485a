package projections

import (
	"context"
	"log/slog"
)

// WithBeforeSwap sets the test hook that runs just before a rebuild swaps.
func WithBeforeSwap(o RebuildOptions, f func(ctx context.Context)) RebuildOptions {
	o.beforeSwap = f
	return o
}

// WithLogger gives StorableText under ctx the logger a runner would.
func WithLogger(ctx context.Context, log *slog.Logger) context.Context { return withLogger(ctx, log) }
