// Package ratelimit limits how often a key (a customer's email) may act:
// at most Limit times in any Window (a sliding-window log, exact at every
// instant, not a fixed window that allows bursts at its edges).
//
// Redis keeps the log for a fleet of instances, updated atomically by one
// Lua script on Redis's clock; Memory keeps it in the process for a single
// instance. Both have the same semantics.
package ratelimit

import (
	"context"
	"time"
)

// Decision is a limiter's answer.
type Decision struct {
	Allowed bool
	// Limit and Window describe the policy.
	Limit  int
	Window time.Duration
	// Remaining is how many more actions the window allows now.
	Remaining int
	// RetryAfter is how long until the next action is allowed (zero when
	// Remaining > 0).
	RetryAfter time.Duration
	// Reset is how long until the oldest action in the window leaves it,
	// that is until Remaining grows again.
	Reset time.Duration
}

// Limiter decides whether key may act now, and if so records the action
// under token. An action already recorded under the same token (a retry of
// it) is allowed again without being counted twice.
type Limiter interface {
	Allow(ctx context.Context, key, token string) (Decision, error)
}
