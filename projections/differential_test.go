package projections_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
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
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/eventtest"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/pgtest"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
	"github.com/orders-reference/orders/process"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query/orders"
	"github.com/orders-reference/orders/query/products"
)

var differentialSeed = flag.Uint64("differential.seed", 0,
	"seed of TestReadModelsEqualTheAggregates' random workload (0: a new one each run)")

// The differential test of the read models: after a random workload of
// every kind of write (placements, multi-item and some rejected for stock
// or interrupted mid-way, cancels, payment successes and failures, late
// payments of canceled orders and their refunds, payment timeouts, admin
// creates and edits of products) interleaved with crashes (projection
// runners restarted from their checkpoints or killed mid-batch, leaders'
// connections killed, the process restarted with the process manager,
// rebuilds while writes go on), every order's and product's row equals,
// field by field, what its aggregate folds from the same events, and every
// product's row agrees with the stock aggregate of the command side.
//
// The real parts run: PostgreSQL event store, projection runners,
// command service and process manager with the fake payment provider
// (held back: the test delivers the webhooks, as the provider would). The
// workload's choices come from one seed, printed when the test fails; the
// interleaving with the background parts is the scheduler's.
func TestReadModelsEqualTheAggregates(t *testing.T) {
	t.Parallel()
	seed := *differentialSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("workload seed %d: go test ./projections -run TestReadModelsEqualTheAggregates -args -differential.seed=%d", seed, seed)
		}
	})
	w := newWorld(t, seed)
	w.startProcess()
	for i := range 3 {
		w.createProduct(i)
	}
	w.startRunners()

	ops := []struct {
		name   string
		weight int
		do     func(i int)
	}{
		{"place", 30, w.place},
		{"cancel", 8, w.cancel},
		{"payment succeeded", 10, func(int) { w.deliver(w.anyOrder(), true) }},
		{"payment failed", 5, func(int) { w.deliver(w.anyOrder(), false) }},
		{"late payment of a canceled order", 5, w.latePayment},
		{"canceled before its payment, paid late", 3, w.cancelBeforePaymentThenPay},
		{"webhook redelivered", 3, w.redeliver},
		{"payment timeouts", 3, func(int) { w.clock.Advance(diffPaymentTimeout + time.Second) }},
		{"create product", 3, w.createProduct},
		{"patch product", 9, w.patchProduct},
		{"restart projection runners", 3, func(int) { w.restartRunners() }},
		{"kill the leaders' connections", 2, func(int) { w.killLeaders() }},
		{"restart the process", 2, func(int) { w.restartProcess() }},
		{"rebuild", 2, func(int) { w.rebuild() }},
		{"compare now", 1, func(int) { w.stopProcess(); w.compare(); w.startProcess() }},
	}
	total := 0
	for _, op := range ops {
		total += op.weight
	}
	done := map[string]int{}
	for i := range 200 {
		n := w.rng.IntN(total)
		for _, op := range ops {
			if n -= op.weight; n < 0 {
				op.do(i)
				done[op.name]++
				break
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("seed %d, operations %v, leaders' connections killed %d", seed, done, w.killed)

	w.rebuilds.Wait()
	w.epilogue()
	w.settle()
	w.stopProcess()
	w.compare()
	w.checkCoverage()
	if n := w.parked.Load(); n != 0 {
		t.Errorf("%d process manager steps parked", n)
	}
}

// diffPaymentTimeout is the process manager's payment timeout, on the
// test's clock.
const diffPaymentTimeout = 10 * time.Minute

const diffCallbackURL = "http://orders.test/webhooks/payment"

var (
	admin    = eventstore.Metadata{Actor: events.ActorAdmin}
	errCrash = errors.New("crashed mid-placement")
)

// diffClock is the process manager's clock, which the test moves on.
type diffClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *diffClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *diffClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// delivery is a webhook the test delivered, to deliver again.
type delivery struct {
	order   uuid.UUID
	outcome order.PaymentOutcome
}

// world is the system under test and what the workload knows of it.
type world struct {
	*env
	t     *testing.T
	rng   *rand.Rand
	clock *diffClock
	fake  *fakepay.Provider

	// The live process: its command service and process manager.
	svc         *command.Service
	stopManager func()
	// crashes holds the placements to interrupt after a step (order id
	// -> step), as a crash of the process would.
	crashMu sync.Mutex
	crashes map[uuid.UUID]string

	stopRunners []func()
	rebuilds    sync.WaitGroup
	rebuilding  [2]atomic.Bool // products, orders

	products   []uuid.UUID
	orders     []uuid.UUID
	deliveries []delivery
	parked     atomic.Int64
	killed     int // leaders' connections killed
}

func newWorld(t *testing.T, seed uint64) *world {
	t.Helper()
	// Connections: two runners, the scheduler and the worker's renewals
	// hold one each; a rebuild two; the rest serve steps and commands.
	pool := pgtest.NewPool(t, 16)
	store := postgres.New(pool, postgres.Options{PollInterval: 50 * time.Millisecond})
	t.Cleanup(store.Close)
	signer, err := payment.NewSigner("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	// Every payment succeeds at the provider (so that a late success can
	// be refunded) and is never decided by it: the test says what the
	// webhooks say.
	fake := fakepay.New(fakepay.Options{SuccessRate: 1, Delay: time.Hour, Signer: signer})
	t.Cleanup(fake.Close)
	w := &world{
		env: &env{pool: pool, store: store}, t: t, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)),
		clock: &diffClock{now: time.Now()}, fake: fake, crashes: map[uuid.UUID]string{},
	}
	t.Cleanup(func() { w.stopProcess(); w.rebuilds.Wait() })
	return w
}

// startProcess starts the service's process: a command service with cold
// caches and a process manager acting through it.
func (w *world) startProcess() {
	t := w.t
	w.svc = command.NewService(w.store, command.Options{AfterStep: w.afterStep})
	m := process.New(w.pool, w.store, w.svc, w.fake, process.Options{
		CallbackURL: diffCallbackURL, PaymentTimeout: diffPaymentTimeout, Now: w.clock.Now,
		Poll: 20 * time.Millisecond, LeaderPoll: 20 * time.Millisecond,
		OnStep: func(kind, outcome string) {
			if outcome == process.OutcomeParked {
				w.parked.Add(1)
			}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	w.stopManager = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("process manager: %v", err)
		}
	}
}

// stopProcess stops the live process, if there is one: its steps in
// flight are canceled, as in a crash (they run again once their leases
// end). Its command service stays readable (compare reads its stock).
func (w *world) stopProcess() {
	if w.stopManager == nil {
		return
	}
	w.stopManager()
	w.stopManager = nil
	w.svc.Close(context.Background())
}

func (w *world) restartProcess() {
	w.stopProcess()
	w.startProcess()
}

func (w *world) afterStep(_ context.Context, step string, id uuid.UUID) error {
	w.crashMu.Lock()
	defer w.crashMu.Unlock()
	if w.crashes[id] == step {
		delete(w.crashes, id)
		return errCrash
	}
	return nil
}

// startRunners starts the products and orders projections, from their
// checkpoints, with random batch sizes; sometimes one of them kills its
// connection in the middle of its first batch.
func (w *world) startRunners() {
	for _, p := range []projections.Projector{products.Projector{}, orders.Projector{}} {
		if w.rng.IntN(3) == 0 {
			c := &crashing{Projector: p}
			c.crashes.Store(1)
			p = c
		}
		stop, _ := run(w.t, projections.NewRunner(w.pool, w.store, p, projections.Options{
			BatchSize: 1 + w.rng.IntN(40), LeaderPoll: 20 * time.Millisecond, RetryDelay: 10 * time.Millisecond,
		}))
		w.stopRunners = append(w.stopRunners, stop)
	}
}

func (w *world) restartRunners() {
	for _, stop := range w.stopRunners {
		stop()
	}
	w.stopRunners = nil
	w.startRunners()
}

// killLeaders terminates the connections that hold the leadership of the
// projections and of the process manager's scheduler, mid-work.
func (w *world) killLeaders() {
	var keys []int64
	for _, name := range []string{products.Name, orders.Name, process.Name} {
		keys = append(keys, pg.LockKey("orders.projection."+name))
	}
	var killed int
	if err := w.pool.QueryRow(ctxT(w.t), `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_locks
	     WHERE locktype = 'advisory' AND granted AND objsubid = 1
	       AND ((classid::bigint << 32) | objid::bigint) = ANY($1)
	       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, keys).Scan(&killed); err != nil {
		w.t.Fatal(err)
	}
	w.killed += killed
}

// rebuild rebuilds the products or the orders read model in the
// background, while the workload goes on.
func (w *world) rebuild() {
	i := w.rng.IntN(2)
	proj := []projections.Rebuildable{products.Projector{}, orders.Projector{}}[i]
	batch := 1 + w.rng.IntN(50)
	if !w.rebuilding[i].CompareAndSwap(false, true) {
		return
	}
	w.rebuilds.Add(1)
	go func() {
		defer w.rebuilds.Done()
		defer w.rebuilding[i].Store(false)
		if _, err := projections.Rebuild(context.Background(), w.pool, w.store, proj, projections.RebuildOptions{BatchSize: batch}); err != nil {
			w.t.Errorf("rebuild %s: %v", proj.Name(), err)
		}
	}()
}

var diffEmails = []string{"ana@example.com", "Bob@Example.COM", "carla+orders@example.org", "dörte@bücher.example"}

// createProduct creates a product with little stock, so that orders
// compete for it.
func (w *world) createProduct(i int) {
	v, err := w.svc.CreateProduct(ctxT(w.t), command.CreateProduct{
		Name: fmt.Sprintf(" Product %d ", i), Description: w.description(i),
		Price: money.Amount(100 + w.rng.IntN(100_000)), Stock: int64(w.rng.IntN(21)), Meta: admin,
	})
	if err != nil {
		w.t.Fatalf("create product: %v", err)
	}
	w.products = append(w.products, v.ID)
}

func (w *world) description(i int) string {
	return []string{"", fmt.Sprintf("made in batch %d", i), "größer, ✓ ünïcödé", "line one\nline two"}[w.rng.IntN(4)]
}

// patchProduct edits some of a product's details and/or sets its stock.
func (w *world) patchProduct(i int) {
	id := w.products[w.rng.IntN(len(w.products))]
	var d product.Details
	for d == (product.Details{}) {
		if w.rng.IntN(3) == 0 {
			d.Name = ptr(fmt.Sprintf("Renamed %d", i))
		}
		if w.rng.IntN(3) == 0 {
			d.Description = ptr(w.description(i))
		}
		if w.rng.IntN(3) == 0 {
			d.Price = ptr(money.Amount(100 + w.rng.IntN(100_000)))
		}
		if w.rng.IntN(5) == 0 {
			d.IsActive = ptr(w.rng.IntN(3) != 0) // mostly back on
		}
		if w.rng.IntN(2) == 0 {
			d.Stock = ptr(int64(w.rng.IntN(26)))
		}
	}
	if _, err := w.svc.UpdateProduct(ctxT(w.t), id, d, admin); err != nil {
		w.t.Fatalf("patch product %s: %v", id, err)
	}
}

// placeOrder places an order of 1-3 products, interrupted after step if
// step is not empty, and returns its id (uuid.Nil if it was refused before
// anything was stored).
func (w *world) placeOrder(i int, lines []order.Line, step string) uuid.UUID {
	email, key := diffEmails[w.rng.IntN(len(diffEmails))], fmt.Sprintf("key-%d", i)
	id := w.svc.OrderIDForKey(email, key)
	if step != "" {
		w.crashMu.Lock()
		w.crashes[id] = step
		w.crashMu.Unlock()
	}
	_, err := w.svc.PlaceOrder(ctxT(w.t), command.PlaceOrder{IdempotencyKey: key, UserEmail: email, Lines: lines, Meta: customer})
	w.crashMu.Lock()
	delete(w.crashes, id)
	w.crashMu.Unlock()
	var rejected *command.RejectedError
	switch {
	case err == nil, errors.As(err, &rejected), errors.Is(err, errCrash):
		w.orders = append(w.orders, id)
		return id
	case errors.Is(err, command.ErrValidation): // a product deactivated: nothing stored
		return uuid.Nil
	}
	w.t.Fatalf("place order: %v", err)
	return uuid.Nil
}

func (w *world) place(i int) {
	n := 1 + w.rng.IntN(3)
	var lines []order.Line
	for _, k := range w.rng.Perm(len(w.products))[:min(n, len(w.products))] {
		lines = append(lines, order.Line{ProductID: w.products[k], Quantity: 1 + int64(w.rng.IntN(4))})
	}
	step := ""
	switch w.rng.IntN(10) {
	case 0:
		step = command.StepPlaced
	case 1:
		step = command.StepReserved
	}
	w.placeOrder(i, lines, step)
}

// anyOrder returns one of the orders placed so far, mostly one of the
// latest (uuid.Nil if none).
func (w *world) anyOrder() uuid.UUID {
	if len(w.orders) == 0 {
		return uuid.Nil
	}
	if n := min(6, len(w.orders)); w.rng.IntN(4) != 0 {
		return w.orders[len(w.orders)-1-w.rng.IntN(n)]
	}
	return w.orders[w.rng.IntN(len(w.orders))]
}

// cancel cancels an order as its customer; a paid or rejected one refuses.
func (w *world) cancel(int) {
	id := w.anyOrder()
	if id == uuid.Nil {
		return
	}
	if _, err := w.svc.CancelOrder(ctxT(w.t), id, customer); err != nil && !errors.Is(err, order.ErrIllegalTransition) {
		w.t.Fatalf("cancel %s: %v", id, err)
	}
}

// deliver records the provider's outcome of the order's payment, as its
// webhook does: the payment is the one the provider holds for the order
// (the process manager's request, or one taken before the order recorded
// any). An order that was never reserved refuses it.
func (w *world) deliver(id uuid.UUID, succeeded bool) {
	if id == uuid.Nil {
		return
	}
	ctx := ctxT(w.t)
	v, err := w.svc.Order(ctx, id)
	if err != nil {
		w.t.Fatalf("order %s: %v", id, err)
	}
	p, err := w.fake.InitiatePayment(ctx, payment.Request{OrderID: id, Amount: money.Amount(v.Total), Currency: v.Currency, CallbackURL: diffCallbackURL}, id.String())
	if err != nil {
		w.t.Fatalf("payment of %s: %v", id, err)
	}
	status := payment.StatusFailed
	if succeeded {
		status = payment.StatusSuccess
	}
	d := delivery{order: id, outcome: order.PaymentOutcome{
		WebhookID: "msg_" + p.ID + "_" + status, PaymentID: p.ID, Succeeded: succeeded, Amount: money.Amount(v.Total),
	}}
	w.deliveries = append(w.deliveries, d)
	w.record(d)
}

func (w *world) record(d delivery) {
	meta := eventstore.Metadata{Actor: events.ActorProvider, CausationID: d.outcome.WebhookID}
	if _, err := w.svc.RecordPayment(ctxT(w.t), d.order, d.outcome, meta); err != nil && !errors.Is(err, order.ErrIllegalTransition) {
		w.t.Fatalf("record payment of %s: %v", d.order, err)
	}
}

func (w *world) redeliver(int) {
	if len(w.deliveries) > 0 {
		w.record(w.deliveries[w.rng.IntN(len(w.deliveries))])
	}
}

// latePayment reports a success for a canceled order (the first canceled
// one from a random place on), whose money then goes back.
func (w *world) latePayment(int) {
	start := w.rng.IntN(len(w.orders) + 1)
	for k := range w.orders {
		id := w.orders[(start+k)%len(w.orders)]
		v, err := w.svc.Order(ctxT(w.t), id)
		if err != nil {
			w.t.Fatalf("order %s: %v", id, err)
		}
		if v.Status == order.StatusCanceled && v.CancelReason != events.CancelPaymentFailed {
			w.deliver(id, true)
			return
		}
	}
}

// cancelBeforePaymentThenPay is issue 13's order: placed (its placement
// interrupted, or not), canceled before any payment was recorded, then
// reported paid: its refund request carries its payment id.
func (w *world) cancelBeforePaymentThenPay(i int) {
	p := w.products[w.rng.IntN(len(w.products))]
	step := ""
	if w.rng.IntN(2) == 0 {
		step = command.StepPlaced
	}
	w.cancelThenPay(i, p, step)
}

func (w *world) cancelThenPay(i int, p uuid.UUID, step string) {
	id := w.placeOrder(i, []order.Line{{ProductID: p, Quantity: 1}}, step)
	if id == uuid.Nil {
		return
	}
	if _, err := w.svc.CancelOrder(ctxT(w.t), id, customer); err != nil && !errors.Is(err, order.ErrIllegalTransition) {
		w.t.Fatalf("cancel %s: %v", id, err)
	}
	w.deliver(id, true)
}

// epilogue takes one order down each path for certain, on a product of
// its own, so that every run covers them whatever its random part did.
func (w *world) epilogue() {
	ctx := ctxT(w.t)
	v, err := w.svc.CreateProduct(ctx, command.CreateProduct{Name: "Epilogue", Price: 2500, Stock: 100, Meta: admin})
	if err != nil {
		w.t.Fatal(err)
	}
	w.products = append(w.products, v.ID)
	one := []order.Line{{ProductID: v.ID, Quantity: 1}}
	if _, err := w.svc.UpdateProduct(ctx, v.ID, product.Details{Description: ptr("now described"), Price: ptr(money.Amount(2600)), Stock: ptr(int64(90))}, admin); err != nil {
		w.t.Fatal(err)
	}
	const base = 1_000_000                          // idempotency keys apart from the workload's
	w.deliver(w.placeOrder(base, one, ""), true)    // paid
	w.deliver(w.placeOrder(base+1, one, ""), false) // payment failed
	canceled := w.placeOrder(base+2, one, "")
	if _, err := w.svc.CancelOrder(ctx, canceled, customer); err != nil {
		w.t.Fatal(err)
	}
	w.deliver(canceled, true)                                                 // refunded after the customer's cancel
	w.placeOrder(base+3, one, "")                                             // times out
	w.placeOrder(base+4, one, command.StepReserved)                           // completed by the process manager, then times out
	w.placeOrder(base+5, []order.Line{{ProductID: v.ID, Quantity: 1000}}, "") // rejected
	w.cancelThenPay(base+6, v.ID, command.StepPlaced)                         // refunded, its payment never requested
}

// settle waits until every saga has ended: each order paid, canceled or
// rejected, each refund asked for made, no stock held, nothing left to do
// but asking the provider about payments it has not decided. The clock
// moves on meanwhile, so that timeouts, interrupted placements and
// retries come due.
func (w *world) settle() {
	t := w.t
	// Every reservation so far is scheduled before the clock jumps.
	w.waitCaughtUp(t, process.Name)
	w.clock.Advance(diffPaymentTimeout + time.Second)
	ctx := ctxT(t)
	eventually.True(t, "every saga to end", func() bool {
		if n := w.parked.Load(); n != 0 {
			t.Fatalf("%d process manager steps parked", n)
		}
		w.clock.Advance(time.Minute)
		for _, id := range w.orders {
			v, err := w.svc.Order(ctx, id)
			if err != nil {
				t.Fatalf("order %s: %v", id, err)
			}
			if !v.Status.Terminal() || (v.RefundRequested && v.RefundID == "") {
				return false
			}
		}
		for _, id := range w.products {
			v, err := w.svc.Stock().View(ctx, id)
			if err != nil {
				t.Fatalf("product %s: %v", id, err)
			}
			if v.Reserved != 0 {
				return false
			}
		}
		var left int
		if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM process_tasks WHERE kind <> $1`, process.KindReconcilePayment).Scan(&left); err != nil {
			t.Fatal(err)
		}
		return left == 0
	})
}

