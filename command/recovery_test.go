package command_test

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
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/eventually"
)

var errCrash = errors.New("injected crash")

// crashAt returns an AfterStep hook that fails the nth time step happens.
func crashAt(step string, nth int) func(context.Context, string, uuid.UUID) error {
	seen := 0
	return func(_ context.Context, s string, _ uuid.UUID) error {
		if s != step {
			return nil
		}
		seen++
		if seen == nth {
			return errCrash
		}
		return nil
	}
}

// runRecovery runs a Recovery that completes any undecided placement at
// once, until the test ends.
func runRecovery(t *testing.T, svc *command.Service, store command.Subscriber) *command.Recovery {
	t.Helper()
	r := command.NewRecovery(svc, store, command.RecoveryOptions{After: time.Nanosecond, Every: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("recovery: %v", err)
		}
	})
	return r
}

// A placement killed after any step ends reserved (if stock allows) or
// rejected with all its stock back, once Recovery has run: never with stock
// held by an order nobody will complete.
func TestCrashAfterEachPlacementStep(t *testing.T) {
	t.Parallel()
	cases := []struct {
		step        string
		nth         int
		scarce      bool // the second product lacks stock
		want        order.Status
		wantHeld    [2]int64
		description string
	}{
		{command.StepPlaced, 1, false, order.StatusReserved, [2]int64{2, 3}, "after order.placed"},
		{command.StepReserved, 1, false, order.StatusReserved, [2]int64{2, 3}, "after the first reservation"},
		{command.StepReserved, 2, false, order.StatusReserved, [2]int64{2, 3}, "after the last reservation"},
		{command.StepDecided, 1, false, order.StatusReserved, [2]int64{2, 3}, "after order.reserved"},
		{command.StepPlaced, 1, true, order.StatusRejected, [2]int64{0, 0}, "after order.placed, stock short"},
		{command.StepReserved, 1, true, order.StatusRejected, [2]int64{0, 0}, "holding one reservation, stock short"},
		{command.StepDecided, 1, true, order.StatusRejected, [2]int64{0, 0}, "after order.rejected, before releasing"},
	}
	for _, c := range cases {
		t.Run(c.description, func(t *testing.T) {
			t.Parallel()
			store := newStore(t)
			crashing := command.NewService(store, command.Options{AfterStep: crashAt(c.step, c.nth)})
			p1, p2 := newProduct(t, crashing, 10), newProduct(t, crashing, 10)
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
			_, err := place(crashing, ctxT(t), "crash-key", "a@example.com", lines...)
			if !errors.Is(err, errCrash) {
				t.Fatalf("placement did not crash at %s #%d: %v", c.step, c.nth, err)
			}

			// A fresh process: new caches, and Recovery catching up from the start.
			svc := command.NewService(store, command.Options{})
			runRecovery(t, svc, store)
			id := svc.OrderIDForKey("a@example.com", "crash-key")
			eventually.True(t, fmt.Sprintf("order is %s with stock settled", c.want), func() bool {
				if orderOf(t, store, id).Status != c.want {
					return false
				}
				s1, s2 := stockOf(t, store, p1), stockOf(t, store, p2)
				h1, _ := s1.ReservedFor(id)
				h2, _ := s2.ReservedFor(id)
				return h1 == c.wantHeld[0] && h2 == c.wantHeld[1] &&
					s1.Available+s1.Reserved == 10 && s2.Available+s2.Reserved == 10
			})
			// The customer's retry with the same key sees the outcome.
			v, err := place(svc, ctxT(t), "crash-key", "a@example.com", lines...)
			var rej *command.RejectedError
			switch c.want {
			case order.StatusReserved:
				if err != nil || v.Status != order.StatusReserved {
					t.Fatalf("retry after recovery: %+v, %v", v, err)
				}
			case order.StatusRejected:
				if !errors.As(err, &rej) {
					t.Fatalf("retry after recovery: %v", err)
				}
			}
		})
	}
}

