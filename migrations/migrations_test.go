package migrations_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/internal/postgres"
)

// Several instances starting at once: every one succeeds, each migration is
// applied exactly once.
func TestConcurrentUpAppliesEachMigrationOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const instances = 4
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied []int64
		errs    []error
	)
	for range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := postgres.Connect(ctx, url, 4)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			defer pool.Close()
			m, closeDB, err := postgres.Migrator(pool, nil)
			if err == nil {
				defer closeDB()
				var versions []int64
				versions, err = m.Up(ctx)
				mu.Lock()
				applied = append(applied, versions...)
				mu.Unlock()
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}

	pool, err := postgres.Connect(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	m, closeDB, err := postgres.Migrator(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB()
	status, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(status) == 0 {
		t.Fatal("no migrations embedded")
	}
	for _, s := range status {
		if !s.Applied || s.AppliedAt.IsZero() {
			t.Errorf("migration %d (%s) not applied", s.Version, s.Name)
		}
	}
	if len(applied) != len(status) {
		t.Errorf("instances applied %v between them, want each of the %d migrations once", applied, len(status))
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(status) {
		t.Errorf("goose_db_version has %d applied rows, want %d", rows, len(status))
	}
	// Up again is a no-op.
	if again, err := m.Up(ctx); err != nil || len(again) != 0 {
		t.Errorf("second Up applied %v, err %v", again, err)
	}
}

func TestEnsureDatabaseCreatesOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t) // registers the drop; drop it now so Ensure must create it
	ctx := context.Background()
	admin, err := postgres.Connect(ctx, pgtest.ServerURL(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	name := cfg.Database
	if _, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		created atomic.Int32
	)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := postgres.EnsureDatabase(ctx, url)
			if err != nil {
				t.Error(err)
			}
			if ok {
				created.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := created.Load(); n != 1 {
		t.Errorf("%d calls report that they created the database, want 1 (it is logged)", n)
	}
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil || !exists {
		t.Fatalf("database %s exists: %v, %v", name, exists, err)
	}
}
