package postgres

import "context"

// WithBeforeCommit sets the test hook that runs inside the append
// transaction before it commits.
func WithBeforeCommit(o Options, f func(ctx context.Context)) Options {
	o.beforeCommit = f
	return o
}
