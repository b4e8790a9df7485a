package process_test

import (
	"context"
	"testing"
	"time"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/process"
)

// A step whose lease another instance holds now (this one's ran out, say
// after a stall) is canceled at the next renewal, not run on beside the
// new holder; once that lease ends, the step runs again here.
func TestStepWhoseLeaseRanOutIsCanceled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	gate := make(chan struct{})
	h.provider.gate, h.provider.entered = gate, make(chan struct{}, 4)
	id := h.place(t, h.product(t, 10), 1)
	h.start(t)
	select {
	case <-h.provider.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no payment request reached the provider")
	}
	if _, err := h.pool.Exec(context.Background(), `UPDATE process_tasks SET lease_id = gen_random_uuid(), lease_until = now() + interval '1 second'
		WHERE order_id = $1 AND kind = $2`, id, process.KindInitiatePayment); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "the run whose lease ran out to be canceled", func() bool {
		h.provider.mu.Lock()
		defer h.provider.mu.Unlock()
		return h.provider.inFlight == 0
	})
	close(gate)
	h.waitStatus(t, id, order.StatusPaymentPending)
	h.provider.mu.Lock()
	defer h.provider.mu.Unlock()
	if h.provider.maxInFlight != 1 || len(h.provider.byKey) != 1 {
		t.Fatalf("%d runs at once, %d payments", h.provider.maxInFlight, len(h.provider.byKey))
	}
}
