package httpapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/ratelimit"
)

// errRateLimited carries the limiter's decision out of PlaceOrder.
type errRateLimited struct{ d ratelimit.Decision }

func (e errRateLimited) Error() string { return "rate limited" }

// errLimiterDown refuses orders when the limiter fails and FailClosed is set.
var errLimiterDown = errors.New("rate limiter unavailable")

// admit applies the per-email limit to a new order. The order id is the
// action's token: concurrent retries of one Idempotency-Key share it and
// are counted once.
func (a *API) admit(w http.ResponseWriter, email string) func(ctx context.Context, orderID uuid.UUID) error {
	return func(ctx context.Context, orderID uuid.UUID) error {
		logging.Add(ctx, "order_id", orderID) // the request's lines from here on carry the new order's id
		if a.cfg.Backpressure != nil {
			if err := a.cfg.Backpressure.Admit(ctx); err != nil {
				return err
			}
		}
		if a.cfg.Limiter == nil {
			return nil
		}
		d, err := a.cfg.Limiter.Allow(ctx, order.NormalizeEmail(email), orderID.String())
		if err != nil {
			if !errors.Is(err, ratelimit.ErrBreakerOpen) { // an open breaker was logged once, when it opened
				a.log.ErrorContext(ctx, "rate limiter failed", "error", err, "fail_closed", a.cfg.FailClosed)
			}
			if a.cfg.OnLimiterError != nil {
				a.cfg.OnLimiterError(err)
			}
			if a.cfg.FailClosed {
				return errLimiterDown
			}
			return nil
		}
		setRateLimitHeaders(w, d)
		if !d.Allowed {
			if a.cfg.OnRateLimited != nil {
				a.cfg.OnRateLimited()
			}
			return errRateLimited{d}
		}
		return nil
	}
}

// setRateLimitHeaders writes the IETF RateLimit-Policy and RateLimit fields.
func setRateLimitHeaders(w http.ResponseWriter, d ratelimit.Decision) {
	w.Header().Set("RateLimit-Policy", fmt.Sprintf(`"orders";q=%d;w=%d`, d.Limit, int(d.Window.Seconds())))
	w.Header().Set("RateLimit", fmt.Sprintf(`"orders";r=%d;t=%d`, d.Remaining, ceilSeconds(d.Reset)))
}

func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}
