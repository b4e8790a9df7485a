package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/internal/apitest"
	"github.com/orders-reference/orders/internal/eventstores/eventstorestest"
	"github.com/orders-reference/orders/internal/httpx"
)

// The retry paths of the command API, on every event store: an append
// commits but its answer is lost (the client sees a 503, the outcome
// unknown), then the client does what the API tells it to, the same
// request again, and gets the outcome the first request would have had,
// with every event stored once and the stock counted once.

// wantUnavailable fails t unless r is the 503 of an outcome left unknown.
func wantUnavailable(t *testing.T, r apitest.Response) {
	t.Helper()
	apitest.WantProblem(t, r, http.StatusServiceUnavailable, httpx.TypeUnavailable)
}

// A placement whose order.placed, reservation or decision lost its
// answer, retried with its Idempotency-Key: the same order, reserved once.
func TestPlacementRetriedAfterLostAnswer(t *testing.T) {
	t.Parallel()
	eventstorestest.Each(t, func(t *testing.T, b eventstorestest.Backend) {
		store := eventstorestest.NewLostAnswers(b.Store)
		e := newEnv(t, envOptions{store: store})
		for i, lost := range []string{events.TypeOrderPlaced, events.TypeProductStockReserved, events.TypeOrderReserved} {
			p := e.product(t, 10)
			key := "retry-" + lost
			store.Lose(lost, 1)
			wantUnavailable(t, e.do(t, "POST", "/orders", orderBody("retry@example.com", p, 2), "Idempotency-Key", key))
			store.WantLost(t, i+1)
			id := e.svc.OrderIDForKey("retry@example.com", key).String()
			for range 2 {
				r := e.do(t, "POST", "/orders", orderBody("retry@example.com", p, 2), "Idempotency-Key", key)
				if r.Status != http.StatusCreated || r.Body["id"] != id || r.Body["status"] != "reserved" {
					t.Fatalf("lost %s, retry: %d %s, want order %s reserved", lost, r.Status, r.Raw, id)
				}
			}
			eventstorestest.WantTypes(t, b.Store, events.OrderStream(uuid.MustParse(id)), events.TypeOrderPlaced, events.TypeOrderReserved)
			eventstorestest.WantTypes(t, b.Store, events.ProductStream(uuid.MustParse(p)), events.TypeProductCreated, events.TypeProductStockReserved)
			if a, r := e.stock(t, p); a != 8 || r != 2 {
				t.Fatalf("lost %s: available %d, reserved %d, want 8 and 2", lost, a, r)
			}
		}
	})
}

// A cancel whose order.canceled or stock release lost its answer, sent
// again: canceled once, the stock back once.
func TestCancelRetriedAfterLostAnswer(t *testing.T) {
	t.Parallel()
	eventstorestest.Each(t, func(t *testing.T, b eventstorestest.Backend) {
		store := eventstorestest.NewLostAnswers(b.Store)
		e := newEnv(t, envOptions{store: store})
		for i, lost := range []string{events.TypeOrderCanceled, events.TypeProductReservationReleased} {
			p := e.product(t, 10)
			placed := e.do(t, "POST", "/orders", orderBody("cancel@example.com", p, 3))
			if placed.Status != http.StatusCreated {
				t.Fatalf("place: %d %s", placed.Status, placed.Raw)
			}
			id := placed.Body["id"].(string)
			store.Lose(lost, 1)
			wantUnavailable(t, e.do(t, "POST", "/orders/"+id+"/cancel", ""))
			store.WantLost(t, i+1)
			for range 2 {
				r := e.do(t, "POST", "/orders/"+id+"/cancel", "")
				if r.Status != http.StatusOK || r.Body["status"] != "canceled" || r.Body["cancel_reason"] != events.CancelCustomer {
					t.Fatalf("lost %s, cancel again: %d %s", lost, r.Status, r.Raw)
				}
			}
			eventstorestest.WantTypes(t, b.Store, events.OrderStream(uuid.MustParse(id)), events.TypeOrderPlaced, events.TypeOrderReserved, events.TypeOrderCanceled)
			eventstorestest.WantTypes(t, b.Store, events.ProductStream(uuid.MustParse(p)),
				events.TypeProductCreated, events.TypeProductStockReserved, events.TypeProductReservationReleased)
			if a, r := e.stock(t, p); a != 10 || r != 0 {
				t.Fatalf("lost %s: available %d, reserved %d, want 10 and 0", lost, a, r)
			}
		}
	})
}

// A payment webhook whose outcome was stored but not acknowledged (a 503:
// the provider delivers it again): the redelivery is acknowledged with the
// order as the first delivery left it, and the outcome is stored once.
func TestWebhookRedeliveredAfterLostAnswer(t *testing.T) {
	t.Parallel()
	eventstorestest.Each(t, func(t *testing.T, b eventstorestest.Backend) {
		store := eventstorestest.NewLostAnswers(b.Store)
		cases := []struct {
			status, lost, want string
			stored             []string
		}{
			{"success", events.TypeOrderPaid, "paid", []string{events.TypeOrderPaid}},
			{"failed", events.TypeOrderPaymentFailed, "canceled", []string{events.TypeOrderPaymentFailed, events.TypeOrderCanceled}},
		}
		for i, c := range cases {
			e, id, _ := webhookEnvOn(t, store)
			body := outcomeBody(id, c.status, "3000.00")
			store.Lose(c.lost, 1)
			wantUnavailable(t, e.webhook(t, webhookSecret, "msg_"+c.status, time.Now(), body))
			store.WantLost(t, i+1)
			for range 2 {
				r := e.webhook(t, webhookSecret, "msg_"+c.status, time.Now(), body)
				if r.Status != http.StatusOK || r.Body["status"] != c.want || r.Body["order_id"] != id {
					t.Fatalf("%s, delivered again: %d %s, want %s", c.status, r.Status, r.Raw, c.want)
				}
			}
			want := append([]string{events.TypeOrderPlaced, events.TypeOrderReserved, events.TypeOrderPaymentRequested}, c.stored...)
			eventstorestest.WantTypes(t, b.Store, events.OrderStream(uuid.MustParse(id)), want...)
		}
	})
}
