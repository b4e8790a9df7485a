package migrations_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	esp "github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/postgres"
)

// An upgrade to the process manager that owns every reaction (00005) takes
// over what Recovery did at every start of the version before: a placement
// left undecided gets its completion, and a reservation still open for an
// order whose placement is decided gets a release_reservation step (which
// releases strays and the stock of rejected or canceled orders, and leaves
// live orders' reservations alone).
func TestUpgradeSeedsWhatRecoveryDid(t *testing.T) {
	t.Parallel()
	ctx, up := upTo(t, 3)
	url, m := up.url, up.m
	pool, err := postgres.Connect(ctx, url, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := esp.New(pool, esp.Options{})
	defer store.Close()
	appendAll := func(stream string, evs ...events.Event) {
		t.Helper()
		var data []eventstore.EventData
		for _, e := range evs {
			b, err := events.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, eventstore.EventData{Type: e.EventType(), Data: b})
		}
		if _, err := store.Append(ctx, stream, eventstore.Any, data...); err != nil {
			t.Fatal(err)
		}
	}
	p := uuid.New()
	appendAll(events.ProductStream(p), events.ProductCreated{ProductID: p, Name: "x", Price: 100, Stock: 10, IsActive: true})
	rejected, paid, settled, undecided := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	item := []events.OrderItem{{ProductID: p, Quantity: 1, UnitPrice: 100, LineTotal: 100}}
	for _, id := range []uuid.UUID{rejected, paid, settled, undecided} {
		appendAll(events.OrderStream(id), events.OrderPlaced{OrderID: id, UserEmail: "a@example.com", Items: item, Total: 100, Currency: "USD"})
	}
	appendAll(events.ProductStream(p), events.ProductStockReserved{OrderID: rejected, Quantity: 1},
		events.ProductStockReserved{OrderID: paid, Quantity: 1}, events.ProductStockReserved{OrderID: settled, Quantity: 1},
		events.ProductReservationCommitted{OrderID: settled, Quantity: 1})
	appendAll(events.OrderStream(rejected), events.OrderRejected{Reason: events.RejectInsufficientStock})
	appendAll(events.OrderStream(paid), events.OrderReserved{}, events.OrderPaid{PaymentID: "pay"})
	appendAll(events.OrderStream(settled), events.OrderReserved{}, events.OrderPaid{PaymentID: "pay2"})

	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT kind, order_id, product_id FROM process_tasks`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for rows.Next() {
		var kind string
		var order, product uuid.UUID
		if err := rows.Scan(&kind, &order, &product); err != nil {
			t.Fatal(err)
		}
		got[kind+" "+order.String()+" "+product.String()] = true
	}
	want := map[string]bool{
		"complete_placement " + undecided.String() + " " + uuid.Nil.String(): true,
		"release_reservation " + rejected.String() + " " + p.String():        true,
		"release_reservation " + paid.String() + " " + p.String():            true,
	}
	if len(got) != len(want) {
		t.Fatalf("seeded %v, want %v", got, want)
	}
	for k := range want {
		if !got[k] {
			t.Fatalf("seeded %v, want %v", got, want)
		}
	}
	var open int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM process_open_placements WHERE order_id = $1`, undecided).Scan(&open); err != nil || open != 1 {
		t.Fatalf("open placements of the undecided order: %d, %v", open, err)
	}
}

// The upgrade to competing consumers (00007) numbers the steps already
// scheduled in the order they were scheduled, whatever order the table
// stores them in, gives each its lane, and new steps follow them.
func TestUpgradeNumbersStepsInSchedulingOrder(t *testing.T) {
	t.Parallel()
	ctx, up := upTo(t, 6)
	db, m := up.db, up.m
	order := uuid.New()
	first, second := uuid.New(), uuid.New()
	// Stored second first: the table's order is not the scheduling order.
	if _, err := db.ExecContext(ctx, `INSERT INTO process_tasks (id, kind, order_id, due_at, created_at) VALUES
		($1, 'release_stock', $3, now(), now()),
		($2, 'initiate_payment', $3, now(), now() - interval '1 minute')`, second, first, order); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO process_tasks (id, kind, order_id, due_at) VALUES ($1, 'commit_stock', $2, now())`, uuid.New(), order); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT kind, lane FROM process_tasks ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var kind string
		var lane int
		if err := rows.Scan(&kind, &lane); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s/%d", kind, lane))
	}
	want := []string{"initiate_payment/0", "release_stock/1", "commit_stock/1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("steps by seq %v, want %v", got, want)
	}
}

// The upgrade that records each checkpoint's event store (00009) gives
// every checkpoint written before it PostgreSQL's: no other event store
// could run then. Later inserts that name none get it too (a previous
// version still running during a rolling upgrade).
func TestUpgradeRecordsCheckpointsAsPostgreSQLs(t *testing.T) {
	t.Parallel()
	ctx, up := upTo(t, 8)
	db, m := up.db, up.m
	if _, err := db.ExecContext(ctx, `INSERT INTO projection_checkpoints (name, position_commit, position_prepare)
		VALUES ('products', 10, 2), ('process_manager', 12, 1), ('orders#rebuild', 3, 1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO projection_checkpoints (name) VALUES ('orders')`); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT name, event_store, position_commit FROM projection_checkpoints ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var name, kind string
		var commit int64
		if err := rows.Scan(&name, &kind, &commit); err != nil {
			t.Fatal(err)
		}
		got[name] = fmt.Sprintf("%s@%d", kind, commit)
	}
	want := map[string]string{"products": "postgres@10", "process_manager": "postgres@12", "orders#rebuild": "postgres@3", "orders": "postgres@0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("checkpoints %v, want %v", got, want)
	}
}
