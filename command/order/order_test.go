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
	paid := events.OrderPaid{PaymentID: "pay_1", WebhookID: "msg_1"}
	failed := events.OrderPaymentFailed{PaymentID: "pay_1", Reason: "declined", WebhookID: "msg_2"}
	canceledFailed := events.OrderCanceled{Reason: events.CancelPaymentFailed}
	success := order.PaymentOutcome{WebhookID: "msg_1", PaymentID: "pay_1", Succeeded: true, Amount: 300999}
	failure := order.PaymentOutcome{WebhookID: "msg_2", PaymentID: "pay_1", Amount: 300999, Reason: "declined"}
	with := func(o order.PaymentOutcome, webhookID string) order.PaymentOutcome { o.WebhookID = webhookID; return o }

	type decision func(s *order.State) ([]events.Event, error)
	cancel := func(s *order.State) ([]events.Event, error) { return s.Cancel("customer") }
	record := func(o order.PaymentOutcome) decision {
		return func(s *order.State) ([]events.Event, error) { return s.RecordPayment(o) }
	}
	timeout := func(s *order.State) ([]events.Event, error) { return s.TimeOutPayment() }
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
		{"request payment after an early success", []events.Event{placed, reserved, paid}, func(s *order.State) ([]events.Event, error) { return s.RequestPayment("pay_1") }, nil, nil},
		{"request payment of a canceled order", []events.Event{placed, reserved, canceled}, func(s *order.State) ([]events.Event, error) { return s.RequestPayment("pay_1") }, nil, nil},
		{"pay", []events.Event{placed, reserved, requested}, record(success), []events.Event{paid}, nil},
		{"pay before the request is recorded", []events.Event{placed, reserved}, record(success), []events.Event{paid}, nil},
		{"same message twice", []events.Event{placed, reserved, requested, paid}, record(success), nil, nil},
		{"same message after the order moved on", []events.Event{placed, reserved, requested, failed, canceledFailed}, record(failure), nil, nil},
		{"another success for a paid order", []events.Event{placed, reserved, requested, paid}, record(with(success, "msg_9")), nil, nil},
		{"payment fails", []events.Event{placed, reserved, requested}, record(failure), []events.Event{failed, canceledFailed}, nil},
		{"failure after success", []events.Event{placed, reserved, requested, paid}, record(failure), nil, nil},
		{"success after failure", []events.Event{placed, reserved, requested, failed, canceledFailed}, record(with(success, "msg_3")),
			[]events.Event{events.OrderRefundRequested{PaymentID: "pay_1", WebhookID: "msg_3"}}, nil},
		{"success after customer cancel", []events.Event{placed, reserved, requested, canceled}, record(success),
			[]events.Event{events.OrderRefundRequested{PaymentID: "pay_1", WebhookID: "msg_1"}}, nil},
		{"second success after cancel", []events.Event{placed, reserved, requested, canceled, events.OrderRefundRequested{PaymentID: "pay_1", WebhookID: "msg_1"}},
			record(with(success, "msg_5")), nil, nil},
		{"failure after customer cancel", []events.Event{placed, reserved, requested, canceled}, record(failure), nil, nil},
		{"outcome of another payment", []events.Event{placed, reserved, requested}, record(order.PaymentOutcome{WebhookID: "m", PaymentID: "pay_2", Succeeded: true, Amount: 300999}), nil, order.ErrPaymentMismatch},
		{"outcome of another amount", []events.Event{placed, reserved, requested}, record(order.PaymentOutcome{WebhookID: "m", PaymentID: "pay_1", Succeeded: true, Amount: 1}), nil, order.ErrPaymentMismatch},
		{"outcome before reservation", []events.Event{placed}, record(success), nil, order.ErrIllegalTransition},
		// A rejected placement is shown as canceled: its outcomes are a
		// canceled order's (a success is refunded, a failure changes nothing).
		{"success for a rejected order", []events.Event{placed, events.OrderRejected{Reason: "x"}}, record(success),
			[]events.Event{events.OrderRefundRequested{PaymentID: "pay_1", WebhookID: "msg_1"}}, nil},
		{"second success for a rejected order", []events.Event{placed, events.OrderRejected{Reason: "x"}, events.OrderRefundRequested{PaymentID: "pay_1", WebhookID: "msg_1"}},
			record(with(success, "msg_5")), nil, nil},
		{"failure for a rejected order", []events.Event{placed, events.OrderRejected{Reason: "x"}}, record(failure), nil, nil},
		{"amount mismatch for a rejected order", []events.Event{placed, events.OrderRejected{Reason: "x"}},
			record(order.PaymentOutcome{WebhookID: "m", PaymentID: "pay_1", Succeeded: true, Amount: 1}), nil, order.ErrPaymentMismatch},
		{"request payment of a rejected order", []events.Event{placed, events.OrderRejected{Reason: "x"}},
			func(s *order.State) ([]events.Event, error) { return s.RequestPayment("pay_1") }, nil, nil},
		{"time out rejected", []events.Event{placed, events.OrderRejected{Reason: "x"}}, timeout, nil, nil},
		{"outcome of an unknown order", nil, record(success), nil, order.ErrNotFound},
		{"time out payment pending", []events.Event{placed, reserved, requested}, timeout, []events.Event{events.OrderCanceled{Reason: events.CancelPaymentTimeout}}, nil},
		{"time out reserved", []events.Event{placed, reserved}, timeout, []events.Event{events.OrderCanceled{Reason: events.CancelPaymentTimeout}}, nil},
		{"time out paid", []events.Event{placed, reserved, requested, paid}, timeout, nil, nil},
		{"time out canceled", []events.Event{placed, reserved, canceled}, timeout, nil, nil},
		{"record refund", []events.Event{placed, reserved, requested, canceled, events.OrderRefundRequested{PaymentID: "pay_1"}},
			func(s *order.State) ([]events.Event, error) { return s.RecordRefund("re_1") }, []events.Event{events.OrderRefunded{PaymentID: "pay_1", RefundID: "re_1"}}, nil},
		{"record refund twice", []events.Event{placed, reserved, requested, canceled, events.OrderRefundRequested{PaymentID: "pay_1"}, events.OrderRefunded{PaymentID: "pay_1", RefundID: "re_1"}},
			func(s *order.State) ([]events.Event, error) { return s.RecordRefund("re_1") }, nil, nil},
		{"record a refund nobody asked for", []events.Event{placed, reserved, requested, paid},
			func(s *order.State) ([]events.Event, error) { return s.RecordRefund("re_1") }, nil, order.ErrIllegalTransition},
		{"cancel created", []events.Event{placed}, cancel, []events.Event{canceled}, nil},
		{"cancel reserved", []events.Event{placed, reserved}, cancel, []events.Event{canceled}, nil},
		{"cancel payment pending", []events.Event{placed, reserved, requested}, cancel, []events.Event{canceled}, nil},
		{"cancel canceled", []events.Event{placed, canceled}, cancel, nil, nil},
		{"cancel paid", []events.Event{placed, reserved, requested, paid}, cancel, nil, order.ErrIllegalTransition},
		{"cancel rejected (shown as canceled): nothing", []events.Event{placed, events.OrderRejected{Reason: "x"}}, cancel, nil, nil},
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
	// Too many items: the count is the problem, the items are not looked
	// at one by one (the answer does not grow with what was sent).
	huge := make([]order.Line, 340_000)
	if got := order.ValidateRequest("bad", huge); len(got) != 2 || got["items"] == "" || got["user_email"] == "" {
		t.Errorf("340,000 empty items: %d problems, want items and user_email only", len(got))
	}
	for _, email := range []string{"a@b", "Name <a@example.com>", "a@@example.com", ""} {
		if _, ok := order.ValidateRequest(email, []order.Line{{p, 1}})["user_email"]; !ok {
			t.Errorf("email %q accepted", email)
		}
	}
}

