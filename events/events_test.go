package events_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/events"
)

// Every event survives Encode then Decode unchanged, under its type name.
func TestRoundTrip(t *testing.T) {
	name, active := "Laptop", false
	all := []events.Event{
		events.ProductCreated{ProductID: uuid.New(), Name: "Laptop", Price: 150000, Stock: 10, IsActive: true},
		events.ProductDetailsChanged{Name: &name, IsActive: &active},
		events.ProductStockAdjusted{Available: 7, Delta: -3},
		events.ProductStockReserved{OrderID: uuid.New(), Quantity: 2},
		events.ProductReservationReleased{OrderID: uuid.New(), Quantity: 2, Reason: "payment_failed"},
		events.ProductReservationCommitted{OrderID: uuid.New(), Quantity: 2},
		events.OrderPlaced{OrderID: uuid.New(), UserEmail: "a@example.com", Currency: "USD", Total: 300000,
			Items: []events.OrderItem{{ProductID: uuid.New(), Quantity: 2, UnitPrice: 150000, LineTotal: 300000}}},
		events.OrderReserved{},
		events.OrderRejected{Reason: "insufficient_stock", Insufficient: []uuid.UUID{uuid.New()}},
		events.OrderPaymentRequested{PaymentID: "pay_1"},
		events.OrderPaid{PaymentID: "pay_1", WebhookID: "msg_1"},
		events.OrderPaymentFailed{PaymentID: "pay_1", Reason: "declined"},
		events.OrderCanceled{Reason: "customer"},
		events.OrderRefundRequested{PaymentID: "pay_1", WebhookID: "msg_1"},
		events.OrderRefunded{PaymentID: "pay_1", RefundID: "re_1"},
	}
	seen := map[string]bool{}
	for _, e := range all {
		data, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := events.Decode(e.EventType(), data)
		if err != nil {
			t.Fatalf("%s: %v", e.EventType(), err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("%s: decoded %#v, want %#v", e.EventType(), got, e)
		}
		seen[e.EventType()] = true
	}
	if len(seen) != len(all) {
		t.Errorf("type names are not distinct: %v", seen)
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := events.Decode("order.exploded.v1", []byte(`{}`)); !errors.Is(err, events.ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := events.Decode(events.TypeOrderPlaced, []byte(`{"total":"x"}`)); err == nil {
		t.Error("bad payload decoded")
	}
}

// Stored payloads are the contract: this one must keep decoding.
func TestStoredPayloadShape(t *testing.T) {
	data := `{"order_id":"0b7e7a54-3f0c-4f5e-9f55-3d1f0c7e8a11","user_email":"a@example.com","items":[{"product_id":"5d2c1a3e-7b8f-4c6d-9e0a-1b2c3d4e5f60","quantity":2,"unit_price":"1500.00","line_total":"3000.00"}],"total":"3000.00","currency":"USD"}`
	e, err := events.Decode(events.TypeOrderPlaced, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	p := e.(events.OrderPlaced)
	if p.Total != 300000 || p.Items[0].UnitPrice != 150000 || p.Items[0].Quantity != 2 {
		t.Fatalf("decoded %+v", p)
	}
}
