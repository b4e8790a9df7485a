package product_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/eventtest"
	"github.com/orders-reference/orders/money"
)

// given builds the product from history, stored in and read back from an
// in-memory event store.
func given(t *testing.T, id uuid.UUID, history ...events.Event) *product.State {
	t.Helper()
	s := product.New(id)
	eventtest.Given(t, events.ProductStream(id), history, s.Apply)
	return s
}

func ptr[T any](v T) *T { return &v }

func TestDecisions(t *testing.T) {
	id, order, other := uuid.New(), uuid.New(), uuid.New()
	created := events.ProductCreated{ProductID: id, Name: "Laptop", Price: 150000, Stock: 3, IsActive: true}
	reserved := events.ProductStockReserved{OrderID: order, Quantity: 2}

	cases := []struct {
		name    string
		given   []events.Event
		when    func(s *product.State) ([]events.Event, error)
		then    []events.Event
		wantErr error
	}{
		{
			name: "create",
			when: func(s *product.State) ([]events.Event, error) {
				return s.Create("  Laptop ", "", 150000, 3, true)
			},
			then: []events.Event{created},
		},
		{
			name:    "create twice",
			given:   []events.Event{created},
			when:    func(s *product.State) ([]events.Event, error) { return s.Create("Laptop", "", 150000, 3, true) },
			wantErr: product.ErrAlreadyExists,
		},
		{
			name:    "create with a zero price",
			when:    func(s *product.State) ([]events.Event, error) { return s.Create("Laptop", "", 0, 3, true) },
			wantErr: product.ErrInvalid,
		},
		{
			name:    "create with negative stock",
			when:    func(s *product.State) ([]events.Event, error) { return s.Create("Laptop", "", 100, -1, true) },
			wantErr: product.ErrInvalid,
		},
		{
			name:    "create with a blank name",
			when:    func(s *product.State) ([]events.Event, error) { return s.Create("   ", "", 100, 1, true) },
			wantErr: product.ErrInvalid,
		},
		{
			name:  "change details and stock",
			given: []events.Event{created},
			when: func(s *product.State) ([]events.Event, error) {
				return s.Change(product.Details{Name: ptr("Laptop"), Price: ptr(money.Amount(99900)), Stock: ptr(int64(10))})
			},
			then: []events.Event{
				events.ProductDetailsChanged{Price: ptr(money.Amount(99900))},
				events.ProductStockAdjusted{Available: 10, Delta: 7},
			},
		},
		{
			name:  "change nothing",
			given: []events.Event{created},
			when: func(s *product.State) ([]events.Event, error) {
				return s.Change(product.Details{Name: ptr("Laptop"), Stock: ptr(int64(3))})
			},
		},
		{
			name:    "change a missing product",
			when:    func(s *product.State) ([]events.Event, error) { return s.Change(product.Details{Name: ptr("x")}) },
			wantErr: product.ErrNotFound,
		},
		{
			name:  "reserve",
			given: []events.Event{created},
			when:  func(s *product.State) ([]events.Event, error) { return s.Reserve(order, 2) },
			then:  []events.Event{reserved},
		},
		{
			name:  "reserve the last units",
			given: []events.Event{created, reserved},
			when:  func(s *product.State) ([]events.Event, error) { return s.Reserve(other, 1) },
			then:  []events.Event{events.ProductStockReserved{OrderID: other, Quantity: 1}},
		},
		{
			name:    "reserve more than available",
			given:   []events.Event{created, reserved},
			when:    func(s *product.State) ([]events.Event, error) { return s.Reserve(other, 2) },
			wantErr: product.ErrInsufficientStock,
		},
		{
			name:  "reserve again for the same order",
			given: []events.Event{created, reserved},
			when:  func(s *product.State) ([]events.Event, error) { return s.Reserve(order, 2) },
		},
		{
			// The product forgets settled orders (its state is bounded by what
			// is open): a late repeat reserves again, and the process manager
			// releases it as a reservation after close.
			name:  "reserve again after release",
			given: []events.Event{created, reserved, events.ProductReservationReleased{OrderID: order, Quantity: 2}},
			when:  func(s *product.State) ([]events.Event, error) { return s.Reserve(order, 2) },
			then:  []events.Event{events.ProductStockReserved{OrderID: order, Quantity: 2}},
		},
		{
			name:    "reserve an inactive product",
			given:   []events.Event{created, events.ProductDetailsChanged{IsActive: ptr(false)}},
			when:    func(s *product.State) ([]events.Event, error) { return s.Reserve(order, 1) },
			wantErr: product.ErrInactive,
		},
		{
			name:    "reserve a missing product",
			when:    func(s *product.State) ([]events.Event, error) { return s.Reserve(order, 1) },
			wantErr: product.ErrNotFound,
		},
		{
			name:    "reserve nothing",
			given:   []events.Event{created},
			when:    func(s *product.State) ([]events.Event, error) { return s.Reserve(order, 0) },
			wantErr: product.ErrInvalid,
		},
		{
			name:  "release",
			given: []events.Event{created, reserved},
			when:  func(s *product.State) ([]events.Event, error) { return s.Release(order, "payment_failed"), nil },
			then:  []events.Event{events.ProductReservationReleased{OrderID: order, Quantity: 2, Reason: "payment_failed"}},
		},
		{
			name:  "release twice",
			given: []events.Event{created, reserved, events.ProductReservationReleased{OrderID: order, Quantity: 2}},
			when:  func(s *product.State) ([]events.Event, error) { return s.Release(order, "again"), nil },
		},
		{
			name:  "release what was never reserved",
			given: []events.Event{created},
			when:  func(s *product.State) ([]events.Event, error) { return s.Release(order, "x"), nil },
		},
		{
			name:  "commit",
			given: []events.Event{created, reserved},
			when:  func(s *product.State) ([]events.Event, error) { return s.Commit(order, eventstore.Start), nil },
			then:  []events.Event{events.ProductReservationCommitted{OrderID: order, Quantity: 2}},
		},
		{
			name:  "commit after release",
			given: []events.Event{created, reserved, events.ProductReservationReleased{OrderID: order, Quantity: 2}},
			when:  func(s *product.State) ([]events.Event, error) { return s.Commit(order, eventstore.Start), nil },
		},
		{
			name:  "release after commit",
			given: []events.Event{created, reserved, events.ProductReservationCommitted{OrderID: order, Quantity: 2}},
			when:  func(s *product.State) ([]events.Event, error) { return s.Release(order, "late"), nil },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := given(t, id, c.given...)
			got, err := c.when(s)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("error %v, want %v", err, c.wantErr)
				}
				if got != nil {
					t.Fatalf("events %v alongside an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.then) || (len(got) > 0 && !reflect.DeepEqual(got, c.then)) {
				t.Fatalf("decided %#v, want %#v", got, c.then)
			}
		})
	}
}

