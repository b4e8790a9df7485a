package process_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/process"
	"github.com/orders-reference/orders/projections"
)

// The process manager is the one owner of the reactions that a crash could
// leave undone: completing an interrupted placement, releasing what a
// rejected or canceled order holds, and releasing a reservation that
// arrives after its order's placement was decided. These tests kill
// placements at every step and race completers against each other.

var errCrash = errors.New("injected crash")

var customerMeta = eventstore.Metadata{Actor: events.ActorCustomer, CorrelationID: "test"}

// crashAt returns an AfterStep hook that fails the nth time step happens.
func crashAt(step string, nth int) func(context.Context, string, uuid.UUID) error {
	var seen atomic.Int64
	return func(_ context.Context, s string, _ uuid.UUID) error {
		if s == step && seen.Add(1) == int64(nth) {
			return errCrash
		}
		return nil
	}
}

// realTime makes the harness's manager run on the wall clock with a tiny
// placement grace, so interrupted placements are completed at once.
func realTime(h *harness) *harness {
	h.clock = nil
	h.placementGrace = time.Millisecond
	return h
}

func placeKeyed(svc *command.Service, key, email string, lines ...order.Line) (command.OrderView, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return svc.PlaceOrder(ctx, command.PlaceOrder{IdempotencyKey: key, UserEmail: email, Lines: lines, Meta: customerMeta})
}

