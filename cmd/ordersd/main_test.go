package main

import (
	"context"
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
