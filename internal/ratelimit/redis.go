package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// slidingWindow keeps one sorted set per key: members are actions, scores
// their times in microseconds from Redis's own clock. In one atomic step it
// drops actions older than the window, counts the rest and, if under the
// limit, records this one.
//
// KEYS[1] the key; ARGV[1] limit, ARGV[2] window in microseconds, ARGV[3]
// the action's token (its member: a retry finds itself and is not counted
// again). Returns {allowed, remaining, retry_after_us, reset_us}.
var slidingWindow = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
  return {1, math.max(limit - count, 0), 0, oldest + window - now}
end
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
  return {1, limit - count - 1, 0, oldest + window - now}
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
return {0, 0, oldest + window - now, oldest + window - now}
`)

// Bounds of what an unreachable Redis costs one call (BoundOutage).
const (
	// DialTimeout bounds connecting: one attempt, never retried.
	DialTimeout = 250 * time.Millisecond
	// IOTimeout bounds each read, write and wait for a pooled connection.
	IOTimeout = 250 * time.Millisecond
)

// BoundOutage makes a client of opts cheap to call while Redis is down:
// one dial of at most DialTimeout (go-redis would otherwise try 5 times,
// 100 ms apart, each for up to 5 s: 1.65 s a call at a 250 ms dial
// timeout), reads, writes and pool waits of at most IOTimeout, no retried
// commands, and the caller's deadline honoured by every step. Timeouts and
// max_retries that a redis:// URL set are kept.
func BoundOutage(opts *redis.Options) {
	if opts.DialTimeout == 0 {
		opts.DialTimeout = DialTimeout
	}
	if opts.DialerRetries == 0 {
		opts.DialerRetries = 1 // attempts, the first included
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = IOTimeout
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = IOTimeout
	}
	if opts.PoolTimeout == 0 {
		opts.PoolTimeout = IOTimeout
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = -1
	}
	opts.ContextTimeoutEnabled = true
}

// Redis is a Limiter whose log lives in Redis, shared by every instance.
type Redis struct {
	client redis.UniversalClient
	prefix string
	limit  int
	window time.Duration
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a limiter of limit actions per window, keeping its logs
// under keys that start with prefix.
func NewRedis(client redis.UniversalClient, prefix string, limit int, window time.Duration) *Redis {
	return &Redis{client: client, prefix: prefix, limit: limit, window: window}
}

// Allow implements Limiter.
func (l *Redis) Allow(ctx context.Context, key, token string) (Decision, error) {
	res, err := slidingWindow.Run(ctx, l.client, []string{l.prefix + key},
		l.limit, l.window.Microseconds(), token).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("rate limit in redis: %w", err)
	}
	if len(res) != 4 {
		return Decision{}, fmt.Errorf("rate limit in redis: script returned %v", res)
	}
	return Decision{
		Allowed:    res[0] == 1,
		Limit:      l.limit,
		Window:     l.window,
		Remaining:  int(res[1]),
		RetryAfter: time.Duration(max(res[2], 0)) * time.Microsecond,
		Reset:      time.Duration(max(res[3], 0)) * time.Microsecond,
	}, nil
}
