package process_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/process"
)

// PaymentByOrder answers what the stub holds: the order's payment, pending
// (the tests report outcomes through the harness, not the stub) or
// refunded; nothing while it is down.
func (s *stubProvider) PaymentByOrder(_ context.Context, orderID uuid.UUID) (payment.Payment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return payment.Payment{}, fmt.Errorf("%w: injected outage", payment.ErrUnavailable)
	}
	id, ok := s.byKey[orderID.String()]
	if !ok {
		return payment.Payment{}, fmt.Errorf("%w: order %s", payment.ErrNotFound, orderID)
	}
	p := payment.Payment{ID: id, Status: payment.StatusPending, OrderID: orderID}
	if r, ok := s.refunds[id]; ok {
		p.Status, p.RefundID = payment.StatusRefunded, r
	}
	return p, nil
}

// scripted is a provider whose payments' states the test sets. It can
// lose the answer to a request it took, refuse a repeated request as a
// conflict (as a provider that fingerprints the callback URL did), and be
// unable to answer lookups.
type scripted struct {
	mu          sync.Mutex
	payments    map[uuid.UUID]*payment.Payment // by order
	loseAnswer  bool
	conflict    bool
	lookupDown  bool
	unreachable map[uuid.UUID]bool // orders whose lookups fail
	initiations int
}

func (s *scripted) InitiatePayment(_ context.Context, req payment.Request, _ string) (payment.Payment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initiations++
	if p, ok := s.payments[req.OrderID]; ok {
		if s.conflict {
			return payment.Payment{}, fmt.Errorf("%w: callback URL differs", payment.ErrConflict)
		}
		return payment.Payment{ID: p.ID, Status: payment.StatusPending}, nil
	}
	p := &payment.Payment{ID: "pay_" + uuid.NewString(), Status: payment.StatusPending, OrderID: req.OrderID, Amount: req.Amount, Currency: req.Currency}
	s.payments[req.OrderID] = p
	if s.loseAnswer {
		return payment.Payment{}, fmt.Errorf("%w: answer lost", payment.ErrUnavailable)
	}
	return payment.Payment{ID: p.ID, Status: payment.StatusPending}, nil
}

func (s *scripted) PaymentByOrder(_ context.Context, orderID uuid.UUID) (payment.Payment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lookupDown || s.unreachable[orderID] {
		return payment.Payment{}, fmt.Errorf("%w: lookups down", payment.ErrUnavailable)
	}
	p, ok := s.payments[orderID]
	if !ok {
		return payment.Payment{}, fmt.Errorf("%w: %s", payment.ErrNotFound, orderID)
	}
	return *p, nil
}

func (s *scripted) Refund(_ context.Context, paymentID, _ string) (payment.Refund, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.payments {
		if p.ID == paymentID {
			if p.RefundID == "" {
				p.Status, p.RefundID = payment.StatusRefunded, "re_"+uuid.NewString()
			}
			return payment.Refund{ID: p.RefundID, PaymentID: p.ID, Status: payment.StatusRefunded}, nil
		}
	}
	return payment.Refund{}, fmt.Errorf("%w: %s", payment.ErrNotFound, paymentID)
}

func (s *scripted) set(orderID uuid.UUID, f func(*scripted, *payment.Payment)) payment.Payment {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.payments[orderID]
	f(s, p)
	if p == nil {
		return payment.Payment{}
	}
	return *p
}