// A payment mismatch names the outcome's field it is about, as the
// webhook names it.
func TestPaymentMismatchNamesTheField(t *testing.T) {
	id := uuid.New()
	placed := events.OrderPlaced{OrderID: id, UserEmail: "a@example.com", Total: 1500, Currency: "USD",
		Items: []events.OrderItem{{ProductID: uuid.New(), Quantity: 1, UnitPrice: 1500, LineTotal: 1500}}}
	s := given(t, id, placed, events.OrderReserved{}, events.OrderPaymentRequested{PaymentID: "pay_1"})
	for outcome, field := range map[order.PaymentOutcome]string{
		{WebhookID: "m1", PaymentID: "pay_2", Succeeded: true, Amount: 1500}: "payment_id",
		{WebhookID: "m2", PaymentID: "pay_1", Succeeded: true, Amount: 1499}: "amount",
	} {
		_, err := s.RecordPayment(outcome)
		var mismatch *order.MismatchError
		if !errors.As(err, &mismatch) || mismatch.Field != field || !errors.Is(err, order.ErrPaymentMismatch) {
			t.Errorf("%+v: %v, want a mismatch of %s", outcome, err, field)
		}
	}
}

// Every illegal transition is a *TransitionError whose fields say where
// the order is and what was asked, so that an answer is worded from them
// and never from the error's text.
func TestTransitionErrorsAreStructured(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	placed := events.OrderPlaced{OrderID: id, UserEmail: "a@example.com", Currency: "USD", Total: 100, RequestHash: "h",
		Items: []events.OrderItem{{ProductID: uuid.New(), Quantity: 1, UnitPrice: 100, LineTotal: 100}}}
	paid := []events.Event{placed, events.OrderReserved{}, events.OrderPaymentRequested{PaymentID: "pay_1"}, events.OrderPaid{PaymentID: "pay_1"}}
	rejected := []events.Event{placed, events.OrderRejected{Reason: "insufficient_stock"}}
	for _, c := range []struct {
		name  string
		given []events.Event
		when  func(s *order.State) ([]events.Event, error)
		want  order.TransitionError
	}{
		{"cancel paid", paid, func(s *order.State) ([]events.Event, error) { return s.Cancel("customer") },
			order.TransitionError{ID: id, Status: order.StatusPaid, To: order.StatusCanceled}},
		{"reserve paid", paid, func(s *order.State) ([]events.Event, error) { return s.MarkReserved() },
			order.TransitionError{ID: id, Status: order.StatusPaid, To: order.StatusReserved}},
		{"reserve rejected (shown as canceled)", rejected, func(s *order.State) ([]events.Event, error) { return s.MarkReserved() },
			order.TransitionError{ID: id, Status: order.StatusCanceled, To: order.StatusReserved}},
		{"outcome while created", []events.Event{placed},
			func(s *order.State) ([]events.Event, error) {
				return s.RecordPayment(order.PaymentOutcome{PaymentID: "pay_1", Succeeded: true, Amount: 100})
			},
			order.TransitionError{ID: id, Status: order.StatusCreated}},
		{"refund nobody asked for", paid, func(s *order.State) ([]events.Event, error) { return s.RecordRefund("re_1") },
			order.TransitionError{ID: id, Status: order.StatusPaid, Refund: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.when(given(t, id, c.given...))
			var te *order.TransitionError
			if !errors.As(err, &te) || *te != c.want || !errors.Is(err, order.ErrIllegalTransition) {
				t.Fatalf("error %#v, want %#v", err, c.want)
			}
		})
	}
}
