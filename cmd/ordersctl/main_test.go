package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/process"
)

// ctl runs ordersctl with DATABASE_URL=url and no EVENTSTORE_URL (the
// PostgreSQL event store) and returns its output.
func ctl(t *testing.T, url string, args ...string) string {
	t.Helper()
	return ctlES(t, url, "", args...)
}

// ctlES runs ordersctl with DATABASE_URL=url and EVENTSTORE_URL=esURL.
func ctlES(t *testing.T, url, esURL string, args ...string) string {
	t.Helper()
	out, err := ctlESErr(url, esURL, args...)
	if err != nil {
		t.Fatalf("ordersctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
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
	return ctlESErr(url, "", args...)
}

func ctlESErr(url, esURL string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := newRootCmd(url, esURL)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := execute(context.Background(), cmd)
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
	visible(t, store, "marker-1")
	// The history finds stock events through the order_stock index: build
	// it (no projector runs here).
	if out := ctl(t, url, "projections", "rebuild", "order_stock"); !strings.Contains(out, "rebuilt order_stock: 5 events") {
		t.Fatalf("rebuild order_stock:\n%s", out)
	}
	if out := ctl(t, url, "projections", "list"); !strings.Contains(out, "order_stock") {
		t.Fatalf("projections list after the index was built:\n%s", out)
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

	// Rebuild: plain progress lines when stderr is not a terminal, then a summary.
	out = ctl(t, url, "projections", "rebuild", "products", "--batch", "1")
	if !strings.Contains(out, "rebuild products: ") || !strings.Contains(out, "events/s") || !strings.Contains(out, "rebuilt products: 5 events") || strings.Count(out, "5/5 events") != 1 {
		t.Fatalf("rebuild:\n%s", out)
	}
	var stock int64
	if err := pool.QueryRow(ctx, `SELECT stock FROM read_products WHERE id = $1`, p.ID).Scan(&stock); err != nil || stock != 3 {
		t.Fatalf("rebuilt product: stock %d, %v", stock, err)
	}
	if out, err := ctlErr(url, "projections", "rebuild", "nope"); err == nil || !strings.Contains(out, "products, orders, order_stock") {
		t.Fatalf("an unknown projection: %v\n%s", err, out)
	}

	// With the index behind the store (no projector), the history says so.
	visible(t, store, "marker-2")
	out, err = ctlErr(url, "orders", "history", "--wait", "50ms", o.ID.String())
	if err != nil || !strings.Contains(out, "order.placed.v1") || !strings.Contains(out, "note: the order_stock index is at") {
		t.Fatalf("history with the index behind: %v\n%s", err, out)
	}
}

// visible appends a marker to stream and waits until the store's head has
// passed it: everything appended before is then readable in the global
// order (an open transaction elsewhere on the server can hold the newest
// events back, and a rebuild would rightly stop before them).
func visible(t *testing.T, store *postgres.Store, stream string) {
	t.Helper()
	ctx := context.Background()
	marker, err := store.Append(ctx, stream, eventstore.NoStream, eventstore.EventData{Type: "test.marker", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "events to become readable", func() bool {
		head, err := store.Head(ctx)
		return err == nil && !head.Less(marker.Position)
	})
}

// A parked step is listed, retried (due again, pending) and a discarded one
// is gone; unknown ids and the process manager's rebuild are refused.
func TestDeadLetters(t *testing.T) {
	pool := pgtest.NewPool(t, 4)
	url := pool.Config().ConnConfig.ConnString()
	ctx := context.Background()
	orderA, orderB := uuid.New(), uuid.New()
	for _, o := range []uuid.UUID{orderA, orderB} {
		if _, err := pool.Exec(ctx, `INSERT INTO process_tasks (id, kind, order_id, state, due_at, attempts, last_error, correlation_id)
			VALUES ($1, 'initiate_payment', $2, 'parked', now(), 6, 'payment provider unavailable: 503', 'req-1')`, uuid.New(), o); err != nil {
			t.Fatal(err)
		}
	}
	if out := ctl(t, url, "dlq", "list"); !strings.Contains(out, orderA.String()) || !strings.Contains(out, "503") || !strings.Contains(out, "initiate_payment") {
		t.Fatalf("list:\n%s", out)
	}
	var letters []process.DeadLetter
	if err := json.Unmarshal([]byte(ctl(t, url, "dlq", "list", "--json")), &letters); err != nil || len(letters) != 2 {
		t.Fatalf("list --json: %v %v", letters, err)
	}
	retried, discarded := letters[0], letters[1]
	if out := ctl(t, url, "dlq", "retry", retried.ID.String()); !strings.Contains(out, "retrying") {
		t.Fatalf("retry:\n%s", out)
	}
	var state string
	if err := pool.QueryRow(ctx, `SELECT state FROM process_tasks WHERE id = $1`, retried.ID).Scan(&state); err != nil || state != "pending" {
		t.Fatalf("retried step is %q (%v)", state, err)
	}
	if out := ctl(t, url, "dlq", "discard", discarded.ID.String()); !strings.Contains(out, "discarded") {
		t.Fatalf("discard:\n%s", out)
	}
	if out := ctl(t, url, "dlq", "list"); !strings.Contains(out, "no dead letters") {
		t.Fatalf("list after:\n%s", out)
	}
	for _, args := range [][]string{{"dlq", "retry", retried.ID.String()}, {"dlq", "discard", discarded.ID.String()}, {"dlq", "retry", "nope"},
		{"projections", "rebuild", "process_manager"}} {
		if out, err := ctlErr(url, args...); err == nil {
			t.Errorf("ordersctl %v succeeded:\n%s", args, out)
		}
	}
}

// A failed projection resumes from its checkpoint; a running one is not
// "resumed".
func TestProjectionsResume(t *testing.T) {
	pool := pgtest.NewPool(t, 4)
	url := pool.Config().ConnConfig.ConnString()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO projection_checkpoints (name, position_commit, position_prepare, state, error)
		VALUES ('process_manager', 42, 7, 'failed', 'boom'), ('orders', 1, 1, 'running', '')`); err != nil {
		t.Fatal(err)
	}
	if out := ctl(t, url, "projections", "resume", "process_manager"); !strings.Contains(out, "resumes") {
		t.Fatalf("resume:\n%s", out)
	}
	var state, msg string
	var commit int64
	if err := pool.QueryRow(ctx, `SELECT state, error, position_commit FROM projection_checkpoints WHERE name = 'process_manager'`).Scan(&state, &msg, &commit); err != nil {
		t.Fatal(err)
	}
	if state != "running" || msg != "" || commit != 42 {
		t.Fatalf("after resume: %s %q at %d", state, msg, commit)
	}
	for _, name := range []string{"orders", "process_manager", "nope"} {
		if out, err := ctlErr(url, "projections", "resume", name); err == nil {
			t.Errorf("resume of %s succeeded:\n%s", name, out)
		}
	}
}

func TestProbe(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ready"}`)) }))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer down.Close()
	if out := ctl(t, "", "probe", ok.URL); !strings.Contains(out, "200") {
		t.Fatalf("probe: %s", out)
	}
	if _, err := ctlErr("", "probe", down.URL); err == nil {
		t.Fatal("a 503 passed the probe")
	}
	if _, err := ctlErr("", "probe", "http://127.0.0.1:1/readyz"); err == nil {
		t.Fatal("a closed port passed the probe")
	}
}

