package command_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/money"
)

// Two services over one store stand for two instances of ordersd: each
// caches the orders it touched, and the other one moves them on behind its
// back. Every command must still decide on the order as the stream has it.
func TestOrderCacheNeverDecidesOnAStaleOrder(t *testing.T) {
	store := newStore(t)
	a := command.NewService(store, command.Options{})
	b := command.NewService(store, command.Options{})
	ctx := ctxT(t)
	pid := newProduct(t, a, 100)
	line := order.Line{ProductID: pid, Quantity: 1}

	t.Run("a success reported to the instance that cached the order before its cancel is refunded", func(t *testing.T) {
		v, err := place(a, ctx, "", "stale-1@example.com", line) // a caches it reserved
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.CancelOrder(ctx, v.ID, customer); err != nil {
			t.Fatal(err)
		}
		got, err := a.RecordPayment(ctx, v.ID, order.PaymentOutcome{WebhookID: "w1", PaymentID: "p1", Succeeded: true, Amount: money.Amount(v.Total)}, customer)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != order.StatusCanceled || !got.RefundRequested {
			t.Fatalf("status %s refund requested %v, want canceled with a refund requested", got.Status, got.RefundRequested)
		}
		if st := orderOf(t, store, v.ID); st.Status != order.StatusCanceled || !st.RefundRequested {
			t.Fatalf("stream: status %s refund requested %v", st.Status, st.RefundRequested)
		}
	})

	t.Run("a stock commit on an instance whose cache says reserved sells the paid order", func(t *testing.T) {
		v, err := place(a, ctx, "", "stale-2@example.com", line)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.RecordPayment(ctx, v.ID, order.PaymentOutcome{WebhookID: "w2", PaymentID: "p2", Succeeded: true, Amount: money.Amount(v.Total)}, customer); err != nil {
			t.Fatal(err)
		}
		before := stockOf(t, store, pid)
		if err := a.CommitStock(ctx, v.ID, customer); err != nil {
			t.Fatal(err)
		}
		after := stockOf(t, store, pid)
		if _, held := after.ReservedFor(v.ID); held || after.Reserved != before.Reserved-1 || after.Available != before.Available {
			t.Fatalf("reserved %d→%d available %d→%d held %v, want the order's unit sold", before.Reserved, after.Reserved, before.Available, after.Available, held)
		}
	})

	t.Run("a stale cache's no-op is checked against the stream", func(t *testing.T) {
		v, err := place(a, ctx, "", "stale-3@example.com", line)
		if err != nil {
			t.Fatal(err)
		}
		// b sees it reserved and cancels; a, whose cache says reserved, is
		// asked to release: it must read the cancel, not trust "reserved".
		if _, err := b.CancelOrder(ctx, v.ID, customer); err != nil {
			t.Fatal(err)
		}
		if err := a.ReleaseStock(ctx, v.ID, customer); err != nil {
			t.Fatal(err)
		}
		if _, held := stockOf(t, store, pid).ReservedFor(v.ID); held {
			t.Fatal("the canceled order still holds stock")
		}
		// And a refusal from the cache is checked too: cancelling on a
		// (cached: reserved) after b's cancel returns the canceled order.
		got, err := a.CancelOrder(ctx, v.ID, customer)
		if err != nil || got.Status != order.StatusCanceled {
			t.Fatalf("cancel on the stale instance: %v %v", got.Status, err)
		}
	})

	t.Run("a refusal on a stale cached order is checked against the stream", func(t *testing.T) {
		v, err := place(a, ctx, "", "stale-6@example.com", line) // a caches it reserved
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.CancelOrder(ctx, v.ID, customer); err != nil {
			t.Fatal(err)
		}
		if _, err := b.RecordPayment(ctx, v.ID, order.PaymentOutcome{WebhookID: "w6", PaymentID: "p6", Succeeded: true, Amount: money.Amount(v.Total)}, customer); err != nil {
			t.Fatal(err)
		}
		// On a's cached "reserved" there is no refund to record: a must not
		// trust that refusal.
		got, err := a.RecordRefund(ctx, v.ID, "r6", customer)
		if err != nil || got.RefundID != "r6" {
			t.Fatalf("refund on the stale instance: %q %v", got.RefundID, err)
		}
	})

	t.Run("the outcome carries the placement's correlation id from the cache and from the stream", func(t *testing.T) {
		placedBy := customer
		placedBy.CorrelationID = "corr-placed"
		v, err := a.PlaceOrder(ctx, command.PlaceOrder{UserEmail: "stale-4@example.com", Lines: []order.Line{line}, Meta: placedBy})
		if err != nil {
			t.Fatal(err)
		}
		webhook := customer
		webhook.CorrelationID = "corr-webhook"
		if _, err := a.RecordPayment(ctx, v.ID, order.PaymentOutcome{WebhookID: "w4", PaymentID: "p4", Succeeded: false, Amount: money.Amount(v.Total)}, webhook); err != nil {
			t.Fatal(err) // from a's cache
		}
		w, err := b.PlaceOrder(ctx, command.PlaceOrder{UserEmail: "stale-5@example.com", Lines: []order.Line{line}, Meta: placedBy})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.RecordPayment(ctx, w.ID, order.PaymentOutcome{WebhookID: "w5", PaymentID: "p5", Succeeded: false, Amount: money.Amount(w.Total)}, webhook); err != nil {
			t.Fatal(err) // read from the stream: a never saw it
		}
		for _, id := range []uuid.UUID{v.ID, w.ID} {
			recorded, err := store.ReadStream(ctx, events.OrderStream(id), eventstore.Backward, eventstore.FromEnd, 1)
			if err != nil || len(recorded) != 1 {
				t.Fatalf("read order %s: %v", id, err)
			}
			last := recorded[0]
			if last.Metadata.CorrelationID != "corr-placed" {
				t.Fatalf("order %s: %s carries correlation %q, want the placement's", id, last.Type, last.Metadata.CorrelationID)
			}
		}
	})
}
