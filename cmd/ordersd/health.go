package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/httpx"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query/readmodels"
)

// readiness answers /readyz: ready when the database and the event store
// answer, Redis too when orders must not pass without it (fail closed),
// and, for a process serving the query API, every read model has started,
// has not stopped and is within maxLag of the event store. A database
// whose statements time out on the request path (a lock held, a slow
// statement) is reported degraded: still ready, since every instance
// shares it and taking them out of service would not help. Answers name
// each check's result in a few words; the full errors go to the log.
type readiness struct {
	// pool is the request path's pool; timeouts counts its statements
	// that timed out (nil: not counted).
	pool     *pgxpool.Pool
	timeouts *pg.Timeouts
	store    interface {
		Head(ctx context.Context) (eventstore.Position, error)
	}
	// redis is the Redis rate limiter (nil without one); with
	// redisRequired a Redis outage makes the process not ready, otherwise
	// it is reported as degraded (orders pass unlimited). Its check waits
	// at most redisReadyTimeout, and not at all while the limiter's
	// circuit breaker is open.
	redis            *redisLimiter
	redisRequired    bool
	watcher          *watcher
	maxLag           time.Duration
	checkProjections bool
	log              *slog.Logger
}

// errDegraded marks a failing check that does not make the process unready.
var errDegraded = errors.New("degraded")

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]func(context.Context) error{
		"database": rd.database,
		"eventstore": func(ctx context.Context) error {
			_, err := rd.store.Head(ctx)
			return unreachable(err)
		},
	}
	if rd.redis != nil {
		checks["redis"] = func(ctx context.Context) error {
			err := rd.redis.ready(ctx)
			if err != nil && !rd.redisRequired {
				return fmt.Errorf("%w: %w (orders pass without a rate limit)", errDegraded, err)
			}
			return err
		}
	}
	if rd.checkProjections {
		checks["projections"] = rd.projections
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		results = map[string]string{}
		ready   = true
	)
	for name, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := check(ctx)
			mu.Lock()
			defer mu.Unlock()
			results[name] = "ok"
			if err != nil {
				results[name] = err.Error()
				ready = ready && errors.Is(err, errDegraded)
				rd.log.WarnContext(ctx, "readiness check failed", "check", name, "error", details(err))
			}
		}()
	}
	wg.Wait()
	if !ready {
		w.Header().Set("Retry-After", "5") // as the request path's own 503s: a hint for clients that poll it
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeUnavailable,
			Detail: "Not ready: see checks.", Extensions: map[string]any{"checks": results}})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": results})
}

// hiddenError answers "unreachable" for a dependency's error; the details,
// which may name hosts and users, are logged, not answered.
type hiddenError struct{ cause error }

func (e hiddenError) Error() string { return "unreachable" }
func (e hiddenError) Unwrap() error { return e.cause }

func unreachable(err error) error {
	if err == nil {
		return nil
	}
	return hiddenError{err}
}

// details is what to log about a failed check.
func details(err error) error {
	var h hiddenError
	if errors.As(err, &h) {
		return h.cause
	}
	return err
}

// timeoutWindow is how recent a statement timeout must be for /readyz to
// report the database degraded.
const timeoutWindow = 30 * time.Second

// database checks that the request path's pool answers, and reports it
// degraded while its statements time out.
func (rd *readiness) database(ctx context.Context) error {
	if err := rd.pool.Ping(ctx); err != nil {
		return unreachable(err)
	}
	if rd.timeouts == nil {
		return nil
	}
	if n := rd.timeouts.Since(timeoutWindow); n > 0 {
		return fmt.Errorf("%w: %d statements timed out in the last %s (DB_STATEMENT_TIMEOUT)", errDegraded, n, timeoutWindow)
	}
	return nil
}

// projections checks the read models as the watcher last saw them.
func (rd *readiness) projections(context.Context) error {
	list, at := rd.watcher.Projections()
	if at.IsZero() {
		return errors.New("not read yet")
	}
	if age := time.Since(at); age > 3*watchEvery {
		return fmt.Errorf("last read %s ago", age.Round(time.Second))
	}
	byName := map[string]projections.Status{}
	for _, s := range list {
		byName[s.Name] = s
	}
	for _, name := range readmodels.Names() {
		s, ok := byName[name]
		switch {
		case !ok:
			return fmt.Errorf("%s has not started (is a projector running?)", name)
		case s.State == projections.StateFailed:
			return fmt.Errorf("%s stopped on an event it cannot apply", name)
		case s.EventStore != rd.watcher.opts.EventStore:
			return fmt.Errorf("%s stopped: its checkpoint belongs to the %s event store (rebuild it)", name, s.EventStore)
		}
		if lag := time.Duration(lagSeconds(s) * float64(time.Second)); lag > rd.maxLag {
			return fmt.Errorf("%s is %s behind (%d events)", name, lag.Round(time.Second), s.Behind)
		}
	}
	return nil
}
