package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orders-reference/orders/httpapi"
	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/internal/ratelimit"
)

// Bounds of a Redis outage, per order and per /readyz.
const (
	// limiterCallTimeout bounds one call of the limiter to Redis (one dial
	// and one script, each step bounded by ratelimit.BoundOutage).
	limiterCallTimeout = 500 * time.Millisecond
	// limiterFailures in a row open the breaker; for limiterOpenFor no
	// order asks Redis, then one does while the others still do not.
	limiterFailures = 3
	limiterOpenFor  = 5 * time.Second
	// redisReadyTimeout bounds /readyz's ping, well under a probe's 1 s.
	redisReadyTimeout = 250 * time.Millisecond
)

// redisLimiter is what /readyz asks about the Redis rate limiter.
type redisLimiter struct {
	client  *redis.Client
	breaker *ratelimit.Breaker
}

// errLimiterBreakerOpen: /readyz found the limiter's breaker open and did
// not ask Redis (it names no host, so the answer may show it).
var errLimiterBreakerOpen = errors.New("unreachable: circuit breaker open")

// ready reports whether Redis answers: at once when the limiter's breaker
// is open (Redis failed lately), else by a ping of at most
// redisReadyTimeout.
func (l *redisLimiter) ready(ctx context.Context) error {
	if l.breaker.Open() {
		return errLimiterBreakerOpen
	}
	ctx, cancel := context.WithTimeout(ctx, redisReadyTimeout)
	defer cancel()
	return unreachable(l.client.Ping(ctx).Err())
}

// newLimiter returns the per-email order limiter: in Redis when REDIS_URL is
// set (an unreachable Redis is logged, not fatal: the limiter fails open or
// closed as configured), else in process. It also returns what /readyz
// checks of Redis (nil without it) and a function that closes the client.
func newLimiter(ctx context.Context, cfg config.Config, logger *slog.Logger) (httpapi.Limiter, *redisLimiter, func()) {
	if cfg.RedisURL == "" {
		logger.Warn("REDIS_URL is empty: rate limiting in process, correct for a single instance only")
		return ratelimit.NewMemory(cfg.RateLimitOrdersPerMinute, time.Minute, nil), nil, func() {}
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil { // validated by config.Load; kept for safety
		logger.Error("REDIS_URL unusable; rate limiting in process", "redis", config.Redacted(cfg.RedisURL), "error", err)
		return ratelimit.NewMemory(cfg.RateLimitOrdersPerMinute, time.Minute, nil), nil, func() {}
	}
	// An outage must cost little: one short dial, short timeouts and no
	// retries unless the URL sets them, and a circuit breaker in front of
	// the limiter.
	ratelimit.BoundOutage(opts)
	client := redis.NewClient(opts)
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		logger.Error("redis unreachable at start", "redis", config.Redacted(cfg.RedisURL), "error", err, "fail_closed", cfg.RateLimitFailClosed)
	}
	breaker := ratelimit.NewBreaker(ratelimit.NewRedis(client, "orders:ratelimit:", cfg.RateLimitOrdersPerMinute, time.Minute),
		ratelimit.BreakerOptions{Failures: limiterFailures, OpenFor: limiterOpenFor, CallTimeout: limiterCallTimeout,
			OnChange: func(from, to string) {
				if to == "open" {
					logger.Warn("redis rate limiter: circuit breaker open; orders are limited as RATE_LIMIT_FAIL_CLOSED says until redis answers", "fail_closed", cfg.RateLimitFailClosed)
					return
				}
				logger.Info("redis rate limiter: circuit breaker "+to, "from", from)
			}})
	return breaker, &redisLimiter{client: client, breaker: breaker}, func() { _ = client.Close() }
}
