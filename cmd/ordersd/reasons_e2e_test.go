package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/payment"
)

const reasonsWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// signedWebhook delivers the provider's outcome for an order, signed with
// reasonsWebhookSecret.
func signedWebhook(t *testing.T, s *server, orderID, paymentID, status, amount, msgID string) response {
	t.Helper()
	body := fmt.Sprintf(`{"payment_id":%q,"order_id":%q,"status":%q,"amount":%q,"occurred_at":%q}`,
		paymentID, orderID, status, amount, time.Now().UTC().Format(time.RFC3339))
	signer, err := payment.NewSigner(reasonsWebhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	if err := signer.Sign(h, msgID, time.Now(), []byte(body)); err != nil {
		t.Fatal(err)
	}
	return s.do(t, "POST", "/webhooks/payment", body,
		payment.HeaderID, h.Get(payment.HeaderID), payment.HeaderTimestamp, h.Get(payment.HeaderTimestamp), payment.HeaderSignature, h.Get(payment.HeaderSignature))
}

// Every stock event tells the truth about why it happened, in the audit
// trail an admin reads over HTTP: one release per reservation, with the
// order's real reason and actor, whoever (a command or the process manager)
// got there first.
func TestStockEventsSayWhy(t *testing.T) {
	t.Parallel()
	dbURL := testDatabase(t)
	s := startServer(t, "DATABASE_URL="+dbURL, "FAKE_PAYMENT_DELAY=1h", "PAYMENT_WEBHOOK_SECRET="+reasonsWebhookSecret)
	admin := []string{"X-Admin-Secret", adminSecret}
	newProduct := func(stock int) string {
		t.Helper()
		r := s.do(t, "POST", "/admin/products", fmt.Sprintf(`{"name":"Lamp","price":"10.00","stock":%d}`, stock), admin...)
		if r.Status != http.StatusCreated {
			t.Fatalf("create product: %d %s", r.Status, r.Raw)
		}
		return r.Body["id"].(string)
	}
	place := func(productID string, qty int) string {
		t.Helper()
		r := s.do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":"why@example.com","items":[{"product_id":%q,"quantity":%d}]}`, productID, qty))
		if r.Status != http.StatusCreated {
			t.Fatalf("place: %d %s", r.Status, r.Raw)
		}
		return r.Body["id"].(string)
	}

	t.Run("customer cancel", func(t *testing.T) {
		id := place(newProduct(5), 2)
		if r := s.do(t, "POST", "/orders/"+id+"/cancel", ""); r.Status != http.StatusOK {
			t.Fatalf("cancel: %d %s", r.Status, r.Raw)
		}
		s.wantOneRelease(t, id, "customer_canceled", "customer")
	})

	t.Run("failed payment", func(t *testing.T) {
		id := place(newProduct(5), 2)
		var paymentID string
		eventually.True(t, "the order to await its payment", func() bool {
			r := s.do(t, "GET", "/orders/"+id, "")
			paymentID, _ = r.Body["payment_id"].(string)
			return r.Body["status"] == "payment_pending" && paymentID != ""
		})
		if r := signedWebhook(t, s, id, paymentID, "failed", "20.00", "msg_fail_"+id); r.Status != http.StatusOK {
			t.Fatalf("webhook: %d %s", r.Status, r.Raw)
		}
		s.wantOneRelease(t, id, "payment_failed", "system")
	})

	// A placement whose process died: the process manager completes it.
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := postgres.New(pool, postgres.Options{})
	t.Cleanup(store.Close)
	crashing := func(step string) *command.Service {
		return command.NewService(store, command.Options{
			AfterStep: func(_ context.Context, s string, _ uuid.UUID) error {
				if s == step {
					return errors.New("killed")
				}
				return nil
			}})
	}
	interrupted := func(svc *command.Service, lines ...order.Line) uuid.UUID {
		t.Helper()
		id := uuid.New()
		key := "crash-" + id.String()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := svc.PlaceOrder(ctx, command.PlaceOrder{IdempotencyKey: key, UserEmail: "why@example.com", Lines: lines,
			Meta: eventstore.Metadata{Actor: events.ActorCustomer}}); err == nil {
			t.Fatalf("the placement was not interrupted: %v", err)
		}
		return svc.OrderIDForKey("why@example.com", key)
	}

	t.Run("abandoned placement completed", func(t *testing.T) {
		p := uuid.MustParse(newProduct(5))
		id := interrupted(crashing(command.StepPlaced), order.Line{ProductID: p, Quantity: 2}).String()
		eventually.True(t, "the process manager to complete the placement", func() bool {
			r := s.do(t, "GET", "/orders/"+id, "")
			return r.Body["status"] == "payment_pending"
		})
	})

	t.Run("a release written by an older version", func(t *testing.T) {
		p := uuid.MustParse(newProduct(5))
		oid := uuid.MustParse(place(p.String(), 1))
		// Versions before the process manager owned releases wrote "recovery";
		// such a history still loads and displays as it was written.
		legacy := command.NewService(store, command.Options{})
		if _, _, err := legacy.Stock().Do(context.Background(), p, eventstore.Metadata{Actor: events.ActorSystem, CausationID: "recovery"},
			func(st *product.State) ([]events.Event, error) { return st.Release(oid, events.ReleaseRecovery), nil }); err != nil {
			t.Fatal(err)
		}
		eventually.True(t, "the legacy release to show in the history", func() bool {
			r := s.do(t, "GET", "/admin/orders/"+oid.String()+"/history", "", "X-Admin-Secret", adminSecret)
			events, _ := r.Body["events"].([]any)
			for _, e := range events {
				e := e.(map[string]any)
				if e["type"] == "product.reservation_released.v1" && e["data"].(map[string]any)["reason"] == "recovery" {
					return true
				}
			}
			return false
		})
	})

	t.Run("abandoned placement rejected", func(t *testing.T) {
		p1, p2 := uuid.MustParse(newProduct(5)), uuid.MustParse(newProduct(1))
		id := interrupted(crashing(command.StepReserved), order.Line{ProductID: p1, Quantity: 2}, order.Line{ProductID: p2, Quantity: 2}).String()
		s.wantOneRelease(t, id, "placement_abandoned", "system")
		// The orders read model applies the rejection on its own time (the
		// release above was read from another projection): wait for it.
		var r response
		eventually.True(t, "the orders read model to show the rejection", func() bool {
			r = s.do(t, "GET", "/orders/"+id, "")
			return r.Body["status"] != "created"
		})
		if r.Body["status"] != "canceled" || r.Body["cancel_reason"] != "insufficient_stock" {
			t.Fatalf("order after completion: %s", r.Raw)
		}
	})
}

// A timed-out payment releases with its own reason.
func TestTimeoutReleaseSaysWhy(t *testing.T) {
	t.Parallel()
	s := startServer(t, "FAKE_PAYMENT_DELAY=1h", "PAYMENT_TIMEOUT=1s")
	r := s.do(t, "POST", "/admin/products", `{"name":"Lamp","price":"10.00","stock":5}`, "X-Admin-Secret", adminSecret)
	if r.Status != http.StatusCreated {
		t.Fatalf("create product: %d %s", r.Status, r.Raw)
	}
	placed := s.do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":"late@example.com","items":[{"product_id":%q,"quantity":1}]}`, r.Body["id"]))
	if placed.Status != http.StatusCreated {
		t.Fatalf("place: %d %s", placed.Status, placed.Raw)
	}
	s.wantOneRelease(t, placed.Body["id"].(string), "payment_timeout", "system")
}

// wantOneRelease waits for the order's stock to be released in its audit
// trail and checks that there is exactly one release per product, with the
// given reason and actor.
func (s *server) wantOneRelease(t *testing.T, orderID, reason, actor string) {
	t.Helper()
	var releases []map[string]any
	eventually.True(t, "the order's stock to be released in its history", func() bool {
		r := s.do(t, "GET", "/admin/orders/"+orderID+"/history", "", "X-Admin-Secret", adminSecret)
		if r.Status != http.StatusOK {
			return false
		}
		releases = releases[:0]
		reserved := 0
		for _, e := range r.Body["events"].([]any) {
			e := e.(map[string]any)
			switch e["type"] {
			case "product.stock_reserved.v1":
				reserved++
			case "product.reservation_released.v1":
				releases = append(releases, e)
			}
		}
		return reserved > 0 && len(releases) >= reserved
	})
	for _, e := range releases {
		data, meta := e["data"].(map[string]any), e["metadata"].(map[string]any)
		if data["reason"] != reason || meta["actor"] != actor {
			t.Errorf("release %v by %v, want %q by %q", data, meta, reason, actor)
		}
	}
	seen := map[any]int{}
	for _, e := range releases {
		seen[e["stream"]]++
	}
	for stream, n := range seen {
		if n != 1 {
			t.Errorf("%d releases on %v, want one", n, stream)
		}
	}
}
