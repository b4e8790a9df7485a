package main

import (
	"testing"

	"github.com/orders-reference/orders/internal/eventually"
)

// orders_ready and orders_readiness_check follow readiness without anything
// probing /readyz (an alert on them works in a quiet deployment), in every
// process, whatever its roles.
func TestReadinessGaugesWithoutProbes(t *testing.T) {
	t.Parallel()
	commandOnly := startServer(t, "ORDERS_ROLES=command")
	eventually.True(t, "orders_ready 1 for a ready command process", func() bool {
		return metric(t, commandOnly, "orders_ready") == "1" &&
			metric(t, commandOnly, `orders_readiness_check{check="database"}`) == "1" &&
			metric(t, commandOnly, `orders_readiness_check{check="eventstore"}`) == "1"
	})

	queryOnly := startServer(t, "ORDERS_ROLES=query", "READY_MAX_PROJECTION_LAG=1s") // no projector: never ready
	eventually.True(t, "orders_ready 0 for a query process without read models", func() bool {
		return metric(t, queryOnly, `orders_readiness_check{check="database"}`) == "1" &&
			metric(t, queryOnly, `orders_readiness_check{check="projections"}`) == "0" &&
			metric(t, queryOnly, "orders_ready") == "0"
	})
}
