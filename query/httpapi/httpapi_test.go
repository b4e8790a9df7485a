package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/command"
	cmdapi "github.com/orders-reference/orders/command/httpapi"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query"
	"github.com/orders-reference/orders/query/httpapi"
)

const secret = "s3cret"

type env struct {
	srv  *httptest.Server
	pool *pgxpool.Pool
}

// newEnv serves the command and query APIs over one database, with the
// products and order_stock projections; withOrders decides whether the
// orders projection runs too.
func newEnv(t *testing.T, withOrders bool) *env {
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
	start(projections.Products{})
	start(projections.OrderStock{})
	if withOrders {
		start(projections.Orders{})
	}
	r := chi.NewRouter()
	r.Use(httpx.RequestID)
	cmdapi.New(cmdapi.Config{Commands: command.NewService(store, command.Options{}), AdminSecret: secret}).Mount(r)
	httpapi.New(httpapi.Config{Reader: query.NewReader(pool), Waiter: progress, Events: store, AdminSecret: secret, MaxWait: 3 * time.Second}).Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{srv: srv, pool: pool}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func (e *env) product(t *testing.T, active bool) (string, string) {
	t.Helper()
	r := e.do(t, "POST", "/admin/products", fmt.Sprintf(`{"name":"P","price":"10.00","stock":50,"is_active":%v}`, active), "X-Admin-Secret", secret)
	if r.status != 201 {
		t.Fatalf("create product: %d %s", r.status, r.raw)
	}
	return r.body["id"].(string), r.header.Get("X-Event-Position")
}

func (e *env) order(t *testing.T, email, productID string, qty int) response {
	t.Helper()
	r := e.do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":%q,"items":[{"product_id":%q,"quantity":%d}]}`, email, productID, qty))
	if r.status != 201 {
		t.Fatalf("order: %d %s", r.status, r.raw)
	}
	return r
}

func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	p, _ := e.product(t, true)
	o := e.order(t, "a@example.com", p, 3)
	pos := o.header.Get("X-Event-Position")
	got := e.do(t, "GET", "/orders/"+o.body["id"].(string), "", "X-Min-Position", pos)
	if got.status != 200 || got.body["status"] != "reserved" || got.body["total_amount"] != "30.00" || got.body["user_email"] != "a@example.com" {
		t.Fatalf("GET order: %d %s", got.status, got.raw)
	}
	prod := e.do(t, "GET", "/products/"+p, "", "X-Min-Position", pos)
	if prod.status != 200 || prod.body["stock"] != 47.0 || prod.body["reserved"] != 3.0 || prod.body["price"] != "10.00" {
		t.Fatalf("GET product: %d %s", prod.status, prod.raw)
	}
	// A cancel's position covers the stock it releases.
	c := e.do(t, "POST", "/orders/"+o.body["id"].(string)+"/cancel", "")
	back := e.do(t, "GET", "/products/"+p, "", "X-Min-Position", c.header.Get("X-Event-Position"))
	if back.status != 200 || back.body["stock"] != 50.0 || back.body["reserved"] != 0.0 {
		t.Fatalf("GET product after cancel: %d %s", back.status, back.raw)
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
		if r := e.do(t, "GET", path, ""); r.status != want || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %d %s, want %d", path, r.status, r.raw, want)
		}
	}
	if r := e.do(t, "GET", "/orders/"+o.body["id"].(string), "", "X-Min-Position", "x"); r.status != 400 {
		t.Errorf("malformed X-Min-Position: %d", r.status)
	}
}

