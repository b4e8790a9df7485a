package ratelimit

import (
	"context"
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"
)

// ErrBreakerOpen: the limiter's store failed repeatedly and is not asked
// for a while (a circuit breaker, github.com/sony/gobreaker): the caller
// decides as for any limiter failure (fail open or closed), in
// microseconds instead of a timeout per request.
var ErrBreakerOpen = errors.New("rate limiter unavailable: circuit breaker open")

// allower is what the breaker wraps.
type allower interface {
	Allow(ctx context.Context, key, token string) (Decision, error)
}

// BreakerOptions tune a Breaker; zero values take the defaults.
type BreakerOptions struct {
	// Failures in a row that open the breaker (default 3).
	Failures uint32
	// OpenFor is how long the breaker stays open before one request tries
	// the store again (default 5 s).
	OpenFor time.Duration
	// OnChange is told each state change ("closed", "half-open", "open").
	OnChange func(from, to string)
}

// Breaker is a limiter whose store is not asked while it keeps failing.
type Breaker struct {
	next allower
	cb   *gobreaker.CircuitBreaker[Decision]
}

// NewBreaker wraps next. A canceled or expired caller's context is not the
// store's failure and does not count.
func NewBreaker(next allower, opts BreakerOptions) *Breaker {
	if opts.Failures == 0 {
		opts.Failures = 3
	}
	if opts.OpenFor <= 0 {
		opts.OpenFor = 5 * time.Second
	}
	st := gobreaker.Settings{
		Name:        "ratelimit",
		MaxRequests: 1,
		Timeout:     opts.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= opts.Failures },
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
		},
	}
	if opts.OnChange != nil {
		st.OnStateChange = func(_ string, from, to gobreaker.State) { opts.OnChange(from.String(), to.String()) }
	}
	return &Breaker{next: next, cb: gobreaker.NewCircuitBreaker[Decision](st)}
}

// Allow asks the wrapped limiter unless the breaker is open.
func (b *Breaker) Allow(ctx context.Context, key, token string) (Decision, error) {
	d, err := b.cb.Execute(func() (Decision, error) { return b.next.Allow(ctx, key, token) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return Decision{}, ErrBreakerOpen
	}
	return d, err
}
