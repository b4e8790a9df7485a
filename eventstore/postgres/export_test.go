package postgres

import "context"

// WithBeforeCommit sets the test hook that runs inside the append
// transaction before it commits.
func WithBeforeCommit(o Options, f func(ctx context.Context)) Options {
	o.beforeCommit = f
	return o
}

// The statements a subscription runs on every page and every look at its
// backlog, for plan tests.
const (
	ReadAllSQL = readAllSQL
	BacklogSQL = backlogSQL
	HeadSQL    = headSQL
)
