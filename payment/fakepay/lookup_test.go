package fakepay_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
	"github.com/orders-reference/orders/payment/provider"
)

// A payment's identity is its business request: the same key with another
// callback URL is the same payment, and its webhook goes to the newest
// URL; another amount or currency is a conflict (409).
func TestFingerprintIsTheBusinessRequest(t *testing.T) {
	p, client, rc, hooks := setup(t, fakepay.Options{SuccessRate: 1, Delay: 50 * time.Millisecond}, 0)
	ctx := context.Background()
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable) // an instance that is gone
	}))
	t.Cleanup(dead.Close)
	req := request(dead.URL)
	key := req.OrderID.String()
	first, err := client.InitiatePayment(ctx, req, key)
	if err != nil {
		t.Fatal(err)
	}
	moved := req
	moved.CallbackURL = hooks
	again, err := client.InitiatePayment(ctx, moved, key)
	if err != nil || again.ID != first.ID {
		t.Fatalf("same business request, another callback URL: %+v %v, want payment %s", again, err, first.ID)
	}
	for name, change := range map[string]func(*payment.Request){
		"amount":   func(r *payment.Request) { r.Amount++ },
		"currency": func(r *payment.Request) { r.Currency = "EUR" },
	} {
		other := req
		change(&other)
		_, err := client.InitiatePayment(ctx, other, key)
		if !errors.Is(err, payment.ErrConflict) || !errors.Is(err, payment.ErrRefused) {
			t.Fatalf("same key, another %s: %v, want a conflict", name, err)
		}
		_, err = p.InitiatePayment(ctx, other, key)
		if !errors.Is(err, fakepay.ErrIdempotencyConflict) {
			t.Fatalf("in process, same key, another %s: %v", name, err)
		}
	}
	got := rc.wait(t, 1)
	if got[0].outcome.PaymentID != first.ID {
		t.Fatalf("webhook %+v", got[0])
	}
	if n := len(p.Payments()); n != 1 {
		t.Fatalf("%d payments, want 1", n)
	}
}

// The lookups answer a payment's current state, in process and over HTTP
// by id, order and key: pending until decided, then succeeded (even if no
// webhook got through) or failed, refunded once refunded; unknown is
// payment.ErrNotFound (404).
func TestLookup(t *testing.T) {
	p, client, _, _ := setup(t, fakepay.Options{SuccessRate: 1, Delay: time.Hour}, 0)
	ctx := context.Background()
	nowhere := httptest.NewServer(http.NotFoundHandler())
	nowhere.Close() // deliveries fail: the state must not depend on them
	req := request(nowhere.URL)
	pay, err := client.InitiatePayment(ctx, req, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	lookups := map[string]func() (payment.Payment, error){
		"client by id":      func() (payment.Payment, error) { return client.Payment(ctx, pay.ID) },
		"client by order":   func() (payment.Payment, error) { return client.PaymentByOrder(ctx, req.OrderID) },
		"client by key":     func() (payment.Payment, error) { return client.PaymentByKey(ctx, "key-1") },
		"in process by id":  func() (payment.Payment, error) { return p.Payment(ctx, pay.ID) },
		"in process order":  func() (payment.Payment, error) { return p.PaymentByOrder(ctx, req.OrderID) },
		"in process by key": func() (payment.Payment, error) { return p.PaymentByKey(ctx, "key-1") },
	}
	check := func(status, refundID string) {
		t.Helper()
		for name, look := range lookups {
			got, err := look()
			want := payment.Payment{ID: pay.ID, Status: status, OrderID: req.OrderID, Amount: req.Amount, Currency: req.Currency, RefundID: refundID}
			if err != nil || got != want {
				t.Fatalf("%s: %+v %v, want %+v", name, got, err, want)
			}
		}
	}
	check(payment.StatusPending, "")
	r, err := client.Refund(ctx, pay.ID, "r")
	if err != nil {
		t.Fatal(err)
	}
	check(payment.StatusRefunded, r.ID)

	// Decided after its delay, whether or not the webhook is delivered.
	quick, qclient, _, _ := setup(t, fakepay.Options{SuccessRate: 0, Delay: time.Millisecond, MaxAttempts: 1}, 0)
	failed := request(nowhere.URL)
	fp, err := qclient.InitiatePayment(ctx, failed, failed.OrderID.String())
	if err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "the payment to be decided", func() bool {
		got, err := quick.PaymentByOrder(ctx, failed.OrderID)
		return err == nil && got.Status == payment.StatusFailed && got.ID == fp.ID
	})
	if got, err := qclient.PaymentByKey(ctx, failed.OrderID.String()); err != nil || got.Status != payment.StatusFailed {
		t.Fatalf("over HTTP: %+v %v", got, err)
	}

	unknown := request(nowhere.URL)
	for name, err := range map[string]error{
		"client by id":     func() error { _, err := client.Payment(ctx, "pay_nope"); return err }(),
		"client by order":  func() error { _, err := client.PaymentByOrder(ctx, unknown.OrderID); return err }(),
		"client by key":    func() error { _, err := client.PaymentByKey(ctx, "nope"); return err }(),
		"in process order": func() error { _, err := p.PaymentByOrder(ctx, unknown.OrderID); return err }(),
	} {
		if !errors.Is(err, payment.ErrNotFound) {
			t.Fatalf("%s of an unknown payment: %v", name, err)
		}
	}
}

// GET /payments names its payment or is refused; problems are JSON.
func TestLookupHTTP(t *testing.T) {
	signer := mustSigner(t)
	p := fakepay.New(fakepay.Options{Signer: signer, Delay: time.Hour})
	t.Cleanup(p.Close)
	api := httptest.NewServer(p.Handler())
	t.Cleanup(api.Close)
	req := request("http://127.0.0.1:1/hooks")
	pay, err := p.InitiatePayment(context.Background(), req, "the-key")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, header string
		status       int
	}{
		{"/payments?order_id=" + req.OrderID.String(), "", http.StatusOK},
		{"/payments?idempotency_key=the-key", "", http.StatusOK},
		{"/payments", "the-key", http.StatusOK},
		{"/payments/" + pay.ID, "", http.StatusOK},
		{"/payments", "", http.StatusBadRequest},
		{"/payments?order_id=not-a-uuid", "", http.StatusBadRequest},
		{"/payments?idempotency_key=other", "", http.StatusNotFound},
		{"/payments/pay_unknown", "", http.StatusNotFound},
	} {
		r, _ := http.NewRequest(http.MethodGet, api.URL+c.path, nil)
		if c.header != "" {
			r.Header.Set("Idempotency-Key", c.header)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ct := resp.Header.Get("Content-Type")
		if resp.StatusCode != c.status || (c.status != http.StatusOK && ct != "application/problem+json") {
			t.Errorf("GET %s (key %q): %d %s, want %d", c.path, c.header, resp.StatusCode, ct, c.status)
		}
	}
	got, err := provider.New(api.URL, nil).PaymentByOrder(context.Background(), req.OrderID)
	if err != nil || got.ID != pay.ID || got.Status != payment.StatusPending {
		t.Fatalf("client: %+v %v", got, err)
	}
}
