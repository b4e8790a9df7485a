package httpapi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/httpapi"
	"github.com/orders-reference/orders/internal/apitest"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query/orders"
	"github.com/orders-reference/orders/query/orderstock"
	"github.com/orders-reference/orders/query/products"
)

const querySecret = "s3cret"

type queryEnv struct {
	srv  *httptest.Server
	pool *pgxpool.Pool
}

// newQueryEnv serves the command and query APIs over one database, with the
// products and order_stock projections; withOrders decides whether the
// orders projection runs too.
func newQueryEnv(t *testing.T, withOrders bool) *queryEnv {
	t.Helper()
	pool := pgtest.NewPool(t, 12)
	store := postgres.New(pool, postgres.Options{PollInterval: 100 * time.Millisecond})
	t.Cleanup(store.Close)
	progress := projections.NewProgress(pool, 0)
	start := func(p projections.Projector) {
		ctx, cancel := context.WithCancel(context.Background())
		r := projections.NewRunner(pool, store, p, projections.Options{OnApplied: progress.Applied})
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	start(products.Projector{})
	start(orderstock.Projector{})
	if withOrders {
		start(orders.Projector{})
	}
	r := chi.NewRouter()
	r.Use(httpx.RequestID)
	api := httpapi.New(httpapi.Config{
		Commands: command.NewService(store, command.Options{}), AdminSecret: querySecret,
		Products: products.NewReader(pool), Orders: orders.NewReader(pool), Events: store, StockIndex: orderstock.NewReader(pool),
		Waiter: progress, MaxWait: 3 * time.Second,
	})
	api.MountCommands(r)
	api.MountQueries(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &queryEnv{srv: srv, pool: pool}
}

func (e *queryEnv) do(t *testing.T, method, path, body string, headers ...string) apitest.Response {
	t.Helper()
	return (&apitest.Client{URL: e.srv.URL}).Do(t, method, path, body, headers...)
}

func (e *queryEnv) product(t *testing.T, active bool) (string, string) {
	t.Helper()
	r := e.do(t, "POST", "/admin/products", fmt.Sprintf(`{"name":"P","price":"10.00","stock":50,"is_active":%v}`, active), "X-Admin-Secret", querySecret)
	if r.Status != 201 {
		t.Fatalf("create product: %d %s", r.Status, r.Raw)
	}
	return r.Body["id"].(string), r.Header.Get("X-Event-Position")
}

func (e *queryEnv) order(t *testing.T, email, productID string, qty int) apitest.Response {
	t.Helper()
	r := e.do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":%q,"items":[{"product_id":%q,"quantity":%d}]}`, email, productID, qty))
	if r.Status != 201 {
		t.Fatalf("order: %d %s", r.Status, r.Raw)
	}
	return r
}

func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	e := newQueryEnv(t, true)
	p, _ := e.product(t, true)
	o := e.order(t, "a@example.com", p, 3)
	pos := o.Header.Get("X-Event-Position")
	got := e.do(t, "GET", "/orders/"+o.Body["id"].(string), "", "X-Min-Position", pos)
	if got.Status != 200 || got.Body["status"] != "reserved" || got.Body["total_amount"] != "30.00" || got.Body["user_email"] != "a@example.com" {
		t.Fatalf("GET order: %d %s", got.Status, got.Raw)
	}
	prod := e.do(t, "GET", "/products/"+p, "", "X-Min-Position", pos)
	if prod.Status != 200 || prod.Body["stock"] != 47.0 || prod.Body["reserved"] != 3.0 || prod.Body["price"] != "10.00" {
		t.Fatalf("GET product: %d %s", prod.Status, prod.Raw)
	}
	// A cancel's position covers the stock it releases.
	c := e.do(t, "POST", "/orders/"+o.Body["id"].(string)+"/cancel", "")
	back := e.do(t, "GET", "/products/"+p, "", "X-Min-Position", c.Header.Get("X-Event-Position"))
	if back.Status != 200 || back.Body["stock"] != 50.0 || back.Body["reserved"] != 0.0 {
		t.Fatalf("GET product after cancel: %d %s", back.Status, back.Raw)
	}
	for path, want := range map[string]int{
		"/orders/not-a-uuid":                             400,
		"/orders/7f0a7a56-0000-4000-8000-000000000000":   404,
		"/products/7f0a7a56-0000-4000-8000-000000000000": 404,
		"/products?limit=0":                              400,
		"/products?limit=101":                            400,
		"/products?is_active=yes":                        400,
		"/products?cursor=garbage":                       400,
	} {
		if r := e.do(t, "GET", path, ""); r.Status != want || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %d %s, want %d", path, r.Status, r.Raw, want)
		}
	}
	if r := e.do(t, "GET", "/orders/"+o.Body["id"].(string), "", "X-Min-Position", "x"); r.Status != 400 {
		t.Errorf("malformed X-Min-Position: %d", r.Status)
	}
}

