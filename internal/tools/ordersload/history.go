package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/money"
	"github.com/orders-reference/orders/process"
	"github.com/orders-reference/orders/projections"
	snapshotpg "github.com/orders-reference/orders/snapshot/postgres"
)

const historyUsage = `Usage: ordersload history [flags]

Builds a history of -orders orders in an empty database (created and migrated
if missing), as fast as the event store takes it, and leaves the system as if
ordersd had processed all of it:

  - products: one hot product that half of the orders buy, and -products
    others that share the other half at random; stock enough for everything;
  - each order, through the event store port (the PostgreSQL adapter, with
    concurrent appends riding its group commit): order.placed, the
    reservation on its product, order.reserved, payment_requested and then
    paid (-paid of them) or payment_failed + canceled, then the product's
    reservation_committed or reservation_released (reason payment_failed).
    Payloads, stream names, versions, event ids and metadata (actor,
    correlation and causation ids) are those ordersd writes; events of one
    order are written in causal order (placed, reserved on the product,
    decided, settled on the product), though several events of one order
    that ordersd writes in separate transactions share one here;
  - every read model (query/readmodels) rebuilt with projections.Rebuild;
    the process manager's checkpoint put at the head (it will not run the
    history's sagas again, and nothing is left for it to do); statistics and
    visibility maps as autovacuum would have kept them (ANALYZE, VACUUM).

The database must hold no events and no checkpoints, and no ordersd may run on
it while the history is built. Progress (events/s) goes to stderr; the
summary (events, table sizes, hot product id) to stdout.
`

// historyOptions configures ordersload history.
type historyOptions struct {
	databaseURL  string
	orders       int
	products     int
	paidShare    float64
	chunk        int
	workers      int
	maxBatch     int
	inFlight     int
	productBatch int
	seed         uint64
	// snapshotEvery is ordersd's SNAPSHOT_EVERY, for the products' snapshots.
	snapshotEvery int
}

func historyMain(ctx context.Context, args []string, databaseURL string, stdout, stderr io.Writer) error {
	o := historyOptions{}
	fs := flag.NewFlagSet("ordersload history", flag.ContinueOnError)
	flagUsage(fs, stderr, historyUsage)
	fs.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL URL of the database to fill (default: DATABASE_URL, else "+defaultDatabaseURL+")")
	fs.IntVar(&o.orders, "orders", 10_000, "orders in the history")
	fs.IntVar(&o.snapshotEvery, "snapshot-every", 500, "ordersd's SNAPSHOT_EVERY: products with more events get a snapshot, as a running ordersd saves them")
	fs.IntVar(&o.products, "products", 1000, "products besides the hot one, sharing half of the orders")
	fs.Float64Var(&o.paidShare, "paid", 0.8, "share of orders whose payment succeeds (the rest fail and are canceled)")
	fs.IntVar(&o.chunk, "chunk", 20_000, "orders written per round (placed, reserved, decided, settled)")
	fs.IntVar(&o.workers, "workers", 512, "concurrent appends")
	fs.IntVar(&o.maxBatch, "batch", 256, "appends group-committed per transaction (event store MaxBatch)")
	fs.IntVar(&o.inFlight, "in-flight", 3, "append transactions at once (event store MaxInFlight)")
	fs.IntVar(&o.productBatch, "product-batch", 256, "events per append to one product stream (ordersd's own stock batches hold up to 256 decisions)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the random choices (products, quantities, outcomes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.databaseURL == "" {
		o.databaseURL = databaseURL
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.orders < 1 || o.products < 1:
		return errors.New("-orders and -products must be positive")
	case o.paidShare < 0 || o.paidShare > 1:
		return errors.New("-paid must be within 0..1")
	case o.chunk < 1 || o.workers < 1 || o.maxBatch < 1 || o.inFlight < 1 || o.productBatch < 1:
		return errors.New("-chunk, -workers, -batch, -in-flight and -product-batch must be positive")
	}
	return buildHistory(ctx, o, stdout, stderr)
}

type product struct {
	id      uuid.UUID
	price   money.Amount
	version int64 // of the last event written to its stream
}

// plannedOrder is one order of the history and the ids its later events
// refer to.
type plannedOrder struct {
	id       uuid.UUID
	product  int // index in builder.products; 0 is the hot product
	qty      int64
	paid     bool
	email    string
	corr     string // the placing request's id
	decision uuid.UUID
}

type builder struct {
	o        historyOptions
	store    *postgres.Store
	products []product
	rng      *rand.Rand
	events   atomic.Int64
	placed   atomic.Int64 // orders fully written
	paid     int
}

