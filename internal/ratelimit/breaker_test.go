package ratelimit_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/ratelimit"
)

// While Redis is down the breaker opens after a few failures and the
// limiter stops dialing (an outage costs microseconds per order, not a
// timeout); once Redis is back one request tries it and the breaker closes.
func TestBreakerStopsAskingADeadRedis(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	var dials atomic.Int32
	down.Store(true)
	client := redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:6379", MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if down.Load() {
				dials.Add(1)
				return nil, errors.New("connection refused (test)")
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	})
	t.Cleanup(func() { client.Close() })
	var changes atomic.Int32
	l := ratelimit.NewBreaker(ratelimit.NewRedis(client, "test:breaker:"+uuid.NewString()+":", 100, time.Minute),
		ratelimit.BreakerOptions{Failures: 3, OpenFor: 50 * time.Millisecond, OnChange: func(_, _ string) { changes.Add(1) }})
	ctx := context.Background()

	for i := range 3 {
		if _, err := l.Allow(ctx, "a@example.com", uuid.NewString()); err == nil || errors.Is(err, ratelimit.ErrBreakerOpen) {
			t.Fatalf("call %d with Redis down: %v, want Redis's error", i, err)
		}
	}
	tried := dials.Load()
	for range 100 {
		if _, err := l.Allow(ctx, "a@example.com", uuid.NewString()); !errors.Is(err, ratelimit.ErrBreakerOpen) {
			// Half-open after 50 ms: one call may try again and fail.
			if err == nil {
				t.Fatal("Redis answered while down")
			}
		}
	}
	if extra := dials.Load() - tried; extra > 5 {
		t.Fatalf("%d more dials while the breaker was open, want at most a few probes", extra)
	}

	down.Store(false)
	eventually.True(t, "the breaker to close once Redis is back", func() bool {
		d, err := l.Allow(ctx, "a@example.com", uuid.NewString())
		return err == nil && d.Allowed
	})
	if changes.Load() < 2 {
		t.Fatalf("%d state changes told, want open and closed at least", changes.Load())
	}
}

// A caller that gives up, or whose deadline passed, does not count against
// Redis.
func TestBreakerIgnoresCanceledCallers(t *testing.T) {
	t.Parallel()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { client.Close() })
	l := ratelimit.NewBreaker(ratelimit.NewRedis(client, "test:breaker:"+uuid.NewString()+":", 100, time.Minute),
		ratelimit.BreakerOptions{Failures: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelExpired()
	for _, ctx := range []context.Context{ctx, ctx, expired, expired} {
		if _, err := l.Allow(ctx, "a@example.com", uuid.NewString()); errors.Is(err, ratelimit.ErrBreakerOpen) {
			t.Fatal("canceled callers opened the breaker")
		}
	}
	if _, err := l.Allow(context.Background(), "a@example.com", uuid.NewString()); err != nil {
		t.Fatalf("after canceled callers: %v", err)
	}
}
