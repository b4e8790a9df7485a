package command

import (
	"context"
	"testing"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/memory"
	"github.com/orders-reference/orders/money"
)

// A stray reservation and a commit_stock run again, decided in one batch of
// the product: the reservation has no stored position yet, and must still
// count as stray for the decided order, so the commit sells nothing.
func TestStrayAndCommitInOneBatch(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	svc := NewService(store, Options{})
	meta := eventstore.Metadata{Actor: events.ActorCustomer}
	pv, err := svc.CreateProduct(ctx, CreateProduct{Name: "x", Price: 100, Stock: 10, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	v, err := svc.PlaceOrder(ctx, PlaceOrder{UserEmail: "a@example.com", Lines: []order.Line{{ProductID: pv.ID, Quantity: 2}}, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecordPayment(ctx, v.ID, order.PaymentOutcome{WebhookID: "w1", PaymentID: "pay", Succeeded: true, Amount: money.Amount(v.Total)}, meta); err != nil {
		t.Fatal(err)
	}
	if err := svc.CommitStock(ctx, v.ID, meta); err != nil {
		t.Fatal(err)
	}
	o, err := svc.readOrder(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	decided := o.decided
	// The two decisions as the product's combiner hands them over together.
	stray := &stockOp{meta: meta, done: make(chan struct{}), decide: func(st *product.State) ([]events.Event, error) {
		return st.Reserve(v.ID, 2)
	}}
	again := &stockOp{meta: meta, done: make(chan struct{}), decide: func(st *product.State) ([]events.Event, error) {
		return st.Commit(v.ID, decided), nil
	}}
	svc.stock.run(svc.stock.entry(pv.ID), []*stockOp{stray, again})
	if stray.err != nil || again.err != nil || len(stray.decided) != 1 {
		t.Fatalf("stray %v %v, commit %v", stray.decided, stray.err, again.err)
	}
	if len(again.decided) != 0 {
		t.Fatalf("the stray was sold in the batch that reserved it: %v", again.decided)
	}
	// After the append the stray has its stored position, and is still stray.
	view, err := svc.stock.View(ctx, pv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if view.Reserved != 2 || view.Available != 6 {
		t.Fatalf("available %d reserved %d, want the stray held (6, 2)", view.Available, view.Reserved)
	}
	if err := svc.CommitStock(ctx, v.ID, meta); err != nil {
		t.Fatal(err)
	}
	if err := svc.ReleaseReservation(ctx, v.ID, pv.ID, meta); err != nil {
		t.Fatal(err)
	}
	if view, _ = svc.stock.View(ctx, pv.ID); view.Reserved != 0 || view.Available != 8 {
		t.Fatalf("available %d reserved %d, want 8 and 0", view.Available, view.Reserved)
	}
}
