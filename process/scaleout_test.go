package process_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
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
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/process"
)

// tracker stands between every instance and the write side and the
// provider, and counts each order's calls in flight. A step's calls are
// sequential, so more than one call of an order in flight at once means
// two steps of that order running at once (in one instance or in two).

type tracker struct {
	mu       sync.Mutex
	inFlight map[uuid.UUID][]string // order -> its calls in flight
	max      int                    // the most calls of one order in flight
	overlaps []string               // the first few, for the failure message
	payments map[string]uuid.UUID   // payment id -> order, for refunds
}

func newTracker() *tracker {
	return &tracker{inFlight: map[uuid.UUID][]string{}, payments: map[string]uuid.UUID{}}
}

// enter counts a call of order id in flight until the returned leave.
func (tr *tracker) enter(id uuid.UUID, call string) (leave func()) {
	tr.mu.Lock()
	calls := append(tr.inFlight[id], call)
	tr.inFlight[id] = calls
	var overlap []string
	if len(calls) > 1 {
		overlap = slices.Clone(calls)
	} else {
		tr.max = max(tr.max, 1)
	}
	tr.mu.Unlock()
	if overlap != nil {
		tr.mu.Lock()
		tr.max = max(tr.max, len(overlap))
		if len(tr.overlaps) < 10 {
			tr.overlaps = append(tr.overlaps, fmt.Sprintf("order %s: %v", id, overlap))
		}
		tr.mu.Unlock()
	}
	return func() {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		calls := tr.inFlight[id]
		if i := slices.Index(calls, call); i >= 0 {
			calls = slices.Delete(calls, i, i+1)
		}
		if len(calls) == 0 {
			delete(tr.inFlight, id)
		} else {
			tr.inFlight[id] = calls
		}
	}
}

// busy counts the calls in flight of instance name.
func (tr *tracker) busy(name string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, calls := range tr.inFlight {
		for _, c := range calls {
			if strings.HasPrefix(c, name+":") {
				n++
			}
		}
	}
	return n
}

func (tr *tracker) result() (most int, overlaps []string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.max, slices.Clone(tr.overlaps)
}

// trackedOrders is one instance's write side, tracked.
type trackedOrders struct {
	tr   *tracker
	name string // the instance
	next process.Orders
}

func (o trackedOrders) Order(ctx context.Context, id uuid.UUID) (command.OrderView, error) {
	defer o.tr.enter(id, o.name+":Order")()
	return o.next.Order(ctx, id)
}

func (o trackedOrders) RequestPayment(ctx context.Context, id uuid.UUID, paymentID string, meta eventstore.Metadata) (command.OrderView, error) {
	defer o.tr.enter(id, o.name+":RequestPayment")()
	return o.next.RequestPayment(ctx, id, paymentID, meta)
}

func (o trackedOrders) RecordPayment(ctx context.Context, id uuid.UUID, outcome order.PaymentOutcome, meta eventstore.Metadata) (command.OrderView, error) {
	defer o.tr.enter(id, o.name+":RecordPayment")()
	return o.next.RecordPayment(ctx, id, outcome, meta)
}

func (o trackedOrders) TimeOutPayment(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) (command.OrderView, error) {
	defer o.tr.enter(id, o.name+":TimeOutPayment")()
	return o.next.TimeOutPayment(ctx, id, meta)
}

func (o trackedOrders) RecordRefund(ctx context.Context, id uuid.UUID, refundID string, meta eventstore.Metadata) (command.OrderView, error) {
	defer o.tr.enter(id, o.name+":RecordRefund")()
	return o.next.RecordRefund(ctx, id, refundID, meta)
}

func (o trackedOrders) CommitStock(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) error {
	defer o.tr.enter(id, o.name+":CommitStock")()
	return o.next.CommitStock(ctx, id, meta)
}

