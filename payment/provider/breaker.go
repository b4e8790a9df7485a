package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/orders-reference/orders/payment"
)

// ErrBreakerOpen: the provider failed repeatedly and is not called for a
// while (a circuit breaker, github.com/sony/gobreaker). It is a
// payment.ErrUnavailable, so callers retry later as after any outage; the
// call was not sent, and answers at once instead of after a timeout.
var ErrBreakerOpen = fmt.Errorf("%w: circuit breaker open", payment.ErrUnavailable)

// BreakerOptions tune a Client's circuit breaker. With Failures 0 the
// Client has none.
type BreakerOptions struct {
	// Failures in a row (payment.ErrUnavailable: no answer, a timeout, a
	// 5xx) that open the breaker. Any answer of the provider, a refusal or
	// a 404 included, counts as a success; a call whose caller's context
	// ended counts as neither.
	Failures uint32
	// OpenFor is how long the breaker stays open before one call tries the
	// provider again (default 5s); that call's success closes it.
	OpenFor time.Duration
	// OnChange is told each state change ("closed", "half-open", "open").
	OnChange func(from, to string)
}

// breaker is the circuit breaker of a Client.
type breaker struct {
	cb *gobreaker.CircuitBreaker[struct{}]
}

// callerGone wraps the failure of a call whose caller's context ended: the
// provider is not to blame.
type callerGone struct{ err error }

func (e callerGone) Error() string { return e.err.Error() }
func (e callerGone) Unwrap() error { return e.err }

func newBreaker(opts BreakerOptions) *breaker {
	if opts.Failures == 0 {
		return nil
	}
	if opts.OpenFor <= 0 {
		opts.OpenFor = 5 * time.Second
	}
	st := gobreaker.Settings{
		Name:         "payment provider",
		MaxRequests:  1,
		Timeout:      opts.OpenFor,
		ReadyToTrip:  func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= opts.Failures },
		IsSuccessful: func(err error) bool { return !errors.Is(err, payment.ErrUnavailable) },
		IsExcluded: func(err error) bool {
			var gone callerGone
			return errors.As(err, &gone)
		},
	}
	if opts.OnChange != nil {
		st.OnStateChange = func(_ string, from, to gobreaker.State) { opts.OnChange(from.String(), to.String()) }
	}
	return &breaker{cb: gobreaker.NewCircuitBreaker[struct{}](st)}
}

// do runs call unless the breaker is open.
func (b *breaker) do(ctx context.Context, what string, call func() error) error {
	_, err := b.cb.Execute(func() (struct{}, error) {
		err := call()
		if err != nil && ctx.Err() != nil {
			return struct{}{}, callerGone{err}
		}
		return struct{}{}, err
	})
	var gone callerGone
	switch {
	case errors.As(err, &gone):
		return gone.err
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return fmt.Errorf("%w: %s not sent", ErrBreakerOpen, what)
	}
	return err
}