// releases returns the reasons of the releases of order id on product p.
func (h *harness) releases(t *testing.T, p, id uuid.UUID) (reasons []string, actors []string) {
	t.Helper()
	recorded, err := h.store.ReadStream(context.Background(), events.ProductStream(p), eventstore.Forward, 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recorded {
		if r.Type != events.TypeProductReservationReleased {
			continue
		}
		e, err := events.Decode(r.Type, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		if rel := e.(events.ProductReservationReleased); rel.OrderID == id {
			reasons, actors = append(reasons, rel.Reason), append(actors, r.Metadata.Actor)
		}
	}
	return reasons, actors
}

// exactlyOneSettlementPerReservation fails the test if, on product p, any
// order has more settlements (releases + commits) than reservations, or a
// settled reservation left open.
func (h *harness) exactlyOneSettlementPerReservation(t *testing.T, p uuid.UUID) {
	t.Helper()
	st := h.stock(t, p)
	for id, n := range h.productEvents(t, p) {
		reserved := n[events.TypeProductStockReserved]
		settled := n[events.TypeProductReservationReleased] + n[events.TypeProductReservationCommitted]
		_, open := st.ReservedFor(id)
		if settled+btoi(open) != reserved {
			t.Fatalf("product %s, order %s: %d reservations, %d settlements, open %v", p, id, reserved, settled, open)
		}
	}
}

// A placement killed after any step ends reserved (if stock allows) or
// rejected with all its stock back, once the process manager has run, never
// with stock held by an order nobody will complete; each release says why.
func TestCrashAfterEachPlacementStep(t *testing.T) {
	t.Parallel()
	cases := []struct {
		step        string
		nth         int
		scarce      bool // the second product lacks stock
		want        order.Status
		wantHeld    [2]int64
		wantReason  string // of the release of the first product, if any
		description string
	}{
		{command.StepPlaced, 1, false, order.StatusReserved, [2]int64{2, 3}, "", "after order.placed"},
		{command.StepReserved, 1, false, order.StatusReserved, [2]int64{2, 3}, "", "after the first reservation"},
		{command.StepReserved, 2, false, order.StatusReserved, [2]int64{2, 3}, "", "after the last reservation"},
		{command.StepDecided, 1, false, order.StatusReserved, [2]int64{2, 3}, "", "after order.reserved"},
		{command.StepPlaced, 1, true, order.StatusRejected, [2]int64{0, 0}, events.ReleasePlacementAbandoned, "after order.placed, stock short"},
		{command.StepReserved, 1, true, order.StatusRejected, [2]int64{0, 0}, events.ReleasePlacementAbandoned, "holding one reservation, stock short"},
		{command.StepDecided, 1, true, order.StatusRejected, [2]int64{0, 0}, events.ReleaseInsufficientStock, "after order.rejected, before releasing"},
	}
	for _, c := range cases {
		t.Run(c.description, func(t *testing.T) {
			t.Parallel()
			h := realTime(newHarness(t))
			crashing := command.NewService(h.store, command.Options{AfterStep: crashAt(c.step, c.nth)})
			p1, p2 := h.product(t, 10), h.product(t, 10)
			q2 := int64(3)
			if c.scarce {
				q2 = 11
			}
			// Reservations go in product id order; the cases count on p1's
			// coming first (UUIDv7 ids grow in creation order).
			if p2.String() < p1.String() {
				t.Fatalf("setup: product %s sorts before %s", p2, p1)
			}
			lines := []order.Line{{ProductID: p1, Quantity: 2}, {ProductID: p2, Quantity: q2}}
			if _, err := placeKeyed(crashing, "crash-key", "a@example.com", lines...); !errors.Is(err, errCrash) {
				t.Fatalf("placement did not crash at %s #%d: %v", c.step, c.nth, err)
			}
			id := h.svc.OrderIDForKey("a@example.com", "crash-key")

			// The process manager of a fresh process (its own caches).
			h.start(t)
			eventually.True(t, fmt.Sprintf("order is %s with stock settled", c.want), func() bool {
				v := h.order(t, id)
				if v.Status != c.want && !(c.want == order.StatusReserved && v.Status == order.StatusPaymentPending) {
					return false
				}
				s1, s2 := h.stock(t, p1), h.stock(t, p2)
				if s1.Available+s1.Reserved != 10 || s2.Available+s2.Reserved != 10 {
					t.Fatalf("stock not conserved: %d+%d, %d+%d", s1.Available, s1.Reserved, s2.Available, s2.Reserved)
				}
				h1, _ := s1.ReservedFor(id)
				h2, _ := s2.ReservedFor(id)
				return h1 == c.wantHeld[0] && h2 == c.wantHeld[1]
			})
			reasons, _ := h.releases(t, p1, id)
			switch {
			case c.wantReason == "" && len(reasons) != 0:
				t.Fatalf("releases %v, want none", reasons)
			case c.wantReason != "" && (len(reasons) != 1 || reasons[0] != c.wantReason):
				t.Fatalf("releases of the first product %v, want exactly one %q", reasons, c.wantReason)
			}
			h.exactlyOneSettlementPerReservation(t, p1)
			h.exactlyOneSettlementPerReservation(t, p2)

			// The customer's retry with the same key sees the outcome.
			v, err := placeKeyed(h.svc, "crash-key", "a@example.com", lines...)
			var rej *command.RejectedError
			switch c.want {
			case order.StatusReserved:
				if err != nil || v.ID != id {
					t.Fatalf("retry after completion: %+v, %v", v, err)
				}
			case order.StatusRejected:
				if !errors.As(err, &rej) {
					t.Fatalf("retry after completion: %v", err)
				}
			}
		})
	}
}

// A reservation that lands after its order was canceled is released once,
// saying so; so is one that lands after the order was paid and its stock
// sold (the product no longer remembers settled orders).
func TestReservationAfterCloseIsReleased(t *testing.T) {
	t.Parallel()
	h := realTime(newHarness(t))
	h.start(t)
	p1, p2 := h.product(t, 5), h.product(t, 5)

	canceled := h.place(t, p1, 1)
	if _, err := h.svc.CancelOrder(context.Background(), canceled, customerMeta); err != nil {
		t.Fatal(err)
	}
	paid := h.place(t, p1, 1)
	h.waitStatus(t, paid, order.StatusPaymentPending)
	h.succeed(t, paid, "msg-paid", true)
	eventually.True(t, "the paid order's stock is sold", func() bool { return h.settled(t, paid, p1) })

	// Completers that lost the race reserve for both closed orders.
	for _, c := range []struct {
		id uuid.UUID
		p  uuid.UUID
	}{{canceled, p2}, {paid, p1}} {
		if _, _, err := h.svc.Stock().Do(context.Background(), c.p, customerMeta, func(p *product.State) ([]events.Event, error) {
			return p.Reserve(c.id, 2)
		}); err != nil {
			t.Fatal(err)
		}
	}
	eventually.True(t, "the late reservations are released", func() bool {
		s1, s2 := h.stock(t, p1), h.stock(t, p2)
		return s1.Reserved == 0 && s1.Available == 4 && s2.Reserved == 0 && s2.Available == 5
	})
	for _, c := range []struct {
		id, p uuid.UUID
		want  []string
	}{
		{canceled, p1, []string{events.ReleaseCustomerCanceled}},
		{canceled, p2, []string{events.ReleaseReservationAfterClose}},
		{paid, p1, []string{events.ReleaseReservationAfterClose}},
	} {
		reasons, actors := h.releases(t, c.p, c.id)
		if fmt.Sprint(reasons) != fmt.Sprint(c.want) {
			t.Fatalf("order %s on %s: releases %v, want %v", c.id, c.p, reasons, c.want)
		}
		if c.want[0] == events.ReleaseReservationAfterClose && actors[0] != events.ActorSystem {
			t.Fatalf("a stray release by %q, want the system", actors[0])
		}
	}
	h.exactlyOneSettlementPerReservation(t, p1)
	h.exactlyOneSettlementPerReservation(t, p2)
	eventually.True(t, "the work list empties", func() bool { return h.tasks(t) == 0 })
	var open int
	if err := h.pool.QueryRow(context.Background(), `SELECT count(*) FROM process_open_placements`).Scan(&open); err != nil || open != 0 {
		t.Fatalf("open placements left: %d, %v", open, err)
	}
}

// Each reason of a release is the order's true one, and there is exactly
// one release per reservation although a command and the process manager
// both try: a customer's cancel, a failed payment, a timeout.
func TestReleaseReasons(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(t)
	p := h.product(t, 10)

	canceled := h.place(t, p, 1)
	if _, err := h.svc.CancelOrder(context.Background(), canceled, customerMeta); err != nil {
		t.Fatal(err)
	}
	failed := h.place(t, p, 1)
	h.waitStatus(t, failed, order.StatusPaymentPending)
	h.succeed(t, failed, "msg-failed", false)
	timedOut := h.place(t, p, 1)
	h.waitStatus(t, timedOut, order.StatusPaymentPending)
	h.clock.Advance(time.Hour)
	for _, id := range []uuid.UUID{canceled, failed, timedOut} {
		eventually.True(t, "the order is canceled with its stock back", func() bool { return h.settled(t, id, p) })
	}
	eventually.True(t, "the work list empties", func() bool { return h.tasks(t) == 0 })
	for id, want := range map[uuid.UUID]string{
		canceled: events.ReleaseCustomerCanceled, failed: events.ReleasePaymentFailed, timedOut: events.ReleasePaymentTimeout,
	} {
		if reasons, _ := h.releases(t, p, id); len(reasons) != 1 || reasons[0] != want {
			t.Fatalf("order %s: releases %v, want exactly one %q", id, reasons, want)
		}
	}
	h.exactlyOneSettlementPerReservation(t, p)
}

// flakyStore fails the first reads it is asked for, as a database that is
// briefly away would.
type flakyStore struct {
	eventstore.Store
	failures atomic.Int32
}

func (f *flakyStore) ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, errors.New("connection reset by peer")
	}
	return f.Store.ReadStream(ctx, stream, dir, from, limit)
}

