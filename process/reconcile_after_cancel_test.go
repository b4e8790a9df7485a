package process_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/process"
)

// A payment that succeeds after the timeout canceled its order, and whose
// webhook never arrives (it went to the callback URL of an instance that
// died), is found by asking the provider a minute later: the order asks
// for a refund and the money goes back. One still pending is asked about
// again; one that failed needs nothing.
func TestSuccessAfterTimeoutWithoutWebhookIsRefunded(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := &scripted{payments: map[uuid.UUID]*payment.Payment{}}
	p := h.product(t, 10)
	late, slow, failed := h.place(t, p, 1), h.place(t, p, 1), h.place(t, p, 1)
	h.startScripted(t, s)
	for _, id := range []uuid.UUID{late, slow, failed} {
		h.waitStatus(t, id, order.StatusPaymentPending)
	}
	h.clock.Advance(15*time.Minute + time.Second) // the timeouts: every payment pending, every order canceled
	for _, id := range []uuid.UUID{late, slow, failed} {
		if v := h.waitStatus(t, id, order.StatusCanceled); v.CancelReason != "payment_timeout" {
			t.Fatalf("cancel reason %q", v.CancelReason)
		}
	}
	// Each cancel schedules its reconciliation ReconcileAfter from the
	// clock as the scheduler reads it: wait for that before moving it on.
	eventually.True(t, "the reconciliations to be scheduled", func() bool {
		var n int
		err := h.pool.QueryRow(context.Background(), `SELECT count(*) FROM process_tasks WHERE kind = $1`, process.KindReconcilePayment).Scan(&n)
		return err == nil && n == 3
	})
	// After the cancels the provider decides; no webhook reaches the service.
	s.set(late, func(_ *scripted, p *payment.Payment) { p.Status = payment.StatusSucceeded })
	s.set(failed, func(_ *scripted, p *payment.Payment) { p.Status = payment.StatusFailed })

	h.clock.Advance(30 * time.Second) // not yet
	if v := h.order(t, late); v.RefundRequested {
		t.Fatal("reconciled before ReconcileAfter")
	}
	h.clock.Advance(31 * time.Second)
	eventually.True(t, "the late success to be refunded", func() bool {
		v := h.order(t, late)
		return v.RefundRequested && v.RefundID != "" && s.set(late, func(*scripted, *payment.Payment) {}).Status == payment.StatusRefunded
	})
	eventually.True(t, "the slow payment to be asked about again", func() bool {
		return h.step(process.KindReconcilePayment, process.OutcomeRetry) >= 1
	})
	s.set(slow, func(_ *scripted, p *payment.Payment) { p.Status = payment.StatusSucceeded })
	eventually.True(t, "the slow success to be refunded at the next ask", func() bool {
		h.clock.Advance(time.Second)
		return h.order(t, slow).RefundID != ""
	})
	if v := h.order(t, failed); v.RefundRequested || v.Status != order.StatusCanceled {
		t.Fatalf("failed payment: status %s refund requested %v", v.Status, v.RefundRequested)
	}
	if n := h.step(process.KindReconcilePayment, process.OutcomeParked); n != 0 {
		t.Fatalf("%d reconciliations parked", n)
	}
	if n := h.step(process.KindReconcilePayment, process.OutcomeDone); n != 3 {
		t.Fatalf("%d reconciliations done, want 3", n)
	}
}
