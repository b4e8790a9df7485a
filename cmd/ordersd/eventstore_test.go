package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore/kurrentdb"
	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/internal/eventstores"
	"github.com/orders-reference/orders/internal/eventstores/eventstorestest"
	"github.com/orders-reference/orders/internal/eventually"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/process"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query/readmodels"
)

// A read waits for its own read model only, and that read model passes a
// write it has nothing to apply from at once: an order read waits for a
// product's creation, a product read for an order's placement, without
// more events to come. Idle, every projection is at the end of the log.
// (KurrentDB tells a filtered subscription where it got only every so many
// events; ordersd filters its subscriptions itself.)
func TestReadYourWritesAcrossReadModels(t *testing.T) {
	t.Parallel()
	onEachEventStore(t, func(t *testing.T, es string) {
		db := testDatabase(t)
		s := startServer(t, es, "DATABASE_URL="+db, "FAKE_PAYMENT_DELAY=1h")
		eventually.True(t, "ordersd to be ready", func() bool { return s.do(t, "GET", "/readyz", "").Status == http.StatusOK })
		created := s.do(t, "POST", "/admin/products", `{"name":"Lamp","price":"20.00","stock":3}`, "X-Admin-Secret", adminSecret)
		product := created.Body["id"].(string)
		if r := s.do(t, "GET", "/orders/"+uuid.NewString(), "", "X-Min-Position", created.Header.Get("X-Event-Position")); r.Status != http.StatusNotFound {
			t.Fatalf("an order read after a product's creation: %d %s", r.Status, r.Raw)
		}
		placed := s.do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":"ryw@example.com","items":[{"product_id":%q,"quantity":2}]}`, product))
		if placed.Status != http.StatusCreated {
			t.Fatalf("place: %d %s", placed.Status, placed.Raw)
		}
		at := placed.Header.Get("X-Event-Position")
		if r := s.do(t, "GET", "/products/"+product, "", "X-Min-Position", at); r.Status != http.StatusOK || r.Body["reserved"] != 2.0 {
			t.Fatalf("the product read after the placement: %d %s", r.Status, r.Raw)
		}
		id := placed.Body["id"].(string)
		if r := s.do(t, "GET", "/orders/"+id, "", "X-Min-Position", at); r.Status != http.StatusOK || (r.Body["status"] != "reserved" && r.Body["status"] != "payment_pending") {
			t.Fatalf("the order read after its placement: %d %s", r.Status, r.Raw)
		}
		h := s.do(t, "GET", "/admin/orders/"+id+"/history", "", "X-Admin-Secret", adminSecret, "X-Min-Position", at)
		for _, want := range []string{"order.placed.v1", "product.stock_reserved.v1", "order.reserved.v1"} {
			if h.Status != http.StatusOK || !strings.Contains(h.Raw, want) {
				t.Fatalf("the history after the placement lacks %s: %d %s", want, h.Status, h.Raw)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		pool, err := pg.Connect(ctx, db, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		b, err := eventstores.Open(ctx, strings.TrimPrefix(es, "EVENTSTORE_URL="), pool, eventstores.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		var list []projections.Status
		eventually.True(t, "every projection to reach the end of the log", func() bool {
			list, err = projections.Statuses(ctx, pool, b.Store, projections.StatusOptions{EventStore: b.Kind})
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range list {
				if st.Behind != 0 || st.EventStore != b.Kind {
					return false
				}
			}
			return len(list) == len(readmodels.Names())+1
		})
	})
}

// /readyz reports a read model that falls behind, with its lag, and is
// ready again once a projector catches up.
func TestReadinessReportsLag(t *testing.T) {
	t.Parallel()
	onEachEventStore(t, func(t *testing.T, es string) {
		db := testDatabase(t)
		api := startServer(t, es, "DATABASE_URL="+db, "ORDERS_ROLES=command,query", "READY_MAX_PROJECTION_LAG=1s")
		projector := startServer(t, es, "DATABASE_URL="+db, "ORDERS_ROLES=projector")
		eventually.True(t, "ordersd to be ready", func() bool { return api.do(t, "GET", "/readyz", "").Status == http.StatusOK })
		projector.stop()
		api.do(t, "POST", "/admin/products", `{"name":"Lamp","price":"20.00","stock":3}`, "X-Admin-Secret", adminSecret)
		var r response
		eventually.True(t, "/readyz to report the lag", func() bool {
			r = api.do(t, "GET", "/readyz", "")
			checks, _ := r.Body["checks"].(map[string]any)
			msg, _ := checks["projections"].(string)
			return r.Status == http.StatusServiceUnavailable && strings.Contains(msg, "behind (1 events)")
		})
		if lag := metric(t, api, `projection_lag_events{projection="products"}`); lag != "1" {
			t.Errorf("projection_lag_events{products} %q, want 1", lag)
		}
		startServer(t, es, "DATABASE_URL="+db, "ORDERS_ROLES=projector")
		eventually.True(t, "ordersd to be ready again", func() bool { return api.do(t, "GET", "/readyz", "").Status == http.StatusOK })
	})
}

// A deployment moves from the PostgreSQL event store to KurrentDB.
// Started on KurrentDB while its checkpoints are PostgreSQL's, ordersd
// refuses, naming each checkpoint with the store it belongs to and what to
// do about it. With the events copied over, the read models rebuilt from
// KurrentDB and the process manager switched to its head (what ordersctl
// projections rebuild and switch do), it starts, serves what was there and
// takes new orders to paid.
func TestMovingToKurrentDB(t *testing.T) {
	t.Parallel()
	db := testDatabase(t)
	before := startServer(t, "DATABASE_URL="+db, "FAKE_PAYMENT_SUCCESS_RATE=1", "FAKE_PAYMENT_DELAY=10ms")
	product := before.do(t, "POST", "/admin/products", `{"name":"Lamp","price":"20.00","stock":5}`, "X-Admin-Secret", adminSecret).Body["id"].(string)
	order := func(s *server) string {
		t.Helper()
		r := s.do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":"move@example.com","items":[{"product_id":%q,"quantity":1}]}`, product))
		if r.Status != http.StatusCreated {
			t.Fatalf("place: %d %s", r.Status, r.Raw)
		}
		id := r.Body["id"].(string)
		eventually.True(t, "order "+id+" to be paid and its stock sold", func() bool {
			o := s.do(t, "GET", "/orders/"+id, "")
			h := s.do(t, "GET", "/admin/orders/"+id+"/history", "", "X-Admin-Secret", adminSecret)
			return o.Body["status"] == "paid" && strings.Contains(h.Raw, "product.reservation_committed.v1")
		})
		return id
	}
	first := order(before)
	eventually.True(t, "every projection to catch up", func() bool {
		for _, name := range append(readmodels.Names(), process.Name) {
			if metric(t, before, `projection_lag_events{projection="`+name+`"}`) != "0" {
				return false
			}
		}
		return true
	})
	before.stop()

	srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
	cfg, err := config.Load([]string{"DATABASE_URL=" + db, "EVENTSTORE_URL=" + srv.URL(), "REDIS_URL=", "ADMIN_SECRET=" + adminSecret})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), cfg, slog.New(slog.DiscardHandler), ln, tracing.Tracing{})
	if !errors.Is(err, errOtherEventStore) || !errors.Is(err, projections.ErrOtherEventStore) {
		t.Fatalf("started on KurrentDB with PostgreSQL's checkpoints: %v", err)
	}
	for _, name := range readmodels.Names() {
		if want := name + ": its checkpoint is a position in the postgres event store; rebuild it from kurrentdb with `ordersctl projections rebuild " + name + "`"; !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q:\n%v", want, err)
		}
	}
	if want := "process_manager: the process manager's checkpoint is a position in the postgres event store; it cannot be rebuilt"; !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), "`ordersctl projections switch process_manager`") {
		t.Errorf("the refusal does not say %q and how to switch:\n%v", want, err)
	}

	// The move, as an operator does it with ordersctl.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pg.Connect(ctx, db, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	from := postgres.New(pool, postgres.Options{})
	defer from.Close()
	to, err := kurrentdb.New(ctx, srv.URL(), kurrentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()
	eventstorestest.Copy(t, to, from)
	for _, proj := range readmodels.All() {
		if _, err := projections.Rebuild(ctx, pool, to, proj, projections.RebuildOptions{EventStore: eventstores.KurrentDB}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := projections.Switch(ctx, pool, to, process.Name, eventstores.KurrentDB); err != nil {
		t.Fatal(err)
	}

	after := startServer(t, "DATABASE_URL="+db, "EVENTSTORE_URL="+srv.URL(), "FAKE_PAYMENT_SUCCESS_RATE=1", "FAKE_PAYMENT_DELAY=10ms")
	eventually.True(t, "ordersd on KurrentDB to be ready", func() bool { return after.do(t, "GET", "/readyz", "").Status == http.StatusOK })
	if r := after.do(t, "GET", "/orders/"+first, ""); r.Status != http.StatusOK || r.Body["status"] != "paid" {
		t.Fatalf("the order paid before the move: %d %s", r.Status, r.Raw)
	}
	order(after)
	// The products read model follows the sale on its own subscription,
	// not the history's.
	eventually.True(t, "the product to show two sales", func() bool {
		p := after.do(t, "GET", "/products/"+product, "")
		return p.Body["stock"] == 3.0 && p.Body["reserved"] == 0.0
	})
	h := after.do(t, "GET", "/admin/orders/"+first+"/history", "", "X-Admin-Secret", adminSecret)
	if events, _ := h.Body["events"].([]any); len(events) < 5 {
		t.Fatalf("the first order's history, copied: %s", h.Raw)
	}
}

// An event store that cannot be reached stops ordersd with a message that
// names it, without its password.
func TestUnreachableEventStore(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	code := start(context.Background(), nil, []string{"DATABASE_URL=" + testDatabase(t), "HTTP_ADDR=127.0.0.1:0", "REDIS_URL=",
		"EVENTSTORE_URL=esdb://admin:kdb-s3cret@127.0.0.1:1?tls=true&tlsVerifyCert=false&maxDiscoverAttempts=1"}, &out, &out)
	if code != 1 || !strings.Contains(out.String(), "esdb://admin:xxxxx@127.0.0.1:1") || strings.Contains(out.String(), "kdb-s3cret") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
}
