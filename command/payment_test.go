package command_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/eventstores/eventstorestest"
)

// countTypes counts the events of each type in a stream.
func countTypes(t *testing.T, store command.EventStore, stream string) map[string]int {
	t.Helper()
	recorded, err := store.ReadStream(ctxT(t), stream, eventstore.Forward, 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, r := range recorded {
		n[r.Type]++
	}
	return n
}

// reservedOrder places an order for qty units of a new product with the
// given stock and requests its payment.
func reservedOrder(t *testing.T, svc *command.Service, stock, qty int64) (command.OrderView, uuid.UUID) {
	t.Helper()
	p := newProduct(t, svc, stock)
	v, err := place(svc, ctxT(t), "", "pay@example.com", order.Line{ProductID: p, Quantity: qty})
	if err != nil {
		t.Fatal(err)
	}
	if v, err = svc.RequestPayment(ctxT(t), v.ID, "pay_"+v.ID.String(), customer); err != nil || v.Status != order.StatusPaymentPending {
		t.Fatalf("request payment: %v %v", v.Status, err)
	}
	return v, p
}

// webhookRequest is the metadata of a webhook's own request.
var webhookRequest = eventstore.Metadata{Actor: events.ActorProvider, CorrelationID: "webhook-request"}

// One provider message delivered 40 times at once, and again to a service
// that has never seen it (a restart): recorded once, and the paid hook told
// once, also on KurrentDB, which cannot tell a replayed append from a
// fresh one (AppendResult.Replayed).
func TestRecordPaymentOncePerMessage(t *testing.T) {
	t.Parallel()
	eventstorestest.Each(t, func(t *testing.T, b eventstorestest.Backend) {
		testRecordPaymentOncePerMessage(t, b.Store)
	})
}

// One provider message handled by several processes at once (a provider
// that delivers twice, to two instances behind a load balancer), each with
// its own client of the event store and an order cache that has seen the
// order awaiting its payment: every one of them appends the message's
// events, with the same derived ids at the same expected version, so one
// writes them and the others are idempotent retries. The order's
// transition is counted once in all (orders_paid_total or
// orders_canceled_total, and the saga's duration), also on KurrentDB,
// whose client answers a recognised retry as it answers a write.
func TestPaymentOutcomeCountedOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	eventstorestest.Each(t, func(t *testing.T, b eventstorestest.Backend) {
		for _, succeeded := range []bool{true, false} {
			var paid, ended atomic.Int32
			var mu sync.Mutex
			var canceled []string
			opts := command.Options{
				OnOrderPaid: func() { paid.Add(1) },
				OnOrderCanceled: func(reason string) {
					mu.Lock()
					defer mu.Unlock()
					canceled = append(canceled, reason)
				},
				OnOrderEnded: func(context.Context, order.Status, time.Duration) { ended.Add(1) },
			}
			v, _ := reservedOrder(t, command.NewService(b.Store, command.Options{}), 5, 2)
			processes := make([]*command.Service, 4)
			for i := range processes {
				processes[i] = command.NewService(b.Connect(t), opts)
				if got, err := processes[i].Order(ctxT(t), v.ID); err != nil || got.Status != order.StatusPaymentPending {
					t.Fatalf("process %d reads the order: %v %v", i, got.Status, err)
				}
			}
			outcome := order.PaymentOutcome{WebhookID: "msg_" + v.ID.String(), PaymentID: v.PaymentID, Succeeded: succeeded, Amount: 300000}
			want := order.StatusPaid
			if !succeeded {
				want = order.StatusCanceled
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			for _, svc := range processes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if got, err := svc.RecordPayment(ctxT(t), v.ID, outcome, webhookRequest); err != nil || got.Status != want {
						t.Errorf("record: %v %v, want %s", got.Status, err, want)
					}
				}()
			}
			close(start)
			wg.Wait()

			types := []string{events.TypeOrderPlaced, events.TypeOrderReserved, events.TypeOrderPaymentRequested, events.TypeOrderPaid}
			if !succeeded {
				types = append(types[:3], events.TypeOrderPaymentFailed, events.TypeOrderCanceled)
			}
			eventstorestest.WantTypes(t, b.Store, events.OrderStream(v.ID), types...)
			mu.Lock()
			if wantPaid := map[bool]int32{true: 1}[succeeded]; paid.Load() != wantPaid || ended.Load() != 1 ||
				(succeeded && len(canceled) != 0) || (!succeeded && !slices.Equal(canceled, []string{events.CancelPaymentFailed})) {
				t.Errorf("succeeded %v: the hooks were told paid %d times, canceled %v, ended %d times; want the transition once",
					succeeded, paid.Load(), canceled, ended.Load())
			}
			mu.Unlock()
		}
	})
}

