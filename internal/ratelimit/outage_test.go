package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/ratelimit"
	"github.com/orders-reference/orders/internal/redistest"
)

// countingClient is a go-redis client of addr (a redis:// URL or host:port)
// with the limiter's outage bounds, counting its dial attempts.
func countingClient(t *testing.T, addr string) (*redis.Client, *atomic.Int32) {
	t.Helper()
	opts := &redis.Options{Addr: addr}
	if u, err := redis.ParseURL(addr); err == nil {
		opts = u
	}
	ratelimit.BoundOutage(opts)
	var dials atomic.Int32
	opts.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c, &dials
}

// The go-redis defaults the limiter's client must not keep: 5 dial
// attempts 100 ms apart, 5 s dial and read timeouts, 3 retried commands.
func TestBoundOutageOptions(t *testing.T) {
	t.Parallel()
	opts, err := redis.ParseURL("redis://127.0.0.1:6379/0")
	if err != nil {
		t.Fatal(err)
	}
	ratelimit.BoundOutage(opts)
	if opts.DialTimeout != 250*time.Millisecond || opts.DialerRetries != 1 || opts.MaxRetries != -1 ||
		opts.ReadTimeout != 250*time.Millisecond || opts.WriteTimeout != 250*time.Millisecond ||
		opts.PoolTimeout != 250*time.Millisecond || !opts.ContextTimeoutEnabled {
		t.Fatalf("bounded options: %+v", opts)
	}
	// What the URL says is kept.
	opts, err = redis.ParseURL("redis://127.0.0.1:6379/0?dial_timeout=1s&max_retries=2&read_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	ratelimit.BoundOutage(opts)
	if opts.DialTimeout != time.Second || opts.MaxRetries != 2 || opts.ReadTimeout != 2*time.Second || opts.DialerRetries != 1 {
		t.Fatalf("the URL's options were overridden: %+v", opts)
	}
}

// A bounded client still works against a live Redis, one dial for many
// calls.
func TestBoundOutageAgainstRedis(t *testing.T) {
	t.Parallel()
	_, prefix := redistest.New(t) // fails the test without a Redis
	c, dials := countingClient(t, redistest.URL())
	l := ratelimit.NewBreaker(ratelimit.NewRedis(c, prefix, 100, time.Minute), ratelimit.BreakerOptions{})
	for i := range 10 {
		if d, err := l.Allow(context.Background(), "a@example.com", uuid.NewString()); err != nil || !d.Allowed || d.Remaining != 99-i {
			t.Fatalf("call %d: %+v, %v", i, d, err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d dials for 10 sequential calls, want 1", n)
	}
	if l.State() != "closed" {
		t.Fatalf("breaker %s against a live Redis", l.State())
	}
}

// With Redis refusing connections, never accepting them (a full listen
// backlog: the connect hangs) or accepting and never answering, each call
// costs one dial and at most a few hundred milliseconds; after 3 such
// calls the breaker is open and calls fail at once, dialing nothing.
func TestOutageCostsOneBoundedDialUntilTheBreakerOpens(t *testing.T) {
	t.Parallel()
	silent := func(t testing.TB) string { addr, _ := redistest.Silent(t); return addr }
	for name, addr := range map[string]func(testing.TB) string{
		"connection refused": redistest.Refusing, "connect hangs": redistest.Hanging, "never answers": silent,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, dials := countingClient(t, addr(t))
			var opened atomic.Int32
			l := ratelimit.NewBreaker(ratelimit.NewRedis(c, "test:outage:", 100, time.Minute),
				ratelimit.BreakerOptions{Failures: 3, OpenFor: time.Hour, OnChange: func(_, to string) {
					if to == "open" {
						opened.Add(1)
					}
				}})
			ctx := context.Background()
			for i := range 3 {
				start := time.Now()
				_, err := l.Allow(ctx, "a@example.com", uuid.NewString())
				if err == nil || errors.Is(err, ratelimit.ErrBreakerOpen) {
					t.Fatalf("call %d: %v, want Redis's error", i, err)
				}
				// Generous: the bound is 250 ms; go-redis's defaults took 1.66 s.
				if d := time.Since(start); d > time.Second {
					t.Fatalf("call %d took %s", i, d)
				}
				if n := dials.Load(); n != int32(i+1) {
					t.Fatalf("%d dials after %d calls, want one each (no dial or command retries)", n, i+1)
				}
			}
			if l.State() != "open" || !l.Open() || opened.Load() != 1 {
				t.Fatalf("after 3 failures: breaker %s, opened %d times", l.State(), opened.Load())
			}
			for range 100 {
				if _, err := l.Allow(ctx, "a@example.com", uuid.NewString()); !errors.Is(err, ratelimit.ErrBreakerOpen) {
					t.Fatalf("breaker open: %v, want ErrBreakerOpen", err)
				}
			}
			if n := dials.Load(); n != 3 {
				t.Fatalf("%d dials, want none while the breaker is open", n-3)
			}
		})
	}
}

// Half-open, one call tries Redis and every other fails at once; a probe
// whose connect times out opens the breaker again (a dial timeout matches
// context.DeadlineExceeded, yet it is Redis's failure, not the caller's).
func TestHalfOpenSendsOneProbeAndItsTimeoutReopens(t *testing.T) {
	t.Parallel()
	c, dials := countingClient(t, redistest.Hanging(t))
	l := ratelimit.NewBreaker(ratelimit.NewRedis(c, "test:outage:", 100, time.Minute),
		ratelimit.BreakerOptions{Failures: 1, OpenFor: 50 * time.Millisecond})
	ctx := context.Background()
	if _, err := l.Allow(ctx, "a@example.com", uuid.NewString()); err == nil || errors.Is(err, ratelimit.ErrBreakerOpen) {
		t.Fatalf("first call: %v", err)
	}
	if !l.Open() {
		t.Fatalf("a connect timeout left the breaker %s, want open", l.State())
	}
	eventually.True(t, "the breaker to half-open", func() bool { return l.State() == "half-open" })
	before := dials.Load()
	const callers = 10
	var (
		wg           sync.WaitGroup
		fast, probes atomic.Int32
	)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.Allow(ctx, "a@example.com", uuid.NewString())
			switch {
			case errors.Is(err, ratelimit.ErrBreakerOpen):
				fast.Add(1)
			case err != nil:
				probes.Add(1)
			default:
				t.Error("a dead Redis answered")
			}
		}()
	}
	wg.Wait()
	if probes.Load() != 1 || fast.Load() != callers-1 || dials.Load()-before != 1 {
		t.Fatalf("half-open: %d probes, %d failed fast, %d dials; want 1, %d, 1", probes.Load(), fast.Load(), dials.Load()-before, callers-1)
	}
	if l.State() != "open" {
		t.Fatalf("after a probe whose connect timed out the breaker is %s, want open", l.State())
	}
}

