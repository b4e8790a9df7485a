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
	"github.com/orders-reference/orders/internal/metrics"
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
	// metrics, if set, gets the outcome of every evaluation: orders_ready
	// and orders_readiness_check.
	metrics *metrics.Metrics

	// last is each check's state (ok, degraded, failed) at the watcher's
	// last evaluation, for logging only what changed.
	mu   sync.Mutex
	last map[string]string
}

// errDegraded marks a failing check that does not make the process unready.
var errDegraded = errors.New("degraded")

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	ready, errs := rd.evaluate(ctx, false)
	results := map[string]string{}
	for name, err := range errs {
		results[name] = "ok"
		if err != nil {
			results[name] = err.Error()
			rd.log.WarnContext(ctx, "readiness check failed", "check", name, "error", details(err))
		}
	}
	if !ready {
		w.Header().Set("Retry-After", "5") // as the request path's own 503s: a hint for clients that poll it
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeUnavailable,
			Detail: "Not ready: see checks.", Extensions: map[string]any{"checks": results}})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": results})
}

// readyTimeout bounds one evaluation of the checks.
const readyTimeout = 2 * time.Second

// evaluate runs every check at once and returns whether the process is
// ready and each check's error (nil: passed; errDegraded: does not make
// it unready), and sets the readiness gauges. periodic is the watcher's
// evaluation between probes, which asks Redis nothing: it reads the
// limiter's circuit breaker, which opens when orders find Redis down.
func (rd *readiness) evaluate(ctx context.Context, periodic bool) (bool, map[string]error) {
	checks := map[string]func(context.Context) error{
		"database": rd.database,
		"eventstore": func(ctx context.Context) error {
			_, err := rd.store.Head(ctx)
			return unreachable(err)
		},
	}
	if rd.redis != nil {
		checks["redis"] = func(ctx context.Context) error {
			var err error
			switch {
			case !periodic:
				err = rd.redis.ready(ctx)
			case rd.redis.breaker.Open():
				err = errLimiterBreakerOpen
			}
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
		mu    sync.Mutex
		wg    sync.WaitGroup
		errs  = map[string]error{}
		ready = true
	)
	for name, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := check(ctx)
			mu.Lock()
			defer mu.Unlock()
			errs[name] = err
			ready = ready && (err == nil || errors.Is(err, errDegraded))
		}()
	}
	wg.Wait()
	if rd.metrics != nil {
		rd.metrics.Ready.Set(gauge(ready))
		for name, err := range errs {
			rd.metrics.ReadinessCheck.WithLabelValues(name).Set(gauge(err == nil || errors.Is(err, errDegraded)))
		}
	}
	return ready, errs
}

func gauge(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}

// watch evaluates readiness between probes (the watcher calls it every
// watchEvery), so that orders_ready is current, and an alert on it works,
// whether or not anything probes /readyz. It logs a check when its result
// changes, not at every evaluation.
func (rd *readiness) watch(ctx context.Context) {
	evalCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	_, errs := rd.evaluate(evalCtx, true)
	if ctx.Err() != nil {
		return // shutting down
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.last == nil {
		rd.last = map[string]string{}
	}
	for name, err := range errs {
		was, seen := rd.last[name]
		now := "ok" // by state, not message: a lag's grows at every evaluation
		switch {
		case errors.Is(err, errDegraded):
			now = "degraded"
		case err != nil:
			now = "failed"
		}
		rd.last[name] = now
		switch {
		case now == was || (!seen && err == nil):
		case err != nil:
			rd.log.WarnContext(ctx, "readiness check failed", "check", name, "error", details(err))
		default:
			rd.log.InfoContext(ctx, "readiness check passes again", "check", name)
		}
	}
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
		case s.NotInStore:
			return fmt.Errorf("%s stopped: %s", name, s.Error)
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
