package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/internal/pgtest"
)

// The server starts against a fresh database, migrates it, answers health
// checks and stops cleanly when its context ends.
func TestServeHealthAndShutdown(t *testing.T) {
	cfg, err := config.Load([]string{"DATABASE_URL=" + pgtest.NewDatabase(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.DiscardHandler), ln) }()

	base := "http://" + ln.Addr().String()
	for _, path := range []string{"/healthz", "/readyz"} {
		body := getEventually(t, base+path)
		if !strings.Contains(body, `"status"`) {
			t.Errorf("%s: %s", path, body)
		}
	}
	// The command API is wired: create a product, order it, cancel.
	email := fmt.Sprintf("smoke-%d@example.com", time.Now().UnixNano())
	product := post(t, base+"/admin/products", `{"name":"Laptop","price":1500.00,"stock":10}`, http.StatusCreated, "X-Admin-Secret", cfg.AdminSecret)
	order := post(t, base+"/orders", fmt.Sprintf(`{"user_email":%q,"items":[{"product_id":%q,"quantity":2}]}`, email, product["id"]), http.StatusCreated)
	if order["status"] != "reserved" {
		t.Fatalf("order: %v", order)
	}
	if c := post(t, base+"/orders/"+order["id"].(string)+"/cancel", "", http.StatusOK); c["status"] != "canceled" {
		t.Fatalf("cancel: %v", c)
	}
	// The query API answers from the read models once they have caught up.
	got := getWith(t, base+"/orders/"+order["id"].(string), "X-Min-Position", lastPosition)
	if got["status"] != "canceled" || got["total_amount"] != "3000.00" {
		t.Fatalf("GET order: %v", got)
	}

	// Metrics: counters at once, projection lag once the watcher has run.
	deadline := time.Now().Add(30 * time.Second)
	for {
		body := getEventually(t, base+"/metrics")
		if strings.Contains(body, "orders_total 1") && strings.Contains(body, "eventstore_append_duration_seconds_count") &&
			strings.Contains(body, `projection_lag_events{projection="orders"}`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics:\n%.3000s", body)
		}
		time.Sleep(100 * time.Millisecond) // polling /metrics against a deadline
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after shutdown", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop")
	}
}

func TestRefusesEventStoreDBUntilTheAdapterExists(t *testing.T) {
	cfg, err := config.Load([]string{"EVENTSTORE_URL=esdb://localhost:2113"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), cfg, slog.New(slog.DiscardHandler), ln)
	if err == nil || !strings.Contains(err.Error(), "EVENTSTORE_URL") {
		t.Fatalf("run with an EventStoreDB URL: %v", err)
	}
}

// lastPosition is the X-Event-Position of the last post.
var lastPosition string

func getWith(t *testing.T, url string, headers ...string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
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
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, raw)
	}
	return out
}

func post(t *testing.T, url, body string, want int, headers ...string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, raw)
	}
	if p := resp.Header.Get("X-Event-Position"); p != "" {
		lastPosition = p
	}
	return out
}

// getEventually GETs url until it answers 200 (the server may still be
// migrating), within a deadline.
func getEventually(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s did not answer 200 within 30s (last error %v)", url, err)
		}
		time.Sleep(20 * time.Millisecond) // retry interval while the server starts
	}
}