func testRecordPaymentOncePerMessage(t *testing.T, store command.EventStore) {
	var paidHook atomic.Int32
	svc := command.NewService(store, command.Options{OnOrderPaid: func() { paidHook.Add(1) }})
	v, p := reservedOrder(t, svc, 5, 2)
	outcome := order.PaymentOutcome{WebhookID: "msg_1", PaymentID: v.PaymentID, Succeeded: true, Amount: 300000}

	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := svc.RecordPayment(ctxT(t), v.ID, outcome, webhookRequest)
			if err != nil || got.Status != order.StatusPaid {
				t.Errorf("record: %v %v", got.Status, err)
			}
		}()
	}
	wg.Wait()
	restarted := command.NewService(store, command.Options{})
	if got, err := restarted.RecordPayment(ctxT(t), v.ID, outcome, webhookRequest); err != nil || got.Status != order.StatusPaid {
		t.Fatalf("after restart: %v %v", got.Status, err)
	}
	if n := countTypes(t, store, events.OrderStream(v.ID))[events.TypeOrderPaid]; n != 1 {
		t.Fatalf("%d order.paid events, want 1", n)
	}
	if n := paidHook.Load(); n != 1 {
		t.Fatalf("the paid hook was told %d times, want 1", n)
	}
	recorded, err := store.ReadStream(ctxT(t), events.OrderStream(v.ID), eventstore.Forward, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recorded {
		if r.Metadata.CorrelationID != customer.CorrelationID {
			t.Errorf("%s carries correlation %q, want the placement's %q", r.Type, r.Metadata.CorrelationID, customer.CorrelationID)
		}
	}

	// The products follow: committed once, however often asked.
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := svc.CommitStock(ctxT(t), v.ID, customer); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := restarted.CommitStock(ctxT(t), v.ID, customer); err != nil {
		t.Fatal(err)
	}
	st := stockOf(t, store, p)
	if st.Available != 3 || st.Reserved != 0 {
		t.Fatalf("product after commit: available %d reserved %d, want 3 and 0", st.Available, st.Reserved)
	}
	if n := countTypes(t, store, events.ProductStream(p))[events.TypeProductReservationCommitted]; n != 1 {
		t.Fatalf("%d commits, want 1", n)
	}
}

