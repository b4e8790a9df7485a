package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/process"
	"github.com/orders-reference/orders/projections"
)

// readiness answers /readyz: ready when the database, the event store and
// Redis (when this process limits orders with it) answer, and, for a
// process serving the query API, the read models are within maxLag of the
// event store and none has stopped.
type readiness struct {
	pool  *pgxpool.Pool
	store interface {
		Head(ctx context.Context) (eventstore.Position, error)
	}
	redis            *redis.Client
	watcher          *watcher
	maxLag           time.Duration
	checkProjections bool
}

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]func(context.Context) error{
		"database": func(ctx context.Context) error { return rd.pool.Ping(ctx) },
		"eventstore": func(ctx context.Context) error {
			_, err := rd.store.Head(ctx)
			return err
		},
	}
	if rd.redis != nil {
		checks["redis"] = func(ctx context.Context) error { return rd.redis.Ping(ctx).Err() }
	}
	if rd.checkProjections {
		checks["projections"] = rd.projections
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		results = map[string]string{}
		ok      = true
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
				results[name], ok = err.Error(), false
			}
		}()
	}
	wg.Wait()
	if !ok {
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeUnavailable, Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
			Detail: "Not ready: see checks.", Extensions: map[string]any{"checks": results}})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": results})
}

// projections checks the read models as the watcher last saw them.
func (rd *readiness) projections(context.Context) error {
	list, at := rd.watcher.Projections()
	if at.IsZero() {
		return fmt.Errorf("not read yet")
	}
	if age := time.Since(at); age > 3*watchEvery {
		return fmt.Errorf("last read %s ago", age.Round(time.Second))
	}
	for _, s := range list {
		if s.Name == process.Name {
			continue // the process manager is not a read model
		}
		if s.State == projections.StateFailed {
			return fmt.Errorf("%s stopped: %s", s.Name, s.Error)
		}
		if lag := time.Duration(lagSeconds(s) * float64(time.Second)); lag > rd.maxLag {
			return fmt.Errorf("%s is %s behind (%d events)", s.Name, lag.Round(time.Second), s.Behind)
		}
	}
	return nil
}
