package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/pgtest"
	pg "github.com/orders-reference/orders/internal/postgres"
)

// The request path's bounds in these tests: a statement may wait 500 ms, a
// request 3 s (backpressure's wait, 2 s, must fit in it).
var stallBounds = []string{"DB_STATEMENT_TIMEOUT=500ms", "REQUEST_TIMEOUT=3s", "FAKE_PAYMENT_SUCCESS_RATE=1", "FAKE_PAYMENT_DELAY=10ms"}

// wantBoundedUnavailable checks a 503 problem with Retry-After, answered
// within the request timeout (and a second for the statement's cancel).
func wantBoundedUnavailable(t *testing.T, what string, r response, took time.Duration) {
	t.Helper()
	if r.Status != http.StatusServiceUnavailable || r.Body["type"] != httpx.TypeUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("%s: %d %s, want 503 %s with Retry-After", what, r.Status, r.Raw, httpx.TypeUnavailable)
	}
	if took > 4*time.Second {
		t.Fatalf("%s answered after %s, want within REQUEST_TIMEOUT (3s)", what, took)
	}
	t.Logf("%s: 503 after %s", what, took.Round(time.Millisecond))
}

// A lock held on the event store (another session's LOCK TABLE, as a
// long migration or an operator's transaction would) stalls the request
// path: POST /orders answers the 503 problem within the bounds instead of
// hanging, and the statement the timeout canceled leaves nothing behind:
// once the lock is gone the same Idempotency-Key places the order once,
// stock taken once. /readyz shows the database degraded meanwhile. A read
// model held the same way answers reads 503 too.
func TestDatabaseStallCostsABoundedWait(t *testing.T) {
	t.Parallel()
	db := testDatabase(t)
	s := startServer(t, append([]string{"DATABASE_URL=" + db}, stallBounds...)...)
	ctx := context.Background()
	conn, err := pg.Connect(ctx, db, 2) // another session
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)

	p := s.do(t, "POST", "/admin/products", `{"name":"Laptop","price":"10.00","stock":10}`, "X-Admin-Secret", adminSecret).Body["id"].(string)
	body := func(email string) string {
		return fmt.Sprintf(`{"user_email":%q,"items":[{"product_id":%q,"quantity":1}]}`, email, p)
	}
	if r := s.do(t, "POST", "/orders", body("warm@example.com")); r.Status != http.StatusCreated {
		t.Fatalf("first order: %d %s", r.Status, r.Raw)
	}

	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE events IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := s.do(t, "POST", "/orders", body("stalled@example.com"), "Idempotency-Key", "stall-1", "X-Request-ID", "stalled-request")
	wantBoundedUnavailable(t, "POST /orders with the event store locked", r, time.Since(start))
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// The key now places its order, once: its order.placed is the retry's,
	// and nothing carries the stalled request's correlation id.
	var placed response
	eventually.True(t, "the retried order to be placed", func() bool {
		placed = s.do(t, "POST", "/orders", body("stalled@example.com"), "Idempotency-Key", "stall-1", "X-Request-ID", "retry-request")
		return placed.Status == http.StatusCreated
	})
	id := placed.Body["id"].(string)
	var stalled, placements int
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE metadata->>'correlation_id' = 'stalled-request'),
	                                     count(*) FILTER (WHERE stream_id = 'order-' || $1 AND event_type LIKE 'order.placed%')
	                                FROM events`, id).Scan(&stalled, &placements); err != nil {
		t.Fatal(err)
	}
	if stalled != 0 || placements != 1 {
		t.Fatalf("events of the stalled request: %d, order.placed of the order: %d; want 0 and 1", stalled, placements)
	}
	eventually.True(t, "the product to show both orders' units taken, once each", func() bool {
		r := s.do(t, "GET", "/products/"+p, "")
		stock, _ := r.Body["stock"].(float64)
		reserved, _ := r.Body["reserved"].(float64)
		return r.Status == http.StatusOK && stock == 8 && reserved == 0 // both paid: sold
	})
	ready := s.do(t, "GET", "/readyz", "")
	checks, _ := ready.Body["checks"].(map[string]any)
	if msg, _ := checks["database"].(string); !strings.HasPrefix(msg, "degraded") || !strings.Contains(msg, "timed out") {
		t.Fatalf("/readyz after statement timeouts: %d %s, want the database degraded", ready.Status, ready.Raw)
	}

	// A read model held: reads answer 503 in time too.
	tx, err = conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE read_products IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	r = s.do(t, "GET", "/products/"+p, "")
	wantBoundedUnavailable(t, "GET /products/{id} with its read model locked", r, time.Since(start))
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if r := s.do(t, "GET", "/products/"+p, ""); r.Status != http.StatusOK {
		t.Fatalf("read after the lock: %d %s", r.Status, r.Raw)
	}
}

// A database that cannot be reached at all (a network partition: nothing
// gets through, nobody is told) costs a request REQUEST_TIMEOUT, not the
// TCP timeout: POST /orders answers 503 in time. Once the network is back
// the same Idempotency-Key places the order, once.
func TestUnreachableDatabaseCostsABoundedWait(t *testing.T) {
	t.Parallel()
	proxy := pgtest.NewProxy(t)
	u, err := url.Parse(testDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	direct := u.String()
	u.Host = proxy.Addr()
	s := startServer(t, append([]string{"DATABASE_URL=" + u.String()}, stallBounds...)...)
	p := s.do(t, "POST", "/admin/products", `{"name":"Laptop","price":"10.00","stock":10}`, "X-Admin-Secret", adminSecret).Body["id"].(string)
	body := fmt.Sprintf(`{"user_email":"cut@example.com","items":[{"product_id":%q,"quantity":1}]}`, p)

	proxy.Partition()
	start := time.Now()
	r := s.do(t, "POST", "/orders", body, "Idempotency-Key", "cut-1")
	wantBoundedUnavailable(t, "POST /orders with the database unreachable", r, time.Since(start))
	proxy.Restore()

	var placed response
	eventually.True(t, "the order to be placed once the database is back", func() bool {
		placed = s.do(t, "POST", "/orders", body, "Idempotency-Key", "cut-1")
		return placed.Status == http.StatusCreated
	})
	conn, err := pg.Connect(context.Background(), direct, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var placements int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE event_type LIKE 'order.placed%'`).Scan(&placements); err != nil || placements != 1 {
		t.Fatalf("%d orders placed (%v), want 1", placements, err)
	}
}
