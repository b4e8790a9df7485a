package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
)

// appendLegacy appends events as an earlier version's write side did,
// straight to the event store: no API validation stands in the way.
func (e *env) appendLegacy(t *testing.T, stream string, evs ...events.Event) {
	t.Helper()
	data := make([]eventstore.EventData, len(evs))
	for i, ev := range evs {
		raw, err := events.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		data[i] = eventstore.EventData{ID: uuid.New(), Type: ev.EventType(), Data: raw}
	}
	if _, err := e.store.Append(context.Background(), stream, eventstore.Any, data...); err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
}

// Text that an earlier version stored but a read model cannot hold (NUL)
// reads as the read model shows it (U+FFFD) in the write side's answers
// too: a PATCH of such a product, a cancel of such an order.
func TestCommandAnswersShowLegacyTextAsTheReadModels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	product, order := uuid.New(), uuid.New()
	e.appendLegacy(t, events.ProductStream(product),
		events.ProductCreated{ProductID: product, Name: "leg\x00acy", Description: "one\x00two\nthree", Price: 1000, Stock: 5, IsActive: true})
	e.appendLegacy(t, events.OrderStream(order),
		events.OrderPlaced{OrderID: order, UserEmail: "nul\x00@example.com", Currency: "USD", Total: 1000,
			Items: []events.OrderItem{{ProductID: product, Quantity: 1, UnitPrice: 1000, LineTotal: 1000}}},
		events.OrderReserved{},
		events.OrderPaymentRequested{PaymentID: "pay\x00one"})

	patched := e.do(t, "PATCH", "/admin/products/"+product.String(), `{"stock":7}`, "X-Admin-Secret", secret)
	if patched.Status != http.StatusOK || patched.Body["name"] != "leg\uFFFDacy" || patched.Body["description"] != "one\uFFFDtwo\nthree" {
		t.Errorf("PATCH: %d %s", patched.Status, patched.Raw)
	}
	canceled := e.do(t, "POST", "/orders/"+order.String()+"/cancel", "")
	if canceled.Status != http.StatusOK || canceled.Body["user_email"] != "nul\uFFFD@example.com" || canceled.Body["payment_id"] != "pay\uFFFDone" {
		t.Errorf("cancel: %d %s", canceled.Status, canceled.Raw)
	}
	if raw := patched.Raw + canceled.Raw; strings.Contains(raw, `\u0000`) {
		t.Errorf("an answer holds NUL: %s", raw)
	}
}
