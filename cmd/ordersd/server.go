package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/sync/errgroup"

	"github.com/orders-reference/orders/api"
	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/httpapi"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/metrics"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
	paymentprovider "github.com/orders-reference/orders/payment/provider"
	"github.com/orders-reference/orders/process"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query"
	queryapi "github.com/orders-reference/orders/query/httpapi"
)

// run serves the configured roles until ctx ends, then stops accepting
// requests, drains those in flight, lets every projection finish its
// batch, releases its leader locks and returns nil.
func run(ctx context.Context, cfg config.Config, logger *slog.Logger, ln net.Listener) error {
	defer ln.Close()
	if cfg.EventStoreURL != "" {
		return fmt.Errorf("EVENTSTORE_URL=%s: the EventStoreDB/KurrentDB adapter is not available yet; unset EVENTSTORE_URL to use the PostgreSQL event store", config.Redacted(cfg.EventStoreURL))
	}
	roles := cfg.Roles
	logger.Info("ordersd starting", "roles", roles.String(), "addr", ln.Addr().String())

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pg.EnsureDatabase(startCtx, cfg.DatabaseURL); err != nil {
		return fmt.Errorf("database %s: %w", config.Redacted(cfg.DatabaseURL), err)
	}
	// Each projection runner and each half of the process manager keeps a
	// connection (leader or standby); leave room for requests, steps and
	// the event store's notifier.
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
	m.Prime([]string{projections.Products{}.Name(), projections.Orders{}.Name(), projections.OrderStock{}.Name(), process.Name},
		[]string{command.CancelReasonCustomer, order.CancelReasonPaymentFailed, order.CancelReasonPaymentTimeout},
		[]string{process.KindCompletePlacement, process.KindReleaseReservation, process.KindInitiatePayment, process.KindPaymentTimeout,
			process.KindCommitStock, process.KindReleaseStock, process.KindRefund},
		[]string{process.OutcomeDone, process.OutcomeRetry, process.OutcomeParked})
	store := postgres.New(pool, postgres.Options{Logger: logger, AppendObserver: m.ObserveAppend})
	defer store.Close()
	svc := command.NewService(store, command.Options{
		OnOrderPlaced: m.OrdersTotal.Inc, OnOrderPaid: m.OrdersPaid.Inc,
		OnOrderCanceled: func(reason string) { m.OrdersCanceled.WithLabelValues(reason).Inc() },
		KeySecret:       []byte(cfg.IdempotencyKeySecret),
	})

	g, gctx := errgroup.WithContext(ctx)
	var rt routes
	watcher := newWatcher(pool, store, m, logger)
	ready := &readiness{pool: pool, store: store, watcher: watcher, maxLag: cfg.ReadyMaxProjectionLag, log: logger,
		checkProjections: roles.Has(config.RoleQuery), redisRequired: cfg.RateLimitFailClosed}

	if roles.Has(config.RoleCommand) {
		limiter, redisClient, closeLimiter := newLimiter(ctx, cfg, logger)
		defer closeLimiter()
		ready.redis = redisClient
		verifier, err := webhookVerifier(cfg)
		if err != nil {
			return err
		}
		rt.command = httpapi.New(httpapi.Config{
			Commands: svc, AdminSecret: cfg.AdminSecret, Limiter: limiter, FailClosed: cfg.RateLimitFailClosed, Logger: logger,
			OnRateLimited: m.RateLimited.Inc, OnLimiterError: func(error) { m.RateLimiterErrors.Inc() },
			Webhooks: verifier,
		})
	}
	var onApplied func(string, eventstore.Position)
	if roles.Has(config.RoleQuery) {
		progress := projections.NewProgress(pool, 0)
		onApplied = progress.Applied // wakes read-your-writes waiters at once when the runners are here too
		rt.query = queryapi.New(queryapi.Config{
			Reader: query.NewReader(pool), Waiter: progress, Events: store, AdminSecret: cfg.AdminSecret, Logger: logger,
		})
		g.Go(func() error { progress.Run(gctx); return nil })
	}
	if roles.Has(config.RoleProjector) {
		for _, proj := range []projections.Projector{projections.Products{}, projections.Orders{}, projections.OrderStock{}} {
			runner := projections.NewRunner(pool, store, proj, projections.Options{Logger: logger, OnApplied: onApplied})
			g.Go(func() error { return runner.Run(gctx) })
		}
	}
	var fake *fakepay.Provider
	if roles.Has(config.RoleFakePay) {
		if fake, err = newFakeProvider(cfg, logger); err != nil {
			return err
		}
		defer fake.Close()
		if !roles.Has(config.RoleProcess) {
			// Only a process that serves the fake to others exposes its API
			// (anyone who reaches it gets webhooks signed with the real
			// secret: keep such a process off public networks).
			rt.fakepay = fake.Handler()
		}
	}
	if roles.Has(config.RoleProcess) {
		var provider process.Provider = fake
		if fake == nil {
			provider = paymentprovider.New(cfg.PaymentProviderURL, nil)
		}
		callback := cfg.PaymentCallbackURL
		if callback == "" {
			callback = "http://" + loopback(ln.Addr()) + "/webhooks/payment"
		}
		manager := process.New(pool, store, svc, provider, process.Options{
			Backoff: cfg.PaymentRetryBackoff, PaymentTimeout: cfg.PaymentTimeout, CallbackURL: callback, Logger: logger,
			OnStep:  func(kind, outcome string) { m.ProcessSteps.WithLabelValues(kind, outcome).Inc() },
			OnError: func(kind string) { m.WorkerErrors.WithLabelValues(kind).Inc() },
		})
		providerName := "embedded fake provider"
		if fake == nil {
			providerName = cfg.PaymentProviderURL
		}
		logger.Info("payment process manager", "provider", providerName, "callback_url", callback)
		g.Go(func() error { return manager.Run(gctx) })
	}
	rt.metrics, rt.ready = m.Handler(), ready
	if roles.Has(config.RoleQuery) || roles.Has(config.RoleProjector) || roles.Has(config.RoleProcess) {
		// The lag and backlog gauges describe the deployment, not this
		// process: only processes that care read them (each as often).
		g.Go(func() error { watcher.Run(gctx); return nil })
	}

	r := chi.NewRouter()
	r.Use(httpx.RequestID, httpx.Observe(logger, func(method, route string, status int, d time.Duration) {
		m.HTTPDuration.WithLabelValues(method, route, strconv.Itoa(status)).Observe(d.Seconds())
	}), httpx.Recover(logger))
	rt.mount(r)

	srv := &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	g.Go(func() error {
		logger.Info("ordersd listening", "addr", ln.Addr().String())
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("ordersd shutting down: draining requests")
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	})
	return g.Wait()
}

