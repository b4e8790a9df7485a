package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/logging/logtest"
	"github.com/orders-reference/orders/internal/redistest"
)

// A Redis that is down costs an order a few milliseconds once the
// limiter's breaker is open: 3 orders in a row wait for Redis (at most a
// bounded dial and read each) and pass (fail open); after them no order,
// and no /readyz, talks to Redis, and /readyz reports the limiter degraded
// at once. Redis here accepts connections and never answers, so every
// connection the server opens is counted.
func TestRedisOutageCostsOrdersLittle(t *testing.T) {
	t.Parallel()
	addr, accepted := redistest.Silent(t)
	s := startServer(t, "ORDERS_ROLES=command", "REDIS_URL=redis://"+addr+"/0")
	admin := []string{"X-Admin-Secret", adminSecret}
	p := s.do(t, "POST", "/admin/products", `{"name":"Laptop","price":"10.00","stock":100}`, admin...)
	if p.Status != http.StatusCreated {
		t.Fatalf("create product: %d %s", p.Status, p.Raw)
	}
	order := func(i int) {
		t.Helper()
		r := s.do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":"outage-%d@example.com","items":[{"product_id":%q,"quantity":1}]}`, i, p.Body["id"]))
		if r.Status != http.StatusCreated {
			t.Fatalf("order %d with Redis down (fail open): %d %s", i, r.Status, r.Raw)
		}
	}
	for i := range 3 {
		before := accepted.Load()
		order(i)
		if n := accepted.Load() - before; n != 1 {
			t.Fatalf("order %d opened %d connections to Redis, want 1 (no retries)", i, n)
		}
	}
	before := accepted.Load()
	start := time.Now()
	r := s.do(t, "GET", "/readyz", "")
	checks, _ := r.Body["checks"].(map[string]any)
	if msg, _ := checks["redis"].(string); r.Status != http.StatusOK || !strings.Contains(msg, "degraded") || !strings.Contains(msg, "circuit breaker open") {
		t.Fatalf("/readyz with the limiter's breaker open: %d %s", r.Status, r.Raw)
	}
	if d := time.Since(start); d > time.Second { // generous: it waits for no Redis
		t.Fatalf("/readyz took %s", d)
	}
	for i := 3; i < 23; i++ {
		order(i)
	}
	if n := accepted.Load() - before; n != 0 {
		t.Fatalf("%d connections to Redis while the breaker was open, want none", n)
	}
	if got := metric(t, s, "orders_rate_limiter_errors_total"); got != "23" {
		t.Fatalf("orders_rate_limiter_errors_total %s, want 23", got)
	}
}

// /readyz asks a Redis whose connects hang for at most 250 ms, well under
// a probe's 1 s timeout; a fail-closed limiter then refuses orders, at
// once after the breaker opens.
func TestRedisOutageBoundsReadyzAndFailsClosed(t *testing.T) {
	t.Parallel()
	s := startServer(t, "ORDERS_ROLES=command", "REDIS_URL=redis://"+redistest.Hanging(t)+"/0", "RATE_LIMIT_FAIL_CLOSED=true")
	start := time.Now()
	r := s.do(t, "GET", "/readyz", "")
	if d := time.Since(start); d > time.Second { // generous: go-redis's defaults took 1.66 s
		t.Fatalf("/readyz took %s", d)
	}
	checks, _ := r.Body["checks"].(map[string]any)
	if r.Status != http.StatusServiceUnavailable || checks["redis"] != "unreachable" {
		t.Fatalf("/readyz, fail closed, Redis hanging: %d %s", r.Status, r.Raw)
	}
	p := s.do(t, "POST", "/admin/products", `{"name":"Laptop","price":"10.00","stock":100}`, "X-Admin-Secret", adminSecret)
	body := fmt.Sprintf(`{"user_email":"closed@example.com","items":[{"product_id":%q,"quantity":1}]}`, p.Body["id"])
	for i := range 6 {
		if r := s.do(t, "POST", "/orders", body); r.Status != http.StatusServiceUnavailable {
			t.Fatalf("order %d, fail closed, Redis hanging: %d %s", i, r.Status, r.Raw)
		}
	}
	r = s.do(t, "GET", "/readyz", "")
	checks, _ = r.Body["checks"].(map[string]any)
	if msg, _ := checks["redis"].(string); r.Status != http.StatusServiceUnavailable || !strings.Contains(msg, "circuit breaker open") {
		t.Fatalf("/readyz, fail closed, breaker open: %d %s", r.Status, r.Raw)
	}
}

// go-redis's own lines (a failed dial, without the request's ids) are
// DEBUG, the limiter logging each failure it meets, and say "redis:" once.
func TestRedisLinesAreDebug(t *testing.T) {
	var sink logtest.Sink
	l := redisLogger{logging.New(&sink, slog.LevelDebug)}
	l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 5, "connection refused")
	l.Printf(context.Background(), "discarding bad PubSub connection: %v", "EOF")
	recs := sink.Records(t)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2: %s", len(recs), sink.String())
	}
	for i, want := range []string{"redis: connection pool: failed to dial after 5 attempts: connection refused", "redis: discarding bad PubSub connection: EOF"} {
		if recs[i]["level"] != "DEBUG" || recs[i]["msg"] != want {
			t.Errorf("record %d: %v, want DEBUG %q", i, recs[i], want)
		}
	}
	sink.Reset()
	l = redisLogger{logging.New(&sink, slog.LevelInfo)}
	l.Printf(context.Background(), "redis: connection pool: failed to dial")
	if sink.String() != "" {
		t.Errorf("at INFO, go-redis logged %s", sink.String())
	}
}