// A failed payment cancels the order; releasing its stock, from any number
// of parties, returns it once. A success reported afterwards asks for a
// refund, once, and never touches the stock again.
func TestFailedPaymentReleasesOnceAndLateSuccessRefunds(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	var canceled []string
	var mu sync.Mutex
	svc := command.NewService(store, command.Options{OnOrderCanceled: func(reason string) {
		mu.Lock()
		defer mu.Unlock()
		canceled = append(canceled, reason)
	}})
	v, p := reservedOrder(t, svc, 5, 2)
	got, err := svc.RecordPayment(ctxT(t), v.ID, order.PaymentOutcome{WebhookID: "msg_f", PaymentID: v.PaymentID, Amount: 300000, Reason: "declined"}, customer)
	if err != nil || got.Status != order.StatusCanceled || got.CancelReason != events.CancelPaymentFailed {
		t.Fatalf("failed payment: %+v %v", got, err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := command.NewService(store, command.Options{}).ReleaseStock(ctxT(t), v.ID, customer); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if st := stockOf(t, store, p); st.Available != 5 || st.Reserved != 0 {
		t.Fatalf("after compensation: available %d reserved %d, want 5 and 0", st.Available, st.Reserved)
	}

	for _, id := range []string{"msg_s1", "msg_s2", "msg_s1"} {
		if _, err := svc.RecordPayment(ctxT(t), v.ID, order.PaymentOutcome{WebhookID: id, PaymentID: v.PaymentID, Succeeded: true, Amount: 300000}, customer); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.RecordRefund(ctxT(t), v.ID, "re_1", customer); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecordRefund(ctxT(t), v.ID, "re_1", customer); err != nil {
		t.Fatal(err)
	}
	n := countTypes(t, store, events.OrderStream(v.ID))
	if n[events.TypeOrderRefundRequested] != 1 || n[events.TypeOrderRefunded] != 1 || n[events.TypeOrderCanceled] != 1 || n[events.TypeOrderPaid] != 0 {
		t.Fatalf("order events %v", n)
	}
	if st := stockOf(t, store, p); st.Available != 5 || st.Reserved != 0 {
		t.Fatalf("after the late success: available %d reserved %d", st.Available, st.Reserved)
	}
	if np := countTypes(t, store, events.ProductStream(p)); np[events.TypeProductReservationReleased] != 1 {
		t.Fatalf("product events %v", np)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(canceled) != 1 || canceled[0] != events.CancelPaymentFailed {
		t.Fatalf("cancel hook told %v", canceled)
	}
}

// A payment that never completes is canceled with its stock back; one that
// completed first is left alone.
func TestPaymentTimeout(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	svc := command.NewService(store, command.Options{})
	v, p := reservedOrder(t, svc, 5, 2)
	got, err := svc.TimeOutPayment(ctxT(t), v.ID, customer)
	if err != nil || got.Status != order.StatusCanceled || got.CancelReason != events.CancelPaymentTimeout {
		t.Fatalf("timeout: %+v %v", got, err)
	}
	if st := stockOf(t, store, p); st.Available != 5 || st.Reserved != 0 {
		t.Fatalf("after timeout: available %d reserved %d", st.Available, st.Reserved)
	}

	paid, _ := reservedOrder(t, svc, 5, 1)
	if _, err := svc.RecordPayment(ctxT(t), paid.ID, order.PaymentOutcome{WebhookID: "m", PaymentID: paid.PaymentID, Succeeded: true, Amount: 150000}, customer); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.TimeOutPayment(ctxT(t), paid.ID, customer); err != nil || got.Status != order.StatusPaid {
		t.Fatalf("timeout of a paid order: %v %v", got.Status, err)
	}
}

// A cancel answers with a position that covers the stock's return even when
// another party (the process manager, another instance) released it first.
func TestCancelPositionCoversAReleaseByAnotherParty(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	mine, other := command.NewService(store, command.Options{}), command.NewService(store, command.Options{})
	p := newProduct(t, mine, 5)
	v, err := place(mine, ctxT(t), "", "ryw@example.com", order.Line{ProductID: p, Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.CancelOrder(ctxT(t), v.ID, customer); err != nil {
		t.Fatal(err)
	}
	got, err := mine.CancelOrder(ctxT(t), v.ID, customer)
	if err != nil {
		t.Fatal(err)
	}
	last, err := store.ReadStream(ctxT(t), events.ProductStream(p), eventstore.Backward, eventstore.FromEnd, 1)
	if err != nil || last[0].Type != events.TypeProductReservationReleased {
		t.Fatalf("product's last event: %v %v", last, err)
	}
	if got.Position.Less(last[0].Position) {
		t.Fatalf("cancel answered position %s, before the release at %s", got.Position, last[0].Position)
	}
}