// routes are the HTTP parts of a process; a nil part is a role it does not
// run.
type routes struct {
	command *httpapi.API
	query   *queryapi.API
	fakepay http.Handler
	metrics http.Handler
	ready   http.Handler
}

// mount puts every part on r, with the API documents and RFC 9457 answers
// for unknown routes and methods.
func (rt routes) mount(r chi.Router) {
	if rt.command != nil {
		rt.command.Mount(r)
	}
	if rt.query != nil {
		rt.query.Mount(r)
	}
	if rt.fakepay != nil {
		r.Mount("/fakepay", rt.fakepay)
	}
	api.Mount(r)
	r.Method(http.MethodGet, "/metrics", rt.metrics)
	r.Method(http.MethodGet, "/readyz", rt.ready)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeNotFound, Title: "Not Found", Status: http.StatusNotFound,
			Detail: "No such endpoint: " + req.URL.Path + " (see /docs)."})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeMalformedRequest, Title: "Method Not Allowed", Status: http.StatusMethodNotAllowed,
			Detail: req.Method + " is not served at " + req.URL.Path + " (see /docs)."})
	})
}

// webhookVerifier accepts the current webhook secret and those being
// rotated out.
func webhookVerifier(cfg config.Config) (*payment.Verifier, error) {
	v, err := payment.NewVerifier(append([]string{cfg.PaymentWebhookSecret}, cfg.PaymentWebhookPreviousSecrets...), nil)
	if err != nil {
		return nil, fmt.Errorf("PAYMENT_WEBHOOK_SECRET: %w", err)
	}
	return v, nil
}
