// Package readmodels is the registry of Orders' read models: adding one is
// one line in All. ordersd runs a projection runner for each, checks each
// in /readyz and primes its metrics; ordersctl lists, rebuilds and resumes
// them by name and names them in its help text.
package readmodels

import (
	"slices"

	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query/orders"
	"github.com/orders-reference/orders/query/orderstock"
	"github.com/orders-reference/orders/query/products"
)

// All returns every read model's projector, writing to its live table.
func All() []projections.Rebuildable {
	return []projections.Rebuildable{
		products.Projector{},
		orders.Projector{},
		orderstock.Projector{},
	}
}

// Names returns the read models' names, in All's order.
func Names() []string {
	var names []string
	for _, m := range All() {
		names = append(names, m.Name())
	}
	return names
}

// Lookup returns the read model called name.
func Lookup(name string) (projections.Rebuildable, bool) {
	i := slices.IndexFunc(All(), func(m projections.Rebuildable) bool { return m.Name() == name })
	if i < 0 {
		return nil, false
	}
	return All()[i], true
}
