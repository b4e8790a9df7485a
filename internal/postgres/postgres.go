// Package postgres holds the PostgreSQL plumbing shared by the binaries and
// tests: creating the database if it is missing, opening a pool and running
// the migrations over it.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/orders-reference/orders/migrations"
)

// EnsureDatabase creates the database named in url if it does not exist,
// connecting to the server's "postgres" database to do so. It reports
// whether it created it (false when another process created it meanwhile).
func EnsureDatabase(ctx context.Context, url string) (created bool, err error) {
	// Parsed as a pool's URL, so that pool settings (pool_max_conns…) are
	// taken out rather than sent to the server as session parameters.
	poolCfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return false, fmt.Errorf("database url: %w", err)
	}
	cfg := poolCfg.ConnConfig
	name := cfg.Database
	if name == "" || name == "postgres" {
		return false, nil
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return false, fmt.Errorf("connect to %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up database %q: %w", name, err)
	}
	if exists {
		return false, nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") { // created concurrently
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create database %q: %w", name, err)
	}
	return true, nil
}

// DefaultConnectTimeout bounds establishing a connection (TCP, TLS and
// the startup exchange) when the URL sets no connect_timeout. Without it a
// connection to a server that does not answer (a partition, a dropped SYN)
// waits for the operating system's TCP timeout, minutes, holding a slot of
// the pool all that time.
const DefaultConnectTimeout = 5 * time.Second

// PoolOptions tune a pool beyond what its URL says.
type PoolOptions struct {
	// MaxConns sizes the pool unless the URL sets pool_max_conns itself.
	MaxConns int32
	// StatementTimeout, if positive, is the server's statement_timeout on
	// every connection of the pool: a statement that runs or waits for a
	// lock longer is canceled by PostgreSQL, and its transaction rolled
	// back. A canceled context also cancels the statement on the server
	// (a cancel request), not only the client's wait for it.
	StatementTimeout time.Duration
	// Tracer, if set, sees every statement (a *Timeouts counts those that
	// timed out).
	Tracer pgx.QueryTracer
}

// Connect opens a pool on url and checks that the server answers. maxConns
// sizes the pool unless url sets pool_max_conns itself.
func Connect(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	return ConnectWith(ctx, url, PoolOptions{MaxConns: maxConns})
}

// ConnectWith opens a pool on url tuned by opts and checks that the server
// answers.
func ConnectWith(ctx context.Context, url string, opts PoolOptions) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	if opts.MaxConns > 0 && !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = opts.MaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.StatementTimeout > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(max(opts.StatementTimeout.Milliseconds(), 1), 10)
		cfg.ConnConfig.BuildContextWatcherHandler = func(conn *pgconn.PgConn) ctxwatch.Handler {
			// Ask the server to cancel at once; give up on the connection
			// if it does not answer within a second.
			return &pgconn.CancelRequestContextWatcherHandler{Conn: conn, DeadlineDelay: time.Second}
		}
	}
	if opts.Tracer != nil {
		cfg.ConnConfig.Tracer = opts.Tracer
	}
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		RegisterUUID(conn.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return pool, nil
}

// Migrator returns a migrations.Migrator that works over pool. Close the
// returned closer when done.
func Migrator(pool *pgxpool.Pool, logger *slog.Logger) (*migrations.Migrator, func() error, error) {
	db := stdlib.OpenDBFromPool(pool)
	m, err := migrations.New(db, logger)
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return m, db.Close, nil
}

// Migrate applies all pending migrations over pool.
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	m, closeDB, err := Migrator(pool, logger)
	if err != nil {
		return err
	}
	defer closeDB()
	_, err = m.Up(ctx)
	return err
}

// IsDeadlock reports whether err is PostgreSQL's deadlock_detected (40P01):
// the statement was rolled back and may simply be run again.
func IsDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01"
}

// PlanForValues, passed as a statement's first argument, has PostgreSQL
// plan the statement for its values at every call: pgx runs it as an
// unnamed statement (pgx.QueryExecModeCacheDescribe), which never gets a
// cached generic plan. It is for statements on tables that start empty or
// churn, such as the process manager's work list: PostgreSQL keeps a
// generic plan made while the table was small (a sequential scan) until
// autovacuum first analyzes it, and meanwhile every call reads the whole
// table. A batch's statements in a read model's transaction get the same
// through plan_cache_mode (projections' batchBegin).
const PlanForValues = pgx.QueryExecModeCacheDescribe
