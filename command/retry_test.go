package command_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/internal/eventstores/eventstorestest"
	snapshotpg "github.com/orders-reference/orders/snapshot/postgres"
)

// Snapshots after lost answers, on every event store: reservations whose
// answers were lost (their placements retried with their keys) leave the
// cached product as it was, so the product's snapshots hold only what its
// stream holds: a snapshot is the state folded from the events it covers,
// and a cold load from it is the product as its events alone give it.
func TestSnapshotsAfterLostAnswers(t *testing.T) {
	t.Parallel()
	eventstorestest.Each(t, func(t *testing.T, b eventstorestest.Backend) {
		lost := eventstorestest.NewLostAnswers(b.Store)
		snaps := snapshotpg.New(b.Pool)
		writer := command.NewService(lost, command.Options{Stock: command.StockOptions{Snapshots: snaps, SnapshotEvery: 2}})
		p := newProduct(t, writer, 100)
		const orders = 6
		for i := range orders {
			key, line := fmt.Sprint("k", i), order.Line{ProductID: p, Quantity: 1}
			if i%2 == 0 {
				lost.Lose(events.TypeProductStockReserved, 1)
				if _, err := place(writer, ctxT(t), key, "snap@example.com", line); !errors.Is(err, eventstorestest.ErrAnswerLost) {
					t.Fatalf("placement %d: %v, want its answer lost", i, err)
				}
			}
			if v, err := place(writer, ctxT(t), key, "snap@example.com", line); err != nil || v.Status != order.StatusReserved {
				t.Fatalf("placement %d: %v %v", i, v.Status, err)
			}
		}
		lost.WantLost(t, orders/2)
		writer.Close(ctxT(t))

		want := []string{events.TypeProductCreated}
		for range orders {
			want = append(want, events.TypeProductStockReserved)
		}
		eventstorestest.WantTypes(t, b.Store, events.ProductStream(p), want...)
		snap := snapshotted(t, snaps, p, 1)
		if folded := foldedTo(t, b.Store, p, snap.Version); string(snap.Data) != string(folded) {
			t.Fatalf("snapshot of version %d:\n%s\nfolded from its events:\n%s", snap.Version, snap.Data, folded)
		}
		fromEvents, err := command.NewService(b.Store, command.Options{}).Stock().View(ctxT(t), p)
		if err != nil {
			t.Fatal(err)
		}
		readOnly := command.NewService(b.Store, command.Options{Stock: command.StockOptions{Snapshots: snaps, SnapshotEvery: 1 << 30}})
		fromSnapshot, err := readOnly.Stock().View(ctxT(t), p)
		if err != nil {
			t.Fatal(err)
		}
		if !sameView(fromSnapshot, fromEvents) || fromEvents.Available != 100-orders || fromEvents.Reserved != orders {
			t.Fatalf("from the snapshot:\n%+v\nfrom the events alone:\n%+v", fromSnapshot, fromEvents)
		}
	})
}
