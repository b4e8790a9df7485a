package httpx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/logging"
)

type observed struct {
	method, route string
	status        int
}

// Requests are observed by route pattern (never the raw path), with
// unknown methods as OTHER; a panic answers a 500 problem; every record
// logged under a request carries its id (and its correlation id), the
// access line what the handler added to the request's scope and its
// duration in milliseconds.
func TestObserveRecoverAndRequestIDs(t *testing.T) {
	var logs bytes.Buffer
	log := logging.New(&logs, slog.LevelDebug)
	var seen []observed
	r := chi.NewRouter()
	r.Use(httpx.RequestID, httpx.Observe(log, func(_ context.Context, method, route string, status int, _ time.Duration) {
		seen = append(seen, observed{method, route, status})
	}), httpx.Recover(log))
	r.Get("/orders/{id}", func(w http.ResponseWriter, req *http.Request) {
		logging.Add(req.Context(), "order_id", chi.URLParam(req, "id"))
		log.InfoContext(req.Context(), "handling")
		w.WriteHeader(http.StatusTeapot)
	})
	r.Get("/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	r.HandleFunc("/any", func(w http.ResponseWriter, _ *http.Request) {})

	do := func(method, path, requestID string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		if requestID != "" {
			req.Header.Set("X-Request-ID", requestID)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		return rec
	}
	do("GET", "/orders/7f0e", "req-1")
	do("FOO1", "/any", "")
	boom := do("GET", "/boom", "")
	do("GET", "/nowhere", "")

	want := []observed{{"GET", "/orders/{id}", 418}, {"OTHER", "unmatched", 405}, {"GET", "/boom", 500}, {"GET", "unmatched", 404}}
	if len(seen) != len(want) {
		t.Fatalf("observed %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("request %d observed as %v, want %v", i, seen[i], want[i])
		}
	}
	var problem map[string]any
	if err := json.Unmarshal(boom.Body.Bytes(), &problem); err != nil || boom.Code != 500 || problem["type"] != httpx.TypeInternal ||
		boom.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("panic answered %d %s", boom.Code, boom.Body)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["request_id"] == nil || rec["request_id"] == "" || rec["correlation_id"] != rec["request_id"] {
			t.Errorf("logged without a request id, or another correlation id: %s", line)
		}
		if rec["request_id"] == "req-1" && rec["order_id"] != "7f0e" {
			t.Errorf("a record of the request carries order %v, want 7f0e: %s", rec["order_id"], line)
		}
		if rec["msg"] == "handling" && rec["request_id"] != "req-1" {
			t.Errorf("the handler's record carries %v, want req-1", rec["request_id"])
		}
		if _, ok := rec["duration_ms"].(float64); rec["msg"] == "request" && (!ok || rec["duration"] != nil) {
			t.Errorf("an access line without duration_ms: %s", line)
		}
	}
}