// Stock accounting across a life: available + reserved + sold = stock ever added.
func TestStockAccounting(t *testing.T) {
	id := uuid.New()
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	s := given(t, id,
		events.ProductCreated{ProductID: id, Name: "Pen", Price: 100, Stock: 10, IsActive: true},
		events.ProductStockReserved{OrderID: a, Quantity: 3},
		events.ProductStockReserved{OrderID: b, Quantity: 4},
		events.ProductReservationCommitted{OrderID: a, Quantity: 3},
		events.ProductReservationReleased{OrderID: b, Quantity: 4},
		events.ProductStockReserved{OrderID: c, Quantity: 5},
		events.ProductStockAdjusted{Available: 7, Delta: 5},
	)
	if s.Available != 7 || s.Reserved != 5 || s.Version != 6 {
		t.Fatalf("available %d, reserved %d, version %d", s.Available, s.Reserved, s.Version)
	}
	if q, ok := s.ReservedFor(c); !ok || q != 5 {
		t.Fatalf("reservation of c: %d %v", q, ok)
	}
	if _, ok := s.ReservedFor(a); ok {
		t.Fatal("committed reservation still open")
	}
}

// Rollback restores exactly the state at the savepoint.
func TestSavepointRollback(t *testing.T) {
	id, a, b, c := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	s := given(t, id,
		events.ProductCreated{ProductID: id, Name: "Pen", Price: 100, Stock: 10, IsActive: true},
		events.ProductStockReserved{OrderID: a, Quantity: 3},
		events.ProductStockReserved{OrderID: b, Quantity: 2},
	)
	want := *s
	s.Savepoint()
	s.Apply(events.ProductReservationReleased{OrderID: a, Quantity: 3}, 3, s.UpdatedAt)
	s.Apply(events.ProductStockReserved{OrderID: c, Quantity: 4}, 4, s.UpdatedAt)
	s.Apply(events.ProductReservationCommitted{OrderID: b, Quantity: 2}, 5, s.UpdatedAt)
	s.Apply(events.ProductDetailsChanged{IsActive: ptr(false)}, 6, s.UpdatedAt)
	s.Rollback()
	if s.Available != want.Available || s.Reserved != want.Reserved || s.Version != want.Version || !s.IsActive {
		t.Fatalf("scalars not restored: %+v", s)
	}
	for order, q := range map[uuid.UUID]int64{a: 3, b: 2} {
		if got, ok := s.ReservedFor(order); !ok || got != q {
			t.Fatalf("reservation of %s: %d %v", order, got, ok)
		}
	}
	if _, ok := s.ReservedFor(c); ok {
		t.Fatal("rolled-back reservation still open")
	}
	// a is no longer settled: releasing it decides again.
	if evs := s.Release(a, "x"); len(evs) != 1 {
		t.Fatalf("release after rollback decided %v", evs)
	}
	// Keep: the applied events stay.
	s.Savepoint()
	s.Apply(events.ProductStockReserved{OrderID: c, Quantity: 4}, 3, s.UpdatedAt)
	s.Keep()
	s.Rollback()
	if _, ok := s.ReservedFor(c); !ok || s.Available != 1 {
		t.Fatalf("kept reservation lost: available %d", s.Available)
	}
}

