package main

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/orders-reference/orders/internal/eventually"
)

// ordersd wires SNAPSHOT_EVERY and STOCK_CACHE_SIZE: with a cache of one
// product, orders alternating between two products evict and reload them,
// each product gets snapshots as its stream grows, and the counters show
// it.
func TestSnapshotsAndBoundedCache(t *testing.T) {
	t.Parallel()
	onEachEventStore(t, testSnapshotsAndBoundedCache)
}

func testSnapshotsAndBoundedCache(t *testing.T, es string) {
	s := startServer(t, es, "ORDERS_ROLES=command", "SNAPSHOT_EVERY=3", "STOCK_CACHE_SIZE=1")
	var ids []string
	for i := range 2 {
		status, p := s.call(t, "POST", "/admin/products", fmt.Sprintf(`{"name":"S%d","price":"1.00","stock":100}`, i), "X-Admin-Secret", adminSecret)
		if status != http.StatusCreated {
			t.Fatalf("create product: %d %v", status, p)
		}
		ids = append(ids, p["id"].(string))
	}
	for i := range 10 {
		body := fmt.Sprintf(`{"user_email":"snap-%d@example.com","items":[{"product_id":%q,"quantity":1}]}`, i, ids[i%2])
		if status, o := s.call(t, "POST", "/orders", body); status != http.StatusCreated || o["status"] != "reserved" {
			t.Fatalf("place: %d %v", status, o)
		}
	}
	count := func(name string) int {
		v, err := strconv.Atoi(metric(t, s, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	// Each product is at version 5: snapshots at versions 2 and 5.
	eventually.True(t, "four snapshots to be written", func() bool { return count("snapshots_written_total") >= 4 })
	for _, name := range []string{"stock_cache_hits_total", "stock_cache_misses_total", "stock_cache_evictions_total"} {
		if count(name) == 0 {
			t.Errorf("%s is 0", name)
		}
	}
	if n := count("snapshot_errors_total"); n != 0 {
		t.Errorf("snapshot_errors_total %d", n)
	}
	// The write model's view after all the evictions: an edit that changes
	// nothing answers with the product as decided.
	for _, id := range ids {
		status, p := s.call(t, "PATCH", "/admin/products/"+id, `{"price":"1.00"}`, "X-Admin-Secret", adminSecret)
		if status != http.StatusOK || p["stock"] != 95.0 || p["reserved"] != 5.0 {
			t.Errorf("product %s: %d %v, want stock 95 and 5 reserved", id, status, p)
		}
	}
}