// With the orders projection not running, a read that asks for a position
// it has not reached waits its bound and answers 503 with Retry-After.
func TestReadYourWritesTimesOut(t *testing.T) {
	t.Parallel()
	e := newQueryEnv(t, false)
	p, _ := e.product(t, true)
	o := e.order(t, "a@example.com", p, 1)
	start := time.Now()
	r := e.do(t, "GET", "/orders/"+o.Body["id"].(string), "", "X-Min-Position", o.Header.Get("X-Event-Position"))
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("GET behind the projection: %d %s", r.Status, r.Raw)
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Fatalf("answered after %v, before the wait bound", waited)
	}
}

// Paging while rows are inserted on both sides of the cursor: every row
// that existed when paging began is seen exactly once, in a stable order.
// (Rows go straight into the read model here, as a projection would put
// them, to place them before the cursor on purpose.)
func TestProductPaginationWithConcurrentInserts(t *testing.T) {
	t.Parallel()
	e := newQueryEnv(t, false)
	var before []string
	var pos string
	for i := range 25 {
		var id string
		id, pos = e.product(t, i%5 != 0)
		before = append(before, id)
	}
	if pos == "" {
		t.Fatal("product creation returned no X-Event-Position")
	}
	if r := e.do(t, "GET", "/products?limit=1", "", "X-Min-Position", pos); r.Status != 200 {
		t.Fatalf("wait for the read model: %d %s", r.Status, r.Raw)
	}
	insert := func(id string) {
		if _, err := e.pool.Exec(context.Background(), `INSERT INTO read_products (id, name, description, price, stock, reserved, is_active, created_at, updated_at, version)
		     VALUES ($1, 'inserted', '', 100, 1, 0, true, now(), now(), 1)`, id); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	prev := ""
	cursor := ""
	for pages := 0; pages < 100; pages++ {
		path := "/products?limit=7"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.do(t, "GET", path, "")
		if r.Status != 200 {
			t.Fatalf("page: %d %s", r.Status, r.Raw)
		}
		for _, it := range r.Body["items"].([]any) {
			id := it.(map[string]any)["id"].(string)
			if id <= prev {
				t.Fatalf("order not stable: %s after %s", id, prev)
			}
			prev = id
			seen[id]++
		}
		// Rows land before the cursor (an offset would now repeat rows) and
		// after it.
		insert(fmt.Sprintf("00000000-0000-4000-8000-%012d", pages))
		insert(fmt.Sprintf("ffffffff-ffff-4fff-bfff-%012d", pages))
		next, ok := r.Body["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = next
	}
	for _, id := range before {
		if seen[id] != 1 {
			t.Fatalf("product %s seen %d times", id, seen[id])
		}
	}
	inactive := e.do(t, "GET", "/products?is_active=false&limit=100", "")
	if n := len(inactive.Body["items"].([]any)); n != 5 {
		t.Fatalf("%d inactive products, want 5", n)
	}
}

func TestAdminOrderList(t *testing.T) {
	t.Parallel()
	e := newQueryEnv(t, true)
	p, _ := e.product(t, true)
	var pos string
	for i := range 6 {
		email := "a@example.com"
		if i%2 == 1 {
			email = "b@example.com"
		}
		pos = e.order(t, email, p, 1).Header.Get("X-Event-Position")
	}
	admin := []string{"X-Admin-Secret", querySecret, "X-Min-Position", pos}
	if r := e.do(t, "GET", "/admin/orders", ""); r.Status != 401 {
		t.Fatalf("without the secret: %d", r.Status)
	}
	r := e.do(t, "GET", "/admin/orders?email=B@Example.com&limit=2", "", admin...)
	if r.Status != 200 || len(r.Body["items"].([]any)) != 2 || r.Body["next_cursor"] == nil {
		t.Fatalf("first page: %d %s", r.Status, r.Raw)
	}
	r2 := e.do(t, "GET", "/admin/orders?email=b@example.com&limit=2&cursor="+r.Body["next_cursor"].(string), "", admin...)
	if r2.Status != 200 || len(r2.Body["items"].([]any)) != 1 || r2.Body["next_cursor"] != nil {
		t.Fatalf("second page: %d %s", r2.Status, r2.Raw)
	}
	if r := e.do(t, "GET", "/admin/orders?status=reserved&limit=100", "", admin...); len(r.Body["items"].([]any)) != 6 {
		t.Fatalf("reserved orders: %s", r.Raw)
	}
	if r := e.do(t, "GET", "/admin/orders?status=nonsense", "", admin...); r.Status != 400 {
		t.Fatalf("bad status: %d", r.Status)
	}
}

// The audit trail shows the order's events and its stock events, oldest
// first, with who, why and where.
func TestOrderHistory(t *testing.T) {
	t.Parallel()
	e := newQueryEnv(t, false)
	p1, _ := e.product(t, true)
	p2, _ := e.product(t, true)
	o := e.do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":"a@example.com","items":[{"product_id":%q,"quantity":1},{"product_id":%q,"quantity":2}]}`, p1, p2),
		"X-Request-ID", "req-123")
	if o.Status != 201 {
		t.Fatalf("order: %d %s", o.Status, o.Raw)
	}
	id := o.Body["id"].(string)
	e.order(t, "someone@example.com", p1, 1) // another order's stock events must not show
	c := e.do(t, "POST", "/orders/"+id+"/cancel", "")
	if c.Status != 200 {
		t.Fatalf("cancel: %d", c.Status)
	}
	if r := e.do(t, "GET", "/admin/orders/"+id+"/history", ""); r.Status != 401 {
		t.Fatalf("history without the secret: %d", r.Status)
	}
	// The stock events are found through the order_stock index, which
	// follows a moment behind: X-Min-Position waits for it.
	r := e.do(t, "GET", "/admin/orders/"+id+"/history", "", "X-Admin-Secret", querySecret, "X-Min-Position", c.Header.Get("X-Event-Position"))
	if r.Status != 200 || r.Body["order_id"] != id {
		t.Fatalf("history: %d %s", r.Status, r.Raw)
	}
	var types []string
	prev := eventstore.Start
	for _, raw := range r.Body["events"].([]any) {
		ev := raw.(map[string]any)
		types = append(types, ev["type"].(string))
		if ev["position"] == nil || ev["stream"] == nil || ev["recorded_at"] == nil || ev["data"] == nil {
			t.Fatalf("event without envelope: %v", ev)
		}
		if ev["type"] == "order.placed.v1" {
			meta := ev["metadata"].(map[string]any)
			if meta["correlation_id"] != "req-123" || meta["actor"] != "customer" {
				t.Fatalf("placed metadata: %v", meta)
			}
		}
		pos, err := eventstore.ParsePosition(ev["position"].(string))
		if err != nil || !prev.Less(pos) {
			t.Fatalf("position %v after %s (%v)", ev["position"], prev, err)
		}
		prev = pos
	}
	want := []string{"order.placed.v1", "product.stock_reserved.v1", "product.stock_reserved.v1", "order.reserved.v1",
		"order.canceled.v1", "product.reservation_released.v1", "product.reservation_released.v1"}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("history types:\n%v\nwant\n%v", types, want)
	}
	if r := e.do(t, "GET", "/admin/orders/7f0a7a56-0000-4000-8000-000000000000/history", "", "X-Admin-Secret", querySecret); r.Status != 404 {
		t.Fatalf("unknown order: %d", r.Status)
	}
}

// Orders with the same created_at (one group commit gives them one
// timestamp) page by id: none is lost or repeated.
func TestOrderPagesBreakTiesByID(t *testing.T) {
	t.Parallel()
	e := newQueryEnv(t, false)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 9 {
		if _, err := e.pool.Exec(context.Background(), `INSERT INTO read_orders (id, user_email, status, items, total_amount, currency, created_at, updated_at, version)
		     VALUES ($1, 'tie@example.com', 'reserved', '[]', 100, 'USD', $2, $2, 2)`, fmt.Sprintf("7f0a7a56-0000-4000-8000-%012d", i), at); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	cursor := ""
	for range 10 {
		path := "/admin/orders?email=tie@example.com&limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.do(t, "GET", path, "", "X-Admin-Secret", querySecret)
		for _, it := range r.Body["items"].([]any) {
			id := it.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("order %s repeated", id)
			}
			seen[id] = true
		}
		next, ok := r.Body["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = next
	}
	if len(seen) != 9 {
		t.Fatalf("saw %d of 9 orders", len(seen))
	}
}