func (o trackedOrders) ReleaseStock(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) error {
	defer o.tr.enter(id, o.name+":ReleaseStock")()
	return o.next.ReleaseStock(ctx, id, meta)
}

func (o trackedOrders) CompletePlacement(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) (command.OrderView, error) {
	defer o.tr.enter(id, o.name+":CompletePlacement")()
	return o.next.CompletePlacement(ctx, id, meta)
}

func (o trackedOrders) ReleaseReservation(ctx context.Context, orderID, productID uuid.UUID, meta eventstore.Metadata) error {
	defer o.tr.enter(orderID, o.name+":ReleaseReservation")()
	return o.next.ReleaseReservation(ctx, orderID, productID, meta)
}

// trackedProvider is one instance's provider, tracked.
type trackedProvider struct {
	tr   *tracker
	name string
	next process.Provider
}

func (p trackedProvider) InitiatePayment(ctx context.Context, req payment.Request, key string) (payment.Payment, error) {
	defer p.tr.enter(req.OrderID, p.name+":InitiatePayment")()
	got, err := p.next.InitiatePayment(ctx, req, key)
	if err == nil {
		p.tr.mu.Lock()
		p.tr.payments[got.ID] = req.OrderID
		p.tr.mu.Unlock()
	}
	return got, err
}

func (p trackedProvider) Refund(ctx context.Context, paymentID, key string) (payment.Refund, error) {
	p.tr.mu.Lock()
	id := p.tr.payments[paymentID]
	p.tr.mu.Unlock()
	if id != uuid.Nil { // a payment no instance asked for: not an order's step
		defer p.tr.enter(id, p.name+":Refund")()
	}
	return p.next.Refund(ctx, paymentID, key)
}

func (p trackedProvider) PaymentByOrder(ctx context.Context, orderID uuid.UUID) (payment.Payment, error) {
	defer p.tr.enter(orderID, p.name+":PaymentByOrder")()
	return p.next.PaymentByOrder(ctx, orderID)
}

// fenceCounter counts the fences in the managers' logs.
type fenceCounter struct{ n *atomic.Int64 }

func (fenceCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }

func (f fenceCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "canceling this instance's steps") {
		f.n.Add(1)
	}
	return nil
}

func (f fenceCounter) WithAttrs([]slog.Attr) slog.Handler { return f }
func (f fenceCounter) WithGroup(string) slog.Handler      { return f }

// Two and three process managers share the steps of orders placed while
// they run, each on a pool of its own through a proxy of its own; every
// second or few one of them is cut off the database (its connections
// closed, or a partition that drops everything), for less or more than a
// lease, or killed and restarted with cold caches. Every order ends paid
// or canceled as its webhook said, with one payment request recorded and
// one payment at the provider, the stock is conserved, and no two steps
// of one order ever run at once.
func TestScaleOutUnderKills(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d instances", n), func(t *testing.T) { scaleOut(t, n, 150) })
	}
}

