package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/ratelimit"
	"github.com/orders-reference/orders/internal/redistest"
)

// 20 concurrent actions for one key with a limit of 5: exactly 5 pass.
func TestRedisConcurrentExactlyLimit(t *testing.T) {
	t.Parallel()
	c, prefix := redistest.New(t)
	l := ratelimit.NewRedis(c, prefix, 5, time.Minute)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := l.Allow(context.Background(), "a@example.com", uuid.NewString())
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			} else if d.RetryAfter <= 0 || d.RetryAfter > time.Minute || d.Remaining != 0 {
				t.Errorf("denied with retry after %v, remaining %d", d.RetryAfter, d.Remaining)
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != 5 {
		t.Fatalf("%d of 20 allowed, want 5", n)
	}
	// Another key is not affected.
	if d, err := l.Allow(context.Background(), "b@example.com", "t1"); err != nil || !d.Allowed || d.Remaining != 4 {
		t.Fatalf("other key: %+v, %v", d, err)
	}
}

// The window slides: an action leaves the log exactly one window after it
// was made, not at a fixed boundary.
func TestRedisWindowSlides(t *testing.T) {
	t.Parallel()
	c, prefix := redistest.New(t)
	const window = 400 * time.Millisecond
	l := ratelimit.NewRedis(c, prefix, 2, window)
	ctx := context.Background()
	for i := range 2 {
		if d, err := l.Allow(ctx, "k", uuid.NewString()); err != nil || !d.Allowed || d.Remaining != 1-i {
			t.Fatalf("action %d: %+v, %v", i, d, err)
		}
	}
	d, err := l.Allow(ctx, "k", uuid.NewString())
	if err != nil || d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > window {
		t.Fatalf("third action: %+v, %v", d, err)
	}
	// Waiting out RetryAfter is the behaviour under test, not synchronisation.
	time.Sleep(d.RetryAfter + 20*time.Millisecond)
	if d, err := l.Allow(ctx, "k", uuid.NewString()); err != nil || !d.Allowed {
		t.Fatalf("after the oldest left the window: %+v, %v", d, err)
	}
}

func TestMemorySlidingWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	l := ratelimit.NewMemory(5, time.Minute, clock)
	ctx := context.Background()
	for i := range 5 {
		now = now.Add(10 * time.Second) // t = 10..50s
		if d, _ := l.Allow(ctx, "k", uuid.NewString()); !d.Allowed || d.Remaining != 4-i {
			t.Fatalf("action %d: %+v", i, d)
		}
	}
	now = now.Add(5 * time.Second) // t = 55s
	d, _ := l.Allow(ctx, "k", uuid.NewString())
	if d.Allowed || d.RetryAfter != 15*time.Second {
		t.Fatalf("sixth action: %+v, want denied for 15s (until t=70s)", d)
	}
	now = now.Add(15 * time.Second) // t = 70s: the action at t=10s has left
	if d, _ := l.Allow(ctx, "k", uuid.NewString()); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("at t=70s: %+v", d)
	}
	if d, _ := l.Allow(ctx, "k", uuid.NewString()); d.Allowed {
		t.Fatalf("at t=70s again: %+v", d)
	}
}

func TestMemoryConcurrentExactlyLimit(t *testing.T) {
	l := ratelimit.NewMemory(5, time.Minute, nil)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d, _ := l.Allow(context.Background(), "k", uuid.NewString()); d.Allowed {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 5 {
		t.Fatalf("%d allowed, want 5", allowed.Load())
	}
}

// A retried action (same token) is allowed again and counted once, in both
// limiters.
func TestRetriesCountOnce(t *testing.T) {
	c, prefix := redistest.New(t)
	for name, l := range map[string]ratelimit.Limiter{
		"redis":  ratelimit.NewRedis(c, prefix, 2, time.Minute),
		"memory": ratelimit.NewMemory(2, time.Minute, nil),
	} {
		ctx := context.Background()
		for i := range 5 {
			if d, err := l.Allow(ctx, "k", "order-1"); err != nil || !d.Allowed || d.Remaining != 1 {
				t.Fatalf("%s: retry %d of one action: %+v, %v", name, i, d, err)
			}
		}
		if d, _ := l.Allow(ctx, "k", "order-2"); !d.Allowed || d.Remaining != 0 {
			t.Fatalf("%s: second action: %+v", name, d)
		}
		if d, _ := l.Allow(ctx, "k", "order-3"); d.Allowed {
			t.Fatalf("%s: third action allowed: %+v", name, d)
		}
		if d, _ := l.Allow(ctx, "k", "order-1"); !d.Allowed {
			t.Fatalf("%s: a retry of a counted action refused: %+v", name, d)
		}
	}
}
