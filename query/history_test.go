package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query"
	"github.com/orders-reference/orders/query/orderstock"
)

// counting is an EventReader that counts the stream reads and the events
// they return.
type counting struct {
	query.EventReader
	calls, events atomic.Int64
}

func (c *counting) ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	recs, err := c.EventReader.ReadStream(ctx, stream, dir, from, limit)
	c.calls.Add(1)
	c.events.Add(int64(len(recs)))
	return recs, err
}

type env struct {
	pool     *pgxpool.Pool
	store    *postgres.Store
	svc      *command.Service
	progress *projections.Progress
}

// newEnv runs the order_stock projection over a fresh database.
func newEnv(t *testing.T) *env {
	t.Helper()
	pool := pgtest.NewPool(t, 6)
	store := postgres.New(pool, postgres.Options{PollInterval: 100 * time.Millisecond})
	t.Cleanup(store.Close)
	e := &env{pool: pool, store: store, svc: command.NewService(store, command.Options{}), progress: projections.NewProgress(pool, 0)}
	ctx, cancel := context.WithCancel(context.Background())
	runner := projections.NewRunner(pool, store, orderstock.Projector{}, projections.Options{OnApplied: e.progress.Applied})
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// indexed waits until the order_stock index has passed pos, as a read with
// X-Min-Position does.
func (e *env) indexed(t *testing.T, pos eventstore.Position) {
	t.Helper()
	if err := e.progress.WaitFor(ctxT(t), orderstock.Projector{}.Name(), pos); err != nil {
		t.Fatalf("waiting for the order_stock index to pass %s: %v", pos, err)
	}
}

// others appends n other orders' reservations and n releases to the
// product's stream, as a hot product collects them, in appends of 500.
func (e *env) others(t *testing.T, product uuid.UUID, n int) eventstore.Position {
	t.Helper()
	var last eventstore.Position
	batch := make([]eventstore.EventData, 0, 500)
	flush := func() {
		res, err := e.store.Append(ctxT(t), events.ProductStream(product), eventstore.Any, batch...)
		if err != nil {
			t.Fatal(err)
		}
		last, batch = res.Position, batch[:0]
	}
	for range n {
		o := uuid.New()
		reserved, _ := events.Encode(events.ProductStockReserved{OrderID: o, Quantity: 1})
		released, _ := events.Encode(events.ProductReservationReleased{OrderID: o, Quantity: 1, Reason: events.ReleasePaymentFailed})
		batch = append(batch, eventstore.EventData{Type: events.TypeProductStockReserved, Data: reserved},
			eventstore.EventData{Type: events.TypeProductReservationReleased, Data: released})
		if len(batch) == cap(batch) {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	return last
}

// scanned is the audit trail as reading the products' whole streams gives
// it: the reference the index must reproduce.
func (e *env) scanned(t *testing.T, id uuid.UUID, products ...uuid.UUID) []string {
	t.Helper()
	var recs []eventstore.RecordedEvent
	for _, stream := range append([]string{events.OrderStream(id)}, func() (s []string) {
		for _, p := range products {
			s = append(s, events.ProductStream(p))
		}
		return s
	}()...) {
		for from := int64(0); ; {
			page, err := e.store.ReadStream(ctxT(t), stream, eventstore.Forward, from, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				var ref struct {
					OrderID uuid.UUID `json:"order_id"`
				}
				if strings.HasPrefix(stream, events.OrderStreamPrefix) || (json.Unmarshal(r.Data, &ref) == nil && ref.OrderID == id) {
					recs = append(recs, r)
				}
			}
			if len(page) < 1000 {
				break
			}
			from = page[len(page)-1].Version + 1
		}
	}
	slices.SortFunc(recs, func(a, b eventstore.RecordedEvent) int { return a.Position.Compare(b.Position) })
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%s %s@%d %s %s", r.Position, r.StreamID, r.Version, r.Type, r.Data)
	}
	return out
}

func entries(h query.History) []string {
	out := make([]string, len(h.Events))
	for i, ev := range h.Events {
		out[i] = fmt.Sprintf("%s %s@%d %s %s", ev.Position, ev.Stream, ev.Version, ev.Type, ev.Data)
	}
	return out
}

var customer = eventstore.Metadata{Actor: events.ActorCustomer}

// The audit of an order on hot products holds exactly the order's events
// and its stock events, in global order (what reading the products' whole
// streams would give, an old "recovery" release included), and reads just
// those events from the event store: no more after thousands of other
// orders' stock events than before them.
func TestOrderHistoryReadsOnlyTheOrdersEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	var products []uuid.UUID
	for _, name := range []string{"hot", "warm"} {
		p, err := e.svc.CreateProduct(ctx, command.CreateProduct{Name: name, Price: 100, Stock: 1_000_000, Meta: customer})
		if err != nil {
			t.Fatal(err)
		}
		products = append(products, p.ID)
	}
	e.others(t, products[0], 300)
	placed, err := e.svc.PlaceOrder(ctx, command.PlaceOrder{UserEmail: "a@example.com", Meta: customer,
		Lines: []order.Line{{ProductID: products[0], Quantity: 2}, {ProductID: products[1], Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	id := placed.ID
	e.others(t, products[0], 300)
	for i := range 5 { // real orders too, on both products
		if _, err := e.svc.PlaceOrder(ctx, command.PlaceOrder{UserEmail: fmt.Sprintf("o%d@example.com", i), Meta: customer,
			Lines: []order.Line{{ProductID: products[i%2], Quantity: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	// A release as versions before the process manager wrote it, for any
	// cause: it still shows as it is.
	old, _ := json.Marshal(map[string]any{"order_id": id, "quantity": 1, "reason": "recovery"})
	if _, err := e.store.Append(ctx, events.ProductStream(products[1]), eventstore.Any,
		eventstore.EventData{Type: events.TypeProductReservationReleased, Data: old, Metadata: eventstore.Metadata{Actor: "system"}}); err != nil {
		t.Fatal(err)
	}
	canceled, err := e.svc.CancelOrder(ctx, id, customer)
	if err != nil {
		t.Fatal(err)
	}
	e.indexed(t, canceled.Position)

	audit := func() (query.History, int64, int64) {
		t.Helper()
		reader := &counting{EventReader: e.store}
		h, err := query.OrderHistory(ctx, reader, orderstock.NewReader(e.pool), id)
		if err != nil {
			t.Fatal(err)
		}
		return h, reader.calls.Load(), reader.events.Load()
	}
	h, calls, read := audit()
	want := e.scanned(t, id, products...)
	if got := entries(h); !slices.Equal(got, want) {
		t.Fatalf("audit:\n%s\nwant (from the whole streams):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var types []string
	for _, ev := range h.Events {
		types = append(types, ev.Type)
	}
	wantTypes := []string{events.TypeOrderPlaced, events.TypeProductStockReserved, events.TypeProductStockReserved, events.TypeOrderReserved,
		events.TypeProductReservationReleased, events.TypeOrderCanceled, events.TypeProductReservationReleased}
	if !slices.Equal(types, wantTypes) {
		t.Fatalf("types %v, want %v", types, wantTypes)
	}
	if !strings.Contains(string(h.Events[4].Data), `"reason":"recovery"`) {
		t.Fatalf("the old release shows as %s", h.Events[4].Data)
	}
	if read != int64(len(h.Events)) {
		t.Fatalf("the audit read %d events to show %d", read, len(h.Events))
	}
	if h.StockThrough.Less(canceled.Position) {
		t.Fatalf("StockThrough %s, before the cancel at %s that the index passed", h.StockThrough, canceled.Position)
	}

	// Thousands more stock events of other orders on the same products.
	e.others(t, products[1], 2000)
	e.indexed(t, e.others(t, products[0], 3000))
	h2, calls2, read2 := audit()
	if !slices.Equal(entries(h2), entries(h)) {
		t.Fatalf("the audit changed:\n%s", strings.Join(entries(h2), "\n"))
	}
	if calls2 != calls || read2 != read {
		t.Fatalf("after 10,000 more events on its products the audit made %d reads of %d events, before %d of %d", calls2, read2, calls, read)
	}

	// The JSON is the documented one: nothing added.
	raw, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	var keys []string
	for k := range doc {
		keys = append(keys, k)
	}
	for k := range doc["events"].([]any)[0].(map[string]any) {
		keys = append(keys, "events."+k)
	}
	slices.Sort(keys)
	if fmt.Sprint(keys) != "[events events.data events.metadata events.position events.recorded_at events.stream events.type events.version order_id]" {
		t.Fatalf("history JSON keys: %v", keys)
	}
}

// An order without stock events (rejected for want of stock) shows its own
// events; an unknown order is not found; an index row that points at an
// event of another order, or at none, is an error, not a silent gap.
func TestOrderHistoryEdges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	p, err := e.svc.CreateProduct(ctx, command.CreateProduct{Name: "p", Price: 100, Stock: 10, Meta: customer})
	if err != nil {
		t.Fatal(err)
	}
	tooMany := func() uuid.UUID {
		t.Helper()
		_, err := e.svc.PlaceOrder(ctx, command.PlaceOrder{UserEmail: "a@example.com", Meta: customer,
			Lines: []order.Line{{ProductID: p.ID, Quantity: 11}}})
		var rejected *command.RejectedError
		if !errors.As(err, &rejected) {
			t.Fatalf("an order for more than the stock: %v", err)
		}
		return rejected.Order.ID
	}
	rejected := tooMany()
	h, err := query.OrderHistory(ctx, e.store, orderstock.NewReader(e.pool), rejected)
	if err != nil || len(h.Events) != 2 || h.Events[1].Type != events.TypeOrderRejected {
		t.Fatalf("rejected order: %v %+v", err, h)
	}
	if _, err := query.OrderHistory(ctx, e.store, orderstock.NewReader(e.pool), uuid.New()); !errors.Is(err, query.ErrNotFound) {
		t.Fatalf("unknown order: %v", err)
	}

	// Version 1 of the product is this order's reservation.
	if _, err := e.svc.PlaceOrder(ctx, command.PlaceOrder{UserEmail: "a@example.com", Meta: customer, Lines: []order.Line{{ProductID: p.ID, Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	for name, version := range map[string]int64{"another order's event": 1, "no event": 99} {
		t.Run(name, func(t *testing.T) {
			other := tooMany()
			if _, err := e.pool.Exec(ctx, `INSERT INTO read_order_stock_events (order_id, position_commit, position_prepare, stream_id, stream_version)
			     VALUES ($1, 1, 1, $2, $3)`, other, events.ProductStream(p.ID), version); err != nil {
				t.Fatal(err)
			}
			if _, err := query.OrderHistory(ctx, e.store, orderstock.NewReader(e.pool), other); !errors.Is(err, query.ErrIndexMismatch) {
				t.Fatalf("history through a wrong index row: %v", err)
			}
		})
	}
}
