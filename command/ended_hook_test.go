package command_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
)

// endedKey marks the context of the command that ends an order.
type endedKey struct{}

// OnOrderEnded is told of each order moved to paid or canceled once, with
// the time from its placement to that transition by the event store's
// clock (what the saga duration histogram records) and the context of the
// command that moved it (whose trace an exemplar names).
func TestOnOrderEndedReportsTheSagaDuration(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	type ended struct {
		status order.Status
		took   time.Duration
		marker any
	}
	var (
		mu  sync.Mutex
		got []ended
	)
	svc := command.NewService(store, command.Options{OnOrderEnded: func(ctx context.Context, status order.Status, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ended{status, took, ctx.Value(endedKey{})})
	}})

	paid, _ := reservedOrder(t, svc, 5, 1)
	outcome := order.PaymentOutcome{WebhookID: "msg_ok", PaymentID: paid.PaymentID, Succeeded: true, Amount: 150000}
	for range 2 { // a repeated webhook is no second transition
		if v, err := svc.RecordPayment(context.WithValue(ctxT(t), endedKey{}, "webhook"), paid.ID, outcome, webhookRequest); err != nil || v.Status != order.StatusPaid {
			t.Fatalf("record payment: %v %v", v.Status, err)
		}
	}
	canceled, _ := reservedOrder(t, svc, 5, 1)
	for range 2 { // canceling a canceled order changes nothing
		if v, err := svc.CancelOrder(context.WithValue(ctxT(t), endedKey{}, "cancel"), canceled.ID, customer); err != nil || v.Status != order.StatusCanceled {
			t.Fatalf("cancel: %v %v", v.Status, err)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].status != order.StatusPaid || got[1].status != order.StatusCanceled ||
		got[0].marker != "webhook" || got[1].marker != "cancel" {
		t.Fatalf("OnOrderEnded was told %+v, want paid then canceled, once each", got)
	}
	for i, id := range []uuid.UUID{paid.ID, canceled.ID} {
		st := orderOf(t, store, id)
		if want := st.UpdatedAt.Sub(st.CreatedAt); got[i].took != want || want < 0 {
			t.Errorf("order %s took %v, want %v (its last event's time minus its placement's)", id, got[i].took, want)
		}
	}
}
