package provider_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
	"github.com/orders-reference/orders/payment/provider"
)

// countConns serves h and counts the TCP connections its clients open.
func countConns(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

func fake(t *testing.T) *fakepay.Provider {
	t.Helper()
	signer, err := payment.NewSigner("a-test-secret")
	if err != nil {
		t.Fatal(err)
	}
	p := fakepay.New(fakepay.Options{SuccessRate: 1, Delay: time.Hour, Signer: signer})
	t.Cleanup(p.Close)
	return p
}

// Calls reuse connections: 200 payment requests and 200 lookups from 8
// goroutines open about 8 connections (a Transport that keeps 2 idle per
// host opens dozens).
func TestConnectionsAreReused(t *testing.T) {
	srv, conns := countConns(t, fake(t).Handler())
	client := provider.New(srv.URL, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				req := payment.Request{OrderID: uuid.New(), Amount: 1000, Currency: "USD", CallbackURL: "http://127.0.0.1:1/hooks"}
				pay, err := client.InitiatePayment(ctx, req, req.OrderID.String())
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := client.PaymentByOrder(ctx, req.OrderID); err != nil || got.ID != pay.ID {
					t.Errorf("lookup %+v %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	// At most one per goroutine, give or take a dial raced by a connection
	// coming back idle; without reuse it is one per call beyond two idle.
	if n := conns.Load(); n > 16 {
		t.Fatalf("%d connections for 400 calls from 8 goroutines", n)
	}
}

// A provider that does not answer is given up on after the call timeout
// (as a payment.ErrUnavailable: the outcome is unknown), and so is one
// that cannot be reached; the caller's context ends a call sooner.
func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	client := provider.NewWithOptions(hang.URL, nil, provider.Options{CallTimeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := client.InitiatePayment(context.Background(), payment.Request{OrderID: uuid.New(), Amount: 1, Currency: "USD", CallbackURL: "http://x"}, "k")
	if !errors.Is(err, payment.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hanging provider: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %s, want about 100ms", d)
	}

	headers := provider.NewWithOptions(hang.URL, nil, provider.Options{ResponseHeaderTimeout: 50 * time.Millisecond})
	if _, err := headers.PaymentByOrder(context.Background(), uuid.New()); !errors.Is(err, payment.ErrUnavailable) {
		t.Fatalf("no headers: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := provider.New(hang.URL, nil).Payment(ctx, "pay_1"); !errors.Is(err, payment.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller's deadline: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := provider.New("http://"+addr, nil).Payment(context.Background(), "pay_1"); !errors.Is(err, payment.ErrUnavailable) {
		t.Fatalf("nobody listening: %v", err)
	}
}

// Answers map to the errors callers branch on.
func TestStatusMapping(t *testing.T) {
	for _, c := range []struct {
		status int
		want   error
	}{
		{http.StatusNotFound, payment.ErrNotFound},
		{http.StatusConflict, payment.ErrConflict},
		{http.StatusUnprocessableEntity, payment.ErrRefused},
		{http.StatusTooManyRequests, payment.ErrUnavailable},
		{http.StatusInternalServerError, payment.ErrUnavailable},
		{http.StatusBadGateway, payment.ErrUnavailable},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(c.status)
			_, _ = w.Write([]byte(`{"title":"no"}`))
		}))
		_, err := provider.New(srv.URL, nil).InitiatePayment(context.Background(), payment.Request{OrderID: uuid.New(), Amount: 1, Currency: "USD", CallbackURL: "http://x"}, "k")
		srv.Close()
		if !errors.Is(err, c.want) {
			t.Errorf("%d: %v, want %v", c.status, err, c.want)
		}
		if c.want == payment.ErrConflict && !errors.Is(err, payment.ErrRefused) {
			t.Errorf("a conflict is not a refusal: %v", err)
		}
	}
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"pending"}`))
	}))
	defer ok.Close()
	if _, err := provider.New(ok.URL, nil).Payment(context.Background(), "pay_1"); !errors.Is(err, payment.ErrUnavailable) {
		t.Fatalf("an answer without payment_id: %v", err)
	}
	// An id the service could not store, show or put in a URL
	// (payment.IDProblem) is no answer either, from an initiation, a
	// lookup or a refund.
	for _, id := range []string{"pay_\u202e1", "pay_/../x", "pay 1", "pay_\u200b"} {
		bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"payment_id":"` + id + `","refund_id":"` + id + `","status":"pending"}`))
		}))
		c := provider.New(bad.URL, nil)
		_, initiated := c.InitiatePayment(context.Background(), payment.Request{OrderID: uuid.New(), Amount: 1, Currency: "USD", CallbackURL: "http://x"}, "k")
		_, looked := c.PaymentByOrder(context.Background(), uuid.New())
		_, refunded := c.Refund(context.Background(), "pay_1", "k")
		bad.Close()
		if !errors.Is(initiated, payment.ErrUnavailable) || !errors.Is(looked, payment.ErrUnavailable) || !errors.Is(refunded, payment.ErrUnavailable) {
			t.Errorf("id %q: initiation %v, lookup %v, refund %v; want each unavailable", id, initiated, looked, refunded)
		}
	}
}
