package migrations_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	esp "github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query/orders"
)

// Orders stored before canonical email forms keep the form earlier
// versions stored: trimmed and lower-cased, the domain as typed. After
// 00010 the admin filter still finds them: rows of ASCII addresses get
// their canonical form from the migration itself, the others are found by
// their stored form until the projector writes them again (their next
// event) or a rebuild converts them all, after which any spelling of the
// address finds every order of it.
func TestUpgradeGivesOrdersTheirCanonicalEmail(t *testing.T) {
	t.Parallel()
	ctx, up := upTo(t, 9)
	url, m := up.url, up.m
	pool, err := postgres.Connect(ctx, url, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := esp.New(pool, esp.Options{})
	defer store.Close()

	// What an earlier version stored: events and rows alike.
	stored := map[string]string{
		"ascii":      "user@example.com",
		"unicode":    "user@bücher.example",
		"full-width": "ｕｓｅｒ@bücher.example",
		"other":      "other@example.com",
	}
	ids := map[string]uuid.UUID{}
	product := uuid.New()
	for name, email := range stored {
		id := uuid.New()
		ids[name] = id
		placed := events.OrderPlaced{OrderID: id, UserEmail: email, Total: 100, Currency: "USD",
			Items: []events.OrderItem{{ProductID: product, Quantity: 1, UnitPrice: 100, LineTotal: 100}}}
		raw, err := events.Encode(placed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Append(ctx, events.OrderStream(id), eventstore.NoStream, eventstore.EventData{Type: placed.EventType(), Data: raw}); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO read_orders (id, user_email, status, items, total_amount, currency, created_at, updated_at, version)
		     VALUES ($1, $2, 'created', '[]', 100, 'USD', now(), now(), 1)`, id, email); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	canonical := func() map[string]*string {
		t.Helper()
		got := map[string]*string{}
		for name, id := range ids {
			var c *string
			if err := pool.QueryRow(ctx, `SELECT email_canonical FROM read_orders WHERE id = $1`, id).Scan(&c); err != nil {
				t.Fatal(err)
			}
			got[name] = c
		}
		return got
	}
	got := canonical()
	if got["ascii"] == nil || *got["ascii"] != "user@example.com" || got["other"] == nil || *got["other"] != "other@example.com" ||
		got["unicode"] != nil || got["full-width"] != nil {
		t.Fatalf("after 00010: %v", deref(got))
	}
	reader := orders.NewReader(pool)
	find := func(filter string, want ...string) {
		t.Helper()
		page, err := reader.List(ctx, filter, "", 10, "")
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, o := range page.Items {
			for name, id := range ids {
				if o.ID == id {
					found = append(found, name)
				}
			}
		}
		slices.Sort(found)
		slices.Sort(want)
		if !slices.Equal(found, want) {
			t.Errorf("email=%s found %v, want %v", filter, found, want)
		}
	}
	// Not converted yet: found by the stored form, or by the canonical one
	// whose domain in Unicode is the stored form.
	find("user@example.com", "ascii")
	find("User@Example.COM", "ascii")
	find("user@bücher.example", "unicode")
	find("USER@XN--BCHER-KVA.example", "unicode")

	// The next event of an order converts its row.
	reserved := events.OrderReserved{}
	raw, err := events.Encode(reserved)
	if err != nil {
		t.Fatal(err)
	}
	appended, err := store.Append(ctx, events.OrderStream(ids["full-width"]), eventstore.Exact(0), eventstore.EventData{Type: reserved.EventType(), Data: raw})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := store.ReadStream(ctx, events.OrderStream(ids["full-width"]), eventstore.Forward, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(stream) != 2 || stream[1].Type != reserved.EventType() {
		t.Fatalf("the order's stream: %v", stream)
	}
	last := stream[1]
	apply(t, ctx, pool, last)
	if got := canonical(); got["full-width"] == nil || *got["full-width"] != "user@xn--bcher-kva.example" || got["unicode"] != nil {
		t.Fatalf("after the full-width order's next event: %v", deref(got))
	}
	find("user@bücher.example", "unicode", "full-width")

	// A rebuild converts every row. It reads the events whose order is
	// final; a transaction of another test (xids are the cluster's) may
	// hold the last ones back for a moment, and no runner would apply
	// them after the rebuild here.
	eventually.True(t, "the last event's order is final", func() bool {
		head, err := store.Head(ctx)
		return err == nil && !head.Less(appended.Position)
	})
	if _, err := projections.Rebuild(ctx, pool, store, orders.Projector{}, projections.RebuildOptions{}); err != nil {
		t.Fatal(err)
	}
	got = canonical()
	for name, want := range map[string]string{"ascii": "user@example.com", "unicode": "user@xn--bcher-kva.example",
		"full-width": "user@xn--bcher-kva.example", "other": "other@example.com"} {
		if got[name] == nil || *got[name] != want {
			t.Fatalf("after a rebuild: %v", deref(got))
		}
	}
	for _, filter := range []string{"user@bücher.example", "ＵＳＥＲ@xn--bcher-kva.example", " User@Bücher.Example "} {
		find(filter, "unicode", "full-width")
	}
	find("user@example.com", "ascii")
	find("nobody@bücher.example")
	// The address the orders show is still the one their events hold.
	if o, err := reader.Get(ctx, ids["full-width"]); err != nil || o.UserEmail != "ｕｓｅｒ@bücher.example" {
		t.Fatalf("the full-width order shows %q, %v", o.UserEmail, err)
	}
}

// apply projects events into the orders read model as the runner does.
func apply(t *testing.T, ctx context.Context, pool *pgxpool.Pool, evs ...eventstore.RecordedEvent) {
	t.Helper()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := (orders.Projector{}).Apply(ctx, tx, evs); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func deref(m map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = "NULL"
		if v != nil {
			out[k] = *v
		}
	}
	return out
}
