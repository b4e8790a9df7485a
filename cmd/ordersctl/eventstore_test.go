package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/kurrentdb"
	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/eventstores/eventstorestest"
	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/process"
	"github.com/orders-reference/orders/projections"
)

// A deployment moves from the PostgreSQL event store to KurrentDB: with
// the events copied over, every command that reads the event store reads
// the one --eventstore-url names; the read models are rebuilt from it, the
// process manager is switched to its head, and each checkpoint then
// belongs to KurrentDB. A rebuild moves a read model back just as well.
func TestMoveToKurrentDBAndBack(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, 10)
	url := pool.Config().ConnString()
	ctx := context.Background()
	pgStore := postgres.New(pool, postgres.Options{})
	defer pgStore.Close()
	svc := command.NewService(pgStore, command.Options{})
	p, err := svc.CreateProduct(ctx, command.CreateProduct{Name: "Pen", Price: 100, Stock: 5})
	if err != nil {
		t.Fatal(err)
	}
	o, err := svc.PlaceOrder(ctx, command.PlaceOrder{UserEmail: "a@example.com", Lines: []order.Line{{ProductID: p.ID, Quantity: 2}},
		Meta: eventstore.Metadata{Actor: "customer", CorrelationID: "corr-kdb"}})
	if err != nil {
		t.Fatal(err)
	}
	visible(t, pgStore, "marker")
	for _, name := range []string{"products", "orders", "order_stock"} {
		ctl(t, url, "projections", "rebuild", name)
	}
	pgHead, err := pgStore.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := process.StartAt(ctx, pool, "", pgHead); err != nil {
		t.Fatal(err)
	}

	// The events move to KurrentDB (the writers stopped).
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	kdb := openKurrentDB(t, srv.URL())
	if n := eventstorestest.Copy(t, kdb, pgStore); n != 5 {
		t.Fatalf("copied %d events, want 5", n)
	}
	es := srv.URL()

	// Listed against KurrentDB, every checkpoint is PostgreSQL's: nothing
	// to count it against, and its ERROR says whose it is.
	out := ctlES(t, url, es, "projections", "list")
	for _, name := range []string{"products", "orders", "order_stock", "process_manager"} {
		if !strings.Contains(out, name+"  ") || !strings.Contains(out, "postgres") ||
			!strings.Contains(out, "projection "+name+": its checkpoint is a position in the postgres event store, not in the kurrentdb one configured") {
			t.Fatalf("list before the move:\n%s", out)
		}
	}
	for _, name := range []string{"products", "orders", "order_stock"} {
		if out := ctlES(t, url, es, "projections", "rebuild", name); !strings.Contains(out, "rebuilt "+name) || !strings.Contains(out, "in the kurrentdb event store") {
			t.Fatalf("rebuild %s from KurrentDB:\n%s", name, out)
		}
	}
	if out, err := ctlESErr(url, es, "projections", "switch", "orders"); err == nil || !strings.Contains(out, "rebuild") {
		t.Fatalf("switch of a read model: %v\n%s", err, out)
	}
	if out := ctlES(t, url, es, "projections", "switch", "process_manager"); !strings.Contains(out, "process_manager moved from "+pgHead.String()+" in the postgres event store") {
		t.Fatalf("switch:\n%s", out)
	}
	if out, err := ctlESErr(url, es, "projections", "switch", "process_manager"); err == nil || !strings.Contains(out, "already") {
		t.Fatalf("second switch: %v\n%s", err, out)
	}
	kdbHead, err := kdb.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT name, event_store, position_commit, position_prepare FROM projection_checkpoints ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var name, kind string
		var c, pr int64
		if err := rows.Scan(&name, &kind, &c, &pr); err != nil {
			t.Fatal(err)
		}
		if at := (eventstore.Position{Commit: uint64(c), Prepare: uint64(pr)}); kind != "kurrentdb" || at.Less(kdbHead) {
			t.Errorf("%s: %s at %s, want kurrentdb at or after %s", name, kind, at, kdbHead)
		}
		n++
	}
	if rows.Err() != nil || n != 4 {
		t.Fatalf("%d checkpoints (%v)", n, rows.Err())
	}
	out = ctlES(t, url, es, "projections", "list")
	if strings.Contains(out, "postgres") || strings.Count(out, "kurrentdb") != 4 {
		t.Fatalf("list after the move:\n%s", out)
	}
	// The read models hold what the copied events say; the audit trail
	// reads KurrentDB.
	var stock int64
	if err := pool.QueryRow(ctx, `SELECT stock FROM read_products WHERE id = $1`, p.ID).Scan(&stock); err != nil || stock != 3 {
		t.Fatalf("rebuilt product: stock %d, %v", stock, err)
	}
	raw := ctlES(t, url, es, "orders", "history", "--json", "--wait", "1s", o.ID.String())
	var h struct {
		Events []struct {
			Type     string `json:"type"`
			Position string `json:"position"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(raw), &h); err != nil || len(h.Events) != 3 {
		t.Fatalf("history from KurrentDB: %v\n%s", err, raw)
	}
	for _, e := range h.Events {
		pos, err := eventstore.ParsePosition(e.Position)
		if err != nil || pos.Commit != pos.Prepare { // KurrentDB's positions: commit = prepare
			t.Fatalf("history event %s at %s (%v): not a KurrentDB position", e.Type, e.Position, err)
		}
	}

	// And back: a rebuild from PostgreSQL moves a read model again.
	if out := ctl(t, url, "projections", "rebuild", "products"); !strings.Contains(out, "in the postgres event store") {
		t.Fatalf("rebuild back:\n%s", out)
	}
	if err := projections.CheckEventStore(ctx, pool, "postgres", []string{"products"}); err != nil {
		t.Fatalf("products after the rebuild from PostgreSQL: %v", err)
	}
	err = projections.CheckEventStore(ctx, pool, "postgres", []string{"orders", "products"})
	if want := "projection orders: its checkpoint is a position in the kurrentdb event store, not in the postgres one configured"; err == nil || err.Error() != want {
		t.Fatalf("check: %v, want %q", err, want)
	}
}

// A rebuild interrupted while reading one event store starts over when it
// is resumed from another: its position means nothing there.
func TestRebuildInterruptedInAnotherEventStoreStartsOver(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, 10)
	url := pool.Config().ConnString()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE read_products_rb_1 (LIKE read_products INCLUDING ALL);
		INSERT INTO projection_checkpoints (name, position_commit, position_prepare, shadow_table)
		VALUES ('products#rebuild', 987654, 3, 'read_products_rb_1')`); err != nil {
		t.Fatal(err)
	}
	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	svc := command.NewService(openKurrentDB(t, srv.URL()), command.Options{})
	if _, err := svc.CreateProduct(ctx, command.CreateProduct{Name: "Pen", Price: 100, Stock: 5}); err != nil {
		t.Fatal(err)
	}
	if out := ctlES(t, url, srv.URL(), "projections", "rebuild", "products"); !strings.Contains(out, "rebuilt products") {
		t.Fatalf("rebuild:\n%s", out)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM read_products`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d products rebuilt (%v)", n, err)
	}
	var old *string
	if err := pool.QueryRow(ctx, `SELECT to_regclass('read_products_rb_1')::text`).Scan(&old); err != nil || old != nil {
		t.Fatalf("the interrupted rebuild's table is still there: %v %v", old, err)
	}
}

// --eventstore-url's password never shows: not in help, not in errors.
func TestEventStorePasswordNeverShows(t *testing.T) {
	t.Parallel()
	const es = "esdb://admin:kdb-s3cret@127.0.0.1:1?tls=true&tlsVerifyCert=false&maxDiscoverAttempts=1"
	for _, args := range [][]string{{"--help"}, {"projections", "rebuild", "--help"}} {
		out := ctlES(t, "", es, args...)
		if strings.Contains(out, "kdb-s3cret") || !strings.Contains(out, "admin:xxxxx@127.0.0.1:1") {
			t.Fatalf("ordersctl %s:\n%s", strings.Join(args, " "), out)
		}
	}
	pool := pgtest.NewPool(t, 2)
	out, err := ctlESErr(pool.Config().ConnString(), es, "projections", "list")
	if err == nil || strings.Contains(out+err.Error(), "kdb-s3cret") {
		t.Fatalf("list with KurrentDB away: %v\n%s", err, out)
	}
	out, err = ctlESErr(pool.Config().ConnString(), "mysql://admin:kdb-s3cret@db/orders", "projections", "list")
	if err == nil || strings.Contains(out+err.Error(), "kdb-s3cret") {
		t.Fatalf("list with an unknown event store: %v\n%s", err, out)
	}
}

func openKurrentDB(t *testing.T, url string) *kurrentdb.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := kurrentdb.New(ctx, url, kurrentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
