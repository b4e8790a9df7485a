package product_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
)

// A restored snapshot is the state folded from the same events, and folds
// further events the same way.
func TestSnapshotRoundTrip(t *testing.T) {
	id := uuid.New()
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	history := []events.Event{
		events.ProductCreated{ProductID: id, Name: "Lamp", Description: "d", Price: 1500, Stock: 10, IsActive: true},
		events.ProductStockReserved{OrderID: a, Quantity: 2},
		events.ProductStockReserved{OrderID: b, Quantity: 3},
		events.ProductReservationCommitted{OrderID: a, Quantity: 2},
		events.ProductStockReserved{OrderID: c, Quantity: 1},
	}
	folded := product.New(id)
	for i, e := range history {
		folded.Apply(e, int64(i), at.Add(time.Duration(i)*time.Second))
	}
	data, err := folded.MarshalSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored, err := product.RestoreSnapshot(id, product.SnapshotSchema, data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(restored, folded) {
		t.Fatalf("restored %+v\nfolded   %+v", restored, folded)
	}
	more := events.ProductReservationReleased{OrderID: b, Quantity: 3, Reason: events.ReleaseCustomerCanceled}
	folded.Apply(more, 5, at)
	restored.Apply(more, 5, at)
	if !reflect.DeepEqual(restored, folded) {
		t.Fatalf("after one more event: restored %+v, folded %+v", restored, folded)
	}
	if _, held := restored.ReservedFor(b); held {
		t.Fatal("a released reservation is still open")
	}
	if q, held := restored.ReservedFor(c); !held || q != 1 {
		t.Fatalf("open reservation of c: %d %v", q, held)
	}
}

// A snapshot of another schema, of another product or unreadable is
// refused, so the caller folds the stream instead.
func TestSnapshotRefused(t *testing.T) {
	id := uuid.New()
	st := product.New(id)
	st.Apply(events.ProductCreated{ProductID: id, Name: "x", Price: 1, Stock: 1, IsActive: true}, 0, time.Now())
	data, _ := st.MarshalSnapshot()
	if _, err := product.RestoreSnapshot(id, product.SnapshotSchema+1, data); !errors.Is(err, product.ErrSnapshotSchema) {
		t.Fatalf("another schema: %v", err)
	}
	if _, err := product.RestoreSnapshot(uuid.New(), product.SnapshotSchema, data); err == nil {
		t.Fatal("another product's snapshot was accepted")
	}
	if _, err := product.RestoreSnapshot(id, product.SnapshotSchema, []byte("{")); err == nil {
		t.Fatal("an unreadable snapshot was accepted")
	}
}