// Help never prints the database password, on any command.
func TestHelpRedactsTheDatabasePassword(t *testing.T) {
	const url = "postgres://orders:s3cret-pw@db.internal:5432/orders?sslmode=disable"
	for _, args := range [][]string{{"--help"}, {"projections", "rebuild", "--help"}, {"dlq", "list", "--help"}} {
		out := ctl(t, url, args...)
		if strings.Contains(out, "s3cret-pw") || !strings.Contains(out, "orders:xxxxx@db.internal") {
			t.Fatalf("ordersctl %s:\n%s", strings.Join(args, " "), out)
		}
	}
}

// A provider's text in a dead letter's last error cannot forge rows or
// columns of the table: its newlines and tabs show escaped, and a long
// error is bounded (--json has it whole).
func TestDeadLetterListShowsStoredTextEscaped(t *testing.T) {
	pool := pgtest.NewPool(t, 4)
	url := pool.Config().ConnConfig.ConnString()
	forged := "refused: 422 bad\n00000000-0000-0000-0000-000000000000\tinitiate_payment\tforged\u2028row " + strings.Repeat("x", 2000)
	if _, err := pool.Exec(context.Background(), `INSERT INTO process_tasks (id, kind, order_id, state, due_at, attempts, last_error, correlation_id)
		VALUES ($1, 'initiate_payment', $2, 'parked', now(), 6, $3, 'req-1')`, uuid.New(), uuid.New(), forged); err != nil {
		t.Fatal(err)
	}
	out := ctl(t, url, "dlq", "list")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || strings.ContainsAny(out, "\t\u2028") ||
		!strings.Contains(out, `bad\n00000000`) || !strings.Contains(out, "characters)") || len(lines[1]) > 800 {
		t.Fatalf("list:\n%s", out)
	}
	var letters []process.DeadLetter
	if err := json.Unmarshal([]byte(ctl(t, url, "dlq", "list", "--json")), &letters); err != nil || len(letters) != 1 || letters[0].LastError != forged {
		t.Fatalf("list --json: %v %v", letters, err)
	}
}