// startScripted runs a manager paying through s on the harness's clock.
func (h *harness) startScripted(t *testing.T, s *scripted) {
	t.Helper()
	m := process.New(h.pool, h.store, h.svc, s, process.Options{
		CallbackURL: "http://orders.test/webhooks/payment", Now: h.clock.Now,
		Poll: 20 * time.Millisecond, LeaderPoll: 50 * time.Millisecond,
		OnStep: func(kind, outcome string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.steps[kind+"/"+outcome]++
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

func (h *harness) step(kind, outcome string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.steps[kind+"/"+outcome]
}

// An initiation whose answer was lost, then refused as a conflict while
// the provider could not be asked, is reconciled: the payment is recorded
// (with its outcome once decided), never parked; the real webhook of the
// same outcome decides nothing more.
func TestInitiationReconciled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := &scripted{payments: map[uuid.UUID]*payment.Payment{}, loseAnswer: true, conflict: true, lookupDown: true}
	p := h.product(t, 10)
	pending := h.place(t, p, 1)
	h.startScripted(t, s)
	eventually.True(t, "the first attempt to fail unreconciled", func() bool { return h.step(process.KindInitiatePayment, process.OutcomeRetry) == 1 })
	s.set(pending, func(s *scripted, _ *payment.Payment) { s.lookupDown = false })
	h.clock.Advance(time.Second) // the retry: 409, then the lookup
	v := h.waitStatus(t, pending, order.StatusPaymentPending)
	if pay := s.set(pending, func(*scripted, *payment.Payment) {}); v.PaymentID != pay.ID {
		t.Fatalf("recorded payment %q, the provider's is %s", v.PaymentID, pay.ID)
	}

	// Decided at the provider before the request is first recorded.
	decided := h.place(t, p, 1)
	eventually.True(t, "its payment to be taken", func() bool {
		return s.set(decided, func(*scripted, *payment.Payment) {}).ID != ""
	})
	// (Its first lookup may come before or after this: either way the
	// outcome is recorded, by the initiation or by the timeout.)
	s.set(decided, func(_ *scripted, p *payment.Payment) { p.Status = payment.StatusSucceeded })
	failed := h.place(t, p, 1)
	eventually.True(t, "its payment to be taken", func() bool {
		return s.set(failed, func(*scripted, *payment.Payment) {}).ID != ""
	})
	s.set(failed, func(_ *scripted, p *payment.Payment) { p.Status = payment.StatusFailed })
	h.clock.Advance(time.Hour) // the timeouts: they find the outcomes
	paid := h.waitStatus(t, decided, order.StatusPaid)
	if got := h.waitStatus(t, failed, order.StatusCanceled); got.CancelReason != "payment_failed" {
		t.Fatalf("failed payment: canceled as %q", got.CancelReason)
	}
	if _, err := h.svc.RecordPayment(context.Background(), decided, order.PaymentOutcome{
		WebhookID: "msg_late", PaymentID: paid.PaymentID, Succeeded: true, Amount: money.Amount(paid.Total),
	}, eventstore.Metadata{Actor: events.ActorProvider}); err != nil {
		t.Fatal(err)
	}
	if again := h.order(t, decided); again.Version != paid.Version {
		t.Fatalf("the real webhook after the reconciled outcome appended events (version %d → %d)", paid.Version, again.Version)
	}
	if n := h.step(process.KindInitiatePayment, process.OutcomeParked); n != 0 {
		t.Fatalf("%d initiations parked", n)
	}
}

// payment_timeout reconciles first: a succeeded payment is paid, not
// canceled; a pending one is canceled, its request sent again, and when it
// succeeds after all, the refund path returns the money; while the
// provider cannot be asked the timeout waits for its retries, then
// cancels.
func TestTimeoutReconciles(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := &scripted{payments: map[uuid.UUID]*payment.Payment{}, unreachable: map[uuid.UUID]bool{}}
	p := h.product(t, 10)
	succeeded, pending, unknown := h.place(t, p, 1), h.place(t, p, 1), h.place(t, p, 1)
	h.startScripted(t, s)
	for _, id := range []uuid.UUID{succeeded, pending, unknown} {
		h.waitStatus(t, id, order.StatusPaymentPending)
	}
	s.set(succeeded, func(_ *scripted, p *payment.Payment) { p.Status = payment.StatusSucceeded })
	s.set(unknown, func(s *scripted, _ *payment.Payment) { s.unreachable[pending], s.unreachable[unknown] = true, true })
	h.clock.Advance(15*time.Minute + time.Second)
	h.waitStatus(t, succeeded, order.StatusPaid)
	// The lookups fail for both others: each waits for its retries.
	eventually.True(t, "the timeouts to wait for the provider", func() bool {
		return h.step(process.KindPaymentTimeout, process.OutcomeRetry) >= 2
	})
	if v := h.order(t, pending); v.Status != order.StatusPaymentPending {
		t.Fatalf("canceled without reconciliation: %s", v.Status)
	}
	s.set(pending, func(s *scripted, _ *payment.Payment) { s.unreachable[pending] = false })
	h.clock.Advance(time.Second)
	v := h.waitStatus(t, pending, order.StatusCanceled)
	if v.CancelReason != "payment_timeout" {
		t.Fatalf("cancel reason %q", v.CancelReason)
	}
	s.mu.Lock()
	if s.initiations != 4 { // three requests, one sent again before canceling the pending one
		t.Errorf("%d payment requests, want 4", s.initiations)
	}
	s.mu.Unlock()
	// The unknown one: after every retry of the timeout, canceled.
	eventually.True(t, "the unknown order to be canceled after its retries", func() bool {
		h.clock.Advance(16 * time.Second)
		return h.order(t, unknown).Status == order.StatusCanceled
	})

	// The pending payment succeeds after all; its webhook asks for a
	// refund, which the refund step makes and records.
	pay := s.set(pending, func(_ *scripted, p *payment.Payment) { p.Status = payment.StatusSucceeded })
	if _, err := h.svc.RecordPayment(context.Background(), pending, order.PaymentOutcome{
		WebhookID: "msg_after", PaymentID: pay.ID, Succeeded: true, Amount: pay.Amount,
	}, eventstore.Metadata{Actor: events.ActorProvider}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "the late success to be refunded", func() bool {
		v := h.order(t, pending)
		return v.RefundID != "" && s.set(pending, func(*scripted, *payment.Payment) {}).Status == payment.StatusRefunded
	})
	eventually.True(t, "the stock of the canceled orders to be back", func() bool {
		st := h.stock(t, p)
		return st.Reserved == 0 && st.Available == 9
	})
}
