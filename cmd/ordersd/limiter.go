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
	client := redis.NewClient(opts)
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		logger.Error("redis unreachable at start", "redis", config.Redacted(cfg.RedisURL), "error", err, "fail_closed", cfg.RateLimitFailClosed)
	}
	return ratelimit.NewRedis(client, "orders:ratelimit:", cfg.RateLimitOrdersPerMinute, time.Minute), client, func() { _ = client.Close() }
}
