package migrations_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

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
