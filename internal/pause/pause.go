// Package pause waits for a while, unless a context ends first: the
// retry delays and paces of the adapters and runners.
package pause

import (
	"context"
	"time"
)

// For waits for d, or until ctx ends, and then returns ctx's error (nil
// after the whole wait). A d of zero or less returns at once.
func For(ctx context.Context, d time.Duration) error {
	return ForOrWake(ctx, d, nil)
}

// ForOrWake is For that also returns, with nil, when wake is closed or
// sends (a nil wake never does).
func ForOrWake(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
		return nil
	case <-t.C:
		return nil
	}
}
