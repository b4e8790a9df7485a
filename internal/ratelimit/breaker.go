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
	// the store again (default 5 s). Meanwhile, and while that one request
	// is out, every other call fails at once with ErrBreakerOpen; the
	// probe's success closes the breaker, its failure opens it again.
	OpenFor time.Duration
	// CallTimeout, if positive, bounds one call to the store whatever the
	// caller's deadline; running out of it is the store's failure.
	CallTimeout time.Duration
	// OnChange is told each state change ("closed", "half-open", "open").
	OnChange func(from, to string)
}

// Breaker is a limiter whose store is not asked while it keeps failing.
type Breaker struct {
	next    allower
	cb      *gobreaker.CircuitBreaker[Decision]
	timeout time.Duration
}

// callerGone wraps the failure of a call whose caller's context ended
// (canceled, or its deadline passed): the store is not to blame. Only the
// caller's own context tells: a dial or read timeout inside the client
// also matches context.DeadlineExceeded (net's timeout errors do), and is
// the store's failure.
type callerGone struct{ err error }

func (e callerGone) Error() string { return e.err.Error() }
func (e callerGone) Unwrap() error { return e.err }

// NewBreaker wraps next. A call whose caller's context ended before it
// returned does not count, whatever the error; every other error does,
// timeouts included.
func NewBreaker(next allower, opts BreakerOptions) *Breaker {
	if opts.Failures == 0 {
		opts.Failures = 3
	}
	if opts.OpenFor <= 0 {
		opts.OpenFor = 5 * time.Second
	}
	st := gobreaker.Settings{
		Name: "ratelimit",
		// Half-open lets one call through; the others get
		// gobreaker.ErrTooManyRequests (ErrBreakerOpen) without waiting.
		MaxRequests: 1,
		Timeout:     opts.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= opts.Failures },
		IsExcluded: func(err error) bool {
			var gone callerGone
			return errors.As(err, &gone)
		},
	}
	if opts.OnChange != nil {
		st.OnStateChange = func(_ string, from, to gobreaker.State) { opts.OnChange(from.String(), to.String()) }
	}
	return &Breaker{next: next, cb: gobreaker.NewCircuitBreaker[Decision](st), timeout: opts.CallTimeout}
}

// Allow asks the wrapped limiter unless the breaker is open.
func (b *Breaker) Allow(ctx context.Context, key, token string) (Decision, error) {
	d, err := b.cb.Execute(func() (Decision, error) {
		callCtx := ctx
		if b.timeout > 0 {
			var cancel context.CancelFunc
			callCtx, cancel = context.WithTimeout(ctx, b.timeout)
			defer cancel()
		}
		d, err := b.next.Allow(callCtx, key, token)
		if err != nil && ctx.Err() != nil { // the caller's own context, not callCtx
			return d, callerGone{err}
		}
		return d, err
	})
	var gone callerGone
	switch {
	case errors.As(err, &gone):
		return Decision{}, gone.err
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return Decision{}, ErrBreakerOpen
	}
	return d, err
}

// Open reports whether the breaker is open: the store failed lately and
// is not asked until OpenFor has passed. It waits for nothing.
func (b *Breaker) Open() bool { return b.cb.State() == gobreaker.StateOpen }

// State is the breaker's state: "closed", "half-open" or "open".
func (b *Breaker) State() string { return b.cb.State().String() }
