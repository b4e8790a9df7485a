package command_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/eventtest"
	"github.com/orders-reference/orders/internal/pgtest"
)

// newStore returns a PostgreSQL event store on a fresh database.
func newStore(t *testing.T) *postgres.Store {
	t.Helper()
	s := postgres.New(pgtest.NewPool(t, 12), postgres.Options{PollInterval: 100 * time.Millisecond})
	t.Cleanup(s.Close)
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var customer = eventstore.Metadata{Actor: events.ActorCustomer, CorrelationID: "test"}

func newProduct(t *testing.T, svc *command.Service, stock int64) uuid.UUID {
	t.Helper()
	v, err := svc.CreateProduct(ctxT(t), command.CreateProduct{Name: "Laptop", Price: 150000, Stock: stock, Meta: customer})
	if err != nil {
		t.Fatal(err)
	}
	return v.ID
}

// stockOf reads a product straight from its stream (no cache).
func stockOf(t *testing.T, store command.EventStore, id uuid.UUID) *product.State {
	t.Helper()
	st := product.New(id)
	eventtest.Load(t, store, events.ProductStream(id), st.Apply)
	return st
}

// orderOf reads an order straight from its stream.
func orderOf(t *testing.T, store command.EventStore, id uuid.UUID) *order.State {
	t.Helper()
	st := order.New(id)
	eventtest.Load(t, store, events.OrderStream(id), st.Apply)
	return st
}

func place(svc *command.Service, ctx context.Context, key, email string, lines ...order.Line) (command.OrderView, error) {
	return svc.PlaceOrder(ctx, command.PlaceOrder{IdempotencyKey: key, UserEmail: email, Lines: lines, Meta: customer})
}

// Stock 1, 100 concurrent orders: exactly one wins, the rest are rejected
// as insufficient, and the one unit is reserved once.
func TestLastUnitGoesToExactlyOneOrder(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	svc := command.NewService(store, command.Options{})
	p := newProduct(t, svc, 1)

	const n = 100
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		won      []uuid.UUID
		rejected int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := place(svc, ctxT(t), "", fmt.Sprintf("c%d@example.com", i), order.Line{ProductID: p, Quantity: 1})
			mu.Lock()
			defer mu.Unlock()
			var rej *command.RejectedError
			switch {
			case err == nil:
				if v.Status != order.StatusReserved {
					t.Errorf("successful order in status %s", v.Status)
				}
				won = append(won, v.ID)
			case errors.As(err, &rej) && rej.Reason == events.RejectInsufficientStock && len(rej.Insufficient) == 1 && rej.Insufficient[0] == p:
				rejected++
			default:
				t.Errorf("order %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 || rejected != n-1 {
		t.Fatalf("%d orders won and %d were rejected; want 1 and %d", len(won), rejected, n-1)
	}
	st := stockOf(t, store, p)
	if st.Available != 0 || st.Reserved != 1 {
		t.Fatalf("product: available %d, reserved %d", st.Available, st.Reserved)
	}
	if q, ok := st.ReservedFor(won[0]); !ok || q != 1 {
		t.Fatalf("the winner holds %d (%v)", q, ok)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	svc := command.NewService(store, command.Options{})
	p := newProduct(t, svc, 100)
	ctx := ctxT(t)
	line := order.Line{ProductID: p, Quantity: 3}

	first, err := place(svc, ctx, "key-1", "a@example.com", line)
	if err != nil {
		t.Fatal(err)
	}
	again, err := place(svc, ctx, "key-1", " A@Example.com", line)
	if err != nil || again.ID != first.ID || again.Status != first.Status || again.Total != first.Total {
		t.Fatalf("replay: %+v, %v; want %+v", again, err, first)
	}
	if _, err := place(svc, ctx, "key-1", "a@example.com", order.Line{ProductID: p, Quantity: 4}); !errors.Is(err, command.ErrIdempotencyConflict) {
		t.Fatalf("same key, other body: %v", err)
	}
	if st := stockOf(t, store, p); st.Reserved != 3 || st.Available != 97 {
		t.Fatalf("after replays: reserved %d, available %d", st.Reserved, st.Available)
	}

	// 50 concurrent requests with one key: one order, stock reserved once.
	var wg sync.WaitGroup
	ids := make(chan uuid.UUID, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := place(svc, ctxT(t), "key-2", "b@example.com", order.Line{ProductID: p, Quantity: 5})
			if err != nil {
				t.Error(err)
				return
			}
			ids <- v.ID
		}()
	}
	wg.Wait()
	close(ids)
	want := svc.OrderIDForKey("b@example.com", "key-2")
	for id := range ids {
		if id != want {
			t.Fatalf("concurrent replay returned order %s, want %s", id, want)
		}
	}
	if st := stockOf(t, store, p); st.Reserved != 8 || st.Available != 92 {
		t.Fatalf("after 50 concurrent requests: reserved %d, available %d", st.Reserved, st.Available)
	}

	// Keys belong to their customer: another customer's "key-1" is a new order.
	other, err := place(svc, ctx, "key-1", "someone-else@example.com", line)
	if err != nil || other.ID == first.ID {
		t.Fatalf("another customer's key-1: %+v, %v", other, err)
	}

	// A rejected order replays as the same rejection.
	scarce := newProduct(t, svc, 1)
	_, err1 := place(svc, ctx, "key-3", "c@example.com", order.Line{ProductID: scarce, Quantity: 2})
	_, err2 := place(svc, ctx, "key-3", "c@example.com", order.Line{ProductID: scarce, Quantity: 2})
	var r1, r2 *command.RejectedError
	if !errors.As(err1, &r1) || !errors.As(err2, &r2) || r1.Order.ID != r2.Order.ID || r1.Reason != r2.Reason || len(r2.Insufficient) != 1 {
		t.Fatalf("rejection replay: %v / %v", err1, err2)
	}
}

func TestValidationAndUnknownProducts(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	svc := command.NewService(store, command.Options{})
	p := newProduct(t, svc, 5)
	ctx := ctxT(t)
	inactive := newProduct(t, svc, 5)
	if _, err := svc.UpdateProduct(ctx, inactive, product.Details{IsActive: ptr(false)}, customer); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]order.Line{
		"no items":         nil,
		"zero quantity":    {{ProductID: p, Quantity: 0}},
		"unknown product":  {{ProductID: uuid.New(), Quantity: 1}},
		"inactive product": {{ProductID: inactive, Quantity: 1}},
		"duplicate item":   {{ProductID: p, Quantity: 1}, {ProductID: p, Quantity: 1}},
	}
	for name, lines := range cases {
		var ve *command.ValidationError
		if _, err := place(svc, ctx, "", "a@example.com", lines...); !errors.As(err, &ve) || len(ve.Fields) == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if st := stockOf(t, store, p); st.Reserved != 0 || st.Available != 5 {
		t.Fatalf("invalid orders changed stock: %+v", st)
	}
}

func TestCancelReturnsStockOnce(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	svc := command.NewService(store, command.Options{})
	p1, p2 := newProduct(t, svc, 10), newProduct(t, svc, 10)
	ctx := ctxT(t)
	v, err := place(svc, ctx, "", "a@example.com", order.Line{ProductID: p1, Quantity: 2}, order.Line{ProductID: p2, Quantity: 3})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := svc.CancelOrder(ctxT(t), v.ID, customer)
			if err != nil || c.Status != order.StatusCanceled || c.CancelReason != events.CancelCustomer {
				t.Errorf("cancel: %+v, %v", c, err)
			}
		}()
	}
	wg.Wait()
	for _, p := range []uuid.UUID{p1, p2} {
		if st := stockOf(t, store, p); st.Available != 10 || st.Reserved != 0 {
			t.Fatalf("after cancel: available %d, reserved %d", st.Available, st.Reserved)
		}
	}
	if _, err := svc.CancelOrder(ctx, uuid.New(), customer); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("cancel of an unknown order: %v", err)
	}
	_, err = place(svc, ctx, "", "a@example.com", order.Line{ProductID: p1, Quantity: 11})
	var rej *command.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("oversized order: %v", err)
	}
	// The API shows a rejected placement as canceled: canceling it changes
	// nothing, and no stock moves (the rejection's own release stands).
	v, err = svc.CancelOrder(ctx, rej.Order.ID, customer)
	if err != nil || v.Status != order.StatusRejected || v.RejectReason != events.RejectInsufficientStock {
		t.Fatalf("cancel of a rejected order: %+v, %v", v, err)
	}
	if st := orderOf(t, store, rej.Order.ID); st.Status != order.StatusRejected || st.CancelReason != "" {
		t.Fatalf("rejected order after cancel: %s (%q)", st.Status, st.CancelReason)
	}
	if st := stockOf(t, store, p1); st.Available != 10 || st.Reserved != 0 {
		t.Fatalf("after canceling the rejected order: available %d, reserved %d", st.Available, st.Reserved)
	}
}

