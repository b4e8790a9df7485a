package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query/orderstock"
)

// stockRow is one row of the order_stock index, or what it should be.
type stockRow struct {
	order    uuid.UUID
	pos      eventstore.Position
	stream   string
	version  int64
	eventTyp string // only for messages
}

func (r stockRow) String() string {
	return fmt.Sprintf("%s %s %s@%d", r.order, r.pos, r.stream, r.version)
}

// indexRows reads the whole order_stock index in global order.
func (e *env) indexRows(t *testing.T) []stockRow {
	t.Helper()
	rows, err := e.pool.Query(ctxT(t), `SELECT order_id, position_commit, position_prepare, stream_id, stream_version
	     FROM read_order_stock_events ORDER BY position_commit, position_prepare`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (stockRow, error) {
		var r stockRow
		var c, p int64
		err := row.Scan(&r.order, &c, &p, &r.stream, &r.version)
		r.pos = eventstore.Position{Commit: uint64(c), Prepare: uint64(p)}
		return r, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// scanStockEvents reads every stock event of the store, in global order,
// as the index should hold it.
func (e *env) scanStockEvents(t *testing.T) []stockRow {
	t.Helper()
	e.waitVisible(t)
	stockTypes := []string{events.TypeProductStockReserved, events.TypeProductReservationReleased, events.TypeProductReservationCommitted}
	var out []stockRow
	for from := eventstore.Start; ; {
		page, err := e.store.ReadAll(ctxT(t), from, 1000, eventstore.Filter{EventTypes: stockTypes})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Events {
			var ref struct {
				OrderID uuid.UUID `json:"order_id"`
			}
			_ = json.Unmarshal(r.Data, &ref) // a poison event's order stays nil
			out = append(out, stockRow{order: ref.OrderID, pos: r.Position, stream: r.StreamID, version: r.Version, eventTyp: r.Type})
		}
		if page.AtEnd {
			return out
		}
		from = page.Next
	}
}

// checkIndex compares the index with a scan of every stock event.
func (e *env) checkIndex(t *testing.T) int {
	t.Helper()
	e.waitCaughtUp(t, "order_stock")
	want, got := e.scanStockEvents(t), e.indexRows(t)
	if len(want) == 0 {
		t.Fatal("no stock events to index")
	}
	if len(got) != len(want) {
		t.Fatalf("index has %d rows, the store %d stock events", len(got), len(want))
	}
	for i := range want {
		w := want[i]
		w.eventTyp = ""
		if got[i] != w {
			t.Fatalf("row %d: index %v, store %v (%s)", i, got[i], want[i], want[i].eventTyp)
		}
	}
	return len(want)
}

// releasedForRecovery appends a release as versions before the process
// manager wrote them (reason "recovery") for the first order that holds a
// reservation of the product, and returns that order.
func (e *env) releasedForRecovery(t *testing.T, product uuid.UUID) uuid.UUID {
	t.Helper()
	recs, err := e.store.ReadStream(ctxT(t), events.ProductStream(product), eventstore.Forward, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var held *events.ProductStockReserved
	for _, r := range recs {
		if r.Type == events.TypeProductStockReserved {
			e, _ := events.Decode(r.Type, r.Data)
			res := e.(events.ProductStockReserved)
			held = &res
			break
		}
	}
	if held == nil {
		t.Fatalf("product %s holds no reservation", product)
	}
	data, _ := json.Marshal(events.ProductReservationReleased{OrderID: held.OrderID, Quantity: held.Quantity, Reason: events.ReleaseRecovery})
	if _, err := e.store.Append(ctxT(t), events.ProductStream(product), eventstore.Any,
		eventstore.EventData{Type: events.TypeProductReservationReleased, Data: data, Metadata: eventstore.Metadata{Actor: "system"}}); err != nil {
		t.Fatal(err)
	}
	return held.OrderID
}

// The index holds exactly the stock events of the store: those written
// before the projection first ran (old histories, an old "recovery"
// release among them), then live ones, and again after rebuilds that run
// while orders keep coming.
func TestOrderStockIndexEqualsTheStockEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	products, _ := e.workload(t)
	e.releasedForRecovery(t, products[1])
	run(t, projections.NewRunner(e.pool, e.store, orderstock.Projector{}, projections.Options{BatchSize: 7}))
	e.checkIndex(t)

	e.workload(t) // live
	e.checkIndex(t)

	var (
		wg          sync.WaitGroup
		stopWriting atomic.Bool
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stopWriting.Load() {
			if _, _, err := e.tryWorkload(context.Background()); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for round := range 2 {
		opts := projections.RebuildOptions{BatchSize: 10}
		if round == 0 {
			// The live index gets ahead of the finished shadow: the swap
			// catches the shadow up.
			opts = projections.WithBeforeSwap(opts, func(context.Context) {
				e.workload(t)
				e.waitCaughtUp(t, "order_stock")
			})
		}
		res, err := projections.Rebuild(ctxT(t), e.pool, e.store, orderstock.Projector{}, opts)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if res.Events == 0 {
			t.Fatal("the rebuild read nothing")
		}
	}
	stopWriting.Store(true)
	wg.Wait()
	n := e.checkIndex(t)
	if n < 4*12 {
		t.Fatalf("only %d stock events indexed", n)
	}
	if left := e.leftovers(t); left != 0 {
		t.Fatalf("%d shadow or old tables left behind", left)
	}
}

// An event the projector cannot read stops the index, like any projection:
// it is retried, the projection is marked failed with the event's address,
// the checkpoint stays before it and nothing after it is indexed. It is
// never skipped.
func TestOrderStockStopsOnAnEventItCannotRead(t *testing.T) {
	t.Parallel()
	for _, bad := range []struct{ name, typ, data string }{
		{"undecodable", events.TypeProductStockReserved, `{"order_id":"not-a-uuid","quantity":1}`},
		{"no order", events.TypeProductReservationCommitted, `{"quantity":1}`},
		{"unknown type", "product.stock_reserved.v2", `{"order_id":"` + uuid.NewString() + `","quantity":1}`},
	} {
		t.Run(bad.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			products, _ := e.workload(t)
			stream := events.ProductStream(products[0])
			res, err := e.store.Append(ctxT(t), stream, eventstore.Any, eventstore.EventData{Type: bad.typ, Data: []byte(bad.data)})
			if err != nil {
				t.Fatal(err)
			}
			e.workload(t) // stock events after the poison
			var failed atomic.Int32
			run(t, projections.NewRunner(e.pool, e.store, orderstock.Projector{}, projections.Options{
				BatchSize: 3, Attempts: 2, RetryDelay: time.Millisecond, LeaderPoll: 20 * time.Millisecond,
				OnFailed: func(string, error) { failed.Add(1) },
			}))
			eventually.True(t, "the index to be marked failed and the failure reported", func() bool {
				_, state, _ := e.checkpoint(t, "order_stock")
				return state == projections.StateFailed && failed.Load() > 0
			})
			cp, _, msg := e.checkpoint(t, "order_stock")
			if !cp.Less(res.Position) || !strings.Contains(msg, fmt.Sprintf("%s@%d", stream, res.Version)) {
				t.Fatalf("checkpoint %s (poison at %s), error %q", cp, res.Position, msg)
			}
			for _, r := range e.indexRows(t) {
				if !r.pos.Less(res.Position) {
					t.Fatalf("indexed past the poison event: %v", r)
				}
			}
			all := e.scanStockEvents(t)
			if !slices.ContainsFunc(all, func(r stockRow) bool { return res.Position.Less(r.pos) }) {
				t.Fatal("the test wrote no stock event after the poison")
			}
		})
	}
}
