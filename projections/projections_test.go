package projections_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/eventstores"
	"github.com/orders-reference/orders/internal/eventtest"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query/orders"
	"github.com/orders-reference/orders/query/products"
)

type env struct {
	pool  *pgxpool.Pool
	store eventstore.Store
	// kind is the store's kind of event store (projections.Options.EventStore).
	kind string
	svc  *command.Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool := pgtest.NewPool(t, 12)
	store := postgres.New(pool, postgres.Options{PollInterval: 100 * time.Millisecond})
	t.Cleanup(store.Close)
	return &env{pool: pool, store: store, kind: projections.DefaultEventStore, svc: command.NewService(store, command.Options{})}
}

// newKurrentDBEnv is an env whose events are in a KurrentDB double, opened
// as ordersd opens it.
func newKurrentDBEnv(t *testing.T) *env {
	t.Helper()
	pool := pgtest.NewPool(t, 12)
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	b, err := eventstores.Open(ctxT(t), srv.URL(), pool, eventstores.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return &env{pool: pool, store: b.Store, kind: b.Kind, svc: command.NewService(b.Store, command.Options{})}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// run starts a runner until the test ends and returns a channel with its
// result.
func run(t *testing.T, r *projections.Runner) (stop func(), done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-ch; err != nil {
				t.Errorf("runner: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop, ch
}

// checkpoint reads a projection's checkpoint row.
func (e *env) checkpoint(t *testing.T, name string) (eventstore.Position, string, string) {
	t.Helper()
	var c, p int64
	var state, msg string
	err := e.pool.QueryRow(context.Background(), `SELECT position_commit, position_prepare, state, error FROM projection_checkpoints WHERE name = $1`, name).Scan(&c, &p, &state, &msg)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Start, "", ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.Position{Commit: uint64(c), Prepare: uint64(p)}, state, msg
}

// waitCaughtUp waits until the projection has passed everything appended
// so far. (The store's head can lag a moment behind the latest append, so
// the test appends a marker event and waits for the checkpoint to pass it.)
func (e *env) waitCaughtUp(t *testing.T, name string) {
	t.Helper()
	res, err := e.store.Append(ctxT(t), "marker-"+uuid.NewString(), eventstore.NoStream,
		eventstore.EventData{Type: "test.marker", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	eventually.True(t, name+" catches up", func() bool {
		cp, _, _ := e.checkpoint(t, name)
		return !cp.Less(res.Position)
	})
}

// waitVisible waits until everything appended so far is readable in the
// global order.
func (e *env) waitVisible(t *testing.T) {
	t.Helper()
	res, err := e.store.Append(ctxT(t), "marker-"+uuid.NewString(), eventstore.NoStream,
		eventstore.EventData{Type: "test.marker", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "events are readable", func() bool {
		head, err := e.store.Head(ctxT(t))
		return err == nil && !head.Less(res.Position)
	})
}

var customer = eventstore.Metadata{Actor: events.ActorCustomer}

// workload creates products and a mix of placed, rejected and canceled
// orders, returning the product and order ids.
func (e *env) workload(t *testing.T) ([]uuid.UUID, []uuid.UUID) {
	t.Helper()
	productIDs, orderIDs, err := e.tryWorkload(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return productIDs, orderIDs
}

// tryWorkload is workload for goroutines other than the test's.
func (e *env) tryWorkload(ctx context.Context) ([]uuid.UUID, []uuid.UUID, error) {
	var productIDs, orderIDs []uuid.UUID
	for i := range 3 {
		v, err := e.svc.CreateProduct(ctx, command.CreateProduct{Name: fmt.Sprintf("p%d", i), Price: 1000 + 1, Stock: 10, Meta: customer})
		if err != nil {
			return nil, nil, err
		}
		productIDs = append(productIDs, v.ID)
	}
	if _, err := e.svc.UpdateProduct(ctx, productIDs[0], product.Details{Name: ptr("renamed"), Stock: ptr(int64(12))}, customer); err != nil {
		return nil, nil, err
	}
	for i := range 12 {
		v, err := e.svc.PlaceOrder(ctx, command.PlaceOrder{UserEmail: fmt.Sprintf("c%d@example.com", i%3),
			Lines: []order.Line{{ProductID: productIDs[i%3], Quantity: 1 + int64(i%4)}}, Meta: customer})
		var rej *command.RejectedError
		switch {
		case err == nil:
			orderIDs = append(orderIDs, v.ID)
			if err := e.pay(ctx, v, i%5); err != nil {
				return nil, nil, err
			}
		case errors.As(err, &rej):
			orderIDs = append(orderIDs, rej.Order.ID)
		default:
			return nil, nil, err
		}
	}
	return productIDs, orderIDs, nil
}

// pay takes order v down one of five paths: canceled (0), paid (1),
// payment failed (2), canceled before its payment was even requested, then
// paid by the provider and refunded (3), left waiting for its payment (4).
func (e *env) pay(ctx context.Context, v command.OrderView, path int) error {
	paymentID := "pay_" + v.ID.String()[:8]
	outcome := func(ok bool) order.PaymentOutcome {
		return order.PaymentOutcome{WebhookID: "msg_" + paymentID, PaymentID: paymentID, Succeeded: ok, Amount: money.Amount(v.Total)}
	}
	var err error
	if path != 0 && path != 3 {
		_, err = e.svc.RequestPayment(ctx, v.ID, paymentID, customer)
	}
	switch {
	case err != nil:
	case path == 0:
		_, err = e.svc.CancelOrder(ctx, v.ID, customer)
	case path == 1:
		if _, err = e.svc.RecordPayment(ctx, v.ID, outcome(true), customer); err == nil {
			err = e.svc.CommitStock(ctx, v.ID, customer)
		}
	case path == 2:
		if _, err = e.svc.RecordPayment(ctx, v.ID, outcome(false), customer); err == nil {
			err = e.svc.ReleaseStock(ctx, v.ID, customer)
		}
	case path == 3:
		if _, err = e.svc.CancelOrder(ctx, v.ID, customer); err == nil {
			if _, err = e.svc.RecordPayment(ctx, v.ID, outcome(true), customer); err == nil {
				_, err = e.svc.RecordRefund(ctx, v.ID, "re_"+paymentID, customer)
			}
		}
	}
	return err
}

// checkAgainstWriteModel compares every read-model row with the streams.
func (e *env) checkAgainstWriteModel(t *testing.T, productIDs, orderIDs []uuid.UUID) {
	t.Helper()
	for _, id := range productIDs {
		st := product.New(id)
		eventtest.Load(t, e.store, events.ProductStream(id), st.Apply)
		var name string
		var price, stock, reserved, version int64
		if err := e.pool.QueryRow(context.Background(), `SELECT name, price, stock, reserved, version FROM read_products WHERE id = $1`, id).
			Scan(&name, &price, &stock, &reserved, &version); err != nil {
			t.Fatalf("product %s: %v", id, err)
		}
		if name != st.Name || price != int64(st.Price) || stock != st.Available || reserved != st.Reserved || version != st.Version+1 {
			t.Errorf("product %s: read model (%s, %d, %d, %d, v%d), streams (%s, %d, %d, %d, v%d)",
				id, name, price, stock, reserved, version, st.Name, st.Price, st.Available, st.Reserved, st.Version+1)
		}
	}
	for _, id := range orderIDs {
		st := order.New(id)
		eventtest.Load(t, e.store, events.OrderStream(id), st.Apply)
		// The order as the API shows it, folded by the aggregate.
		want := orderRow{status: string(st.Status), email: st.UserEmail, total: int64(st.Total), currency: st.Currency,
			paymentID: st.PaymentID, cancelReason: st.CancelReason, version: st.Version + 1}
		if st.Status == order.StatusRejected {
			want.status, want.cancelReason = "canceled", st.Rejection.Reason
		}
		var got orderRow
		var paymentID, cancelReason *string
		if err := e.pool.QueryRow(context.Background(), `SELECT status, user_email, total_amount, currency, payment_id, cancel_reason, version
		     FROM read_orders WHERE id = $1`, id).Scan(&got.status, &got.email, &got.total, &got.currency, &paymentID, &cancelReason, &got.version); err != nil {
			t.Fatalf("order %s: %v", id, err)
		}
		if paymentID != nil {
			got.paymentID = *paymentID
		}
		if cancelReason != nil {
			got.cancelReason = *cancelReason
		}
		if got != want {
			t.Errorf("order %s: read model %+v, aggregate %+v", id, got, want)
		}
	}
}

// orderRow is an order's row field by field, for comparisons.
type orderRow struct {
	status, email, currency, paymentID, cancelReason string
	total, version                                   int64
}

func ptr[T any](v T) *T { return &v }

func TestProjectionsMatchTheWriteModel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	productIDs, orderIDs := e.workload(t)
	run(t, projections.NewRunner(e.pool, e.store, products.Projector{}, projections.Options{BatchSize: 7}))
	run(t, projections.NewRunner(e.pool, e.store, orders.Projector{}, projections.Options{BatchSize: 7}))
	e.waitCaughtUp(t, "products")
	e.waitCaughtUp(t, "orders")
	e.checkAgainstWriteModel(t, productIDs, orderIDs)

	// Live: more writes after catching up.
	more, moreOrders := e.workload(t)
	e.waitCaughtUp(t, "products")
	e.waitCaughtUp(t, "orders")
	e.checkAgainstWriteModel(t, append(productIDs, more...), append(orderIDs, moreOrders...))
}

// crashing kills its own database connection in the middle of a batch,
// after the batch's statements ran and before the commit, a given number of
// times.
type crashing struct {
	projections.Projector
	crashes atomic.Int32
}

func (c *crashing) Apply(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
	if err := c.Projector.Apply(ctx, tx, evs); err != nil {
		return err
	}
	if c.crashes.Add(-1) >= 0 {
		_, _ = tx.Exec(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
		return errors.New("connection killed mid-batch")
	}
	return nil
}

// A crash after applying and before committing changes nothing: the batch
// is applied again, once, by the next leader.
func TestCrashBeforeCommitIsRedeliveredOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	productIDs, orderIDs := e.workload(t)
	p := &crashing{Projector: products.Projector{}}
	p.crashes.Store(3)
	run(t, projections.NewRunner(e.pool, e.store, p, projections.Options{BatchSize: 5, LeaderPoll: 20 * time.Millisecond}))
	run(t, projections.NewRunner(e.pool, e.store, orders.Projector{}, projections.Options{}))
	e.waitCaughtUp(t, "products")
	e.waitCaughtUp(t, "orders")
	if p.crashes.Load() >= 0 {
		t.Fatal("the projector never crashed")
	}
	e.checkAgainstWriteModel(t, productIDs, orderIDs)
}

// counting counts the events each runner applies.
type counting struct {
	projections.Projector
	applied atomic.Int64
}

func (c *counting) Apply(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
	c.applied.Add(int64(len(evs)))
	return c.Projector.Apply(ctx, tx, evs)
}

// Of two runners only one applies events. When the leader's connection is
// killed, whichever runner wins the lock next carries on from the
// checkpoint; when the leader stops for good, the standby takes over.
func TestLeaderFailover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	productIDs, orderIDs := e.workload(t)
	run(t, projections.NewRunner(e.pool, e.store, orders.Projector{}, projections.Options{}))
	a, b := &counting{Projector: products.Projector{}}, &counting{Projector: products.Projector{}}
	opts := projections.Options{LeaderPoll: 20 * time.Millisecond}
	stopA, _ := run(t, projections.NewRunner(e.pool, e.store, a, opts))
	stopB, _ := run(t, projections.NewRunner(e.pool, e.store, b, opts))
	e.waitCaughtUp(t, "products")
	if (a.applied.Load() == 0) == (b.applied.Load() == 0) {
		t.Fatalf("want exactly one runner applying events: %d and %d", a.applied.Load(), b.applied.Load())
	}

	// Kill the leader's connection (the one holding the projection's lock).
	if _, err := e.pool.Exec(ctxT(t), `SELECT pg_terminate_backend(pid) FROM pg_locks
	     WHERE locktype = 'advisory' AND granted AND objsubid = 1
	       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
		t.Fatal(err)
	}
	aBefore, bBefore := a.applied.Load(), b.applied.Load()
	more, moreOrders := e.workload(t)
	e.waitCaughtUp(t, "products")
	e.waitCaughtUp(t, "orders")
	productIDs, orderIDs = append(productIDs, more...), append(orderIDs, moreOrders...)
	e.checkAgainstWriteModel(t, productIDs, orderIDs)

	// Stop whichever leads now (it applied the last workload): the other
	// must take over.
	aLed, bLed := a.applied.Load() > aBefore, b.applied.Load() > bBefore
	if aLed == bLed {
		t.Fatalf("want exactly one runner applying the last workload: a %v, b %v", aLed, bLed)
	}
	standby, stopLeader := b, stopA
	if bLed {
		standby, stopLeader = a, stopB
	}
	stopLeader()
	before := standby.applied.Load()
	more, moreOrders = e.workload(t)
	e.waitCaughtUp(t, "products")
	if standby.applied.Load() == before {
		t.Fatal("the standby did not take over")
	}
	e.waitCaughtUp(t, "orders") // its runner lost its lock to the kill too
	e.checkAgainstWriteModel(t, append(productIDs, more...), append(orderIDs, moreOrders...))
}

// poisoned fails on every batch that holds a stock adjustment, until fixed.
type poisoned struct {
	projections.Projector
	fixed *atomic.Bool
}

func (p poisoned) Apply(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
	for _, r := range evs {
		if r.Type == events.TypeProductStockAdjusted && !p.fixed.Load() {
			return errors.New("cannot handle stock adjustments")
		}
	}
	return p.Projector.Apply(ctx, tx, evs)
}

// A poison event is retried, then the projection stops with a clear error
// and a failed state: the event is not skipped, the checkpoint stands before
// it. After the fix, a rebuild resets the projection and the same runner
// carries on.
func TestPoisonEventStopsTheProjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	productIDs, orderIDs := e.workload(t)
	e.waitVisible(t)
	var adjusted eventstore.Position
	page, err := e.store.ReadAll(ctxT(t), eventstore.Start, 1000, eventstore.Filter{EventTypes: []string{events.TypeProductStockAdjusted}})
	if err != nil || len(page.Events) == 0 {
		t.Fatalf("finding the poison event: %v", err)
	}
	adjusted = page.Events[0].Position

	var failed atomic.Int32
	fixed := &atomic.Bool{}
	run(t, projections.NewRunner(e.pool, e.store, poisoned{products.Projector{}, fixed}, projections.Options{
		BatchSize: 1, Attempts: 3, RetryDelay: time.Millisecond, LeaderPoll: 20 * time.Millisecond,
		OnFailed: func(string, error) { failed.Add(1) },
	}))
	eventually.True(t, "the projection is marked failed and the failure reported", func() bool {
		_, state, _ := e.checkpoint(t, "products")
		// The runner records the failure, then reports it: wait for both.
		return state == projections.StateFailed && failed.Load() > 0
	})
	cp, _, msg := e.checkpoint(t, "products")
	if !cp.Less(adjusted) || !strings.Contains(msg, "cannot handle stock adjustments") || failed.Load() != 1 {
		t.Fatalf("checkpoint %s (poison at %s), error %q, %d failures reported", cp, adjusted, msg, failed.Load())
	}
	var stock int64
	if err := e.pool.QueryRow(ctxT(t), `SELECT stock FROM read_products WHERE id = $1`, productIDs[0]).Scan(&stock); err != nil || stock != 10 {
		t.Fatalf("the adjustment (to 12) shows in the read model: stock %d, %v", stock, err)
	}

	fixed.Store(true)
	if _, err := projections.Rebuild(ctxT(t), e.pool, e.store, products.Projector{}, projections.RebuildOptions{}); err != nil {
		t.Fatal(err)
	}
	more, moreOrders := e.workload(t)
	e.waitCaughtUp(t, "products")
	run(t, projections.NewRunner(e.pool, e.store, orders.Projector{}, projections.Options{}))
	e.waitCaughtUp(t, "orders")
	e.checkAgainstWriteModel(t, append(productIDs, more...), append(orderIDs, moreOrders...))
}

// leftovers counts shadow and old tables left behind.
func (e *env) leftovers(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables
	     WHERE schemaname = current_schema() AND (tablename LIKE '%\_rb\_%' OR tablename LIKE '%\_old')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A rebuild while orders keep coming ends with a read model equal, row by
// row, to the streams, and the live projection carries on after it; on
// either event store.
func TestRebuildMatchesWhileWritesContinue(t *testing.T) {
	t.Parallel()
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		testRebuildMatchesWhileWritesContinue(t, newEnv(t))
	})
	t.Run("kurrentdb", func(t *testing.T) {
		t.Parallel()
		testRebuildMatchesWhileWritesContinue(t, newKurrentDBEnv(t))
	})
}

func testRebuildMatchesWhileWritesContinue(t *testing.T, e *env) {
	productIDs, orderIDs := e.workload(t)
	run(t, projections.NewRunner(e.pool, e.store, products.Projector{}, projections.Options{EventStore: e.kind}))
	run(t, projections.NewRunner(e.pool, e.store, orders.Projector{}, projections.Options{EventStore: e.kind}))
	e.waitCaughtUp(t, "products")

	var (
		wg           sync.WaitGroup
		mu           sync.Mutex
		stopWriting  atomic.Bool
		moreProducts []uuid.UUID
		moreOrders   []uuid.UUID
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stopWriting.Load() {
			p, o, err := e.tryWorkload(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			moreProducts, moreOrders = append(moreProducts, p...), append(moreOrders, o...)
			mu.Unlock()
		}
	}()
	for round := range 2 { // twice: a second rebuild must not trip over the first one's names
		for _, proj := range []projections.Rebuildable{products.Projector{}, orders.Projector{}} {
			opts := projections.RebuildOptions{BatchSize: 10, EventStore: e.kind}
			if round == 0 {
				// Let the live projection get ahead of the finished shadow,
				// so that the swap has to catch the shadow up.
				opts = projections.WithBeforeSwap(opts, func(context.Context) {
					p, o := e.workload(t)
					mu.Lock()
					moreProducts, moreOrders = append(moreProducts, p...), append(moreOrders, o...)
					mu.Unlock()
					e.waitCaughtUp(t, proj.Name())
				})
			}
			res, err := projections.Rebuild(ctxT(t), e.pool, e.store, proj, opts)
			if err != nil {
				t.Fatalf("round %d, rebuild %s: %v", round, proj.Name(), err)
			}
			if res.Events == 0 {
				t.Fatalf("rebuild %s read nothing", proj.Name())
			}
		}
	}
	stopWriting.Store(true)
	wg.Wait()
	e.waitCaughtUp(t, "products")
	e.waitCaughtUp(t, "orders")
	e.checkAgainstWriteModel(t, append(productIDs, moreProducts...), append(orderIDs, moreOrders...))
	if n := e.leftovers(t); n != 0 {
		t.Fatalf("%d shadow or old tables left behind", n)
	}
}

func TestRebuildRefusesToRunTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.workload(t)
	var second error
	_, err := projections.Rebuild(ctxT(t), e.pool, e.store, products.Projector{}, projections.RebuildOptions{
		BatchSize: 5,
		Progress: func(done, total int64) {
			if second == nil {
				_, second = projections.Rebuild(ctxT(t), e.pool, e.store, products.Projector{}, projections.RebuildOptions{})
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(second, projections.ErrRebuildRunning) {
		t.Fatalf("a second rebuild while one runs: %v", second)
	}
}

// An interrupted rebuild resumes where it stopped.
func TestRebuildResumesAfterInterruption(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	productIDs, orderIDs := e.workload(t)
	run(t, projections.NewRunner(e.pool, e.store, orders.Projector{}, projections.Options{}))
	// Make every event readable first: a transaction elsewhere on the server
	// can hold the newest back for a moment, and a rebuild would then finish
	// early (correctly, leaving the rest to the live runner) instead of being
	// interrupted.
	e.waitVisible(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	var all int64
	_, err := projections.Rebuild(ctx, e.pool, e.store, products.Projector{}, projections.RebuildOptions{
		BatchSize: 5,
		Progress: func(done, total int64) {
			all = total
			if done >= 10 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted rebuild: %v", err)
	}
	cp, _, _ := e.checkpoint(t, "products#rebuild")
	if cp == eventstore.Start {
		t.Fatal("the interrupted rebuild left no checkpoint to resume from")
	}
	res, err := projections.Rebuild(ctxT(t), e.pool, e.store, products.Projector{}, projections.RebuildOptions{BatchSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events >= all {
		t.Fatalf("the second run read %d of %d events: it started over", res.Events, all)
	}
	run(t, projections.NewRunner(e.pool, e.store, products.Projector{}, projections.Options{}))
	e.waitCaughtUp(t, "products")
	e.waitCaughtUp(t, "orders")
	e.checkAgainstWriteModel(t, productIDs, orderIDs)
}

// A waiter in one process is woken by a batch committed by a runner in
// another (no in-process wake-up, fallback poll effectively off).
func TestProgressIsWokenAcrossProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	progress := projections.NewProgress(e.pool, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); progress.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	run(t, projections.NewRunner(e.pool, e.store, products.Projector{}, projections.Options{})) // no OnApplied: "elsewhere"
	e.waitCaughtUp(t, "products")

	v, err := e.svc.CreateProduct(ctxT(t), command.CreateProduct{Name: "late", Price: 100, Stock: 1, Meta: customer})
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, waitCancel := context.WithTimeout(ctxT(t), 10*time.Second)
	defer waitCancel()
	if err := progress.WaitFor(waitCtx, "products", v.Position); err != nil {
		t.Fatalf("waiting for the product's position: %v", err)
	}
}
