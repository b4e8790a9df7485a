package order_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/internal/eventtest"
)

// given builds the order from history, stored in and read back from an
// in-memory event store.
func given(t *testing.T, id uuid.UUID, history ...events.Event) *order.State {
	t.Helper()
	s := order.New(id)
	eventtest.Given(t, events.OrderStream(id), history, s.Apply)
	return s
}

func TestDecisions(t *testing.T) {
	id, p1, p2 := uuid.New(), uuid.New(), uuid.New()
	items := []events.OrderItem{{ProductID: p1, Quantity: 2, UnitPrice: 150000}, {ProductID: p2, Quantity: 1, UnitPrice: 999}}
	placed := events.OrderPlaced{OrderID: id, UserEmail: "a@example.com", Currency: "USD", Total: 300999, RequestHash: "h",
		Items: []events.OrderItem{
			{ProductID: p1, Quantity: 2, UnitPrice: 150000, LineTotal: 300000},
			{ProductID: p2, Quantity: 1, UnitPrice: 999, LineTotal: 999},
		}}
	reserved := events.OrderReserved{}
	requested := events.OrderPaymentRequested{PaymentID: "pay_1"}
	canceled := events.OrderCanceled{Reason: "customer"}

	type decision func(s *order.State) ([]events.Event, error)
	cancel := func(s *order.State) ([]events.Event, error) { return s.Cancel("customer") }
	cases := []struct {
		name    string
		given   []events.Event
		when    decision
		then    []events.Event
		wantErr error
	}{
		{"place", nil, func(s *order.State) ([]events.Event, error) { return s.Place(" A@Example.com ", items, "h") }, []events.Event{placed}, nil},
		{"place twice", []events.Event{placed}, func(s *order.State) ([]events.Event, error) { return s.Place("a@example.com", items, "h") }, nil, order.ErrAlreadyPlaced},
		{"place without items", nil, func(s *order.State) ([]events.Event, error) { return s.Place("a@example.com", nil, "h") }, nil, order.ErrInvalid},
		{"place with a bad email", nil, func(s *order.State) ([]events.Event, error) { return s.Place("not-an-email", items, "h") }, nil, order.ErrInvalid},
		{"reserve", []events.Event{placed}, func(s *order.State) ([]events.Event, error) { return s.MarkReserved() }, []events.Event{reserved}, nil},
		{"reserve twice", []events.Event{placed, reserved}, func(s *order.State) ([]events.Event, error) { return s.MarkReserved() }, nil, nil},
		{"reserve an unknown order", nil, func(s *order.State) ([]events.Event, error) { return s.MarkReserved() }, nil, order.ErrNotFound},
		{"reject", []events.Event{placed}, func(s *order.State) ([]events.Event, error) {
			return s.Reject(events.OrderRejected{Reason: "insufficient_stock", Insufficient: []uuid.UUID{p1}})
		}, []events.Event{events.OrderRejected{Reason: "insufficient_stock", Insufficient: []uuid.UUID{p1}}}, nil},
		{"reject a reserved order", []events.Event{placed, reserved}, func(s *order.State) ([]events.Event, error) {
			return s.Reject(events.OrderRejected{Reason: "x"})
		}, nil, order.ErrIllegalTransition},
		{"request payment", []events.Event{placed, reserved}, func(s *order.State) ([]events.Event, error) { return s.RequestPayment("pay_1") }, []events.Event{requested}, nil},
		{"request payment before reservation", []events.Event{placed}, func(s *order.State) ([]events.Event, error) { return s.RequestPayment("pay_1") }, nil, order.ErrIllegalTransition},
		{"pay", []events.Event{placed, reserved, requested}, func(s *order.State) ([]events.Event, error) { return s.MarkPaid("pay_1") }, []events.Event{events.OrderPaid{PaymentID: "pay_1"}}, nil},
		{"pay a canceled order", []events.Event{placed, reserved, requested, canceled}, func(s *order.State) ([]events.Event, error) { return s.MarkPaid("pay_1") }, nil, order.ErrIllegalTransition},
		{"payment fails", []events.Event{placed, reserved, requested}, func(s *order.State) ([]events.Event, error) { return s.FailPayment("pay_1", "declined") },
			[]events.Event{events.OrderPaymentFailed{PaymentID: "pay_1", Reason: "declined"}, events.OrderCanceled{Reason: "payment_failed"}}, nil},
		{"payment fails twice", []events.Event{placed, reserved, requested, events.OrderPaymentFailed{PaymentID: "pay_1"}, events.OrderCanceled{Reason: "payment_failed"}},
			func(s *order.State) ([]events.Event, error) { return s.FailPayment("pay_1", "declined") }, nil, nil},
		{"payment fails after paid", []events.Event{placed, reserved, requested, events.OrderPaid{PaymentID: "pay_1"}},
			func(s *order.State) ([]events.Event, error) { return s.FailPayment("pay_1", "declined") }, nil, order.ErrIllegalTransition},
		{"cancel created", []events.Event{placed}, cancel, []events.Event{canceled}, nil},
		{"cancel reserved", []events.Event{placed, reserved}, cancel, []events.Event{canceled}, nil},
		{"cancel payment pending", []events.Event{placed, reserved, requested}, cancel, []events.Event{canceled}, nil},
		{"cancel canceled", []events.Event{placed, canceled}, cancel, nil, nil},
		{"cancel paid", []events.Event{placed, reserved, requested, events.OrderPaid{PaymentID: "pay_1"}}, cancel, nil, order.ErrIllegalTransition},
		{"cancel rejected", []events.Event{placed, events.OrderRejected{Reason: "x"}}, cancel, nil, order.ErrIllegalTransition},
		{"cancel unknown", nil, cancel, nil, order.ErrNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.when(given(t, id, c.given...))
			if c.wantErr != nil || err != nil {
				if !errors.Is(err, c.wantErr) || c.wantErr == nil {
					t.Fatalf("error %v, want %v", err, c.wantErr)
				}
				return
			}
			if len(got) != len(c.then) || (len(got) > 0 && !reflect.DeepEqual(got, c.then)) {
				t.Fatalf("decided %#v, want %#v", got, c.then)
			}
		})
	}
}

func TestValidateRequest(t *testing.T) {
	p := uuid.New()
	if got := order.ValidateRequest("a@example.com", []order.Line{{p, 1}}); len(got) != 0 {
		t.Fatalf("valid request: %v", got)
	}
	got := order.ValidateRequest("bad", []order.Line{{p, 0}, {p, 10_001}, {uuid.Nil, 1}})
	for _, field := range []string{"user_email", "items[0].quantity", "items[1].quantity", "items[1].product_id", "items[2].product_id"} {
		if _, ok := got[field]; !ok {
			t.Errorf("no problem reported for %s: %v", field, got)
		}
	}
	many := make([]order.Line, order.MaxItems+1)
	for i := range many {
		many[i] = order.Line{uuid.New(), 1}
	}
	if _, ok := order.ValidateRequest("a@example.com", many)["items"]; !ok {
		t.Error("101 items accepted")
	}
	for _, email := range []string{"a@b", "Name <a@example.com>", "a@@example.com", ""} {
		if _, ok := order.ValidateRequest(email, []order.Line{{p, 1}})["user_email"]; !ok {
			t.Errorf("email %q accepted", email)
		}
	}
}