// A random mix of placements and cancels over a few products, from two
// service instances (separate caches) at once: stock is conserved, never
// negative, and what products hold matches what orders say.
func TestConservationUnderConcurrency(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	a := command.NewService(store, command.Options{})
	b := command.NewService(store, command.Options{}) // a second instance
	const initial = 15
	products := []uuid.UUID{newProduct(t, a, initial), newProduct(t, a, initial), newProduct(t, a, initial), newProduct(t, a, initial)}

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		placed []uuid.UUID
	)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := a
			if w%2 == 1 {
				svc = b
			}
			for i := range 15 {
				if i%4 == 3 {
					mu.Lock()
					var id uuid.UUID
					if len(placed) > 0 {
						id = placed[rand.IntN(len(placed))]
					}
					mu.Unlock()
					if id != uuid.Nil {
						if _, err := svc.CancelOrder(ctxT(t), id, customer); err != nil && !errors.Is(err, order.ErrIllegalTransition) {
							t.Error(err)
						}
					}
					continue
				}
				perm := rand.Perm(len(products))[:1+rand.IntN(3)]
				var lines []order.Line
				for _, k := range perm {
					lines = append(lines, order.Line{ProductID: products[k], Quantity: 1 + rand.Int64N(3)})
				}
				v, err := place(svc, ctxT(t), "", fmt.Sprintf("w%d@example.com", w), lines...)
				var rej *command.RejectedError
				switch {
				case err == nil:
					mu.Lock()
					placed = append(placed, v.ID)
					mu.Unlock()
				case errors.As(err, &rej):
					mu.Lock()
					placed = append(placed, rej.Order.ID)
					mu.Unlock()
				default:
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()

	wantReserved := map[uuid.UUID]int64{}
	for _, id := range placed {
		o := orderOf(t, store, id)
		if !o.Status.Terminal() && o.Status != order.StatusReserved {
			t.Errorf("order %s left in %s", id, o.Status)
		}
		if o.Status == order.StatusReserved {
			for _, it := range o.Items {
				wantReserved[it.ProductID] += it.Quantity
			}
		}
	}
	for _, p := range products {
		st := stockOf(t, store, p)
		if st.Available < 0 || st.Available+st.Reserved != initial || st.Reserved != wantReserved[p] {
			t.Errorf("product %s: available %d + reserved %d (orders hold %d), initial %d", p, st.Available, st.Reserved, wantReserved[p], initial)
		}
	}
}

// Many orders for one hot product share appends (group commit) and all
// succeed while stock lasts.
func TestHotProductGroupCommit(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	svc := command.NewService(store, command.Options{})
	const n = 200
	p := newProduct(t, svc, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := place(svc, ctxT(t), "", fmt.Sprintf("h%d@example.com", i), order.Line{ProductID: p, Quantity: 1}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	evs, err := store.ReadStream(ctxT(t), events.ProductStream(p), eventstore.Forward, 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	txs := map[uint64]bool{}
	for _, e := range evs[1:] {
		txs[e.Position.Commit] = true
	}
	if len(evs) != n+1 {
		t.Fatalf("%d product events, want %d reservations", len(evs)-1, n)
	}
	if len(txs) >= n {
		t.Fatalf("%d reservations took %d appends: nothing was combined", n, len(txs))
	}
	t.Logf("%d reservations in %d appends", n, len(txs))
	if st := stockOf(t, store, p); st.Available != 0 || st.Reserved != n {
		t.Fatalf("available %d, reserved %d", st.Available, st.Reserved)
	}
}

func ptr[T any](v T) *T { return &v }

// Two-item orders taking the same two products in opposite order, many at
// once: every one completes (no deadlock, no livelock) and stock adds up.
func TestOppositeProductOrderNeitherDeadlocksNorLivelocks(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	a := command.NewService(store, command.Options{})
	b := command.NewService(store, command.Options{})
	p1, p2 := newProduct(t, a, 1000), newProduct(t, a, 1000)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc, lines := a, []order.Line{{ProductID: p1, Quantity: 1}, {ProductID: p2, Quantity: 1}}
			if i%2 == 1 {
				svc, lines = b, []order.Line{{ProductID: p2, Quantity: 1}, {ProductID: p1, Quantity: 1}}
			}
			if v, err := place(svc, ctxT(t), "", fmt.Sprintf("x%d@example.com", i), lines...); err != nil || v.Status != order.StatusReserved {
				t.Errorf("order %d: %+v, %v", i, v.Status, err)
			}
		}()
	}
	wg.Wait()
	for _, p := range []uuid.UUID{p1, p2} {
		if st := stockOf(t, store, p); st.Reserved != 100 || st.Available != 900 {
			t.Fatalf("product %s: available %d, reserved %d", p, st.Available, st.Reserved)
		}
	}
}

// An instance whose cache says a product is inactive asks the store before
// refusing an order: another instance may have reactivated it.
func TestStaleInactiveProductIsRechecked(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	a, b := command.NewService(store, command.Options{}), command.NewService(store, command.Options{})
	p := newProduct(t, a, 5)
	if _, err := a.UpdateProduct(ctxT(t), p, product.Details{IsActive: ptr(false)}, customer); err != nil {
		t.Fatal(err)
	}
	if _, err := b.UpdateProduct(ctxT(t), p, product.Details{IsActive: ptr(true)}, customer); err != nil {
		t.Fatal(err)
	}
	if v, err := place(a, ctxT(t), "", "a@example.com", order.Line{ProductID: p, Quantity: 1}); err != nil || v.Status != order.StatusReserved {
		t.Fatalf("order on the stale instance: %+v, %v", v.Status, err)
	}
}

// Unknown product ids are not kept in the cache (they cost memory and
// anyone can send them).
func TestUnknownProductsAreNotCached(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	svc := command.NewService(store, command.Options{})
	for range 20 {
		if _, err := svc.Stock().View(ctxT(t), uuid.New()); !errors.Is(err, product.ErrNotFound) {
			t.Fatalf("unknown product: %v", err)
		}
	}
	if n := svc.Stock().Cached(); n != 0 {
		t.Fatalf("%d unknown products cached", n)
	}
}
