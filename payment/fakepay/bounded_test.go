package fakepay_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
)

// Webhook deliveries run concurrently, at most MaxDeliveries at once.
func TestDeliveriesAreConcurrentAndBounded(t *testing.T) {
	var (
		mu                  sync.Mutex
		inFlight, most, got int
	)
	release := make(chan struct{})
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		got++
		mu.Unlock()
	}))
	t.Cleanup(hooks.Close)
	signer, err := payment.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	p := fakepay.New(fakepay.Options{SuccessRate: 1, Signer: signer, MaxDeliveries: 3})
	t.Cleanup(p.Close)
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open) // runs before p.Close, so a failed test does not hang

	for range 10 {
		req := request(hooks.URL)
		if _, err := p.InitiatePayment(context.Background(), req, req.OrderID.String()); err != nil {
			t.Fatal(err)
		}
	}
	eventually.True(t, "three deliveries in flight at once", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return inFlight == 3
	})
	open()
	eventually.True(t, "every webhook delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got == 10
	})
	if most != 3 {
		t.Fatalf("%d deliveries in flight at most, want 3", most)
	}
}
