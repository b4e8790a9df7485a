package provider_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/provider"
)

// switchable is a provider that hangs (until the caller gives up), answers
// 404, or answers a payment, as the test sets it; it counts the requests
// that reach it.
type switchable struct {
	mode     atomic.Value // "hang", "404" or "ok"
	requests atomic.Int64
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	// Read the request first: only then does the server notice a client
	// that gives up (and end r's context).
	_, _ = io.Copy(io.Discard, r.Body)
	switch s.mode.Load() {
	case "hang":
		<-r.Context().Done()
	case "404":
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"title":"Not Found"}`))
	default:
		_, _ = w.Write([]byte(`{"payment_id":"pay_1","status":"pending"}`))
	}
}

// The breaker opens after Failures calls in a row without an answer: the
// calls after it fail at once, as payment.ErrUnavailable (the outcome
// the process manager retries), without reaching the provider. After
// OpenFor one call tries again, and an answer closes it. A refusal or a
// 404 is an answer: it does not count as a failure.
func TestBreakerStopsCallingAHangingProvider(t *testing.T) {
	t.Parallel()
	srv := &switchable{}
	srv.mode.Store("hang")
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	var (
		mu      sync.Mutex
		changes []string
	)
	client := provider.NewWithOptions(hs.URL, nil, provider.Options{
		CallTimeout: 100 * time.Millisecond,
		Breaker: provider.BreakerOptions{Failures: 2, OpenFor: 300 * time.Millisecond, OnChange: func(from, to string) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, from+"→"+to)
		}},
	})
	req := payment.Request{OrderID: uuid.New(), Amount: 100, Currency: "USD", CallbackURL: "http://x"}
	ctx := context.Background()
	for i := range 2 {
		start := time.Now()
		_, err := client.InitiatePayment(ctx, req, req.OrderID.String())
		if !errors.Is(err, payment.ErrUnavailable) || errors.Is(err, provider.ErrBreakerOpen) {
			t.Fatalf("call %d to a hanging provider: %v", i+1, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("call %d took %s, want about the call timeout (100ms)", i+1, took)
		}
	}
	start := time.Now()
	_, err := client.PaymentByOrder(ctx, req.OrderID)
	if !errors.Is(err, provider.ErrBreakerOpen) || !errors.Is(err, payment.ErrUnavailable) {
		t.Fatalf("call with the breaker open: %v", err)
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Fatalf("a call with the breaker open took %s", took)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("%d requests reached the provider, want 2", n)
	}

	// The provider is back: once OpenFor has passed, a call gets through
	// and closes the breaker.
	srv.mode.Store("ok")
	eventually.True(t, "a call to get through", func() bool {
		_, err := client.InitiatePayment(ctx, req, req.OrderID.String())
		return err == nil
	})
	// A 404 is an answer, not an outage: the breaker stays closed.
	srv.mode.Store("404")
	for range 5 {
		if _, err := client.PaymentByOrder(ctx, req.OrderID); !errors.Is(err, payment.ErrNotFound) {
			t.Fatalf("lookup of an unknown payment: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"closed→open", "open→half-open", "half-open→closed"}; len(changes) != 3 || changes[0] != want[0] || changes[1] != want[1] || changes[2] != want[2] {
		t.Fatalf("state changes %v, want %v", changes, want)
	}
}

// A call whose caller gave up is not the provider's failure.
func TestBreakerIgnoresCallersThatGaveUp(t *testing.T) {
	t.Parallel()
	srv := &switchable{}
	srv.mode.Store("hang")
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	client := provider.NewWithOptions(hs.URL, nil, provider.Options{CallTimeout: time.Minute, Breaker: provider.BreakerOptions{Failures: 1}})
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := client.Payment(ctx, "pay_1")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, provider.ErrBreakerOpen) {
			t.Fatalf("call whose caller gave up: %v", err)
		}
	}
	if n := srv.requests.Load(); n != 3 {
		t.Fatalf("%d requests reached the provider, want 3 (the breaker stays closed)", n)
	}
}
