package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/redistest"
	"github.com/orders-reference/orders/payment"
)

// The original product's scenarios over HTTP against the real server (every
// role, embedded provider held back so the tests deliver the webhooks),
// PostgreSQL and Redis. Every answer is also checked against openapi.json.
func TestOriginalScenarios(t *testing.T) {
	t.Parallel()
	onEachEventStore(t, testOriginalScenarios)
}

func testOriginalScenarios(t *testing.T, es string) {
	const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	run := uuid.NewString()[:8]
	s := startServer(t, es, "REDIS_URL="+redistest.URL(), "RATE_LIMIT_ORDERS_PER_MINUTE=3", "FAKE_PAYMENT_DELAY=1h",
		"PAYMENT_WEBHOOK_SECRET="+webhookSecret)
	var emails []string
	email := func(name string) string {
		e := fmt.Sprintf("%s-%s@example.com", name, run)
		emails = append(emails, e)
		return e
	}
	t.Cleanup(func() { // the server's rate-limit keys for this run's customers
		opts, _ := redis.ParseURL(redistest.URL())
		c := redis.NewClient(opts)
		defer c.Close()
		for _, e := range emails {
			c.Del(context.Background(), "orders:ratelimit:"+e)
		}
	})
	admin := []string{"X-Admin-Secret", adminSecret}
	product := func(stock int) string {
		t.Helper()
		r := s.do(t, "POST", "/admin/products", fmt.Sprintf(`{"name":"Laptop","price":1500.00,"stock":%d}`, stock), admin...)
		if r.Status != http.StatusCreated {
			t.Fatalf("create product: %d %s", r.Status, r.Raw)
		}
		return r.Body["id"].(string)
	}
	order := func(email, productID string, qty int) string {
		return fmt.Sprintf(`{"user_email":%q,"items":[{"product_id":%q,"quantity":%d}]}`, email, productID, qty)
	}
	// stockOf reads a product once the read model has caught up with pos.
	stockOf := func(id, pos string) (float64, float64) {
		t.Helper()
		r := s.do(t, "GET", "/products/"+id, "", "X-Min-Position", pos)
		if r.Status != http.StatusOK {
			t.Fatalf("get product: %d %s", r.Status, r.Raw)
		}
		return r.Body["stock"].(float64), r.Body["reserved"].(float64)
	}
	waitPending := func(id string) string {
		t.Helper()
		var paymentID string
		eventually.True(t, "order "+id+" to await its payment", func() bool {
			r := s.do(t, "GET", "/orders/"+id, "")
			paymentID, _ = r.Body["payment_id"].(string)
			return r.Body["status"] == "payment_pending" && paymentID != ""
		})
		return paymentID
	}
	webhook := func(orderID, paymentID, status, msgID string) response {
		t.Helper()
		body := fmt.Sprintf(`{"payment_id":%q,"order_id":%q,"status":%q,"amount":"3000.00","occurred_at":%q}`,
			paymentID, orderID, status, time.Now().UTC().Format(time.RFC3339))
		signer, _ := payment.NewSigner(webhookSecret)
		h := http.Header{}
		_ = signer.Sign(h, msgID, time.Now(), []byte(body))
		return s.do(t, "POST", "/webhooks/payment", body,
			payment.HeaderID, h.Get(payment.HeaderID), payment.HeaderTimestamp, h.Get(payment.HeaderTimestamp), payment.HeaderSignature, h.Get(payment.HeaderSignature))
	}

	t.Run("order with idempotency", func(t *testing.T) {
		p := product(10)
		body := order(email("idem"), p, 2)
		first := s.do(t, "POST", "/orders", body, "Idempotency-Key", "unique-key-123")
		again := s.do(t, "POST", "/orders", body, "Idempotency-Key", "unique-key-123")
		if first.Status != http.StatusCreated || again.Status != http.StatusCreated || first.Body["id"] != again.Body["id"] ||
			first.Body["status"] != "reserved" || first.Body["total_amount"] != "3000.00" {
			t.Fatalf("first %d %s\nagain %d %s", first.Status, first.Raw, again.Status, again.Raw)
		}
		if stock, reserved := stockOf(p, first.Header.Get("X-Event-Position")); stock != 8 || reserved != 2 {
			t.Fatalf("stock %v reserved %v after one idempotent order, want 8 and 2", stock, reserved)
		}
		conflict := s.do(t, "POST", "/orders", order(email("idem"), p, 3), "Idempotency-Key", "unique-key-123")
		if conflict.Status != http.StatusConflict || conflict.Body["type"] != "/problems/idempotency-key-conflict" {
			t.Fatalf("key reused with another body: %d %s", conflict.Status, conflict.Raw)
		}
	})

	t.Run("insufficient stock", func(t *testing.T) {
		p := product(1)
		r := s.do(t, "POST", "/orders", order(email("short"), p, 2))
		if r.Status != http.StatusConflict || r.Body["type"] != "/problems/insufficient-stock" || fmt.Sprint(r.Body["insufficient"]) != "["+p+"]" {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
	})

	t.Run("concurrent reservation of the last unit", func(t *testing.T) {
		p := product(1)
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		for i := range 10 {
			body := order(email(fmt.Sprintf("last%d", i)), p, 1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := s.do(t, "POST", "/orders", body)
				mu.Lock()
				codes[r.Status]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if codes[http.StatusCreated] != 1 || codes[http.StatusConflict] != 9 {
			t.Fatalf("answers %v, want one 201 and nine 409", codes)
		}
	})

	t.Run("cancel restores stock", func(t *testing.T) {
		p := product(5)
		placed := s.do(t, "POST", "/orders", order(email("cancel"), p, 2))
		id := placed.Body["id"].(string)
		canceled := s.do(t, "POST", "/orders/"+id+"/cancel", "")
		if canceled.Status != http.StatusOK || canceled.Body["status"] != "canceled" || canceled.Body["cancel_reason"] != "customer_canceled" {
			t.Fatalf("cancel: %d %s", canceled.Status, canceled.Raw)
		}
		if stock, reserved := stockOf(p, canceled.Header.Get("X-Event-Position")); stock != 5 || reserved != 0 {
			t.Fatalf("stock %v reserved %v after cancel, want 5 and 0", stock, reserved)
		}
		if again := s.do(t, "POST", "/orders/"+id+"/cancel", ""); again.Status != http.StatusOK || again.Body["status"] != "canceled" {
			t.Fatalf("second cancel: %d %s", again.Status, again.Raw)
		}
	})

	t.Run("webhook success pays the order", func(t *testing.T) {
		p := product(5)
		id := s.do(t, "POST", "/orders", order(email("paid"), p, 2)).Body["id"].(string)
		paymentID := waitPending(id)
		for range 2 { // a redelivery changes nothing
			if r := webhook(id, paymentID, "success", "msg_ok_"+id); r.Status != http.StatusOK || r.Body["status"] != "paid" {
				t.Fatalf("webhook: %d %s", r.Status, r.Raw)
			}
		}
		eventually.True(t, "the sale to show", func() bool {
			o := s.do(t, "GET", "/orders/"+id, "")
			pr := s.do(t, "GET", "/products/"+p, "")
			return o.Body["status"] == "paid" && pr.Body["stock"] == 3.0 && pr.Body["reserved"] == 0.0
		})
		if r := s.do(t, "POST", "/orders/"+id+"/cancel", ""); r.Status != http.StatusConflict {
			t.Fatalf("cancel of a paid order: %d %s", r.Status, r.Raw)
		}
	})

	t.Run("webhook failure compensates", func(t *testing.T) {
		p := product(5)
		id := s.do(t, "POST", "/orders", order(email("failed"), p, 2)).Body["id"].(string)
		paymentID := waitPending(id)
		if r := webhook(id, paymentID, "failed", "msg_failed_"+id); r.Status != http.StatusOK || r.Body["status"] != "canceled" {
			t.Fatalf("webhook: %d %s", r.Status, r.Raw)
		}
		eventually.True(t, "the stock to come back", func() bool {
			o := s.do(t, "GET", "/orders/"+id, "")
			pr := s.do(t, "GET", "/products/"+p, "")
			return o.Body["status"] == "canceled" && o.Body["cancel_reason"] == "payment_failed" && pr.Body["stock"] == 5.0 && pr.Body["reserved"] == 0.0
		})
		body := `{"payment_id":"x","order_id":"` + id + `","status":"success","amount":"3000.00"}`
		r := s.do(t, "POST", "/webhooks/payment", body, payment.HeaderID, "msg_x", payment.HeaderTimestamp, fmt.Sprint(time.Now().Unix()),
			payment.HeaderSignature, "v1,bm90IGEgc2lnbmF0dXJl")
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("forged webhook: %d %s", r.Status, r.Raw)
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		p := product(100)
		e := email("limited")
		for i := range 3 {
			if r := s.do(t, "POST", "/orders", order(e, p, 1)); r.Status != http.StatusCreated {
				t.Fatalf("order %d: %d %s", i, r.Status, r.Raw)
			}
		}
		r := s.do(t, "POST", "/orders", order(strings.ToUpper(e), p, 1))
		if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || r.Body["type"] != "/problems/rate-limited" {
			t.Fatalf("fourth order: %d %s", r.Status, r.Raw)
		}
	})

	t.Run("admin secret", func(t *testing.T) {
		for _, path := range []string{"/admin/orders", "/admin/orders/" + uuid.NewString() + "/history"} {
			missing := s.do(t, "GET", path, "")
			wrong := s.do(t, "GET", path, "", "X-Admin-Secret", "nope")
			if missing.Status != http.StatusUnauthorized || wrong.Status != http.StatusUnauthorized || missing.Raw != wrong.Raw {
				t.Fatalf("%s: %d %s / %d %s", path, missing.Status, missing.Raw, wrong.Status, wrong.Raw)
			}
		}
		if r := s.do(t, "POST", "/admin/products", `{"name":"x","price":1,"stock":1}`); r.Status != http.StatusUnauthorized {
			t.Fatalf("create without the secret: %d", r.Status)
		}
		if r := s.do(t, "GET", "/admin/orders?limit=5", "", admin...); r.Status != http.StatusOK {
			t.Fatalf("admin list: %d %s", r.Status, r.Raw)
		}
	})

	t.Run("docs and metrics", func(t *testing.T) {
		for path, want := range map[string]string{"/openapi.json": `"openapi"`, "/docs": "swagger-ui", "/redoc": "redoc"} {
			if r := s.do(t, "GET", path, ""); r.Status != http.StatusOK || !strings.Contains(r.Raw, want) {
				t.Errorf("%s: %d", path, r.Status)
			}
		}
		r := s.do(t, "GET", "/metrics", "")
		for _, name := range []string{"orders_total", "orders_paid_total", "orders_canceled_total", "outbox_pending", "worker_errors_total",
			"http_request_duration_seconds", "eventstore_append_duration_seconds", "projection_lag_events", "orders_rate_limited_total",
			"stock_cache_hits_total", "stock_cache_misses_total", "stock_cache_evictions_total", "snapshots_written_total", "snapshot_errors_total",
			"orders_saga_duration_seconds", "process_manager_step_duration_seconds", "process_manager_queue_age_seconds", "eventstore_append_batch_appends"} {
			if !strings.Contains(r.Raw, "\n"+name) {
				t.Errorf("/metrics lacks %s", name)
			}
		}
		if r := s.do(t, "GET", "/nope", ""); r.Status != http.StatusNotFound || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("unknown route: %d %q", r.Status, r.Header.Get("Content-Type"))
		}
	})
}
