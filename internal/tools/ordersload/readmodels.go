package main

import (
	"github.com/jackc/pgx/v5"

	"github.com/orders-reference/orders/query/orders"
	"github.com/orders-reference/orders/query/products"
	"github.com/orders-reference/orders/query/readmodels"
)

// What this tool reads of the read side, in one place: every read model
// ordersd runs (the registry: the history rebuilds them all), and the
// tables, projection and statuses that the history's final check, settle
// and load look at.
var (
	readModels       = readmodels.All()
	ordersTable      = pgx.Identifier{orders.Table}.Sanitize()
	productsTable    = pgx.Identifier{products.Table}.Sanitize()
	ordersProjection = orders.Name
)

const (
	statusCreated        = orders.StatusCreated
	statusReserved       = orders.StatusReserved
	statusPaymentPending = orders.StatusPaymentPending
	statusPaid           = orders.StatusPaid
	statusCanceled       = orders.StatusCanceled
)