// The completion of an interrupted placement rides out database errors:
// it is retried, never parked, never skipped.
func TestCompletionRetriesAfterErrors(t *testing.T) {
	t.Parallel()
	h := realTime(newHarness(t))
	h.backoff = []time.Duration{time.Millisecond}
	crashing := command.NewService(h.store, command.Options{AfterStep: crashAt(command.StepPlaced, 1)})
	p := h.product(t, 5)
	if _, err := placeKeyed(crashing, "k", "a@example.com", order.Line{ProductID: p, Quantity: 2}); !errors.Is(err, errCrash) {
		t.Fatalf("placement did not crash: %v", err)
	}
	flaky := &flakyStore{Store: h.store}
	flaky.failures.Store(6)
	h.svc = command.NewService(flaky, command.Options{})
	h.start(t)
	id := h.svc.OrderIDForKey("a@example.com", "k")
	eventually.True(t, "the placement is completed despite read errors", func() bool {
		st := h.stock(t, p)
		held, _ := st.ReservedFor(id)
		return held == 2
	})
	if flaky.failures.Load() >= 0 {
		t.Fatal("the store never failed: the test did not test anything")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.steps[process.KindCompletePlacement+"/parked"] != 0 || h.steps[process.KindCompletePlacement+"/retry"] == 0 {
		t.Fatalf("steps %v: want the completion retried, never parked", h.steps)
	}
}

// The hardest mix: three instances place orders (two crash now and then),
// customers cancel orders while they are still being placed, and two
// process managers compete. Afterwards every order has one outcome, stock
// adds up, only live orders hold stock, and every reservation was settled
// at most once.
func TestChaosPlacementsCancelsCrashes(t *testing.T) {
	t.Parallel()
	h := realTime(newHarness(t))
	h.provider.setDown(true) // keep reserved orders reserved: this test is about placement
	crashy := func() func(context.Context, string, uuid.UUID) error {
		var n atomic.Int64
		return func(context.Context, string, uuid.UUID) error {
			if n.Add(1)%17 == 0 {
				return errCrash
			}
			return nil
		}
	}
	instances := []*command.Service{
		command.NewService(h.store, command.Options{}),
		command.NewService(h.store, command.Options{AfterStep: crashy()}),
		command.NewService(h.store, command.Options{AfterStep: crashy()}),
	}
	const initial = 20
	products := make([]uuid.UUID, 3)
	for i := range products {
		products[i] = h.product(t, initial)
	}
	h.start(t)
	h.start(t)

	type placed struct{ email, key string }
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		all []placed
	)
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := instances[w%len(instances)]
			for i := range 12 {
				email, key := fmt.Sprintf("w%d@example.com", w), fmt.Sprintf("k%d", i)
				mu.Lock()
				all = append(all, placed{email, key})
				mu.Unlock()
				if i%3 == 2 { // cancel an order of this worker that may still be in flight
					wg.Add(1)
					go func() {
						defer wg.Done()
						id := svc.OrderIDForKey(email, fmt.Sprintf("k%d", i-1))
						_, _ = instances[(w+1)%len(instances)].CancelOrder(context.Background(), id, customerMeta)
					}()
				}
				perm := rand.Perm(len(products))[:1+rand.IntN(2)]
				var lines []order.Line
				for _, k := range perm {
					lines = append(lines, order.Line{ProductID: products[k], Quantity: 1 + rand.Int64N(3)})
				}
				_, err := placeKeyed(svc, key, email, lines...)
				var rej *command.RejectedError
				if err != nil && !errors.Is(err, errCrash) && !errors.As(err, &rej) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()

	ids := make([]uuid.UUID, len(all))
	for i, p := range all {
		ids[i] = instances[0].OrderIDForKey(p.email, p.key)
	}
	eventually.True(t, "every order is decided and stock matches the orders", func() bool {
		hold := map[uuid.UUID]map[uuid.UUID]int64{}
		for _, id := range ids {
			o, err := h.svc.Order(context.Background(), id)
			if errors.Is(err, order.ErrNotFound) {
				continue // crashed before order.placed was stored
			}
			if err != nil {
				t.Fatal(err)
			}
			switch o.Status {
			case order.StatusCreated:
				return false // not completed yet
			case order.StatusReserved, order.StatusPaymentPending:
				for _, it := range o.Items {
					if hold[it.ProductID] == nil {
						hold[it.ProductID] = map[uuid.UUID]int64{}
					}
					hold[it.ProductID][id] = it.Quantity
				}
			}
		}
		for _, p := range products {
			st := h.stock(t, p)
			if st.Available < 0 || st.Available+st.Reserved != initial {
				t.Fatalf("product %s: available %d + reserved %d != %d", p, st.Available, st.Reserved, initial)
			}
			var want int64
			for _, q := range hold[p] {
				want += q
			}
			if st.Reserved != want {
				return false // a release may still be on its way
			}
			for id, q := range hold[p] {
				if got, ok := st.ReservedFor(id); !ok || got != q {
					return false
				}
			}
		}
		return true
	})
	for _, p := range products {
		h.exactlyOneSettlementPerReservation(t, p)
	}
}

// A rejected attempt costs its two order events and nothing in the work
// list when it reserved nothing (the usual refusal of a sold-out product);
// one that did reserve gets its backstop release, which finds nothing left
// because the placer released synchronously.
func TestRejectionThatReservedNothingCostsNoStep(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(t)
	plenty, soldOut := h.product(t, 10), h.product(t, 0)
	if soldOut.String() < plenty.String() {
		t.Fatal("setup: products sort the wrong way") // UUIDv7 ids grow in creation order
	}
	for i := range 5 {
		_, err := placeKeyed(h.svc, fmt.Sprint("none-", i), "a@example.com", order.Line{ProductID: soldOut, Quantity: 1})
		var rej *command.RejectedError
		if !errors.As(err, &rej) {
			t.Fatalf("placement %d: %v", i, err)
		}
	}
	// The scheduler has seen everything above once it schedules this
	// order's payment.
	first := h.place(t, plenty, 1)
	h.waitStatus(t, first, order.StatusPaymentPending)
	h.mu.Lock()
	steps := fmt.Sprint(h.steps)
	releases := h.steps[process.KindReleaseStock+"/done"]
	h.mu.Unlock()
	if releases != 0 {
		t.Fatalf("steps %s: a rejection that reserved nothing ran a release", steps)
	}
	// The payment step's row goes once its worker records it done.
	eventually.True(t, "no step but the payment timeout in the work list", func() bool {
		var rows int
		if err := h.pool.QueryRow(context.Background(), `SELECT count(*) FROM process_tasks WHERE kind <> $1`, process.KindPaymentTimeout).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		return rows == 0
	})
	h.mu.Lock()
	releases = h.steps[process.KindReleaseStock+"/done"] + h.steps[process.KindReleaseStock+"/retry"]
	h.mu.Unlock()
	if releases != 0 {
		t.Fatal("a rejection that reserved nothing ran a release")
	}

	// plenty sorts first: this placement reserves it, then is refused.
	_, err := placeKeyed(h.svc, "one-held", "a@example.com", order.Line{ProductID: soldOut, Quantity: 1}, order.Line{ProductID: plenty, Quantity: 2})
	var rej *command.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("placement: %v", err)
	}
	eventually.True(t, "the backstop release to run", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.steps[process.KindReleaseStock+"/done"] == 1
	})
	if reasons, _ := h.releases(t, plenty, rej.Order.ID); len(reasons) != 1 || reasons[0] != events.ReleaseInsufficientStock {
		t.Fatalf("releases %v, want exactly one %q", reasons, events.ReleaseInsufficientStock)
	}
	h.exactlyOneSettlementPerReservation(t, plenty)
}

