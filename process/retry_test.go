package process_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/internal/eventstores/eventstorestest"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/process"
)

// The process manager's retry paths, on every event store: a step's
// append commits but its answer is lost, so the step fails with its
// outcome unknown; the step runs again after its backoff, finds its work
// done, and the saga ends as it would have, with every event stored once,
// the stock counted once and nothing parked.
func TestStepsRerunAfterLostAnswers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// lost is the type of the event whose append loses its answer.
		lost string
		// step is the step that runs again.
		step string
		// run drives the saga past the lost answer, with the manager
		// started, and returns the order and its product.
		run func(t *testing.T, h *harness, p uuid.UUID) uuid.UUID
		// order and product are the streams' event types afterwards;
		// available and reserved the product's stock (of 10); waiting the
		// steps still to come (a payment's timeout).
		order, product      []string
		available, reserved int64
		waiting             int
		// dropped: the step's retry may not run at all, dropped by the
		// scheduler once it sees the order end (by the step's own lost
		// append); the rest of the saga makes up for it.
		dropped bool
	}{
		{
			name: "initiate_payment", lost: events.TypeOrderPaymentRequested, step: process.KindInitiatePayment,
			run: func(t *testing.T, h *harness, p uuid.UUID) uuid.UUID {
				id := h.place(t, p, 2)
				h.waitTicking(t, "the payment to be requested", func() bool { return h.order(t, id).Status == order.StatusPaymentPending })
				return id
			},
			order:     []string{events.TypeOrderPlaced, events.TypeOrderReserved, events.TypeOrderPaymentRequested},
			product:   []string{events.TypeProductCreated, events.TypeProductStockReserved},
			available: 8, reserved: 2, waiting: 1,
		},
		{
			name: "commit_stock", lost: events.TypeProductReservationCommitted, step: process.KindCommitStock,
			run: func(t *testing.T, h *harness, p uuid.UUID) uuid.UUID {
				id := h.awaitingPayment(t, p)
				h.succeed(t, id, "msg_paid", true)
				return id
			},
			order:     []string{events.TypeOrderPlaced, events.TypeOrderReserved, events.TypeOrderPaymentRequested, events.TypeOrderPaid},
			product:   []string{events.TypeProductCreated, events.TypeProductStockReserved, events.TypeProductReservationCommitted},
			available: 8,
		},
		{
			name: "release_stock", lost: events.TypeProductReservationReleased, step: process.KindReleaseStock,
			run: func(t *testing.T, h *harness, p uuid.UUID) uuid.UUID {
				id := h.awaitingPayment(t, p)
				h.succeed(t, id, "msg_failed", false)
				return id
			},
			order: []string{events.TypeOrderPlaced, events.TypeOrderReserved, events.TypeOrderPaymentRequested,
				events.TypeOrderPaymentFailed, events.TypeOrderCanceled},
			product:   []string{events.TypeProductCreated, events.TypeProductStockReserved, events.TypeProductReservationReleased},
			available: 10,
		},
		{
			name: "payment_timeout", lost: events.TypeOrderCanceled, step: process.KindPaymentTimeout,
			run: func(t *testing.T, h *harness, p uuid.UUID) uuid.UUID {
				id := h.awaitingPayment(t, p)
				h.clock.Advance(15*time.Minute + time.Second)
				return id
			},
			order:     []string{events.TypeOrderPlaced, events.TypeOrderReserved, events.TypeOrderPaymentRequested, events.TypeOrderCanceled},
			product:   []string{events.TypeProductCreated, events.TypeProductStockReserved, events.TypeProductReservationReleased},
			available: 10, dropped: true,
		},
		{
			name: "refund", lost: events.TypeOrderRefunded, step: process.KindRefund,
			run: func(t *testing.T, h *harness, p uuid.UUID) uuid.UUID {
				id := h.awaitingPayment(t, p)
				if _, err := h.svc.CancelOrder(context.Background(), id, customerMeta); err != nil {
					t.Fatal(err)
				}
				if v := h.succeed(t, id, "msg_late", true); !v.RefundRequested {
					t.Fatalf("a success after the cancel: %+v, want a refund requested", v)
				}
				return id
			},
			order: []string{events.TypeOrderPlaced, events.TypeOrderReserved, events.TypeOrderPaymentRequested, events.TypeOrderCanceled,
				events.TypeOrderRefundRequested, events.TypeOrderRefunded},
			product:   []string{events.TypeProductCreated, events.TypeProductStockReserved, events.TypeProductReservationReleased},
			available: 10,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			eventstorestest.Each(t, func(t *testing.T, b eventstorestest.Backend) {
				h, lost := lossyHarness(b)
				p := h.product(t, 10)
				h.start(t)
				lost.Lose(c.lost, 1)
				id := c.run(t, h, p)
				h.waitTicking(t, "the saga to settle", func() bool {
					st := h.stock(t, p)
					return lost.Lost() == 1 && (h.step(c.step, process.OutcomeDone) == 1 || c.dropped) && h.tasks(t) == c.waiting &&
						st.Available == c.available && st.Reserved == c.reserved
				})
				eventstorestest.WantTypes(t, h.store, events.OrderStream(id), c.order...)
				eventstorestest.WantTypes(t, h.store, events.ProductStream(p), c.product...)
				h.wantStock(t, p, c.available, c.reserved)
				if n := h.step(c.step, process.OutcomeRetry); n != 1 {
					t.Errorf("%s retried %d times, want once", c.step, n)
				}
				if calls, payments, refunds := h.provider.count(); payments != 1 || (c.step == process.KindRefund) != (refunds == 1) {
					t.Errorf("%d provider calls, %d payments, %d refunds", calls, payments, refunds)
				}
				if n := h.provider.refundCount(); n > 1 {
					t.Errorf("%d refund calls, want at most one", n)
				}
			})
		})
	}
}

