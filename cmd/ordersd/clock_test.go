package main

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/orders-reference/orders/internal/eventually"
)

// One clock for one fact: the times a command answers with are the times
// the event store recorded, so the same order or product read later shows
// the same created_at and updated_at (to the microsecond), whichever the
// event store.
func TestAnswersAndReadsShowOneTime(t *testing.T) {
	t.Parallel()
	onEachEventStore(t, testAnswersAndReadsShowOneTime)
}

func testAnswersAndReadsShowOneTime(t *testing.T, es string) {
	s := startServer(t, es)
	admin := []string{"X-Admin-Secret", adminSecret}
	created := s.do(t, "POST", "/admin/products", `{"name":"clock","price":"1.00","stock":5}`, admin...)
	if created.Status != http.StatusCreated {
		t.Fatalf("create product: %d %s", created.Status, created.Raw)
	}
	pid := created.Body["id"].(string)
	placed := s.do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":"clock@example.com","items":[{"product_id":%q,"quantity":1}]}`, pid),
		"Idempotency-Key", "clock-1")
	if placed.Status != http.StatusCreated {
		t.Fatalf("place: %d %s", placed.Status, placed.Raw)
	}
	oid := placed.Body["id"].(string)
	replay := s.do(t, "POST", "/orders", fmt.Sprintf(`{"user_email":"clock@example.com","items":[{"product_id":%q,"quantity":1}]}`, pid),
		"Idempotency-Key", "clock-1")
	canceled := s.do(t, "POST", "/orders/"+oid+"/cancel", "")
	if canceled.Status != http.StatusOK {
		t.Fatalf("cancel: %d %s", canceled.Status, canceled.Raw)
	}

	var product, order map[string]any
	eventually.True(t, "the read models to show the product and the canceled order", func() bool {
		p := s.do(t, "GET", "/products/"+pid, "")
		o := s.do(t, "GET", "/orders/"+oid, "")
		product, order = p.Body, o.Body
		return p.Status == http.StatusOK && o.Status == http.StatusOK && o.Body["status"] == "canceled"
	})
	for _, c := range []struct {
		what        string
		answer, got any
	}{
		{"product created_at", created.Body["created_at"], product["created_at"]},
		{"order created_at (placement)", placed.Body["created_at"], order["created_at"]},
		{"order created_at (replay)", replay.Body["created_at"], order["created_at"]},
		{"order updated_at (cancel)", canceled.Body["updated_at"], order["updated_at"]},
	} {
		if c.answer != c.got || c.answer == nil {
			t.Errorf("%s: the command answered %v, a read shows %v", c.what, c.answer, c.got)
		}
	}
}
