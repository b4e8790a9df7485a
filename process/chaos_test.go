package process_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/money"
)

// settled reports whether an order is at the end of its saga: paid with
// its stock sold, or canceled with its stock back and any late payment
// refunded.
func (h *harness) settled(t *testing.T, id, p uuid.UUID) bool {
	t.Helper()
	v := h.order(t, id)
	st := h.stock(t, p)
	_, held := st.ReservedFor(id)
	switch v.Status {
	case order.StatusPaid:
		return !held
	case order.StatusCanceled:
		return !held && (!v.RefundRequested || v.RefundID != "")
	}
	return false
}

func (h *harness) allSettled(t *testing.T, p uuid.UUID, ids map[uuid.UUID]int64) bool {
	for id := range ids {
		if !h.settled(t, id, p) {
			return false
		}
	}
	return h.tasks(t) == 0
}

// productEvents counts each event type per order in a product's stream.
func (h *harness) productEvents(t *testing.T, p uuid.UUID) map[uuid.UUID]map[string]int {
	t.Helper()
	recorded, err := h.store.ReadStream(context.Background(), events.ProductStream(p), eventstore.Forward, 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uuid.UUID]map[string]int{}
	for _, r := range recorded {
		e, err := events.Decode(r.Type, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		var id uuid.UUID
		switch e := e.(type) {
		case events.ProductReservationReleased:
			id = e.OrderID
		case events.ProductReservationCommitted:
			id = e.OrderID
		case events.ProductStockReserved:
			id = e.OrderID
		default:
			continue
		}
		if out[id] == nil {
			out[id] = map[string]int{}
		}
		out[id][r.Type]++
	}
	return out
}

// checkConservation asserts that every order settled exactly once on the
// product: a paid order's reservation committed once and never released, a
// canceled one's released once and never committed; nothing is held.
func (h *harness) checkConservation(t *testing.T, p uuid.UUID, initial int64, orders map[uuid.UUID]int64) {
	t.Helper()
	per := h.productEvents(t, p)
	var sold int64
	for id, qty := range orders {
		v := h.order(t, id)
		n := per[id]
		switch v.Status {
		case order.StatusPaid:
			sold += qty
			if n[events.TypeProductReservationCommitted] != 1 || n[events.TypeProductReservationReleased] != 0 {
				t.Errorf("paid order %s settled %v", id, n)
			}
			if v.RefundRequested {
				t.Errorf("paid order %s asks for a refund", id)
			}
		case order.StatusCanceled:
			if n[events.TypeProductReservationReleased] != 1 || n[events.TypeProductReservationCommitted] != 0 {
				t.Errorf("canceled order %s settled %v", id, n)
			}
		default:
			t.Errorf("order %s ended %s", id, v.Status)
		}
	}
	st := h.stock(t, p)
	if st.Reserved != 0 || st.Available != initial-sold || st.Available < 0 {
		t.Errorf("product: available %d reserved %d, want %d and 0", st.Available, st.Reserved, initial-sold)
	}
}

// A customer cancels while the success webhook arrives, for many orders
// at once: whichever the order stream records first wins. A paid order
// cannot be canceled; a canceled one gets its money back, once, and its
// stock is released once.
func TestCancelRacingSuccess(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	p := h.product(t, 1000)
	const n = 30
	ids := map[uuid.UUID]int64{}
	for i := range n {
		ids[h.place(t, p, int64(1+i%3))] = int64(1 + i%3)
	}
	h.start(t)
	for id := range ids {
		h.waitStatus(t, id, order.StatusPaymentPending)
	}

	// A third of the orders are canceled before the webhook, a third after
	// it, and a third race it.
	cancel := func(id uuid.UUID) {
		_, err := h.svc.CancelOrder(context.Background(), id, eventstore.Metadata{Actor: events.ActorCustomer})
		if err != nil && !errors.Is(err, order.ErrIllegalTransition) {
			t.Errorf("cancel: %v", err)
		}
	}
	webhook := func(id uuid.UUID) {
		if _, err := h.deliver(id, "msg_"+id.String(), true); err != nil {
			t.Errorf("webhook: %v", err)
		}
	}
	want := map[uuid.UUID]order.Status{}
	var wg sync.WaitGroup
	i := 0
	for id := range ids {
		switch i % 3 {
		case 0:
			cancel(id)
			webhook(id)
			want[id] = order.StatusCanceled
		case 1:
			webhook(id)
			cancel(id)
			want[id] = order.StatusPaid
		default:
			wg.Add(2)
			go func() { defer wg.Done(); cancel(id) }()
			go func() { defer wg.Done(); webhook(id) }()
		}
		i++
	}
	wg.Wait()
	eventually.True(t, "every order to settle", func() bool { return h.allSettled(t, p, ids) })
	h.checkConservation(t, p, 1000, ids)
	canceled := 0
	for id := range ids {
		v := h.order(t, id)
		if w, ok := want[id]; ok && v.Status != w {
			t.Errorf("order %s is %s, want %s", id, v.Status, w)
		}
		if v.Status == order.StatusCanceled {
			canceled++
			if !v.RefundRequested || v.RefundID == "" {
				t.Errorf("canceled order %s was paid but not refunded", id)
			}
		}
	}
	if _, _, refunds := h.provider.count(); refunds != canceled {
		t.Fatalf("%d refunds for %d canceled orders", refunds, canceled)
	}
	t.Logf("%d of %d orders canceled", canceled, n)
}

// Process managers stopped and restarted again and again mid-saga, two of
// them sharing the steps and competing for the scheduler's leadership, cut
// off the database now and then, the scheduler leader's connection too,
// while the provider sometimes loses its answers and webhooks arrive twice:
// every order ends in one terminal state, with one payment, its stock
// settled exactly once.
func TestKilledAndRestartedMidSaga(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rnd := rand.New(rand.NewPCG(7, 11))
	var rndMu sync.Mutex
	chance := func(p float64) bool {
		rndMu.Lock()
		defer rndMu.Unlock()
		return rnd.Float64() < p
	}
	intn := func(n int64) int64 {
		rndMu.Lock()
		defer rndMu.Unlock()
		return rnd.Int64N(n)
	}
	h.provider.lose = func() bool { return chance(0.3) }
	// Lost answers are retried at once and on the real clock, forever.
	h.clock = nil
	h.backoff = make([]time.Duration, 1000)

	p := h.product(t, 1000)
	const n = 40
	ids := map[uuid.UUID]int64{}
	order2index := map[uuid.UUID]int{}
	for i := range n {
		id := h.place(t, p, int64(1+i%4))
		ids[id] = int64(1 + i%4)
		order2index[id] = i
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	// Two instances, each on a pool of its own through a proxy of its own,
	// each killed after a random short life (40-145 ms: long enough to
	// reconnect after a cut and claim steps on a loaded machine, where
	// 20-70 ms lives made hardly any progress) and restarted.
	instances := []*instance{h.instance(t, "a"), h.instance(t, "b")}
	t.Cleanup(wg.Wait) // before the instances' pools close, even after a FailNow
	for i, in := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for life := 0; ctx.Err() == nil; life++ {
				lifeCtx, kill := context.WithTimeout(ctx, time.Duration(40+i*25+life%5*20)*time.Millisecond)
				_ = h.managerOn(in.pool, in.store, in.svc, nil).Run(lifeCtx)
				kill()
			}
		}()
	}
	// Now and then an instance is cut off the database for a moment, as a
	// network failure would (its connections fail, its sessions end, its
	// steps in flight fail or are abandoned), or the scheduler leader's
	// connection is cut (its transaction and lock go with it).
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			time.Sleep(time.Duration(30+intn(60)) * time.Millisecond)
			if chance(0.3) {
				in := instances[intn(int64(len(instances)))]
				in.proxy.Cut()
				time.Sleep(time.Duration(10+intn(50)) * time.Millisecond)
				in.proxy.Restore()
			} else {
				h.killLeader(t, schedulerLock)
			}
		}
	}()
	// The provider's webhooks: every third payment fails, the rest
	// succeed; some are delivered twice.
	wg.Add(1)
	go func() {
		defer wg.Done()
		sent := map[uuid.UUID]bool{}
		for ctx.Err() == nil && len(sent) < n {
			for id := range ids {
				if sent[id] {
					continue
				}
				v, err := h.svc.Order(ctx, id)
				if err != nil || v.Status != order.StatusPaymentPending {
					continue
				}
				ok := order2index[id]%3 != 0
				for range 1 + btoi(chance(0.5)) {
					if _, err := h.svc.RecordPayment(ctx, id, order.PaymentOutcome{
						WebhookID: "msg_" + id.String(), PaymentID: v.PaymentID, Succeeded: ok, Amount: money.Amount(v.Total),
					}, eventstore.Metadata{Actor: events.ActorProvider}); err != nil && ctx.Err() == nil {
						t.Errorf("webhook: %v", err)
					}
				}
				sent[id] = true
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	deadline := time.Now().Add(60 * time.Second)
	for !h.allSettled(t, p, ids) {
		if time.Now().After(deadline) {
			for id := range ids {
				if !h.settled(t, id, p) {
					v := h.order(t, id)
					t.Errorf("order %d unsettled: %s payment %q", order2index[id], v.Status, v.PaymentID)
				}
			}
			rows, _ := h.pool.Query(context.Background(), `SELECT kind, order_id, state, attempts, last_error FROM process_tasks`)
			for rows.Next() {
				var kind, state, msg string
				var id uuid.UUID
				var attempts int
				_ = rows.Scan(&kind, &id, &state, &attempts, &msg)
				t.Errorf("task %s order %d %s attempts %d: %s", kind, order2index[id], state, attempts, msg)
			}
			rows.Close()
			t.FailNow()
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()

	h.checkConservation(t, p, 1000, ids)
	for id := range ids {
		v := h.order(t, id)
		wantPaid := order2index[id]%3 != 0
		if (v.Status == order.StatusPaid) != wantPaid {
			t.Errorf("order %d is %s", order2index[id], v.Status)
		}
		if requested := h.paymentRequests(t, id); requested != 1 {
			t.Errorf("order %d: %d payment requests recorded", order2index[id], requested)
		}
		h.provider.mu.Lock()
		if v.PaymentID != h.provider.byKey[id.String()] {
			t.Errorf("order %d records payment %s, the provider %s", order2index[id], v.PaymentID, h.provider.byKey[id.String()])
		}
		h.provider.mu.Unlock()
	}
	if _, payments, _ := h.provider.count(); payments != n {
		t.Fatalf("%d payments for %d orders", payments, n)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