// Placement recovery: a placement whose order.placed or reservation lost
// its answer fails its caller, who never retries; the process manager
// completes it (complete_placement) exactly as the placement would have:
// reserved, the stock reserved once.
func TestPlacementCompletedAfterLostAnswer(t *testing.T) {
	t.Parallel()
	for _, lostType := range []string{events.TypeOrderPlaced, events.TypeProductStockReserved} {
		t.Run(lostType, func(t *testing.T) {
			t.Parallel()
			eventstorestest.Each(t, func(t *testing.T, b eventstorestest.Backend) {
				h, lost := lossyHarness(b)
				p := h.product(t, 10)
				lost.Lose(lostType, 1)
				if _, err := placeKeyed(h.svc, "k", "lost@example.com", order.Line{ProductID: p, Quantity: 2}); !errors.Is(err, eventstorestest.ErrAnswerLost) {
					t.Fatalf("placement: %v, want its answer lost", err)
				}
				lost.WantLost(t, 1)
				id := h.svc.OrderIDForKey("lost@example.com", "k")
				h.start(t)
				h.waitTicking(t, "the placement to be completed and its payment requested", func() bool {
					return h.step(process.KindCompletePlacement, process.OutcomeDone) == 1 && h.order(t, id).Status == order.StatusPaymentPending
				})
				eventstorestest.WantTypes(t, h.store, events.OrderStream(id),
					events.TypeOrderPlaced, events.TypeOrderReserved, events.TypeOrderPaymentRequested)
				eventstorestest.WantTypes(t, h.store, events.ProductStream(p), events.TypeProductCreated, events.TypeProductStockReserved)
				h.wantStock(t, p, 8, 2)
			})
		})
	}
}

// lossyHarness is a harness on b whose commands go through a store that
// loses answers on demand, with steps retried a millisecond (of the
// harness's clock) after they fail and placements completed a
// millisecond after they stall.
func lossyHarness(b eventstorestest.Backend) (*harness, *eventstorestest.LostAnswers) {
	h := newHarnessOn(b)
	lost := eventstorestest.NewLostAnswers(b.Store)
	h.svc = command.NewService(lost, command.Options{})
	h.backoff = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
	h.placementGrace = time.Millisecond
	return h, lost
}

// waitTicking waits for cond, moving the harness's clock on by 10ms at
// each look so that retries and grace periods come due.
func (h *harness) waitTicking(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventually.True(t, what, func() bool {
		h.clock.Advance(10 * time.Millisecond)
		return cond()
	})
}

// awaitingPayment places an order of 2 units of p and waits for its
// payment to be requested.
func (h *harness) awaitingPayment(t *testing.T, p uuid.UUID) uuid.UUID {
	t.Helper()
	id := h.place(t, p, 2)
	h.waitTicking(t, fmt.Sprintf("order %s to await its payment", id), func() bool { return h.order(t, id).Status == order.StatusPaymentPending })
	return id
}

// wantStock fails t unless product p, read from its stream, has available
// and reserved units.
func (h *harness) wantStock(t *testing.T, p uuid.UUID, available, reserved int64) {
	t.Helper()
	if st := h.stock(t, p); st.Available != available || st.Reserved != reserved {
		t.Fatalf("product %s: available %d, reserved %d; want %d and %d", p, st.Available, st.Reserved, available, reserved)
	}
}

func (s *stubProvider) refundCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refundCalls
}