func buildHistory(ctx context.Context, o historyOptions, stdout, stderr io.Writer) error {
	start := time.Now()
	if _, err := pg.EnsureDatabase(ctx, o.databaseURL); err != nil {
		return fmt.Errorf("database %s: %w", redacted(o.databaseURL), err)
	}
	// Connections: the append transactions, the rebuilds (each a connection
	// of its own plus its reads) and a few spare.
	pool, err := pg.Connect(ctx, o.databaseURL, int32(o.inFlight+2*len(readModels)+4))
	if err != nil {
		return fmt.Errorf("database %s: %w", redacted(o.databaseURL), err)
	}
	defer pool.Close()
	if err := pg.Migrate(ctx, pool, nil); err != nil {
		return fmt.Errorf("migrate %s: %w", redacted(o.databaseURL), err)
	}
	store := postgres.New(pool, postgres.Options{MaxBatch: o.maxBatch, MaxInFlight: o.inFlight})
	defer store.Close()
	head, err := store.Head(ctx)
	if err != nil {
		return fmt.Errorf("look at the event store: %w", err)
	}
	var hasCheckpoints bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM projection_checkpoints)`).Scan(&hasCheckpoints); err != nil {
		return fmt.Errorf("look at the database: %w", err)
	}
	if head != eventstore.Start || hasCheckpoints {
		return fmt.Errorf("database %s already holds events or checkpoints: the history is built into an empty database only (drop it or use another)",
			redacted(o.databaseURL))
	}
	fmt.Fprintf(stderr, "history: %d orders into %s\n", o.orders, redacted(o.databaseURL))
	b := &builder{o: o, store: store, rng: rand.New(rand.NewPCG(o.seed, 0x0dde75))}

	stopProgress := b.progress(stderr, start)
	err = b.createProducts(ctx)
	for first := 0; err == nil && first < o.orders; first += o.chunk {
		err = b.round(ctx, first, min(first+o.chunk, o.orders))
	}
	stopProgress()
	if err != nil {
		return err
	}
	appended := time.Since(start)
	fmt.Fprintf(stderr, "history: %d events appended in %s (%.0f events/s); rebuilding the read models\n",
		b.events.Load(), appended.Round(time.Millisecond), float64(b.events.Load())/appended.Seconds())

	// Statistics, as autovacuum keeps them on a table that grew over time:
	// without them the planner takes the bulk-loaded table for an empty one
	// and reads of the log (rebuilds, ordersd's catch-up) run many times
	// slower.
	if _, err := pool.Exec(ctx, `ANALYZE events`); err != nil {
		return fmt.Errorf("analyze events: %w", err)
	}
	rebuilt, err := rebuildReadModels(ctx, pool, store, stderr)
	if err != nil {
		return err
	}
	head, err = store.Head(ctx)
	if err != nil {
		return err
	}
	if err := process.StartAt(ctx, pool, projections.DefaultEventStore, head); err != nil {
		return fmt.Errorf("process manager: %w", err)
	}
	// Snapshots, as the write side saves them every SNAPSHOT_EVERY events
	// of a product: load each product once and let it save its own.
	if err := b.snapshotProducts(ctx, pool, stderr); err != nil {
		return err
	}
	// And the rest of what autovacuum would have done by now: visibility
	// maps (index-only scans) and statistics of every table.
	vacuumStart := time.Now()
	if _, err := pool.Exec(ctx, `VACUUM (ANALYZE)`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	fmt.Fprintf(stderr, "history: vacuumed and analyzed in %s\n", time.Since(vacuumStart).Round(time.Millisecond))
	total := time.Since(start)
	return b.report(ctx, pool, stdout, appended, rebuilt, head, total)
}

// createProducts writes the hot product (index 0) and the others, each with
// stock enough for every order it may get and for later benchmarks.
func (b *builder) createProducts(ctx context.Context) error {
	n := b.o.products + 1
	b.products = make([]product, n)
	perOther := int64(b.o.orders)/2/int64(b.o.products) + 1
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(b.o.workers)
	for i := range n {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("product id: %w", err)
		}
		e := events.ProductCreated{ProductID: id, Name: fmt.Sprintf("History product %04d", i), Price: money.Amount(1000 + 25*int64(i%40)),
			Stock: 3*2*perOther + 1_000_000, IsActive: true}
		if i == 0 {
			e.Name, e.Description, e.Price = "History hot product", "Half of the history's orders buy it", 2500
			e.Stock = min(3*int64(b.o.orders)+1_000_000, 1_000_000_000)
		}
		b.products[i] = product{id: id, price: e.Price}
		g.Go(func() error {
			req := uuid.NewString()
			data, err := eventData(e, eventstore.Metadata{CorrelationID: req, CausationID: req, Actor: events.ActorAdmin})
			if err != nil {
				return err
			}
			res, err := b.store.Append(ctx, events.ProductStream(id), eventstore.NoStream, data)
			if err != nil {
				return fmt.Errorf("create product: %w", err)
			}
			b.products[i].version = res.Version
			b.events.Add(1)
			return nil
		})
	}
	return g.Wait()
}

// plan draws orders first..last-1: every other order is on the hot
// product, the rest on a random other product.
func (b *builder) plan(first, last int) ([]plannedOrder, error) {
	orders := make([]plannedOrder, last-first)
	for i := range orders {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("order id: %w", err)
		}
		o := plannedOrder{
			id: id, qty: 1 + b.rng.Int64N(3), paid: b.rng.Float64() < b.o.paidShare,
			email: fmt.Sprintf("customer-%d@history.example.com", b.rng.IntN(100_000)), corr: uuid.NewString(),
		}
		if (first+i)%2 == 1 {
			o.product = 1 + b.rng.IntN(b.o.products)
		}
		orders[i] = o
	}
	return orders, nil
}

// round writes orders first..last-1 in four steps, each waiting for the one
// before, so that every order's events are in causal order in the global
// log too (what the process manager and projections expect):
//
//  1. order.placed, one append per order (ordersd: the placing request);
//  2. product.stock_reserved, appended to each product's stream in batches
//     (ordersd: Stock's batch of concurrent decisions);
//  3. order.reserved, payment_requested and the payment's outcome, one
//     append per order (ordersd: the placing request, the process manager's
//     initiate_payment, the provider's webhook);
//  4. reservation_committed or reservation_released on each product
//     (ordersd: the process manager's commit_stock or release_stock).
func (b *builder) round(ctx context.Context, first, last int) error {
	orders, err := b.plan(first, last)
	if err != nil {
		return err
	}
	if err := b.eachOrder(ctx, orders, b.place); err != nil {
		return err
	}
	if err := b.toProducts(ctx, orders, reserve); err != nil {
		return err
	}
	if err := b.eachOrder(ctx, orders, b.decide); err != nil {
		return err
	}
	if err := b.toProducts(ctx, orders, settle); err != nil {
		return err
	}
	b.placed.Add(int64(len(orders)))
	for _, o := range orders {
		if o.paid {
			b.paid++
		}
	}
	return nil
}

func (b *builder) eachOrder(ctx context.Context, orders []plannedOrder, fn func(context.Context, *plannedOrder) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(b.o.workers)
	for i := range orders {
		g.Go(func() error { return fn(ctx, &orders[i]) })
	}
	return g.Wait()
}

// place appends order.placed, as a POST /orders without Idempotency-Key
// does (a UUIDv7 order id).
func (b *builder) place(ctx context.Context, o *plannedOrder) error {
	p := b.products[o.product]
	line, err := p.price.Mul(o.qty)
	if err != nil {
		return fmt.Errorf("order %s: %w", o.id, err)
	}
	placed := events.OrderPlaced{
		OrderID: o.id, UserEmail: o.email, Total: line, Currency: money.Currency,
		Items:       []events.OrderItem{{ProductID: p.id, Quantity: o.qty, UnitPrice: p.price, LineTotal: line}},
		RequestHash: fingerprint(o.email, p.id, o.qty),
	}
	data, err := eventData(placed, o.customer())
	if err != nil {
		return err
	}
	if _, err := b.store.Append(ctx, events.OrderStream(o.id), eventstore.NoStream, data); err != nil {
		return fmt.Errorf("place order: %w", err)
	}
	b.events.Add(1)
	return nil
}

// decide appends what follows the reservation on the order's stream, each
// event with the metadata of the party that records it in ordersd.
func (b *builder) decide(ctx context.Context, o *plannedOrder) error {
	reservedID, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("event id: %w", err)
	}
	paymentID := "pay_" + uuid.NewString()
	webhookID := "msg_" + paymentID // the fake provider's message id
	reserved, err := eventData(events.OrderReserved{}, o.customer())
	if err != nil {
		return err
	}
	reserved.ID = reservedID
	// The process manager's initiate_payment step: caused by order.reserved.
	requested, err := eventData(events.OrderPaymentRequested{PaymentID: paymentID},
		eventstore.Metadata{CorrelationID: o.corr, CausationID: reservedID.String(), Actor: events.ActorSystem})
	if err != nil {
		return err
	}
	// The webhook: the placing request's correlation id, the provider's
	// message as the cause, event ids derived from the message.
	webhook := eventstore.Metadata{CorrelationID: o.corr, CausationID: webhookID, Actor: events.ActorProvider}
	outcome := []events.Event{events.OrderPaid{PaymentID: paymentID, WebhookID: webhookID}}
	if !o.paid {
		outcome = []events.Event{
			events.OrderPaymentFailed{PaymentID: paymentID, WebhookID: webhookID},
			events.OrderCanceled{Reason: events.CancelPaymentFailed},
		}
	}
	evs := []eventstore.EventData{reserved, requested}
	for i, e := range outcome {
		d, err := eventData(e, webhook)
		if err != nil {
			return err
		}
		d.ID = command.DerivedEventID(command.WebhookSeed(o.id, webhookID), i)
		evs = append(evs, d)
	}
	o.decision = evs[len(evs)-1].ID // order.paid or order.canceled: what the stock step follows
	if _, err := b.store.Append(ctx, events.OrderStream(o.id), eventstore.Exact(0), evs...); err != nil {
		return fmt.Errorf("decide order: %w", err)
	}
	b.events.Add(int64(len(evs)))
	return nil
}

// reserve is the reservation the placing request makes.
func reserve(o *plannedOrder) (events.Event, eventstore.Metadata) {
	return events.ProductStockReserved{OrderID: o.id, Quantity: o.qty}, o.customer()
}

// settle is the process manager's commit_stock or release_stock step,
// caused by order.paid or order.canceled.
func settle(o *plannedOrder) (events.Event, eventstore.Metadata) {
	meta := eventstore.Metadata{CorrelationID: o.corr, CausationID: o.decision.String(), Actor: events.ActorSystem}
	if o.paid {
		return events.ProductReservationCommitted{OrderID: o.id, Quantity: o.qty}, meta
	}
	return events.ProductReservationReleased{OrderID: o.id, Quantity: o.qty, Reason: events.ReleasePaymentFailed}, meta
}

// toProducts appends one event per order to its product's stream, in the
// orders' order, at most -product-batch events per append; a product's
// appends follow one another, products are written concurrently (the
// busiest first, since it takes longest).
func (b *builder) toProducts(ctx context.Context, orders []plannedOrder, event func(*plannedOrder) (events.Event, eventstore.Metadata)) error {
	byProduct := map[int][]eventstore.EventData{}
	for i := range orders {
		e, meta := event(&orders[i])
		d, err := eventData(e, meta)
		if err != nil {
			return err
		}
		byProduct[orders[i].product] = append(byProduct[orders[i].product], d)
	}
	keys := make([]int, 0, len(byProduct))
	for k := range byProduct {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y int) int { return len(byProduct[y]) - len(byProduct[x]) })
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(b.o.workers)
	for _, k := range keys {
		g.Go(func() error {
			p := &b.products[k]
			for evs := byProduct[k]; len(evs) > 0; {
				n := min(len(evs), b.o.productBatch)
				res, err := b.store.Append(ctx, events.ProductStream(p.id), eventstore.Exact(p.version), evs[:n]...)
				if err != nil {
					return fmt.Errorf("product %s: %w", p.id, err)
				}
				p.version = res.Version
				b.events.Add(int64(n))
				evs = evs[n:]
			}
			return nil
		})
	}
	return g.Wait()
}

func (o *plannedOrder) customer() eventstore.Metadata {
	return eventstore.Metadata{CorrelationID: o.corr, CausationID: o.corr, Actor: events.ActorCustomer}
}

func eventData(e events.Event, meta eventstore.Metadata) (eventstore.EventData, error) {
	data, err := events.Encode(e)
	if err != nil {
		return eventstore.EventData{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return eventstore.EventData{}, fmt.Errorf("event id: %w", err)
	}
	return eventstore.EventData{ID: id, Type: e.EventType(), Data: data, Metadata: meta}, nil
}

// fingerprint is the request hash ordersd records with a one-line order
// (command.fingerprint): the normalised email and each line.
func fingerprint(email string, productID uuid.UUID, qty int64) string {
	h := sha256.New()
	h.Write([]byte(email))
	h.Write([]byte("\n" + productID.String() + ":" + strconv.FormatInt(qty, 10)))
	return hex.EncodeToString(h.Sum(nil))
}

// progress prints the append rate every two seconds until stopped.
func (b *builder) progress(w io.Writer, start time.Time) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				n := b.events.Load()
				fmt.Fprintf(w, "history: %d/%d orders, %d events, %.0f events/s (%.0f overall)\n",
					b.placed.Load(), b.o.orders, n, float64(n-last)/now.Sub(lastAt).Seconds(), float64(n)/now.Sub(start).Seconds())
				last, lastAt = n, now
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// rebuildReadModels builds every read model ordersd serves with the
// projections' own rebuild, all at once.
func rebuildReadModels(ctx context.Context, pool *pgxpool.Pool, store *postgres.Store, stderr io.Writer) (time.Duration, error) {
	start := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	for _, proj := range readModels {
		g.Go(func() error {
			res, err := projections.Rebuild(ctx, pool, store, proj, projections.RebuildOptions{})
			if err != nil {
				return fmt.Errorf("rebuild %s: %w", proj.Name(), err)
			}
			fmt.Fprintf(stderr, "history: read model %s rebuilt from %d events in %s (%.0f events/s)\n", proj.Name(), res.Events,
				res.Duration.Round(time.Millisecond), float64(res.Events)/res.Duration.Seconds())
			return nil
		})
	}
	err := g.Wait()
	return time.Since(start), err
}

// snapshotProducts loads every product through the write side with
// snapshots on, so that each one that took at least SNAPSHOT_EVERY events
// gets the snapshot a running ordersd would have saved by now.
func (b *builder) snapshotProducts(ctx context.Context, pool *pgxpool.Pool, w io.Writer) error {
	start := time.Now()
	svc := command.NewService(b.store, command.Options{Stock: command.StockOptions{
		Snapshots: snapshotpg.New(pool), SnapshotEvery: b.o.snapshotEvery, CacheSize: 1,
	}})
	for _, p := range b.products {
		if _, err := svc.Stock().View(ctx, p.id); err != nil {
			return fmt.Errorf("snapshot product %s: %w", p.id, err)
		}
	}
	svc.Close(ctx)
	fmt.Fprintf(w, "history: products snapshotted in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// report prints what was built, with the sizes of the event store's tables
// and a check of the read models: every order decided, no stock held.
func (b *builder) report(ctx context.Context, pool *pgxpool.Pool, w io.Writer, appended, rebuilt time.Duration, head eventstore.Position, total time.Duration) error {
	var (
		nEvents, eventsBytes, eventsHeap int64
		snapshotsBytes                   *int64
		created, held                    int64
	)
	// Every event in the store is one the builder appended (it builds into
	// an empty database only): no need to count the log.
	nEvents = b.events.Load()
	// The tables' sizes are what the report is about.
	err := pool.QueryRow(ctx, `SELECT pg_total_relation_size('events'), pg_relation_size('events'),
	        pg_total_relation_size(to_regclass('snapshots')),
	        (SELECT count(*) FROM `+ordersTable+` WHERE status NOT IN ($1, $2)),
	        (SELECT coalesce(sum(reserved), 0) FROM `+productsTable+`)`, statusPaid, statusCanceled).
		Scan(&eventsBytes, &eventsHeap, &snapshotsBytes, &created, &held)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if created != 0 || held != 0 {
		return fmt.Errorf("the read models disagree with the history: %d orders neither paid nor canceled, %d units still reserved", created, held)
	}
	snapshots := "none (no snapshots table)"
	if snapshotsBytes != nil {
		snapshots = mib(*snapshotsBytes)
	}
	placed := int(b.placed.Load())
	fmt.Fprintf(w, "orders:           %d (%d on the hot product; %d paid, %d canceled after a failed payment)\n",
		placed, (placed+1)/2, b.paid, placed-b.paid)
	fmt.Fprintf(w, "products:         %d\n", len(b.products))
	fmt.Fprintf(w, "hot product:      %s\n", b.products[0].id)
	fmt.Fprintf(w, "events:           %d\n", nEvents)
	fmt.Fprintf(w, "appended in:      %s (%.0f events/s)\n", appended.Round(time.Millisecond), float64(nEvents)/appended.Seconds())
	fmt.Fprintf(w, "read models in:   %s (%d rebuilt; no order open, no stock held)\n", rebuilt.Round(time.Millisecond), len(readModels))
	fmt.Fprintf(w, "process manager:  checkpoint at the head, %s\n", head)
	fmt.Fprintf(w, "events table:     %s (table %s, the rest indexes and TOAST)\n", mib(eventsBytes), mib(eventsHeap))
	fmt.Fprintf(w, "snapshots table:  %s\n", snapshots)
	fmt.Fprintf(w, "built in:         %s\n", total.Round(time.Millisecond))
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
