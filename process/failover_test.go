package process_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/httpapi"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
	"github.com/orders-reference/orders/payment/provider"
	"github.com/orders-reference/orders/process"
)

const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// The failover of issue 12: two process managers, each with its own
// callback URL, share one fake provider over HTTP through the real client.
// The first sends every payment request; the provider takes each one, and
// the first is killed before any answer reaches it (it never comes back,
// nor does its webhook endpoint). The second takes over with a payment
// timeout shorter than some payments take to be decided. Every order ends
// paid or canceled, one payment each; every payment that succeeded is the
// payment of a paid order or refunded; nothing is parked.
func TestFailoverWithPerInstanceCallbacks(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	signer, err := payment.NewSigner(webhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := payment.NewVerifier([]string{webhookSecret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fake := fakepay.New(fakepay.Options{
		SuccessRate: 0.7, Delay: 200 * time.Millisecond, Jitter: 2 * time.Second, Signer: signer,
		RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, Seed: 12,
	})
	t.Cleanup(fake.Close)
	api := httptest.NewServer(fake.Handler())
	t.Cleanup(api.Close)

	// The first instance's way to the provider: its payment requests are
	// taken, and their answers never come back.
	const n = 12
	taken := make(chan struct{}, n)
	lost := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/payments" {
			fake.Handler().ServeHTTP(httptest.NewRecorder(), r)
			taken <- struct{}{}
			<-r.Context().Done() // killed mid-call
			return
		}
		fake.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(lost.Close)
	webhooks := func() *httptest.Server {
		r := chi.NewRouter()
		httpapi.New(httpapi.Config{Commands: h.svc, Webhooks: verifier}).MountCommands(r)
		srv := httptest.NewServer(r)
		t.Cleanup(srv.Close)
		return srv
	}
	hooksB := webhooks()
	// The first instance hangs mid-call: its own webhook endpoint (the same
	// process) answers nothing useful either, so an outcome delivered there
	// early is not recorded and the provider keeps retrying it.
	hooksA := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(hooksA.Close)

	var (
		mu     sync.Mutex
		parked int
	)
	opts := func(callback string) process.Options {
		return process.Options{
			CallbackURL: callback + "/webhooks/payment", PaymentTimeout: 1500 * time.Millisecond, ReconcileAfter: time.Second,
			Backoff: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond},
			Poll:    20 * time.Millisecond, LeaderPoll: 50 * time.Millisecond,
			OnStep: func(kind, outcome string) {
				if outcome == process.OutcomeParked {
					mu.Lock()
					parked++
					mu.Unlock()
				}
			},
		}
	}
	run := func(m *process.Manager) (kill func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		var once sync.Once
		kill = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("manager: %v", err)
				}
			})
		}
		t.Cleanup(kill)
		return kill
	}

	killA := run(process.New(h.pool, h.store, h.svc, provider.New(lost.URL, nil), opts(hooksA.URL)))
	product := h.product(t, 100)
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = h.place(t, product, 1)
	}
	for i := range n {
		select {
		case <-taken:
		case <-time.After(eventually.Deadline):
			t.Fatalf("%d of %d payment requests reached the provider", i, n)
		}
	}
	killA()
	hooksA.Close() // the instance is gone, its webhook endpoint too
	for _, id := range ids {
		if v := h.order(t, id); v.Status != order.StatusReserved {
			t.Fatalf("order %s is %s before the takeover, want reserved (the first instance recorded nothing)", id, v.Status)
		}
	}

	run(process.New(h.pool, h.store, h.svc, provider.New(api.URL, nil), opts(hooksB.URL)))

	byOrder := func() map[uuid.UUID][]fakepay.Payment {
		out := map[uuid.UUID][]fakepay.Payment{}
		for _, p := range fake.Payments() {
			out[p.Request.OrderID] = append(out[p.Request.OrderID], p)
		}
		return out
	}
	var paid, failed, refunded int
	eventually.True(t, "every order to end paid, or canceled with any captured payment refunded", func() bool {
		paid, failed, refunded = 0, 0, 0
		payments := byOrder()
		for _, id := range ids {
			v := h.order(t, id)
			ps := payments[id]
			if len(ps) != 1 {
				t.Fatalf("order %s has %d payments at the provider", id, len(ps))
			}
			p := ps[0]
			switch {
			case p.Status == payment.StatusPending || !v.Status.Terminal():
				return false
			case p.Outcome == payment.StatusSuccess && v.Status == order.StatusPaid:
				if v.PaymentID != p.ID {
					t.Fatalf("order %s paid with %s, the provider's payment is %s", id, v.PaymentID, p.ID)
				}
				paid++
			case p.Outcome == payment.StatusSuccess:
				if v.RefundID == "" || p.Status != payment.StatusRefunded {
					return false // the success after the timeout is on its way to a refund
				}
				refunded++
			case v.Status == order.StatusCanceled:
				failed++
			default:
				t.Fatalf("order %s is %s, its payment %s failed", id, v.Status, p.ID)
			}
		}
		return true
	})
	eventually.True(t, "the work list to empty", func() bool { return h.tasks(t) == 0 })
	mu.Lock()
	defer mu.Unlock()
	letters, err := process.DeadLetters(context.Background(), h.pool, 100)
	if err != nil || len(letters) != 0 || parked != 0 {
		t.Fatalf("parked %d steps, dead letters %v %v", parked, letters, err)
	}
	st := h.stock(t, product)
	if st.Reserved != 0 || st.Available != int64(100-paid) {
		t.Fatalf("stock: available %d, reserved %d, with %d orders paid", st.Available, st.Reserved, paid)
	}
	t.Logf("%d paid, %d failed, %d canceled by the timeout and refunded", paid, failed, refunded)
}
