package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// parseLoad parses load's flags, without running a load.
func parseLoad(args ...string) (loadConfig, error) { return parseLoadFlags(args, io.Discard) }

func TestLoadFlags(t *testing.T) {
	c, err := parseLoad()
	if err != nil {
		t.Fatal(err)
	}
	if !c.closed() || c.conns != 64 || !slices.Equal(c.metrics, []string{"http://localhost:8000/metrics"}) {
		t.Errorf("defaults: closed %v, conns %d, metrics %v; want closed loop, 64, the server's /metrics", c.closed(), c.conns, c.metrics)
	}
	c, err = parseLoad("-rate", "300", "-url", "http://127.0.0.1:8771/", "-metrics", "http://a:1/metrics, http://b:2/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if c.closed() || c.base != "http://127.0.0.1:8771" || !slices.Equal(c.metrics, []string{"http://a:1/metrics", "http://b:2/metrics"}) {
		t.Errorf("-rate 300: closed %v, base %q, metrics %v", c.closed(), c.base, c.metrics)
	}

	for _, args := range [][]string{
		{"-rate", "300", "-conns", "8"}, // two modes
		{"-rate", "-1"},
		{"-conns", "0"},
		{"-products", "0"},
		{"-duration", "0s"},
		{"-settle", "-1s"},
		{"-timeout", "0s"},
		{"-url", "localhost:8000"},
		{"-metrics", "ftp://x/metrics"},
		{"-metrics", " , "},
		{"-metrics", "http://a:1/metrics,http://a:1/metrics"},
		{"extra"},
	} {
		if _, err := parseLoad(args...); err == nil {
			t.Errorf("%v: no error", args)
		} else if errors.Is(err, flag.ErrHelp) || strings.Contains(err.Error(), "flag provided but not defined") {
			t.Errorf("%v: %v, want check's error", args, err)
		}
	}
}

func TestRecorder(t *testing.T) {
	r := newRecorder()
	r.record(http.StatusCreated, 3*time.Millisecond, "10/10", "")
	r.record(http.StatusCreated, 5*time.Millisecond, "12/11", "")
	r.record(http.StatusCreated, 4*time.Millisecond, "11/20", "") // before 12/11: commit first
	r.record(http.StatusCreated, 4*time.Millisecond, "", "")      // no position: placed all the same
	r.record(http.StatusServiceUnavailable, 9*time.Millisecond, "", "503 Service Unavailable")
	r.record(http.StatusUnprocessableEntity, time.Millisecond, "", "")
	r.record(0, 0, "", "connection refused")
	if got := r.placed.Load(); got != 4 {
		t.Errorf("placed %d, want 4", got)
	}
	if got := r.failed.Load(); got != 1 {
		t.Errorf("failed %d, want 1", got)
	}
	if len(r.latencies) != 6 {
		t.Errorf("%d latencies, want 6 (every answer, none for no answer)", len(r.latencies))
	}
	if !r.hasPos || r.maxPos.String() != "12/11" {
		t.Errorf("max position %v (%v), want 12/11", r.maxPos, r.hasPos)
	}
	if got, want := r.otherCodes(), ", 1 × 422, 1 × 503"; got != want {
		t.Errorf("otherCodes %q, want %q", got, want)
	}
	if got := r.lastError(); !strings.Contains(got, "connection refused") {
		t.Errorf("lastError %q", got)
	}
}

func TestOrderRequest(t *testing.T) {
	ids := []string{"p1", "p2", "p3"}
	b1, h1 := orderRequest("run", 1, ids)
	b2, h2 := orderRequest("run", 2, ids)
	if h1.Get("Idempotency-Key") == h2.Get("Idempotency-Key") || h1.Get("Idempotency-Key") == "" {
		t.Errorf("keys %q and %q: want two different keys", h1.Get("Idempotency-Key"), h2.Get("Idempotency-Key"))
	}
	if !strings.Contains(string(b1), `"user_email":"load-run-1@example.com"`) || !strings.Contains(string(b2), `"load-run-2@example.com"`) {
		t.Errorf("bodies %s and %s: want a customer each", b1, b2)
	}
	if !strings.Contains(string(b1), `"quantity":1}`) {
		t.Errorf("body %s: want quantity 1", b1)
	}
}

// A password in a -metrics URL never reaches the output, even in an error.
func TestMetricsErrorsMaskPasswords(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("not metrics {"))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("admin", "hunter2")
	_, err := scrapeTerminal(context.Background(), srv.Client(), []string{u.String()})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v: want one, without the password", err)
	}
	if got := redactedAll([]string{u.String()}); strings.Contains(got, "hunter2") {
		t.Fatalf("printed %q", got)
	}
}
