package command_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/money"
	snapshotpg "github.com/orders-reference/orders/snapshot/postgres"
)

// A reservation made after its order's placement was decided (a completer
// that lost the race) is stray: it is released, never sold, even by a
// commit_stock that runs again after the order's own reservation was sold
// and forgotten; and the order's own reservation is never taken for a stray.
// The product knows where each reservation stands whether it was decided
// in this process, folded from the stream or restored from a snapshot.
func TestStrayReservationIsNeverCommitted(t *testing.T) {
	t.Parallel()
	pool, store := newPoolAndStore(t)
	snaps := snapshotpg.New(pool)
	svc := command.NewService(store, command.Options{Stock: command.StockOptions{Snapshots: snaps, SnapshotEvery: 1}})
	p := newProduct(t, svc, 10)
	v, err := place(svc, ctxT(t), "k", "stray@example.com", order.Line{ProductID: p, Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RequestPayment(ctxT(t), v.ID, "pay_1", customer); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecordPayment(ctxT(t), v.ID, order.PaymentOutcome{WebhookID: "w1", PaymentID: "pay_1", Succeeded: true, Amount: money.Amount(v.Total)}, customer); err != nil {
		t.Fatal(err)
	}
	// The paid order's own reservation is not a stray: a release_reservation
	// step (seeded at an upgrade, say) leaves it for commit_stock.
	if err := svc.ReleaseReservation(ctxT(t), v.ID, p, customer); err != nil {
		t.Fatal(err)
	}
	if st := stockOf(t, store, p); st.Reserved != 2 {
		t.Fatalf("the paid order's reservation was released: reserved %d", st.Reserved)
	}
	if err := svc.CommitStock(ctxT(t), v.ID, customer); err != nil {
		t.Fatal(err)
	}
	// A completer that lost the race reserves again.
	if _, _, err := svc.Stock().Do(ctxT(t), p, customer, func(st *product.State) ([]events.Event, error) {
		return st.Reserve(v.ID, 2)
	}); err != nil {
		t.Fatal(err)
	}
	svc.Close(ctxT(t))
	for name, again := range map[string]*command.Service{
		"the same process": svc,
		"a cold process":   command.NewService(store, command.Options{}),
		"from a snapshot":  command.NewService(store, command.Options{Stock: command.StockOptions{Snapshots: snaps, SnapshotEvery: 1 << 30}}),
	} {
		if err := again.CommitStock(ctxT(t), v.ID, customer); err != nil {
			t.Fatal(err)
		}
		if st := stockOf(t, store, p); st.Reserved != 2 || st.Available != 6 {
			t.Fatalf("%s: commit_stock again sold the stray: available %d, reserved %d", name, st.Available, st.Reserved)
		}
	}
	if err := command.NewService(store, command.Options{}).ReleaseReservation(ctxT(t), v.ID, p, customer); err != nil {
		t.Fatal(err)
	}
	st := stockOf(t, store, p)
	if st.Reserved != 0 || st.Available != 8 {
		t.Fatalf("after the stray's release: available %d, reserved %d, want 8 and 0", st.Available, st.Reserved)
	}
	n := map[string]int{}
	for _, e := range readProductEvents(t, store, p) {
		n[e.EventType()]++
		if rel, ok := e.(events.ProductReservationReleased); ok && rel.Reason != events.ReleaseReservationAfterClose {
			t.Fatalf("the stray was released for %q", rel.Reason)
		}
	}
	if n[events.TypeProductReservationCommitted] != 1 || n[events.TypeProductReservationReleased] != 1 {
		t.Fatalf("events %v: want one commit and one release", n)
	}
}

// readProductEvents returns the decoded events of product p's stream.
func readProductEvents(t *testing.T, store command.EventStore, p uuid.UUID) []events.Event {
	t.Helper()
	recorded, err := store.ReadStream(ctxT(t), events.ProductStream(p), eventstore.Forward, 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]events.Event, len(recorded))
	for i, r := range recorded {
		if out[i], err = events.Decode(r.Type, r.Data); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
