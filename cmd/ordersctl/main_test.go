package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/pgtest"
)

func ctl(t *testing.T, url string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := newRootCmd(url)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("ordersctl %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func TestMigrateUpAndStatus(t *testing.T) {
	url := pgtest.NewDatabase(t)
	if out := ctl(t, url, "migrate", "status"); !strings.Contains(out, "pending") || strings.Contains(out, "applied") {
		t.Fatalf("status before up:\n%s", out)
	}
	if out := ctl(t, url, "migrate", "up"); !strings.Contains(out, "applied 00001") {
		t.Fatalf("up:\n%s", out)
	}
	if out := ctl(t, url, "migrate", "up"); !strings.Contains(out, "no pending migrations") {
		t.Fatalf("second up:\n%s", out)
	}
	out := ctl(t, url, "--database-url", url, "migrate", "status")
	if !strings.Contains(out, "00001") || !strings.Contains(out, "applied") || strings.Contains(out, "pending") {
		t.Fatalf("status after up:\n%s", out)
	}
}

// ctlErr runs ordersctl and returns its error and output.
func ctlErr(url string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := newRootCmd(url)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestProjectionsListAndOrderHistory(t *testing.T) {
	pool := pgtest.NewPool(t, 10)
	url := pool.Config().ConnString()
	ctx := context.Background()
	store := postgres.New(pool, postgres.Options{})
	defer store.Close()
	svc := command.NewService(store, command.Options{})
	p, err := svc.CreateProduct(ctx, command.CreateProduct{Name: "Pen", Price: 100, Stock: 5})
	if err != nil {
		t.Fatal(err)
	}
	o, err := svc.PlaceOrder(ctx, command.PlaceOrder{UserEmail: "a@example.com", Lines: []order.Line{{ProductID: p.ID, Quantity: 2}},
		Meta: eventstore.Metadata{Actor: "customer", CorrelationID: "corr-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO projection_checkpoints (name, state, error) VALUES ('orders', 'failed', 'poison at 1/2')`); err != nil {
		t.Fatal(err)
	}
	out := ctl(t, url, "projections", "list")
	if !strings.Contains(out, "orders") || !strings.Contains(out, "failed") || !strings.Contains(out, "poison at 1/2") || !strings.Contains(out, "BEHIND") {
		t.Fatalf("projections list:\n%s", out)
	}
	table := ctl(t, url, "orders", "history", o.ID.String())
	for _, want := range []string{"order.placed.v1", "product.stock_reserved.v1", "order.reserved.v1", "corr-1", "customer"} {
		if !strings.Contains(table, want) {
			t.Fatalf("history table lacks %s:\n%s", want, table)
		}
	}
	raw := ctl(t, url, "orders", "history", "--json", o.ID.String())
	var h struct {
		OrderID string `json:"order_id"`
		Events  []struct {
			Type string `json:"type"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(raw), &h); err != nil || h.OrderID != o.ID.String() || len(h.Events) != 3 {
		t.Fatalf("history --json: %v\n%s", err, raw)
	}
	if _, err := ctlErr(url, "orders", "history", "not-a-uuid"); err == nil {
		t.Fatal("a malformed id was accepted")
	}

	// Everything appended must be readable first: an open transaction
	// elsewhere on the server could hold the newest events back, and the
	// rebuild would (rightly) stop before them.
	marker, err := store.Append(ctx, "marker-1", eventstore.NoStream, eventstore.EventData{Type: "test.marker", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		head, err := store.Head(ctx)
		if err == nil && !head.Less(marker.Position) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("events never became readable")
		}
		time.Sleep(10 * time.Millisecond) // polling the head against a deadline
	}

	// Rebuild: plain progress lines when stderr is not a terminal, then a summary.
	out = ctl(t, url, "projections", "rebuild", "products", "--batch", "1")
	if !strings.Contains(out, "rebuild products: ") || !strings.Contains(out, "events/s") || !strings.Contains(out, "rebuilt products: 5 events") || strings.Count(out, "5/5 events") != 1 {
		t.Fatalf("rebuild:\n%s", out)
	}
	var stock int64
	if err := pool.QueryRow(ctx, `SELECT stock FROM read_products WHERE id = $1`, p.ID).Scan(&stock); err != nil || stock != 3 {
		t.Fatalf("rebuilt product: stock %d, %v", stock, err)
	}
	if _, err := ctlErr(url, "projections", "rebuild", "nope"); err == nil {
		t.Fatal("an unknown projection was accepted")
	}
}
