package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// loadMain is "ordersload load" (also what ordersload does without a
// command): an open-loop vegeta attack on POST /orders, then the wait for
// every saga to end.
func loadMain(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("ordersload load", flag.ContinueOnError)
	flagUsage(fs, stderr, `Usage: ordersload [load] [flags]

Creates -products products through the admin API, places orders at a
constant -rate for -duration with vegeta (each from its own customer, with an
Idempotency-Key), reports the latency of POST /orders, then waits until no
order is created, reserved or payment_pending and reports how long every saga
took. Run the server with RATE_LIMIT_ORDERS_PER_MINUTE high enough for the
rate.
`)
	base := fs.String("url", "http://localhost:8000", "ordersd base URL")
	admin := fs.String("admin-secret", "dev-admin-secret", "X-Admin-Secret")
	rate := fs.Int("rate", 200, "orders per second")
	duration := fs.Duration("duration", 30*time.Second, "how long to place orders")
	products := fs.Int("products", 100, "products to spread the orders over")
	settle := fs.Duration("settle", 2*time.Minute, "how long to wait for the sagas to end")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return runLoad(*base, *admin, *rate, *duration, *products, *settle)
}

func runLoad(base, admin string, rate int, duration time.Duration, nProducts int, settle time.Duration) error {
	ids, err := createProducts(base, admin, nProducts)
	if err != nil {
		return err
	}
	runID := fmt.Sprintf("%x", time.Now().UnixNano())
	var seq atomic.Int64
	targeter := func(t *vegeta.Target) error {
		n := seq.Add(1)
		body, _ := json.Marshal(map[string]any{
			"user_email": fmt.Sprintf("load-%s-%d@example.com", runID, n),
			"items":      []map[string]any{{"product_id": ids[rand.IntN(len(ids))], "quantity": 1 + rand.IntN(3)}},
		})
		t.Method, t.URL, t.Body = http.MethodPost, base+"/orders", body
		t.Header = http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {fmt.Sprintf("%s-%d", runID, n)}}
		return nil
	}
	attacker := vegeta.NewAttacker(vegeta.Timeout(10 * time.Second))
	var m vegeta.Metrics
	placed := 0
	start := time.Now()
	for res := range attacker.Attack(targeter, vegeta.Rate{Freq: rate, Per: time.Second}, duration, "orders") {
		m.Add(res)
		if res.Code == http.StatusCreated {
			placed++
		}
	}
	m.Close()
	fmt.Printf("POST /orders: %d requests at %d/s for %s: %.2f%% 201 (codes %v)\n", m.Requests, rate, duration, 100*float64(placed)/float64(m.Requests), m.StatusCodes)
	fmt.Printf("latency p50 %s  p95 %s  p99 %s  max %s  throughput %.0f/s\n",
		m.Latencies.P50.Round(time.Microsecond), m.Latencies.P95.Round(time.Microsecond), m.Latencies.P99.Round(time.Microsecond),
		m.Latencies.Max.Round(time.Microsecond), m.Throughput)

	deadline := time.Now().Add(settle)
	for {
		open := 0
		for _, status := range []string{"created", "reserved", "payment_pending"} {
			n, err := count(base, admin, status)
			if err != nil {
				return err
			}
			open += n
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d orders still open after %s", open, settle)
		}
		time.Sleep(200 * time.Millisecond)
	}
	paid, _ := count(base, admin, "paid")
	canceled, _ := count(base, admin, "canceled")
	fmt.Printf("every saga ended %s after the first order (%.0f orders/s end to end); in the read model: %d paid, %d canceled\n",
		time.Since(start).Round(10*time.Millisecond), float64(placed)/time.Since(start).Seconds(), paid, canceled)
	return nil
}

func createProducts(base, admin string, n int) ([]string, error) {
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"name":"Load %d","price":"10.00","stock":1000000}`, i)
			req, _ := http.NewRequest(http.MethodPost, base+"/admin/products", bytes.NewBufferString(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Admin-Secret", admin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var p struct{ ID string }
			if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&p) != nil {
				errs <- fmt.Errorf("create product: %s", resp.Status)
				return
			}
			ids[i] = p.ID
		}()
	}
	wg.Wait()
	close(errs)
	return ids, <-errs
}

// count counts orders in a status through the admin list (pages of 100).
func count(base, admin, status string) (int, error) {
	n, cursor := 0, ""
	for {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/admin/orders?status=%s&limit=100&cursor=%s", base, status, url.QueryEscape(cursor)), nil)
		req.Header.Set("X-Admin-Secret", admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor *string           `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		n += len(page.Items)
		if page.NextCursor == nil {
			return n, nil
		}
		cursor = *page.NextCursor
	}
}