// A name is shown to people: it must show something and not reorder what
// is around it; a description must not reorder either (the one rule of
// names and prose, internal/textrule). Creation and change apply it alike.
func TestNamesAndDescriptionsShowWhatTheyHold(t *testing.T) {
	t.Parallel()
	existing := events.ProductCreated{ProductID: uuid.New(), Name: "Laptop", Price: 100, Stock: 1, IsActive: true}
	for _, c := range []struct {
		name, description string
		refused           string // the field refused, "" if none
	}{
		{"Laptop", "", ""},
		{"👨\u200d👩\u200d👧 set", "", ""},
		{"می\u200cخواهم", "", ""},
		{"Laptop", "Line one\nline two\twith a tab", ""},
		{"Laptop", "עברית and English", ""},
		{"\u200b", "", "name"},
		{"\ufeff", "", "name"},
		{"\u00ad", "", "name"},
		{"\U000e0001", "", "name"},
		{"\U000e0041\U000e0042", "", "name"},
		{"\u3164", "", "name"},
		{"\u2800", "", "name"},
		{"\u2060\u180e\ufe0f", "", "name"},
		{" \u200b ", "", "name"},
		{"a\u202eb", "", "name"},
		{"\u2066x", "", "name"},
		{"x\u200f", "", "name"},
		{"Laptop", "cheap \u202egnp.exe", "description"},
		{"Laptop", "\u2067x\u2069", "description"},
	} {
		var fields []string
		for _, decide := range []func() ([]events.Event, error){
			func() ([]events.Event, error) {
				return product.New(uuid.New()).Create(c.name, c.description, 100, 1, true)
			},
			func() ([]events.Event, error) {
				return given(t, existing.ProductID, existing).Change(product.Details{Name: &c.name, Description: &c.description})
			},
		} {
			_, err := decide()
			var invalid *product.InvalidError
			switch {
			case c.refused == "" && err != nil:
				t.Errorf("name %q, description %q refused: %v", c.name, c.description, err)
			case c.refused != "" && (!errors.As(err, &invalid) || invalid.Fields[c.refused] == "" || len(invalid.Fields) != 1):
				t.Errorf("name %q, description %q: %v, want %s refused", c.name, c.description, err, c.refused)
			case c.refused != "":
				fields = append(fields, invalid.Fields[c.refused])
			}
		}
		if len(fields) == 2 && fields[0] != fields[1] {
			t.Errorf("creation and change word one refusal two ways: %q, %q", fields[0], fields[1])
		}
	}
}
