package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/logging/logtest"
	"github.com/orders-reference/orders/internal/pgtest"
	pg "github.com/orders-reference/orders/internal/postgres"
)

// logLines is ordersd's stdout, read back as JSON records.
type logLines struct{ logtest.Sink }

// find returns the records for which match holds.
func (l *logLines) find(t *testing.T, match func(map[string]any) bool) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, rec := range l.Records(t) {
		if match(rec) {
			out = append(out, rec)
		}
	}
	return out
}

// The logs of one order, as ordersd writes them at INFO from a database it
// creates: the database's creation and one line per migration (no SQL);
// then every line of the order's requests and of its saga's steps carries
// order_id and correlation_id (the placing request's id, for the saga and
// the provider's webhook alike); durations are milliseconds; no secret
// shows.
func TestLogsOfOneOrder(t *testing.T) {
	t.Parallel()
	// A database that does not exist yet: ordersd creates it.
	u, err := url.Parse(testDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	fresh := strings.TrimPrefix(u.Path, "/") + "_fresh"
	u.Path = "/" + fresh
	t.Cleanup(func() {
		admin, err := pg.Connect(context.Background(), pgtest.ServerURL(), 1)
		if err != nil {
			t.Error(err)
			return
		}
		defer admin.Close()
		if _, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{fresh}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	const (
		webhookSecret = "logs-test-webhook-secret-0123456789abcdef"
		keySecret     = "logs-test-idempotency-secret-0123456789ab"
		requestID     = "logs-place-4711"
	)
	logs := &logLines{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- start(ctx, nil, []string{"DATABASE_URL=" + u.String(), "HTTP_ADDR=127.0.0.1:0", "REDIS_URL=",
			"LOG_LEVEL=INFO", "ADMIN_SECRET=" + adminSecret, "PAYMENT_WEBHOOK_SECRET=" + webhookSecret,
			"IDEMPOTENCY_KEY_SECRET=" + keySecret, "RATE_LIMIT_ORDERS_PER_MINUTE=1000",
			"FAKE_PAYMENT_SUCCESS_RATE=1", "FAKE_PAYMENT_DELAY=10ms"}, logs, logs)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit code %d:\n%s", code, logs)
			}
		case <-time.After(30 * time.Second):
			t.Error("ordersd did not stop")
		}
	}
	t.Cleanup(stop)
	var base string
	eventually.True(t, "ordersd to listen", func() bool {
		for _, rec := range logs.find(t, func(r map[string]any) bool { return r["msg"] == "ordersd listening" }) {
			base = "http://" + rec["addr"].(string)
		}
		return base != ""
	})

	// Boot: the database created, one line per migration, no SQL.
	if got := logs.find(t, func(r map[string]any) bool { return r["msg"] == "database created" }); len(got) != 1 || !strings.Contains(fmt.Sprint(got[0]["database"]), fresh) {
		t.Errorf("database created: %v\n%s", got, logs)
	}
	migrated := logs.find(t, func(r map[string]any) bool { return r["msg"] == "migration applied" })
	if len(migrated) < 10 {
		t.Errorf("%d migrations logged:\n%s", len(migrated), logs)
	}
	for _, rec := range migrated {
		if _, ok := rec["duration_ms"].(float64); !ok || rec["level"] != "INFO" || rec["version"] == nil || rec["name"] == nil {
			t.Errorf("migration line %v", rec)
		}
	}
	if s := logs.String(); strings.Contains(s, "CREATE TABLE") || strings.Contains(s, "statement") {
		t.Errorf("the boot logs SQL:\n%s", s)
	}

	// One order, paid by the embedded provider.
	call := func(method, path, body string, headers ...string) map[string]any {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if resp.StatusCode/100 != 2 || json.Unmarshal(raw, &out) != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
		return out
	}
	product := call("POST", "/admin/products", `{"name":"Lamp","price":"12.00","stock":3}`, "X-Admin-Secret", adminSecret)["id"].(string)
	order := call("POST", "/orders", fmt.Sprintf(`{"user_email":"logs@example.com","items":[{"product_id":%q,"quantity":1}]}`, product),
		"Idempotency-Key", "logs-key-1", "X-Request-ID", requestID)["id"].(string)
	eventually.True(t, "the order to be paid and its stock committed", func() bool {
		return len(logs.find(t, func(r map[string]any) bool {
			return r["msg"] == "step done" && r["step"] == "commit_stock" && r["order_id"] == order
		})) == 1
	})
	// The read model follows the steps: read until it shows the payment
	// (every read under one request id, each its own line).
	eventually.True(t, "the orders read model to show the order paid", func() bool {
		return call("GET", "/orders/"+order, "", "X-Request-ID", "logs-read-1")["status"] == "paid"
	})
	stop()

	// Every line that names the order carries order_id and a correlation
	// id: the saga's and the provider's webhook's that of the placing
	// request, a read's its own.
	ofOrder := logs.find(t, func(r map[string]any) bool {
		b, _ := json.Marshal(r)
		return strings.Contains(string(b), order)
	})
	seen := map[string]bool{}
	for _, rec := range ofOrder {
		want := requestID
		if rec["request_id"] == "logs-read-1" {
			want = "logs-read-1"
		}
		if rec["order_id"] != order || rec["correlation_id"] != want {
			t.Errorf("a line of order %s with order_id %v, correlation_id %v (want %s): %v", order, rec["order_id"], rec["correlation_id"], want, rec)
		}
		what := fmt.Sprint(rec["msg"])
		if rec["msg"] == "request" {
			what += " " + fmt.Sprint(rec["method"], " ", rec["route"])
			if _, ok := rec["duration_ms"].(float64); !ok || rec["duration"] != nil {
				t.Errorf("a request line without duration_ms: %v", rec)
			}
		}
		if rec["step"] != nil {
			what += " " + fmt.Sprint(rec["step"])
		}
		seen[what] = true
	}
	for _, want := range []string{
		"request POST /orders", "payment requested initiate_payment", "step done initiate_payment",
		"payment webhook recorded", "request POST /webhooks/payment", "step done commit_stock", "request GET /orders/{id}",
	} {
		if !seen[want] {
			t.Errorf("no %q line of the order; its lines:\n%v", want, ofOrder)
		}
	}
	for _, secret := range []string{adminSecret, webhookSecret, keySecret} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the logs show a secret (%s)", secret)
		}
	}
}
