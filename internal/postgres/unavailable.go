package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TimedOut reports whether err is a statement that did not finish in time:
// canceled by the server's statement_timeout or lock_timeout (or a cancel
// request), or abandoned by the client when its context's deadline
// passed. Nothing of a statement that timed out is committed, unless it
// was an autocommitted statement that the client gave up on without the
// server canceling it (an outcome the caller does not know).
func TimedOut(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 57014 query_canceled, 55P03 lock_not_available (lock_timeout).
		return pgErr.Code == "57014" || pgErr.Code == "55P03"
	}
	return pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded)
}

// Unavailable reports whether err means that the database could not serve
// a statement now, but may shortly: it timed out (TimedOut), the server
// could not be reached or lost the connection, is shutting down or
// starting, or has no connection slot free. A retry later may succeed;
// the error is no fault of the request.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if TimedOut(err) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"): // connection_exception
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // admin/crash shutdown, cannot connect now
			return true
		case pgErr.Code == "53300": // too_many_connections
			return true
		}
		return false
	}
	// Failed before anything was sent, or a connection that broke
	// mid-statement (closed by the server or the network).
	var netErr net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// Timeouts counts the statements of a pool that timed out (TimedOut): a
// pgx.QueryTracer for PoolOptions.Tracer. /readyz reports the database as
// degraded while statements time out.
type Timeouts struct {
	mu    sync.Mutex
	now   func() time.Time
	times []time.Time // of the recent timeouts, oldest first, at most timeoutsKept
}

// timeoutsKept bounds what Timeouts remembers.
const timeoutsKept = 1024

// NewTimeouts returns an empty counter; now nil means time.Now.
func NewTimeouts(now func() time.Time) *Timeouts {
	if now == nil {
		now = time.Now
	}
	return &Timeouts{now: now}
}

// TraceQueryStart implements pgx.QueryTracer.
func (t *Timeouts) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (t *Timeouts) TraceQueryEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	if data.Err != nil && TimedOut(data.Err) {
		t.Add()
	}
}

// Add records a timeout now.
func (t *Timeouts) Add() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.times) == timeoutsKept {
		t.times = t.times[1:]
	}
	t.times = append(t.times, t.now())
}

// Since returns how many statements timed out in the last window (up to
// the number kept).
func (t *Timeouts) Since(window time.Duration) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	from := t.now().Add(-window)
	n := 0
	for i := len(t.times) - 1; i >= 0 && t.times[i].After(from); i-- {
		n++
	}
	return n
}