// A reservation that lands after its order was canceled is released.
func TestLateReservationForClosedOrderIsReleased(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	svc := command.NewService(store, command.Options{})
	p1, p2 := newProduct(t, svc, 5), newProduct(t, svc, 5)
	v, err := place(svc, ctxT(t), "", "a@example.com", order.Line{ProductID: p1, Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CancelOrder(ctxT(t), v.ID, customer); err != nil {
		t.Fatal(err)
	}
	// A placer that lost the race reserves for the canceled order.
	if _, _, err := svc.Stock().Do(ctxT(t), p2, customer, func(p *product.State) ([]events.Event, error) {
		return p.Reserve(v.ID, 2)
	}); err != nil {
		t.Fatal(err)
	}
	if st := stockOf(t, store, p2); st.Reserved != 2 {
		t.Fatalf("setup: reserved %d", st.Reserved)
	}
	runRecovery(t, command.NewService(store, command.Options{}), store)
	eventually.True(t, "the late reservation is released", func() bool {
		st := stockOf(t, store, p2)
		return st.Reserved == 0 && st.Available == 5
	})
}

// flakyStore fails the first reads it is asked for, as a database that is
// briefly away would.
type flakyStore struct {
	*postgres.Store
	failures atomic.Int32
}

func (f *flakyStore) ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, errors.New("connection reset by peer")
	}
	return f.Store.ReadStream(ctx, stream, dir, from, limit)
}

// Recovery rides out database errors instead of stopping (a stopped
// Recovery would take the server down with it).
func TestRecoveryRetriesAfterErrors(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	svc := command.NewService(store, command.Options{})
	p1, p2 := newProduct(t, svc, 5), newProduct(t, svc, 5)
	v, err := place(svc, ctxT(t), "", "a@example.com", order.Line{ProductID: p1, Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CancelOrder(ctxT(t), v.ID, customer); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Stock().Do(ctxT(t), p2, customer, func(p *product.State) ([]events.Event, error) {
		return p.Reserve(v.ID, 2)
	}); err != nil {
		t.Fatal(err)
	}
	flaky := &flakyStore{Store: store}
	flaky.failures.Store(3)
	runRecovery(t, command.NewService(flaky, command.Options{}), store)
	eventually.True(t, "the late reservation is released despite read errors", func() bool {
		st := stockOf(t, store, p2)
		return st.Reserved == 0 && st.Available == 5
	})
	if flaky.failures.Load() >= 0 {
		t.Fatal("the store never failed: the test did not test anything")
	}
}

// The hardest mix: three instances place orders (some crash mid-way),
// customers cancel orders while they are still being placed, and Recovery
// runs twice over. Afterwards every order has one outcome, stock adds up,
// and only reserved orders hold stock.
func TestChaosPlacementsCancelsCrashesRecovery(t *testing.T) {
	t.Parallel()
	store := newStore(t)
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
		command.NewService(store, command.Options{}),
		command.NewService(store, command.Options{AfterStep: crashy()}),
		command.NewService(store, command.Options{AfterStep: crashy()}),
	}
	const initial = 20
	products := make([]uuid.UUID, 3)
	for i := range products {
		products[i] = newProduct(t, instances[0], initial)
	}
	runRecovery(t, command.NewService(store, command.Options{}), store)
	runRecovery(t, command.NewService(store, command.Options{}), store)

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
						_, _ = instances[(w+1)%len(instances)].CancelOrder(ctxT(t), id, customer)
					}()
				}
				perm := rand.Perm(len(products))[:1+rand.IntN(2)]
				var lines []order.Line
				for _, k := range perm {
					lines = append(lines, order.Line{ProductID: products[k], Quantity: 1 + rand.Int64N(3)})
				}
				_, err := place(svc, ctxT(t), key, email, lines...)
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
			o := orderOf(t, store, id)
			switch o.Status {
			case order.StatusCreated:
				return false // Recovery has not finished it yet
			case order.StatusReserved:
				for _, it := range o.Items {
					if hold[it.ProductID] == nil {
						hold[it.ProductID] = map[uuid.UUID]int64{}
					}
					hold[it.ProductID][id] = it.Quantity
				}
			}
		}
		for _, p := range products {
			st := stockOf(t, store, p)
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
}
