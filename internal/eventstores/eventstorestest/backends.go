package eventstorestest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
	"github.com/orders-reference/orders/internal/eventstores"
	"github.com/orders-reference/orders/internal/pgtest"
)

// Backend is one test's deployment on one kind of event store: the event
// store, opened as ordersd opens it (eventstores.Open), and the PostgreSQL
// database of everything else (read models, the process manager's tables,
// snapshots; on PostgreSQL, the events too).
type Backend struct {
	// Kind is eventstores.Postgres or eventstores.KurrentDB.
	Kind string
	// URL is the deployment's EVENTSTORE_URL: empty for PostgreSQL, the
	// protocol double's for KurrentDB.
	URL string
	// Pool is on the test's own migrated database.
	Pool *pgxpool.Pool
	// Store is the event store.
	Store eventstore.Store
}

// Each runs test once on every kind of event store Orders runs on, as
// parallel subtests named after the kind; each has a database of its own
// and, on KurrentDB, a protocol double of its own (kurrentdbtest), so
// tests share no streams.
func Each(t *testing.T, test func(t *testing.T, b Backend)) {
	t.Helper()
	for _, kind := range []string{eventstores.Postgres, eventstores.KurrentDB} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			test(t, New(t, kind))
		})
	}
}

// New returns a new Backend of the given kind for t, released when t ends.
func New(t testing.TB, kind string) Backend {
	t.Helper()
	b := Backend{Kind: kind, Pool: pgtest.NewPool(t, 12)}
	switch kind {
	case eventstores.Postgres:
	case eventstores.KurrentDB:
		b.URL = kurrentdbtest.Start(t, kurrentdbtest.Options{}).URL()
	default:
		t.Fatalf("eventstorestest: no event store of kind %q", kind)
	}
	b.Store = b.Connect(t)
	return b
}

// Connect opens another client of b's event store, as another process of
// the deployment would have (its own connections, its own group commit);
// it is closed when t ends.
func (b Backend) Connect(t testing.TB) eventstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	es, err := eventstores.Open(ctx, b.URL, b.Pool, eventstores.Options{})
	if err != nil {
		t.Fatalf("eventstorestest: open the %s event store: %v", b.Kind, err)
	}
	t.Cleanup(es.Close)
	return es.Store
}
