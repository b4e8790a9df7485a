package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Plan cache modes for Buffers: the plan PostgreSQL makes for a prepared
// statement's values, and the generic one it may switch to after five
// executions (https://www.postgresql.org/docs/current/sql-prepare.html).
const (
	CustomPlan  = "force_custom_plan"
	GenericPlan = "force_generic_plan"
)

// Buffers executes sql, prepared with the parameter types params (e.g.
// "uuid[], text"; empty for none) and run with the SQL literals args,
// under EXPLAIN (ANALYZE, BUFFERS) with the plan cache mode given, and
// returns the shared buffers it hit or read (the top node counts its
// children's and its init plans') and the plan, as JSON, to show when the
// count is not what a test expects. The statement runs in a transaction that
// is rolled back, so writes may be explained too.
//
// A statement whose buffers grow with a table's history (dead rows, other
// orders' rows, events long applied) is a plan that scans; tests bound the
// buffers over a table filled well beyond what the statement needs.
func Buffers(t testing.TB, pool *pgxpool.Pool, mode, sql, params, args string) (int, string) {
	t.Helper()
	ctx := t.Context()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// A prepared statement outlives a rollback: one name per call, freed on
	// the connection once the transaction has ended, whatever happened.
	name := "explained_" + strings.ToLower(rand.Text())
	defer conn.Exec(context.WithoutCancel(ctx), `DEALLOCATE `+name) //nolint:errcheck // best effort: the pool is the test's
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // nothing to keep
	if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = `+mode); err != nil {
		t.Fatal(err)
	}
	decl, call := "", "EXECUTE "+name
	if params != "" {
		decl, call = "("+params+")", "EXECUTE "+name+"("+args+")"
	}
	if _, err := tx.Exec(ctx, `PREPARE `+name+decl+` AS `+sql); err != nil {
		t.Fatal(err)
	}
	var out []byte
	if err := tx.QueryRow(ctx, `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `+call).Scan(&out); err != nil {
		t.Fatal(err)
	}
	var plans []struct {
		Plan struct {
			Hit  int `json:"Shared Hit Blocks"`
			Read int `json:"Shared Read Blocks"`
		}
	}
	if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("explain output %s: %v", out, err)
	}
	return plans[0].Plan.Hit + plans[0].Plan.Read, string(out)
}
