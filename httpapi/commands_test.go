package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/httpapi"
	"github.com/orders-reference/orders/internal/apitest"
	"github.com/orders-reference/orders/internal/eventtest"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/internal/ratelimit"
	"github.com/orders-reference/orders/internal/redistest"
)

const secret = "test-admin-secret"

type env struct {
	srv   *httptest.Server
	store eventstore.Store
	svc   *command.Service
}

type envOptions struct {
	limiter        httpapi.Limiter
	failClosed     bool
	onLimiterError func(error)
	webhooks       httpapi.WebhookVerifier
	// store, if set, is the event store (by default PostgreSQL, on a
	// database of the test's own).
	store eventstore.Store
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	store := o.store
	if store == nil {
		pg := postgres.New(pgtest.NewPool(t, 12), postgres.Options{})
		t.Cleanup(pg.Close)
		store = pg
	}
	svc := command.NewService(store, command.Options{})
	api := httpapi.New(httpapi.Config{
		Commands: svc, AdminSecret: secret,
		Limiter: o.limiter, FailClosed: o.failClosed, OnLimiterError: o.onLimiterError, Webhooks: o.webhooks,
	})
	r := chi.NewRouter()
	r.Use(httpx.RequestID)
	api.MountCommands(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{srv: srv, store: store, svc: svc}
}

func (e *env) do(t *testing.T, method, path, body string, headers ...string) apitest.Response {
	t.Helper()
	return (&apitest.Client{URL: e.srv.URL}).Do(t, method, path, body, headers...)
}

func (e *env) product(t *testing.T, stock int) string {
	t.Helper()
	r := e.do(t, "POST", "/admin/products", fmt.Sprintf(`{"name":"Laptop","price":1500.00,"stock":%d}`, stock), "X-Admin-Secret", secret)
	if r.Status != http.StatusCreated {
		t.Fatalf("create product: %d %s", r.Status, r.Raw)
	}
	return r.Body["id"].(string)
}

func (e *env) stock(t *testing.T, id string) (available, reserved int64) {
	t.Helper()
	st := product.New(uuid.MustParse(id))
	eventtest.Load(t, e.store, events.ProductStream(st.ID), st.Apply)
	return st.Available, st.Reserved
}

func orderBody(email, productID string, qty int) string {
	return fmt.Sprintf(`{"user_email":%q,"items":[{"product_id":%q,"quantity":%d}]}`, email, productID, qty)
}

func TestAdminSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	body := `{"name":"Laptop","price":"1500.00","stock":10}`
	missing := e.do(t, "POST", "/admin/products", body)
	wrong := e.do(t, "POST", "/admin/products", body, "X-Admin-Secret", "nope")
	longer := e.do(t, "POST", "/admin/products", body, "X-Admin-Secret", secret+"x")
	for _, r := range []apitest.Response{missing, wrong, longer} {
		if r.Status != http.StatusUnauthorized || r.Raw != missing.Raw {
			t.Fatalf("bad secret: %d %s", r.Status, r.Raw)
		}
	}
	ok := e.do(t, "POST", "/admin/products", body, "X-Admin-Secret", secret)
	if ok.Status != http.StatusCreated || ok.Body["price"] != "1500.00" || ok.Body["stock"] != 10.0 || ok.Body["reserved"] != 0.0 ||
		ok.Body["is_active"] != true || ok.Body["version"] != 1.0 || ok.Header.Get("Location") != "/products/"+ok.Body["id"].(string) {
		t.Fatalf("create: %d %s", ok.Status, ok.Raw)
	}
	if e.do(t, "PATCH", "/admin/products/"+ok.Body["id"].(string), `{"stock":3}`).Status != http.StatusUnauthorized {
		t.Fatal("PATCH without the secret accepted")
	}
}

func TestProductValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	admin := []string{"X-Admin-Secret", secret}
	cases := []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/admin/products", `{"name":"A","price":0,"stock":1}`, 422},
		{"POST", "/admin/products", `{"name":"A","price":"1.234","stock":1}`, 422},
		{"POST", "/admin/products", `{"name":"A","price":1e3,"stock":1}`, 422},
		{"POST", "/admin/products", `{"name":"A","price":null,"stock":1}`, 400}, // null is a value of the wrong kind
		{"POST", "/admin/products", `{"name":"A","price":{},"stock":1}`, 400},
		{"POST", "/admin/products", `{"name":"A","price":true,"stock":1}`, 400},
		{"POST", "/admin/products", `{"name":"A","price":1.5,"stock":1,"is_active":null}`, 400},
		{"PATCH", "/admin/products/" + uuid.NewString(), `{"is_active":null}`, 400},
		{"PATCH", "/admin/products/{" + uuid.NewString() + "}", `{"stock":1}`, 400},
		{"PATCH", "/admin/products/" + strings.ReplaceAll(uuid.NewString(), "-", ""), `{"stock":1}`, 400},
		{"POST", "/admin/products", `{"name":"A","price":1.5,"stock":-1}`, 422},
		{"POST", "/admin/products", `{"name":"","price":1.5,"stock":1}`, 422},
		{"POST", "/admin/products", `{"name":"A","price":1.5}`, 422},
		{"POST", "/admin/products", `{"name":"A","price":1.5,"stock":1,"color":"red"}`, 400},
		{"POST", "/admin/products", `{"name":"A",`, 400},
		{"POST", "/admin/products", `[]`, 400},
		{"POST", "/admin/products", `{"name":"A","price":1.5,"stock":1} {}`, 400},
		{"POST", "/admin/products", `{"name":"` + strings.Repeat("a", 1<<20) + `","price":1,"stock":1}`, 413},
		{"PATCH", "/admin/products/not-a-uuid", `{"stock":1}`, 400},
		{"PATCH", "/admin/products/" + uuid.NewString(), `{"stock":1}`, 404},
	}
	for _, c := range cases {
		r := e.do(t, c.method, c.path, c.body, admin...)
		if r.Status != c.status || r.Body["status"] != float64(c.status) || r.Body["type"] == nil || r.Body["title"] == nil {
			t.Errorf("%s %s %.60s: %d %.200s, want %d", c.method, c.path, c.body, r.Status, r.Raw, c.status)
		}
	}
	id := e.product(t, 5)
	if r := e.do(t, "PATCH", "/admin/products/"+id, `{}`, admin...); r.Status != 422 {
		t.Errorf("empty patch: %d", r.Status)
	}
	r := e.do(t, "PATCH", "/admin/products/"+id, `{"price":"99.90","stock":7,"is_active":false}`, admin...)
	if r.Status != 200 || r.Body["price"] != "99.90" || r.Body["stock"] != 7.0 || r.Body["is_active"] != false || r.Body["version"] != 3.0 {
		t.Errorf("patch: %d %s", r.Status, r.Raw)
	}
}

func TestPlaceReplayConflictCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.product(t, 10)
	first := e.do(t, "POST", "/orders", orderBody("customer@example.com", p, 2), "Idempotency-Key", "unique-key-123")
	if first.Status != 201 || first.Body["status"] != "reserved" || first.Body["total_amount"] != "3000.00" ||
		first.Body["currency"] != "USD" || first.Header.Get("X-Event-Position") == "" || first.Body["payment_id"] != nil {
		t.Fatalf("place: %d %s", first.Status, first.Raw)
	}
	items := first.Body["items"].([]any)
	if it := items[0].(map[string]any); it["unit_price"] != "1500.00" || it["line_total"] != "3000.00" || it["quantity"] != 2.0 {
		t.Fatalf("item: %v", it)
	}
	replay := e.do(t, "POST", "/orders", orderBody("customer@example.com", p, 2), "Idempotency-Key", "unique-key-123")
	if replay.Status != 201 || replay.Body["id"] != first.Body["id"] || replay.Body["status"] != "reserved" {
		t.Fatalf("replay: %d %s", replay.Status, replay.Raw)
	}
	conflict := e.do(t, "POST", "/orders", orderBody("customer@example.com", p, 3), "Idempotency-Key", "unique-key-123")
	if conflict.Status != 409 || conflict.Body["type"] != httpx.TypeIdempotencyConflict {
		t.Fatalf("key conflict: %d %s", conflict.Status, conflict.Raw)
	}
	if a, r := e.stock(t, p); a != 8 || r != 2 {
		t.Fatalf("stock after replays: available %d, reserved %d", a, r)
	}

	short := e.do(t, "POST", "/orders", orderBody("customer@example.com", p, 9))
	if short.Status != 409 || short.Body["type"] != httpx.TypeInsufficientStock || fmt.Sprint(short.Body["insufficient"]) != "["+p+"]" {
		t.Fatalf("insufficient: %d %s", short.Status, short.Raw)
	}

	// A rejected placement shows as canceled; canceling it is 200, unchanged
	// (the contract's cancel of a canceled order), and releases nothing.
	rejectedID, _ := short.Body["order_id"].(string)
	for range 2 {
		c := e.do(t, "POST", "/orders/"+rejectedID+"/cancel", "")
		if c.Status != 200 || c.Body["status"] != "canceled" || c.Body["cancel_reason"] != events.RejectInsufficientStock {
			t.Fatalf("cancel of a rejected placement: %d %s", c.Status, c.Raw)
		}
	}
	if a, r := e.stock(t, p); a != 8 || r != 2 {
		t.Fatalf("stock after canceling the rejected placement: available %d, reserved %d", a, r)
	}

	id := first.Body["id"].(string)
	for range 2 {
		c := e.do(t, "POST", "/orders/"+id+"/cancel", "")
		if c.Status != 200 || c.Body["status"] != "canceled" || c.Body["cancel_reason"] != events.CancelCustomer {
			t.Fatalf("cancel: %d %s", c.Status, c.Raw)
		}
	}
	if a, r := e.stock(t, p); a != 10 || r != 0 {
		t.Fatalf("stock after cancel: available %d, reserved %d", a, r)
	}
	if r := e.do(t, "POST", "/orders/"+uuid.NewString()+"/cancel", ""); r.Status != 404 {
		t.Fatalf("cancel unknown: %d", r.Status)
	}
	if r := e.do(t, "POST", "/orders/xyz/cancel", ""); r.Status != 400 {
		t.Fatalf("cancel malformed id: %d", r.Status)
	}
	for name, body := range map[string]string{
		"bad email":       orderBody("nope", p, 1),
		"bad product id":  orderBody("a@example.com", "123", 1),
		"zero quantity":   orderBody("a@example.com", p, 0),
		"too many":        orderBody("a@example.com", p, 10_001),
		"unknown product": orderBody("a@example.com", uuid.NewString(), 1),
		"no items":        `{"user_email":"a@example.com","items":[]}`,
	} {
		if r := e.do(t, "POST", "/orders", body); r.Status != 422 || r.Body["errors"] == nil {
			t.Errorf("%s: %d %s", name, r.Status, r.Raw)
		}
	}
	if r := e.do(t, "POST", "/orders", orderBody("a@example.com", p, 1), "Idempotency-Key", strings.Repeat("k", 256)); r.Status != 400 {
		t.Errorf("long key: %d", r.Status)
	}
}

func TestConcurrentLastUnitOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.product(t, 1)
	var created, conflicts atomic.Int32
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch r := e.do(t, "POST", "/orders", orderBody(fmt.Sprintf("c%d@example.com", i), p, 1)); r.Status {
			case 201:
				created.Add(1)
			case 409:
				conflicts.Add(1)
			default:
				t.Errorf("%d %s", r.Status, r.Raw)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 1 || conflicts.Load() != 1 {
		t.Fatalf("%d created, %d conflicts", created.Load(), conflicts.Load())
	}
}

