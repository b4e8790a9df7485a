// Command ordersd is the Orders server. It prepares the database (creates it
// if missing, migrates it unless MIGRATE_ON_START=false), opens the event
// store, and serves the command and query APIs, the payment webhook,
// /metrics, /healthz and /readyz on HTTP_ADDR, while the projections keep
// the read models current, the process manager drives payments (through the
// embedded fake provider when FAKE_PAYMENT_ENABLED) and Recovery finishes
// placements that a crash interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/httpapi"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/metrics"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/internal/ratelimit"
	"github.com/orders-reference/orders/process"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query"
	queryapi "github.com/orders-reference/orders/query/httpapi"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load(os.Environ())
	if err != nil {
		fmt.Fprintln(os.Stderr, "ordersd:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		logger.Error("cannot listen", "addr", cfg.HTTPAddr, "error", err)
		os.Exit(1)
	}
	if err := run(ctx, cfg, logger, ln); err != nil {
		logger.Error("ordersd stopped", "error", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, then drains in-flight requests.
func run(ctx context.Context, cfg config.Config, logger *slog.Logger, ln net.Listener) error {
	defer ln.Close()
	if cfg.EventStoreURL != "" {
		return fmt.Errorf("EVENTSTORE_URL=%s: the EventStoreDB/KurrentDB adapter is not available yet; unset EVENTSTORE_URL to use the PostgreSQL event store", config.Redacted(cfg.EventStoreURL))
	}

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pg.EnsureDatabase(startCtx, cfg.DatabaseURL); err != nil {
		return fmt.Errorf("database %s: %w", config.Redacted(cfg.DatabaseURL), err)
	}
	// Each projection runner and each half of the process manager keeps a
	// connection (leader or standby); leave room for requests, steps,
	// Recovery and the event store's notifier.
	pool, err := pg.Connect(startCtx, cfg.DatabaseURL, 30)
	if err != nil {
		return fmt.Errorf("database %s: %w", config.Redacted(cfg.DatabaseURL), err)
	}
	defer pool.Close()
	if cfg.MigrateOnStart {
		if err := pg.Migrate(startCtx, pool, logger); err != nil {
			return err
		}
	}
	m := metrics.New()
	m.Prime([]string{command.CancelReasonCustomer, order.CancelReasonPaymentFailed, order.CancelReasonPaymentTimeout},
		[]string{process.KindInitiatePayment, process.KindPaymentTimeout, process.KindCommitStock, process.KindReleaseStock, process.KindRefund},
		[]string{process.OutcomeDone, process.OutcomeRetry, process.OutcomeParked})
	store := postgres.New(pool, postgres.Options{Logger: logger, AppendObserver: m.ObserveAppend})
	defer store.Close()
	svc := command.NewService(store, command.Options{
		OnOrderPlaced: m.OrdersTotal.Inc, OnOrderPaid: m.OrdersPaid.Inc,
		OnOrderCanceled: func(reason string) { m.OrdersCanceled.WithLabelValues(reason).Inc() },
		KeySecret:       []byte(cfg.IdempotencyKeySecret),
	})
	recovery := command.NewRecovery(svc, store, command.RecoveryOptions{Logger: logger})
	limiter, closeLimiter := newLimiter(ctx, cfg, logger)
	defer closeLimiter()
	pay, err := newPayments(cfg, logger, ln.Addr())
	if err != nil {
		return err
	}
	defer pay.close()
	manager := process.New(pool, store, svc, pay.provider, process.Options{
		Backoff: cfg.PaymentRetryBackoff, PaymentTimeout: cfg.PaymentTimeout, CallbackURL: pay.callbackURL, Logger: logger,
		OnStep:  func(kind, outcome string) { m.ProcessSteps.WithLabelValues(kind, outcome).Inc() },
		OnError: func(kind string) { m.WorkerErrors.WithLabelValues(kind).Inc() },
	})

	r := chi.NewRouter()
	r.Use(httpx.RequestID)
	httpapi.New(httpapi.Config{
		Commands: svc, AdminSecret: cfg.AdminSecret, Limiter: limiter, FailClosed: cfg.RateLimitFailClosed, Logger: logger,
		OnRateLimited: m.RateLimited.Inc, OnLimiterError: func(error) { m.RateLimiterErrors.Inc() },
		Webhooks: pay.verifier,
	}).Mount(r)
	progress := projections.NewProgress(pool, 0)
	queryapi.New(queryapi.Config{
		Reader: query.NewReader(pool), Waiter: progress, Events: store, AdminSecret: cfg.AdminSecret, Logger: logger,
	}).Mount(r)
	r.Method(http.MethodGet, "/metrics", m.Handler())
	runners := []*projections.Runner{
		projections.NewRunner(pool, store, projections.Products{}, projections.Options{Logger: logger, OnApplied: progress.Applied}),
		projections.NewRunner(pool, store, projections.Orders{}, projections.Options{Logger: logger, OnApplied: progress.Applied}),
	}
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, `{"status":"ok"}`)
	})
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := store.Head(ctx); err != nil {
			logger.WarnContext(ctx, "not ready: event store unreachable", "error", err)
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprint(w, `{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"event store unreachable"}`)
			return
		}
		writeJSON(w, http.StatusOK, `{"status":"ready"}`)
	})

	srv := &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		logger.Info("ordersd listening", "addr", ln.Addr().String())
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	for _, runner := range runners {
		g.Go(func() error {
			// A poisoned projection stops alone (recorded, logged); the
			// server keeps serving.
			if err := runner.Run(gctx); err != nil {
				logger.Error("projection stopped", "error", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		watchProjections(gctx, pool, m, logger)
		return nil
	})
	g.Go(func() error {
		progress.Run(gctx)
		return nil
	})
	g.Go(func() error {
		return manager.Run(gctx)
	})
	g.Go(func() error {
		if err := recovery.Run(gctx); err != nil && gctx.Err() == nil {
			return fmt.Errorf("recovery: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("ordersd shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	})
	return g.Wait()
}

// watchProjections updates the projection lag and process manager backlog
// metrics every few seconds.
func watchProjections(ctx context.Context, pool *pgxpool.Pool, m *metrics.Metrics, logger *slog.Logger) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		list, err := projections.Statuses(ctx, pool)
		if err != nil && ctx.Err() == nil {
			logger.Warn("reading projection lag failed", "error", err)
		}
		var unscheduled int64
		for _, s := range list {
			if strings.Contains(s.Name, "#") { // a rebuild in progress, not a live projection
				continue
			}
			if s.Name == process.Name {
				unscheduled = s.Behind
			}
			m.ProjectionLag.WithLabelValues(s.Name).Set(float64(s.Behind))
			lag := 0.0
			if !s.OldestPending.IsZero() {
				lag = time.Since(s.OldestPending).Seconds()
			}
			m.ProjectionLagSeconds.WithLabelValues(s.Name).Set(lag)
			failed := 0.0
			if s.State == projections.StateFailed {
				failed = 1
			}
			m.ProjectionFailed.WithLabelValues(s.Name).Set(failed)
		}
		if backlog, err := process.ReadBacklog(ctx, pool, time.Now()); err == nil {
			m.OutboxPending.Set(float64(unscheduled + backlog.Due))
			m.DeadLetters.Set(float64(backlog.Parked))
		} else if ctx.Err() == nil {
			logger.Warn("reading the process manager backlog failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// newLimiter returns the per-email order limiter: in Redis when REDIS_URL is
// set (an unreachable Redis is logged, not fatal: the limiter fails open or
// closed as configured), else in process.
func newLimiter(ctx context.Context, cfg config.Config, logger *slog.Logger) (httpapi.Limiter, func()) {
	if cfg.RedisURL == "" {
		logger.Warn("REDIS_URL is empty: rate limiting in process, correct for a single instance only")
		return ratelimit.NewMemory(cfg.RateLimitOrdersPerMinute, time.Minute, nil), func() {}
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil { // validated by config.Load; kept for safety
		logger.Error("REDIS_URL unusable; rate limiting in process", "error", err)
		return ratelimit.NewMemory(cfg.RateLimitOrdersPerMinute, time.Minute, nil), func() {}
	}
	client := redis.NewClient(opts)
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		logger.Error("redis unreachable at start", "redis", config.Redacted(cfg.RedisURL), "error", err, "fail_closed", cfg.RateLimitFailClosed)
	}
	return ratelimit.NewRedis(client, "orders:ratelimit:", cfg.RateLimitOrdersPerMinute, time.Minute), func() { _ = client.Close() }
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprint(w, body)
}
