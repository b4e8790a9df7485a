package projections

import "context"

// WithBeforeSwap sets the test hook that runs just before a rebuild swaps.
func WithBeforeSwap(o RebuildOptions, f func(ctx context.Context)) RebuildOptions {
	o.beforeSwap = f
	return o
}
