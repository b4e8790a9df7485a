package postgres_test

import (
	"testing"

	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/snapshot"
	"github.com/orders-reference/orders/snapshot/postgres"
	"github.com/orders-reference/orders/snapshot/snapshottest"
)

func TestAcceptance(t *testing.T) {
	pool := pgtest.NewPool(t, 8)
	snapshottest.Run(t, func(*testing.T) snapshot.Store { return postgres.New(pool) })
}
