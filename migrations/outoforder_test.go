package migrations_test

import (
	"context"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/internal/postgres"
)

// A database migrated before 00004 existed (it had 1-3 and 5-6) gets 00004
// on the next Up: migration numbers were reserved out of order.
func TestLaterNumberedMigrationsDoNotBlockAnEarlierOne(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := pool.Exec(ctx, `DROP TABLE snapshots; DELETE FROM goose_db_version WHERE version_id = 4`); err != nil {
		t.Fatal(err)
	}
	m, closeDB, err := postgres.Migrator(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB()
	applied, err := m.Up(ctx)
	if err != nil {
		t.Fatalf("up on a database without 00004: %v", err)
	}
	if len(applied) != 1 || applied[0] != 4 {
		t.Fatalf("applied %v, want [4]", applied)
	}
}
