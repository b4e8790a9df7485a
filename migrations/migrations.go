// Package migrations holds the database schema as embedded goose SQL
// migrations and applies them. Runs are serialized across processes by a
// PostgreSQL advisory lock, so any number of instances may start at once.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/orders-reference/orders/internal/logging"
)

//go:embed sql/*.sql
var embedded embed.FS

// lockID is the advisory lock key that serializes migration runs.
const lockID int64 = 0x4f52444552534d47 // "ORDERSMG"

// Status is the state of one migration.
type Status struct {
	Version int64
	Name    string
	Applied bool
	// AppliedAt is zero when the migration is pending.
	AppliedAt time.Time
}

// Migrator applies the embedded migrations to one database.
type Migrator struct {
	provider *goose.Provider
	log      *slog.Logger
}

// New returns a Migrator for db. logger receives one INFO line per
// migration as soon as it is applied ("migration applied": version, name,
// duration_ms), never its SQL; one INFO line when another instance holds
// the migration lock for more than lockWaitLogged ("waiting for the
// migration lock"), and one when it is taken after such a wait; and one
// DEBUG line when there was nothing to apply. nil discards them.
func New(db *sql.DB, logger *slog.Logger) (*Migrator, error) {
	fsys, err := fs.Sub(embedded, "sql")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Retry the lock every second for up to five minutes: a second instance
	// waits for the first to finish instead of migrating concurrently.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("migrations: locker: %w", err)
	}
	// Numbers are reserved per change while changes are in flight, so a
	// lower number can land after higher ones were applied (00004, the
	// snapshots table, after 00005 and 00006): apply it instead of refusing
	// to start. Each migration must therefore not depend on a higher one.
	// goose's verbose records (every statement's SQL among them) go to
	// gooseLog, which logs each migration as goose completes it.
	opts := []goose.ProviderOption{goose.WithSessionLocker(waitLogger{SessionLocker: locker, log: logger}),
		goose.WithDisableGlobalRegistry(true), goose.WithAllowOutofOrder(true),
		goose.WithVerbose(true), goose.WithSlog(slog.New(gooseLog{log: logger}))}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return &Migrator{provider: p, log: logger}, nil
}

// gooseLog is the handler of goose's verbose records: each "migration
// completed" becomes the Migrator's "migration applied" line, as it
// happens (a long migration run shows its progress); every other record,
// the statements' SQL among them, is dropped.
type gooseLog struct{ log *slog.Logger }

func (h gooseLog) Enabled(context.Context, slog.Level) bool { return true }
func (h gooseLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h gooseLog) WithGroup(string) slog.Handler            { return h }

func (h gooseLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != "migration completed" {
		return nil
	}
	var (
		version int64
		name    string
		took    time.Duration
	)
	r.Attrs(func(a slog.Attr) bool {
		v := a.Value.Resolve()
		switch {
		case a.Key == "version" && v.Kind() == slog.KindInt64:
			version = v.Int64()
		case a.Key == "source" && v.Kind() == slog.KindString:
			name = path.Base(v.String())
		case a.Key == "duration_seconds" && v.Kind() == slog.KindFloat64:
			took = time.Duration(v.Float64() * float64(time.Second))
		}
		return true
	})
	h.log.InfoContext(ctx, "migration applied", "version", version, "name", name, logging.Millis("duration_ms", took))
	return nil
}

// lockWaitLogged is how long taking the migration lock may take before
// the wait is logged.
var lockWaitLogged = time.Second

// waitLogger logs a wait for the migration lock (another instance is
// migrating) that takes more than lockWaitLogged, and how long it took.
type waitLogger struct {
	lock.SessionLocker
	log *slog.Logger
}

func (l waitLogger) SessionLock(ctx context.Context, conn *sql.Conn) error {
	start := time.Now()
	var (
		mu            sync.Mutex
		waiting, done bool
	)
	t := time.AfterFunc(lockWaitLogged, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			waiting = true
			l.log.InfoContext(ctx, "waiting for the migration lock: another instance is migrating the database")
		}
	})
	err := l.SessionLocker.SessionLock(ctx, conn)
	t.Stop()
	mu.Lock()
	done = true
	waited := waiting
	mu.Unlock()
	if waited && err == nil {
		l.log.InfoContext(ctx, "migration lock taken", logging.Millis("waited_ms", time.Since(start)))
	}
	return err
}

// Up applies every pending migration and returns the versions it applied.
func (m *Migrator) Up(ctx context.Context) ([]int64, error) {
	results, err := m.provider.Up(ctx)
	if err != nil {
		var partial *goose.PartialError
		if errors.As(err, &partial) && partial.Failed != nil {
			return m.applied(ctx, partial.Applied), fmt.Errorf("migrations: version %d failed: %w", partial.Failed.Source.Version, partial.Err)
		}
		return nil, fmt.Errorf("migrations: up: %w", err)
	}
	if len(results) == 0 {
		m.log.DebugContext(ctx, "database schema up to date: no migration to apply")
	}
	return m.applied(ctx, results), nil
}

// UpTo applies the pending migrations up to and including version (to
// stage an upgrade, or to test one).
func (m *Migrator) UpTo(ctx context.Context, version int64) ([]int64, error) {
	results, err := m.provider.UpTo(ctx, version)
	if err != nil {
		var partial *goose.PartialError
		if errors.As(err, &partial) {
			results = partial.Applied
		}
		return m.applied(ctx, results), fmt.Errorf("migrations: up to %d: %w", version, err)
	}
	return m.applied(ctx, results), nil
}

// applied returns the versions of the migrations applied (each logged as
// goose completed it: see gooseLog).
func (m *Migrator) applied(_ context.Context, results []*goose.MigrationResult) []int64 {
	out := make([]int64, 0, len(results))
	for _, r := range results {
		out = append(out, r.Source.Version)
	}
	return out
}

// Status lists every embedded migration and whether it is applied.
func (m *Migrator) Status(ctx context.Context) ([]Status, error) {
	list, err := m.provider.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: status: %w", err)
	}
	out := make([]Status, 0, len(list))
	for _, s := range list {
		st := Status{Version: s.Source.Version, Name: s.Source.Path, Applied: s.State == goose.StateApplied}
		if st.Applied {
			st.AppliedAt = s.AppliedAt
		}
		out = append(out, st)
	}
	return out, nil
}
