package postgres_test

import (
	"context"
	"errors"
	"net"
	neturl "net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orders-reference/orders/internal/pgtest"
	pg "github.com/orders-reference/orders/internal/postgres"
)

// A pool with a statement timeout has PostgreSQL cancel a statement that
// waits for a lock past it, and roll its transaction back: once the lock
// is released nothing of it is there. A pool without one (background
// work) waits as long as it takes. The timeouts are counted.
func TestStatementTimeoutRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	timeouts := pg.NewTimeouts(nil)
	requests, err := pg.ConnectWith(ctx, url, pg.PoolOptions{MaxConns: 2, StatementTimeout: 200 * time.Millisecond, Tracer: timeouts})
	if err != nil {
		t.Fatal(err)
	}
	defer requests.Close()
	background, err := pg.Connect(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer background.Close()
	if _, err := background.Exec(ctx, `CREATE TABLE stock (id int PRIMARY KEY, n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := background.Exec(ctx, `INSERT INTO stock VALUES (1, 10)`); err != nil {
		t.Fatal(err)
	}

	// A second session holds the table.
	holder, err := background.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(ctx) }()
	if _, err := holder.Exec(ctx, `LOCK TABLE stock IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	err = pgx.BeginFunc(ctx, requests, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS audit (n int)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit VALUES (1)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE stock SET n = n - 1 WHERE id = 1`)
		return err
	})
	took := time.Since(start)
	if !pg.TimedOut(err) || !pg.Unavailable(err) {
		t.Fatalf("statement behind a lock: %v, want a statement timeout", err)
	}
	if took > 5*time.Second {
		t.Fatalf("gave up after %s, want about 200ms", took)
	}
	if n := timeouts.Since(time.Minute); n != 1 {
		t.Fatalf("%d timeouts counted, want 1", n)
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	var n int
	if err := background.QueryRow(ctx, `SELECT n FROM stock WHERE id = 1`).Scan(&n); err != nil || n != 10 {
		t.Fatalf("stock after the timed-out transaction: %d %v, want 10", n, err)
	}
	var audit bool
	if err := background.QueryRow(ctx, `SELECT to_regclass('audit') IS NOT NULL`).Scan(&audit); err != nil || audit {
		t.Fatalf("the timed-out transaction's table exists: %v %v", audit, err)
	}
	// The background pool has no limit; the request pool works again.
	if _, err := background.Exec(ctx, `SELECT pg_sleep(0.3)`); err != nil {
		t.Fatalf("background statement longer than the request path's timeout: %v", err)
	}
	if _, err := requests.Exec(ctx, `UPDATE stock SET n = n - 1 WHERE id = 1`); err != nil {
		t.Fatalf("request path after the lock: %v", err)
	}
}

// A context that ends cancels the statement on the server too (a cancel
// request), so nothing goes on running there after the caller gave up.
func TestContextCancelsTheStatementOnTheServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	requests, err := pg.ConnectWith(ctx, url, pg.PoolOptions{MaxConns: 2, StatementTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer requests.Close()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = requests.Exec(short, `SELECT pg_sleep(30)`)
	if !pg.TimedOut(err) {
		t.Fatalf("canceled statement: %v", err)
	}
	var running int
	if err := requests.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'`).Scan(&running); err != nil || running != 0 {
		t.Fatalf("%d statements still running on the server (%v)", running, err)
	}
}

// Pools bound connecting unless the URL says otherwise.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool, err := pg.Connect(ctx, url, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if got := pool.Config().ConnConfig.ConnectTimeout; got != pg.DefaultConnectTimeout {
		t.Fatalf("connect timeout %s, want %s", got, pg.DefaultConnectTimeout)
	}
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("connect_timeout", "7")
	u.RawQuery = q.Encode()
	own, err := pg.Connect(ctx, u.String(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if got := own.Config().ConnConfig.ConnectTimeout; got != 7*time.Second {
		t.Fatalf("URL's connect timeout: %s, want 7s", got)
	}
}

// What counts as the database being unavailable, and what does not.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	_, refused := pgconn.Connect(context.Background(), "postgres://postgres@127.0.0.1:"+strconv.Itoa(addr.Port)+"/x?connect_timeout=2")
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"statement timeout", &pgconn.PgError{Code: "57014"}, true},
		{"lock timeout", &pgconn.PgError{Code: "55P03"}, true},
		{"shutting down", &pgconn.PgError{Code: "57P01"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"connection refused", refused, true},
		{"deadline", context.DeadlineExceeded, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, false},
		{"no rows", pgx.ErrNoRows, false},
		{"canceled by the caller", context.Canceled, false},
		{"other", errors.New("boom"), false},
	} {
		if got := pg.Unavailable(c.err); got != c.want {
			t.Errorf("%s (%v): Unavailable %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