// StartAt begins an idle process manager after a history written in bulk,
// and refuses one that has run or has work.
func TestStartAt(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	p := h.product(t, 5)
	head, err := h.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := process.StartAt(context.Background(), h.pool, "", head); err != nil {
		t.Fatal(err)
	}
	if err := process.StartAt(context.Background(), h.pool, "", head); !errors.Is(err, projections.ErrCheckpointExists) {
		t.Fatalf("a second start: %v", err)
	}
	h.start(t)
	id := h.place(t, p, 1)
	h.waitStatus(t, id, order.StatusPaymentPending)
	if err := process.StartAt(context.Background(), h.pool, "", head); !errors.Is(err, process.ErrNotIdle) {
		t.Fatalf("a start with work in the list: %v", err)
	}
}

// A provider that hangs holds up payments only: with every provider slot
// taken by a request the provider does not answer, an interrupted
// placement is still completed and its stock reserved.
func TestHangingProviderHoldsUpNoStockStep(t *testing.T) {
	t.Parallel()
	h := realTime(newHarness(t))
	h.provider.gate, h.provider.entered = make(chan struct{}), make(chan struct{}, 64)
	h.start(t)
	p := h.product(t, 100)
	for range 66 {
		h.place(t, p, 1)
	}
	eventually.True(t, "every provider slot to be taken", func() bool {
		h.provider.mu.Lock()
		defer h.provider.mu.Unlock()
		return h.provider.inFlight == 64
	})
	crashing := command.NewService(h.store, command.Options{AfterStep: crashAt(command.StepPlaced, 1)})
	if _, err := placeKeyed(crashing, "hung", "a@example.com", order.Line{ProductID: p, Quantity: 2}); !errors.Is(err, errCrash) {
		t.Fatalf("placement did not crash: %v", err)
	}
	id := h.svc.OrderIDForKey("a@example.com", "hung")
	eventually.True(t, "the placement to be completed", func() bool {
		held, _ := h.stock(t, p).ReservedFor(id)
		return held == 2
	})
	h.provider.mu.Lock()
	held := h.provider.inFlight
	h.provider.mu.Unlock()
	if held != 64 {
		t.Fatalf("the completion waited for the provider's slots to free (%d requests still held)", held)
	}
	close(h.provider.gate)
}
