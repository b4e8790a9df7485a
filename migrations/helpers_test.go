package migrations_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/migrations"
)

// upgrade is a database of its own migrated up to an earlier version, as
// an earlier release left it, for a test of the upgrade from there.
type upgrade struct {
	url string
	db  *sql.DB
	m   *migrations.Migrator
}

// upTo creates a database, migrates it up to version and returns it with
// a context of a minute; both end with t.
func upTo(t *testing.T, version int64) (context.Context, upgrade) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m, err := migrations.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpTo(ctx, version); err != nil {
		t.Fatal(err)
	}
	return ctx, upgrade{url: url, db: db, m: m}
}