// storeFunc is an allower for breaker tests.
type storeFunc func(ctx context.Context) error

func (f storeFunc) Allow(ctx context.Context, _, _ string) (ratelimit.Decision, error) {
	if err := f(ctx); err != nil {
		return ratelimit.Decision{}, err
	}
	return ratelimit.Decision{Allowed: true}, nil
}

// What counts against the store: its timeouts (which match
// context.DeadlineExceeded, as net's do) and CallTimeout running out; what
// does not: any error once the caller's own context has ended.
func TestBreakerBlamesTheStoreUnlessTheCallerLeft(t *testing.T) {
	t.Parallel()
	dialTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: timeoutError{}}
	if !errors.Is(dialTimeout, context.DeadlineExceeded) {
		t.Fatal("the test's dial timeout does not look like net's")
	}
	cases := []struct {
		name     string
		store    storeFunc
		caller   func() (context.Context, context.CancelFunc)
		timeout  time.Duration
		wantOpen bool
	}{
		{"dial timeout", func(context.Context) error { return dialTimeout }, background, 0, true},
		{"wrapped deadline", func(context.Context) error { return fmt.Errorf("redis: %w", context.DeadlineExceeded) }, background, 0, true},
		{"call timeout", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, background, 10 * time.Millisecond, true},
		{"refused", func(context.Context) error { return errors.New("connection refused") }, background, 0, true},
		{"caller canceled", func(context.Context) error { return dialTimeout }, canceled, 0, false},
		{"caller expired", func(ctx context.Context) error { return ctx.Err() }, expired, 0, false},
		{"caller expired, store error", func(context.Context) error { return errors.New("connection reset") }, expired, time.Second, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := ratelimit.NewBreaker(c.store, ratelimit.BreakerOptions{Failures: 3, OpenFor: time.Hour, CallTimeout: c.timeout})
			for range 3 {
				ctx, cancel := c.caller()
				_, err := l.Allow(ctx, "k", "t")
				cancel()
				if err == nil || errors.Is(err, ratelimit.ErrBreakerOpen) {
					t.Fatalf("a failing store: %v", err)
				}
			}
			if l.Open() != c.wantOpen {
				t.Fatalf("after 3 failures the breaker is %s, want open %v", l.State(), c.wantOpen)
			}
		})
	}
}

type timeoutError struct{}

func (timeoutError) Error() string        { return "i/o timeout" }
func (timeoutError) Timeout() bool        { return true }
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

func background() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func canceled() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx, cancel
}

func expired() (context.Context, context.CancelFunc) {
	return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
}