// streamIDs returns the ids of every product and order stream in the
// store: the rows the read models must have, no more, no fewer.
func (w *world) streamIDs() (productIDs, orderIDs []uuid.UUID) {
	w.waitVisible(w.t)
	filter := eventstore.Filter{StreamPrefixes: []string{events.ProductStreamPrefix, events.OrderStreamPrefix}}
	for from := eventstore.Start; ; {
		page, err := w.store.ReadAll(ctxT(w.t), from, 1000, filter)
		if err != nil {
			w.t.Fatal(err)
		}
		for _, id := range projections.StreamIDs(page.Events, events.ProductStreamPrefix) {
			if !slices.Contains(productIDs, id) {
				productIDs = append(productIDs, id)
			}
		}
		for _, id := range projections.StreamIDs(page.Events, events.OrderStreamPrefix) {
			if !slices.Contains(orderIDs, id) {
				orderIDs = append(orderIDs, id)
			}
		}
		if page.AtEnd {
			return productIDs, orderIDs
		}
		from = page.Next
	}
}

// compare waits for the read models to catch up with everything written
// so far (the process stopped, nothing else writes) and compares every
// row with its aggregate, field by field.
func (w *world) compare() {
	t := w.t
	t.Helper()
	w.rebuilds.Wait()
	w.waitCaughtUp(t, products.Name)
	w.waitCaughtUp(t, orders.Name)
	ctx := ctxT(t)
	productIDs, orderIDs := w.streamIDs()
	// The stock aggregate as the process that just stopped has it (its
	// products cached since it started) and as one that starts now has it.
	fresh := command.NewService(w.store, command.Options{})
	defer fresh.Close(ctx)
	stocks := map[string]*command.Stock{"the live stock aggregate": w.svc.Stock(), "a new stock aggregate": fresh.Stock()}
	productReader, orderReader := products.NewReader(w.pool), orders.NewReader(w.pool)
	for _, id := range productIDs {
		st := product.New(id)
		eventtest.Load(t, w.store, events.ProductStream(id), st.Apply)
		got, err := productReader.Get(ctx, id)
		if err != nil {
			t.Fatalf("product %s in the read model: %v", id, err)
		}
		if diffs := fieldDiffs(got, productFromFold(st)); len(diffs) > 0 {
			t.Errorf("product %s, read model and aggregate differ:\n\t%s", id, strings.Join(diffs, "\n\t"))
		}
		for name, stock := range stocks {
			v, err := stock.View(ctx, id)
			if err != nil {
				t.Fatalf("product %s in %s: %v", id, name, err)
			}
			if diffs := fieldDiffs(got, productFromStock(v)); len(diffs) > 0 {
				t.Errorf("product %s, read model and %s differ:\n\t%s", id, name, strings.Join(diffs, "\n\t"))
			}
		}
	}
	for _, id := range orderIDs {
		st := order.New(id)
		eventtest.Load(t, w.store, events.OrderStream(id), st.Apply)
		got, err := orderReader.Get(ctx, id)
		if err != nil {
			t.Fatalf("order %s in the read model: %v", id, err)
		}
		if diffs := fieldDiffs(got, orderFromFold(st)); len(diffs) > 0 {
			t.Errorf("order %s, read model and aggregate differ:\n\t%s", id, strings.Join(diffs, "\n\t"))
		}
	}
	var rowsP, rowsO int
	if err := w.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM read_products), (SELECT count(*) FROM read_orders)`).Scan(&rowsP, &rowsO); err != nil {
		t.Fatal(err)
	}
	if rowsP != len(productIDs) || rowsO != len(orderIDs) {
		t.Errorf("read models hold %d products and %d orders; the store %d and %d", rowsP, rowsO, len(productIDs), len(orderIDs))
	}
	if t.Failed() {
		t.FailNow()
	}
}

// checkCoverage fails the test if the workload missed a path whose rows it
// was meant to compare.
func (w *world) checkCoverage() {
	t := w.t
	seen := map[string]int{}
	for _, id := range w.orders {
		st := order.New(id)
		var types []string
		eventtest.Load(t, w.store, events.OrderStream(id), func(e events.Event, v int64, at time.Time) {
			types = append(types, e.EventType())
			st.Apply(e, v, at)
		})
		switch {
		case st.Status == order.StatusRejected:
			seen["rejected"]++
		case st.Status == order.StatusCanceled:
			seen["canceled: "+st.CancelReason]++
		default:
			seen[string(st.Status)]++
		}
		if st.RefundID != "" {
			seen["refunded"]++
			if !slices.Contains(types, events.TypeOrderPaymentRequested) {
				seen["refunded, its payment never requested"]++
			}
		}
		if slices.Contains(types, events.TypeOrderPlaced) && !slices.Contains(types, events.TypeOrderReserved) && !slices.Contains(types, events.TypeOrderRejected) {
			seen["canceled before its placement was decided"]++
		}
	}
	var types []string
	for _, id := range w.products {
		eventtest.Load(t, w.store, events.ProductStream(id), func(e events.Event, _ int64, _ time.Time) { types = append(types, e.EventType()) })
	}
	for _, typ := range types {
		if typ != events.TypeProductCreated {
			seen[typ]++
		}
	}
	t.Logf("covered: %v", seen)
	for _, want := range []string{"paid", "rejected", "canceled: " + events.CancelCustomer, "canceled: " + events.CancelPaymentFailed,
		"canceled: " + events.CancelPaymentTimeout, "refunded", "refunded, its payment never requested",
		"canceled before its placement was decided", events.TypeProductDetailsChanged, events.TypeProductStockAdjusted,
		events.TypeProductStockReserved, events.TypeProductReservationReleased, events.TypeProductReservationCommitted} {
		if seen[want] == 0 {
			t.Errorf("the workload never produced %q", want)
		}
	}
}

// productFromFold is the products row that a product's aggregate state
// stands for.
func productFromFold(st *product.State) products.Product {
	return products.Product{
		ID: st.ID, Name: st.Name, Description: st.Description, Price: st.Price, Stock: st.Available, Reserved: st.Reserved,
		IsActive: st.IsActive, CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt, Version: st.Version + 1,
	}
}

// productFromStock is the products row that the stock aggregate's view of
// a product stands for.
func productFromStock(v command.ProductView) products.Product {
	return products.Product{
		ID: v.ID, Name: v.Name, Description: v.Description, Price: v.Price, Stock: v.Available, Reserved: v.Reserved,
		IsActive: v.IsActive, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, Version: v.Version + 1,
	}
}

// orderFromFold is the orders row that an order's aggregate state stands
// for: a rejected order shows as canceled, for the rejection's reason.
func orderFromFold(st *order.State) orders.Order {
	optional := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	o := orders.Order{
		ID: st.ID, UserEmail: st.UserEmail, Status: string(st.Status), Items: make([]orders.OrderItem, len(st.Items)),
		TotalAmount: st.Total, Currency: st.Currency, PaymentID: optional(st.PaymentID), CancelReason: optional(st.CancelReason),
		CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt, Version: st.Version + 1,
	}
	for i, it := range st.Items {
		o.Items[i] = orders.OrderItem{ProductID: it.ProductID.String(), Quantity: it.Quantity, UnitPrice: it.UnitPrice, LineTotal: it.LineTotal}
	}
	if st.Status == order.StatusRejected {
		o.Status, o.CancelReason = orders.StatusCanceled, &st.Rejection.Reason
	}
	return o
}

var timeType = reflect.TypeFor[time.Time]()

// fieldDiffs compares got (a read model's row) with want (what the
// aggregate stands for), two values of one type, field by field: through
// structs, pointers and slices, times by instant. It returns one line per
// field that differs, named by its path ("PaymentID", "Items[1].Quantity").
func fieldDiffs(got, want any) []string {
	var out []string
	diffValues("", reflect.ValueOf(got), reflect.ValueOf(want), &out)
	return out
}

func diffValues(path string, got, want reflect.Value, out *[]string) {
	differ := func() {
		*out = append(*out, fmt.Sprintf("%s: read model %s, aggregate %s", path, show(got), show(want)))
	}
	switch {
	case !got.CanInterface():
		*out = append(*out, path+": unexported, cannot be compared")
	case got.Type() == timeType:
		if !got.Interface().(time.Time).Equal(want.Interface().(time.Time)) {
			differ()
		}
	case got.Kind() == reflect.Struct:
		for i := range got.NumField() {
			name := got.Type().Field(i).Name
			if path != "" {
				name = path + "." + name
			}
			diffValues(name, got.Field(i), want.Field(i), out)
		}
	case got.Kind() == reflect.Pointer:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				differ()
			}
			return
		}
		diffValues(path, got.Elem(), want.Elem(), out)
	case got.Kind() == reflect.Slice:
		if got.Len() != want.Len() {
			differ()
			return
		}
		for i := range got.Len() {
			diffValues(fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i), out)
		}
	case !got.Comparable():
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			differ()
		}
	default:
		if !got.Equal(want) {
			differ()
		}
	}
}

func show(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "null"
		}
		v = v.Elem()
	}
	if v.Kind() == reflect.Slice {
		return fmt.Sprintf("%d items %+v", v.Len(), v.Interface())
	}
	return fmt.Sprintf("%q", fmt.Sprint(v.Interface()))
}

// The comparison names every field of the rows that differs, and only
// that one: a projection that forgets a field, or gets it wrong, fails the
// differential test with the field's name.
func TestFieldDiffsNameEveryField(t *testing.T) {
	t.Parallel()
	now := time.Now()
	pay, reason := "pay_1", "customer_canceled"
	rows := []any{
		orders.Order{
			ID: uuid.New(), UserEmail: "ana@example.com", Status: "canceled", TotalAmount: 300, Currency: "USD",
			Items:     []orders.OrderItem{{ProductID: uuid.NewString(), Quantity: 3, UnitPrice: 100, LineTotal: 300}},
			PaymentID: &pay, CancelReason: &reason, CreatedAt: now, UpdatedAt: now.Add(time.Second), Version: 4,
		},
		products.Product{
			ID: uuid.New(), Name: "Laptop", Description: "fast", Price: 150_000, Stock: 8, Reserved: 2, IsActive: true,
			CreatedAt: now, UpdatedAt: now.Add(time.Second), Version: 3,
		},
	}
	for _, row := range rows {
		v := reflect.ValueOf(row)
		if d := fieldDiffs(row, row); len(d) != 0 {
			t.Errorf("%T equals itself, yet: %v", row, d)
		}
		for i := range v.NumField() {
			changed := reflect.New(v.Type()).Elem()
			changed.Set(v)
			perturb(t, changed.Field(i))
			name := v.Type().Field(i).Name
			d := fieldDiffs(changed.Interface(), row)
			if len(d) != 1 || !strings.HasPrefix(d[0], name) {
				t.Errorf("%T with another %s: differences %q", row, name, d)
			}
		}
		nested := reflect.New(v.Type()).Elem()
		nested.Set(v)
		if items := nested.FieldByName("Items"); items.IsValid() {
			items.Set(reflect.Append(reflect.MakeSlice(items.Type(), 0, 1), items.Index(0)))
			perturb(t, items.Index(0).FieldByName("Quantity"))
			if d := fieldDiffs(nested.Interface(), row); len(d) != 1 || !strings.HasPrefix(d[0], "Items[0].Quantity:") {
				t.Errorf("another item quantity: differences %q", d)
			}
		}
	}
}

// perturb changes v (settable) to another value of its type, without
// touching what v shares with the value it was copied from.
func perturb(t *testing.T, v reflect.Value) {
	t.Helper()
	switch {
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(time.Microsecond)))
	case v.Kind() == reflect.String:
		v.SetString(v.String() + "x")
	case v.CanInt():
		v.SetInt(v.Int() + 1)
	case v.Kind() == reflect.Bool:
		v.SetBool(!v.Bool())
	case v.Kind() == reflect.Array:
		v.Index(0).SetUint(v.Index(0).Uint() + 1)
	case v.Kind() == reflect.Pointer && v.IsNil():
		v.Set(reflect.New(v.Type().Elem()))
	case v.Kind() == reflect.Pointer:
		v.Set(reflect.Zero(v.Type()))
	case v.Kind() == reflect.Slice:
		v.Set(reflect.Append(reflect.AppendSlice(reflect.MakeSlice(v.Type(), 0, v.Len()+1), v), reflect.Zero(v.Type().Elem())))
	default:
		t.Fatalf("cannot perturb a %s", v.Type())
	}
}

// The mappings from the aggregates to rows set every field of the row, so
// a field added to a read model fails the differential test until its
// aggregate's value is compared too.
func TestAggregateMappingsSetEveryField(t *testing.T) {
	t.Parallel()
	productID, orderID := uuid.New(), uuid.New()
	o := order.New(orderID)
	eventtest.Given(t, events.OrderStream(orderID), []events.Event{
		events.OrderPlaced{OrderID: orderID, UserEmail: "ana@example.com", Currency: "USD", Total: 200,
			Items: []events.OrderItem{{ProductID: productID, Quantity: 2, UnitPrice: 100, LineTotal: 200}}},
		events.OrderReserved{},
		events.OrderPaymentRequested{PaymentID: "pay_1"},
		events.OrderCanceled{Reason: events.CancelCustomer},
	}, o.Apply)
	p := product.New(productID)
	eventtest.Given(t, events.ProductStream(productID), []events.Event{
		events.ProductCreated{ProductID: productID, Name: "Laptop", Description: "fast", Price: 100, Stock: 5, IsActive: true},
		events.ProductStockReserved{OrderID: orderID, Quantity: 2},
	}, p.Apply)
	now := time.Now()
	stock := command.ProductView{ID: productID, Name: "Laptop", Description: "fast", Price: 100, IsActive: true,
		Available: 3, Reserved: 2, CreatedAt: now, UpdatedAt: now, Version: 1}
	for _, row := range []any{orderFromFold(o), productFromFold(p), productFromStock(stock)} {
		v := reflect.ValueOf(row)
		for i := range v.NumField() {
			if v.Field(i).IsZero() {
				t.Errorf("%T.%s is not set from the aggregate", row, v.Type().Field(i).Name)
			}
		}
	}
}
