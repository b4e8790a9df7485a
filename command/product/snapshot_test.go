package product_test

import (
	"bytes"
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
	for _, schema := range []int{product.SnapshotSchema - 1, product.SnapshotSchema + 1} {
		if _, err := product.RestoreSnapshot(id, schema, data); !errors.Is(err, product.ErrSnapshotSchema) {
			t.Fatalf("schema %d: %v", schema, err)
		}
	}
	if _, err := product.RestoreSnapshot(uuid.New(), product.SnapshotSchema, data); !errors.Is(err, product.ErrSnapshotInvalid) {
		t.Fatalf("another product's snapshot: %v", err)
	}
	if _, err := product.RestoreSnapshot(id, product.SnapshotSchema, []byte("{")); !errors.Is(err, product.ErrSnapshotInvalid) {
		t.Fatalf("an unreadable snapshot: %v", err)
	}
	// Reserved stock that the open reservations do not account for.
	st.Apply(events.ProductStockReserved{OrderID: uuid.New(), Quantity: 1}, 1, time.Now())
	data, _ = st.MarshalSnapshot()
	broken := bytes.Replace(data, []byte(`"reserved":1`), []byte(`"reserved":2`), 1)
	if bytes.Equal(broken, data) {
		t.Fatalf("test setup: no reserved field in %s", data)
	}
	if _, err := product.RestoreSnapshot(id, product.SnapshotSchema, broken); !errors.Is(err, product.ErrSnapshotInvalid) {
		t.Fatalf("a snapshot that does not add up: %v", err)
	}
}

// Equal states encode to equal bytes (times in UTC, reservations in order),
// so two snapshots can be compared by their data.
func TestSnapshotEncodingIsCanonical(t *testing.T) {
	id := uuid.New()
	at := time.Date(2026, 11, 30, 12, 0, 0, 123456000, time.FixedZone("CET", 3600))
	history := []events.Event{events.ProductCreated{ProductID: id, Name: "Lamp", Price: 1500, Stock: 100, IsActive: true}}
	for range 50 {
		history = append(history, events.ProductStockReserved{OrderID: uuid.New(), Quantity: 1})
	}
	a, b := product.New(id), product.New(id)
	for i, e := range history {
		a.Apply(e, int64(i), at)
		b.Apply(e, int64(i), at.UTC())
	}
	da, err := a.MarshalSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 { // map iteration order differs between runs
		db, err := b.MarshalSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(da, db) {
			t.Fatalf("equal states, different snapshots:\n%s\n%s", da, db)
		}
	}
}

// A clone shares nothing with its original, and a state in the middle of
// a savepoint (decisions not yet kept) is not snapshotted.
func TestCloneAndSavepoint(t *testing.T) {
	id, order := uuid.New(), uuid.New()
	st := product.New(id)
	st.Apply(events.ProductCreated{ProductID: id, Name: "Lamp", Price: 1500, Stock: 10, IsActive: true}, 0, time.Now())
	st.Apply(events.ProductStockReserved{OrderID: order, Quantity: 2}, 1, time.Now())
	c := st.Clone()
	st.Apply(events.ProductReservationCommitted{OrderID: order, Quantity: 2}, 2, time.Now())
	if q, held := c.ReservedFor(order); !held || q != 2 || c.Reserved != 2 || c.Version != 1 {
		t.Fatalf("the clone changed with its original: held %v %d, reserved %d, version %d", held, q, c.Reserved, c.Version)
	}
	c.Savepoint()
	if _, err := c.MarshalSnapshot(); err == nil {
		t.Fatal("a state inside a savepoint was snapshotted")
	}
	c.Keep()
	if _, err := c.MarshalSnapshot(); err != nil {
		t.Fatal(err)
	}
}
