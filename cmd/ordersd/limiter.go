package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orders-reference/orders/httpapi"
	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/internal/ratelimit"
)

// newLimiter returns the per-email order limiter: in Redis when REDIS_URL is
// set (an unreachable Redis is logged, not fatal: the limiter fails open or
// closed as configured), else in process. It also returns the Redis client
// (nil without one) and a function that closes it.
func newLimiter(ctx context.Context, cfg config.Config, logger *slog.Logger) (httpapi.Limiter, *redis.Client, func()) {
	if cfg.RedisURL == "" {
		logger.Warn("REDIS_URL is empty: rate limiting in process, correct for a single instance only")
		return ratelimit.NewMemory(cfg.RateLimitOrdersPerMinute, time.Minute, nil), nil, func() {}
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil { // validated by config.Load; kept for safety
		logger.Error("REDIS_URL unusable; rate limiting in process", "error", err)
		return ratelimit.NewMemory(cfg.RateLimitOrdersPerMinute, time.Minute, nil), nil, func() {}
	}
	// An outage must cost little: short timeouts and no retries unless the
	// URL sets them (go-redis would otherwise wait 5 s to dial and retry
	// three times), and a circuit breaker in front of the limiter.
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 250 * time.Millisecond
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = 250 * time.Millisecond
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = 250 * time.Millisecond
	}
	if opts.PoolTimeout == 0 {
		opts.PoolTimeout = 250 * time.Millisecond
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = -1
	}
	client := redis.NewClient(opts)
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		logger.Error("redis unreachable at start", "redis", config.Redacted(cfg.RedisURL), "error", err, "fail_closed", cfg.RateLimitFailClosed)
	}
	limiter := ratelimit.NewBreaker(ratelimit.NewRedis(client, "orders:ratelimit:", cfg.RateLimitOrdersPerMinute, time.Minute),
		ratelimit.BreakerOptions{OnChange: func(from, to string) {
			if to == "open" {
				logger.Warn("redis rate limiter: circuit breaker open; orders are limited as RATE_LIMIT_FAIL_CLOSED says until redis answers", "fail_closed", cfg.RateLimitFailClosed)
				return
			}
			logger.Info("redis rate limiter: circuit breaker "+to, "from", from)
		}})
	return limiter, client, func() { _ = client.Close() }
}