// With the orders projection not running, a read that asks for a position
// it has not reached waits its bound and answers 503 with Retry-After.
func TestReadYourWritesTimesOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	p, _ := e.product(t, true)
	o := e.order(t, "a@example.com", p, 1)
	start := time.Now()
	r := e.do(t, "GET", "/orders/"+o.body["id"].(string), "", "X-Min-Position", o.header.Get("X-Event-Position"))
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("GET behind the projection: %d %s", r.status, r.raw)
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
	e := newEnv(t, false)
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
	if r := e.do(t, "GET", "/products?limit=1", "", "X-Min-Position", pos); r.status != 200 {
		t.Fatalf("wait for the read model: %d %s", r.status, r.raw)
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
		if r.status != 200 {
			t.Fatalf("page: %d %s", r.status, r.raw)
		}
		for _, it := range r.body["items"].([]any) {
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
		next, ok := r.body["next_cursor"].(string)
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
	if n := len(inactive.body["items"].([]any)); n != 5 {
		t.Fatalf("%d inactive products, want 5", n)
	}
}

func TestAdminOrderList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	p, _ := e.product(t, true)
	var pos string
	for i := range 6 {
		email := "a@example.com"
		if i%2 == 1 {
			email = "b@example.com"
		}
		pos = e.order(t, email, p, 1).header.Get("X-Event-Position")
	}
	admin := []string{"X-Admin-Secret", secret, "X-Min-Position", pos}
	if r := e.do(t, "GET", "/admin/orders", ""); r.status != 401 {
		t.Fatalf("without the secret: %d", r.status)
	}
	r := e.do(t, "GET", "/admin/orders?email=B@Example.com&limit=2", "", admin...)
	if r.status != 200 || len(r.body["items"].([]any)) != 2 || r.body["next_cursor"] == nil {
		t.Fatalf("first page: %d %s", r.status, r.raw)
	}
	r2 := e.do(t, "GET", "/admin/orders?email=b@example.com&limit=2&cursor="+r.body["next_cursor"].(string), "", admin...)
	if r2.status != 200 || len(r2.body["items"].([]any)) != 1 || r2.body["next_cursor"] != nil {
		t.Fatalf("second page: %d %s", r2.status, r2.raw)
	}
	if r := e.do(t, "GET", "/admin/orders?status=reserved&limit=100", "", admin...); len(r.body["items"].([]any)) != 6 {
		t.Fatalf("reserved orders: %s", r.raw)
	}
	if r := e.do(t, "GET", "/admin/orders?status=nonsense", "", admin...); r.status != 400 {
		t.Fatalf("bad status: %d", r.status)
	}
}

// The audit trail shows the order's events and its stock events, oldest
// first, with who, why and where.
func TestOrderHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	p1, _ := e.product(t, true)
	p2, _ := e.product(t, true)
	o := e.do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":"a@example.com","items":[{"product_id":%q,"quantity":1},{"product_id":%q,"quantity":2}]}`, p1, p2),
		"X-Request-ID", "req-123")
	if o.status != 201 {
		t.Fatalf("order: %d %s", o.status, o.raw)
	}
	id := o.body["id"].(string)
	e.order(t, "someone@example.com", p1, 1) // another order's stock events must not show
	c := e.do(t, "POST", "/orders/"+id+"/cancel", "")
	if c.status != 200 {
		t.Fatalf("cancel: %d", c.status)
	}
	if r := e.do(t, "GET", "/admin/orders/"+id+"/history", ""); r.status != 401 {
		t.Fatalf("history without the secret: %d", r.status)
	}
	// The stock events are found through the order_stock index, which
	// follows a moment behind: X-Min-Position waits for it.
	r := e.do(t, "GET", "/admin/orders/"+id+"/history", "", "X-Admin-Secret", secret, "X-Min-Position", c.header.Get("X-Event-Position"))
	if r.status != 200 || r.body["order_id"] != id {
		t.Fatalf("history: %d %s", r.status, r.raw)
	}
	var types []string
	prev := eventstore.Start
	for _, raw := range r.body["events"].([]any) {
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
	if r := e.do(t, "GET", "/admin/orders/7f0a7a56-0000-4000-8000-000000000000/history", "", "X-Admin-Secret", secret); r.status != 404 {
		t.Fatalf("unknown order: %d", r.status)
	}
}

// Orders with the same created_at (one group commit gives them one
// timestamp) page by id: none is lost or repeated.
func TestOrderPagesBreakTiesByID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
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
		r := e.do(t, "GET", path, "", "X-Admin-Secret", secret)
		for _, it := range r.body["items"].([]any) {
			id := it.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("order %s repeated", id)
			}
			seen[id] = true
		}
		next, ok := r.body["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = next
	}
	if len(seen) != 9 {
		t.Fatalf("saw %d of 9 orders", len(seen))
	}
}
