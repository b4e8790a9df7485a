package migrations_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/migrations"
)

// Migrating logs one INFO line per migration applied (its version, file
// name and duration in milliseconds) and nothing of its SQL; a database
// already up to date, one DEBUG line.
func TestMigrationsLogOneLinePerMigrationAndNoSQL(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sql.Open("pgx", pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out bytes.Buffer
	m, err := migrations.New(db, logging.New(&out, slog.LevelDebug))
	if err != nil {
		t.Fatal(err)
	}
	applied, err := m.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 {
		t.Fatal("nothing applied to an empty database")
	}
	lines := records(t, &out)
	if len(lines) != len(applied) {
		t.Fatalf("%d migrations applied, %d lines logged:\n%s", len(applied), len(lines), out.String())
	}
	for i, rec := range lines {
		name, _ := rec["name"].(string)
		ms, isNumber := rec["duration_ms"].(float64)
		if rec["level"] != "INFO" || rec["msg"] != "migration applied" || rec["version"] != float64(applied[i]) ||
			!strings.HasPrefix(name, fmt.Sprintf("%05d_", applied[i])) || !strings.HasSuffix(name, ".sql") || !isNumber || ms < 0 {
			t.Errorf("line %d: %v", i, rec)
		}
		if len(rec) != 6 { // time, level, msg, version, name, duration_ms
			t.Errorf("line %d has more than it should: %v", i, rec)
		}
	}
	for _, sqlText := range []string{"CREATE ", "ALTER ", "INSERT ", "SELECT ", "statement"} {
		if strings.Contains(out.String(), sqlText) {
			t.Errorf("the log shows SQL (%q):\n%s", sqlText, out.String())
		}
	}

	out.Reset()
	if again, err := m.Up(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second Up applied %v, err %v", again, err)
	}
	if lines := records(t, &out); len(lines) != 1 || lines[0]["level"] != "DEBUG" {
		t.Fatalf("an up-to-date database logged:\n%s", out.String())
	}
}

func records(t *testing.T, out *bytes.Buffer) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// lineChecker is a log writer that, as each "migration applied" line is
// written, reads the highest version the database records as applied.
type lineChecker struct {
	t    *testing.T
	db   *sql.DB
	mu   sync.Mutex
	out  bytes.Buffer
	seen map[float64]int64 // a line's version → the database's highest then
}

func (c *lineChecker) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rec map[string]any
	if json.Unmarshal(p, &rec) == nil && rec["msg"] == "migration applied" {
		var highest int64
		if err := c.db.QueryRow(`SELECT max(version_id) FROM goose_db_version WHERE is_applied`).Scan(&highest); err != nil {
			c.t.Errorf("reading the applied versions: %v", err)
		}
		c.seen[rec["version"].(float64)] = highest
	}
	return c.out.Write(p)
}

func (c *lineChecker) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// Each migration is logged as soon as it is applied, before the next one
// runs, not all of them at the end; and a wait for another instance's
// migration lock is logged while it lasts, then how long it took.
func TestMigrationsLogAsTheyGoAndWhileWaiting(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := pgtest.NewDatabase(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// Another instance holds the migration lock for a while.
	holder, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const lockID int64 = 0x4f52444552534d47
	if _, err := holder.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockID); err != nil {
		t.Fatal(err)
	}
	out := &lineChecker{t: t, db: db, seen: map[float64]int64{}}
	m, err := migrations.New(db, logging.New(out, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		applied []int64
		err     error
	}
	done := make(chan result, 1)
	go func() {
		applied, err := m.Up(ctx)
		done <- result{applied, err}
	}()
	eventually.True(t, "the wait for the lock to be logged", func() bool {
		return strings.Contains(out.String(), "waiting for the migration lock")
	})
	if _, err := holder.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, lockID); err != nil {
		t.Fatal(err)
	}
	holder.Close()
	r := <-done
	if r.err != nil || len(r.applied) == 0 {
		t.Fatalf("Up after the wait: %v, %v", r.applied, r.err)
	}
	var b bytes.Buffer
	b.WriteString(out.String())
	lines := records(t, &b)
	if len(lines) != len(r.applied)+2 || lines[0]["msg"] != "waiting for the migration lock: another instance is migrating the database" ||
		lines[1]["msg"] != "migration lock taken" {
		t.Fatalf("logged:\n%s", out.String())
	}
	if ms, _ := lines[1]["waited_ms"].(float64); ms < 1000 {
		t.Errorf("migration lock taken after %vms, want the wait (over a second)", lines[1]["waited_ms"])
	}
	for _, v := range r.applied {
		if highest, ok := out.seen[float64(v)]; !ok || highest != v {
			t.Errorf("migration %d logged when the database's highest applied version was %d, want it logged right after it applied", v, highest)
		}
	}
}