// 20 concurrent orders for one email, limit 5: exactly 5 pass; the others
// get 429 with the limit headers and reserve nothing.
func TestRateLimitPerEmail(t *testing.T) {
	t.Parallel()
	c, prefix := redistest.New(t)
	e := newEnv(t, envOptions{limiter: ratelimit.NewRedis(c, prefix, 5, time.Minute)})
	p := e.product(t, 100)
	var created, limited atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := "Customer@Example.com"
			if i%2 == 0 {
				email = "  customer@example.COM "
			}
			r := e.do(t, "POST", "/orders", orderBody(email, p, 1))
			switch r.Status {
			case 201:
				created.Add(1)
			case 429:
				limited.Add(1)
				if r.Header.Get("Retry-After") == "" || !strings.Contains(r.Header.Get("RateLimit-Policy"), "q=5;w=60") ||
					!strings.Contains(r.Header.Get("RateLimit"), "r=0") || r.Body["type"] != httpx.TypeRateLimited {
					t.Errorf("429 without the limit headers: %v %s", r.Header, r.Raw)
				}
			default:
				t.Errorf("%d %s", r.Status, r.Raw)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 5 || limited.Load() != 15 {
		t.Fatalf("%d created, %d limited; want 5 and 15", created.Load(), limited.Load())
	}
	if a, r := e.stock(t, p); a != 95 || r != 5 {
		t.Fatalf("limited requests reserved stock: available %d, reserved %d", a, r)
	}
}

func TestRateLimiterDown(t *testing.T) {
	t.Parallel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { dead.Close() })
	var errs atomic.Int32
	open := newEnv(t, envOptions{limiter: ratelimit.NewRedis(dead, "x:", 5, time.Minute), onLimiterError: func(error) { errs.Add(1) }})
	p := open.product(t, 10)
	if r := open.do(t, "POST", "/orders", orderBody("a@example.com", p, 1)); r.Status != 201 || errs.Load() != 1 {
		t.Fatalf("fail open: %d, %d limiter errors", r.Status, errs.Load())
	}
	closed := newEnv(t, envOptions{limiter: ratelimit.NewRedis(dead, "x:", 5, time.Minute), failClosed: true})
	p = closed.product(t, 10)
	if r := closed.do(t, "POST", "/orders", orderBody("a@example.com", p, 1)); r.Status != 503 {
		t.Fatalf("fail closed: %d %s", r.Status, r.Raw)
	}
	if a, r := closed.stock(t, p); a != 10 || r != 0 {
		t.Fatalf("refused order reserved stock: %d/%d", a, r)
	}
}

// Retries of one Idempotency-Key, even concurrent ones, all get the order
// and use up one slot of the customer's limit.
func TestRetriesOfOneKeyCountOnce(t *testing.T) {
	t.Parallel()
	c, prefix := redistest.New(t)
	e := newEnv(t, envOptions{limiter: ratelimit.NewRedis(c, prefix, 3, time.Minute)})
	p := e.product(t, 100)
	ids := make(chan string, 6)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do(t, "POST", "/orders", orderBody("a@example.com", p, 1), "Idempotency-Key", "retried")
			if r.Status != 201 {
				t.Errorf("retry: %d %s", r.Status, r.Raw)
				return
			}
			ids <- r.Body["id"].(string)
		}()
	}
	wg.Wait()
	close(ids)
	first := <-ids
	for id := range ids {
		if id != first {
			t.Fatalf("retries returned orders %s and %s", first, id)
		}
	}
	for i, want := range []int{201, 201, 429} {
		if r := e.do(t, "POST", "/orders", orderBody("a@example.com", p, 1)); r.Status != want {
			t.Fatalf("new order %d after the retries: %d, want %d", i, r.Status, want)
		}
	}
}

// One customer, one spelling: an Idempotency-Key is scoped to the canonical
// address (another spelling replays the same order), and an address made
// different by an invisible code point is refused, not a new customer.
func TestEmailSpellingsAreOneCustomer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.product(t, 10)
	first := e.do(t, "POST", "/orders", orderBody("User@Example.com", p, 1), "Idempotency-Key", "one-key")
	if first.Status != 201 || first.Body["user_email"] != "user@example.com" {
		t.Fatalf("place: %d %s", first.Status, first.Raw)
	}
	again := e.do(t, "POST", "/orders", orderBody("ＵＳＥＲ@EXAMPLE.COM", p, 1), "Idempotency-Key", "one-key")
	if again.Status != 201 || again.Body["id"] != first.Body["id"] {
		t.Fatalf("another spelling, same key: %d %s, want the same order %v", again.Status, again.Raw, first.Body["id"])
	}
	for _, email := range []string{"user\u200b@example.com", "user\u202e@example.com", "user@exa\u200bmple.com"} {
		r := e.do(t, "POST", "/orders", orderBody(email, p, 1), "Idempotency-Key", "one-key")
		errs, _ := r.Body["errors"].(map[string]any)
		if r.Status != 422 || errs["user_email"] == nil {
			t.Errorf("%q: %d %s, want 422 naming user_email", email, r.Status, r.Raw)
		}
	}
	if a, r := e.stock(t, p); a != 9 || r != 1 {
		t.Fatalf("stock: available %d, reserved %d; want one order", a, r)
	}
}