func scaleOut(t *testing.T, instances, orders int) {
	h := newHarness(t)
	h.clock = nil // the wall clock: retries and leases alike
	// A step that failed on a cut connection is retried soon, forever.
	h.backoff = slices.Repeat([]time.Duration{20 * time.Millisecond}, 1000)
	h.provider.delay = func() time.Duration { return 5*time.Millisecond + rand.N(15*time.Millisecond) }
	var fences atomic.Int64
	h.log = slog.New(fenceCounter{&fences})
	const stock = 1000
	products := make([]uuid.UUID, 4)
	for i := range products {
		products[i] = h.product(t, stock)
	}
	tr := newTracker()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	members := make([]*instance, instances)
	stops := make([]func(), instances) // the chaos goroutine's, then the test's
	// start runs a manager of instance i, with a command service of its
	// own (a new process: cold caches).
	start := func(i int) func() {
		in := members[i]
		m := h.managerOn(in.pool, in.store,
			trackedOrders{tr, in.name, command.NewService(in.store, command.Options{})},
			trackedProvider{tr, in.name, h.provider})
		lifeCtx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(lifeCtx) }()
		return func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("manager %s: %v", in.name, err)
			}
		}
	}
	for i := range members {
		members[i] = h.instance(t, fmt.Sprintf("%c", 'a'+i))
		stops[i] = start(i)
	}
	// Deferred, not a cleanup: it runs after a FailNow too, before the
	// instances' pools close.
	defer func() {
		cancel()
		wg.Wait()
		for i, in := range members {
			in.proxy.Restore()
			stops[i]()
		}
	}()

	// The chaos: one instance at a time cut off, or killed and restarted.
	var cuts, partitions, restarts atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		pause := func(min, spread time.Duration) bool {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(min + rand.N(spread)):
				return true
			}
		}
		// For less than fenceAfter (the instance keeps its leases), or
		// for more than a lease (it fences itself, the others take over).
		outage := func() time.Duration {
			if rand.IntN(2) == 0 {
				return 200*time.Millisecond + rand.N(600*time.Millisecond)
			}
			return 1600*time.Millisecond + rand.N(900*time.Millisecond)
		}
		for pause(500*time.Millisecond, time.Second) {
			i := rand.IntN(len(members))
			in := members[i]
			// Strike while the instance has steps in flight, if it gets
			// some within a second.
			for wait := time.Now().Add(time.Second); tr.busy(in.name) == 0 && time.Now().Before(wait) && ctx.Err() == nil; {
				time.Sleep(time.Millisecond)
			}
			switch rand.IntN(3) {
			case 0: // connections closed, new ones refused
				cuts.Add(1)
				in.proxy.Cut()
				pause(outage(), 1)
				in.proxy.Restore()
			case 1: // a partition: nothing gets through, nobody is told
				partitions.Add(1)
				in.proxy.Partition()
				pause(outage(), 1)
				in.proxy.Restore()
			default: // killed (its connections die with it), restarted
				restarts.Add(1)
				in.proxy.Cut()
				stops[i]()
				in.proxy.Restore()
				pause(50*time.Millisecond, 500*time.Millisecond)
				stops[i] = start(i)
			}
		}
	}()

	// Orders, placed while the managers run, over the products; every
	// third payment fails.
	type placed struct {
		product uuid.UUID
		qty     int64
		index   int
	}
	var (
		mu  sync.Mutex
		ids = map[uuid.UUID]placed{}
	)
	var placing sync.WaitGroup
	for g := range 2 {
		placing.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer placing.Done()
			for i := g; i < orders && ctx.Err() == nil; i += 2 {
				p, qty := products[i%len(products)], int64(1+i%3)
				v, err := h.svc.PlaceOrder(ctx, command.PlaceOrder{
					UserEmail: "scale@example.com", Lines: []order.Line{{ProductID: p, Quantity: qty}},
					Meta: eventstore.Metadata{CorrelationID: fmt.Sprintf("scale-%d", i), Actor: events.ActorCustomer},
				})
				if err != nil || v.Status != order.StatusReserved {
					t.Errorf("place order %d: %s %v", i, v.Status, err)
					return
				}
				mu.Lock()
				ids[v.ID] = placed{p, qty, i}
				mu.Unlock()
				if i/2%5 == 4 {
					// Pacing: orders come in bursts (so that many steps are
					// in flight at once), and for as long as the chaos
					// needs to hurt.
					time.Sleep(time.Duration(300+rand.IntN(300)) * time.Millisecond)
				}
			}
		}()
	}
	// The provider's webhooks, for the payments requested.
	wg.Add(1)
	go func() {
		defer wg.Done()
		sent := map[uuid.UUID]bool{}
		for ctx.Err() == nil {
			mu.Lock()
			var todo []uuid.UUID
			for id := range ids {
				if !sent[id] {
					todo = append(todo, id)
				}
			}
			mu.Unlock()
			for _, id := range todo {
				v, err := h.svc.Order(ctx, id)
				if err != nil || v.Status != order.StatusPaymentPending {
					continue
				}
				mu.Lock()
				ok := ids[id].index%3 != 0
				mu.Unlock()
				if _, err := h.svc.RecordPayment(ctx, id, order.PaymentOutcome{
					WebhookID: "msg_" + id.String(), PaymentID: v.PaymentID, Succeeded: ok, Amount: money.Amount(v.Total),
				}, eventstore.Metadata{Actor: events.ActorProvider}); err != nil {
					if ctx.Err() == nil {
						t.Errorf("webhook: %v", err)
					}
					continue
				}
				sent[id] = true
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()

	began := time.Now()
	placing.Wait()
	if t.Failed() {
		t.FailNow()
	}
	placedIn := time.Since(began)
	// settled: every order terminal, its stock settled, nothing left to do.
	settled := func() bool {
		for id := range ids {
			if v := h.order(t, id); !v.Status.Terminal() {
				return false
			}
		}
		if h.tasks(t) != 0 {
			return false
		}
		states := map[uuid.UUID]*product.State{}
		for _, p := range products {
			states[p] = h.stock(t, p)
		}
		for id, o := range ids {
			if _, held := states[o.product].ReservedFor(id); held {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(60 * time.Second)
	for !settled() {
		if time.Now().After(deadline) {
			for id, o := range ids {
				if v := h.order(t, id); !v.Status.Terminal() {
					t.Errorf("order %d is %s", o.index, v.Status)
				}
			}
			t.Fatalf("%d tasks left after %v", h.tasks(t), time.Since(began))
		}
		time.Sleep(50 * time.Millisecond) // a poll interval: settled decides
	}
	took := time.Since(began)
	cancel()
	wg.Wait()

	for _, p := range products {
		of := map[uuid.UUID]int64{}
		for id, o := range ids {
			if o.product == p {
				of[id] = o.qty
			}
		}
		h.checkConservation(t, p, stock, of)
	}
	for id, o := range ids {
		v := h.order(t, id)
		if want := o.index%3 != 0; (v.Status == order.StatusPaid) != want {
			t.Errorf("order %d is %s, its payment succeeded: %v", o.index, v.Status, want)
		}
		if requested := h.paymentRequests(t, id); requested != 1 {
			t.Errorf("order %d: %d payment requests recorded", o.index, requested)
		}
		if pay := h.providerPayment(id); pay == "" || v.PaymentID != pay {
			t.Errorf("order %d records payment %q, the provider holds %q", o.index, v.PaymentID, pay)
		}
	}
	calls, payments, refunds := h.provider.count()
	if payments != orders || refunds != 0 {
		t.Errorf("%d payments and %d refunds for %d orders", payments, refunds, orders)
	}
	if letters, err := process.DeadLetters(context.Background(), h.pool, 10); err != nil || len(letters) != 0 {
		t.Errorf("dead letters %v %v", letters, err)
	}
	if n := cuts.Load() + partitions.Load() + restarts.Load(); n < 2 {
		t.Errorf("only %d instances were cut off or killed", n)
	}
	most, overlaps := tr.result()
	if most != 1 {
		t.Errorf("up to %d calls of one order in flight at once (two steps of it running): %v", most, overlaps)
	}
	h.mu.Lock()
	retries := h.steps[process.KindInitiatePayment+"/"+process.OutcomeRetry]
	h.mu.Unlock()
	t.Logf("%d orders placed in %v, all settled after %v; %d cuts, %d partitions, %d restarts, %d fences; %d payment requests for %d payments (%d initiate_payment retries)",
		orders, placedIn.Round(time.Millisecond), took.Round(time.Millisecond), cuts.Load(), partitions.Load(), restarts.Load(), fences.Load(), calls, payments, retries)
}
