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
	"github.com/go-chi/chi/v5/middleware"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/orders-reference/orders/api"
	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/postgres"
	"github.com/orders-reference/orders/httpapi"
	"github.com/orders-reference/orders/internal/backpressure"
	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/metrics"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/payment/fakepay"
	paymentprovider "github.com/orders-reference/orders/payment/provider"
	"github.com/orders-reference/orders/process"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query/orders"
	"github.com/orders-reference/orders/query/orderstock"
	"github.com/orders-reference/orders/query/products"
	"github.com/orders-reference/orders/query/readmodels"
	snapshotpg "github.com/orders-reference/orders/snapshot/postgres"
)

// run serves the configured roles until ctx ends, then stops accepting
// requests, drains those in flight, lets every projection finish its
// batch, releases its leader locks and returns nil.
func run(ctx context.Context, cfg config.Config, logger *slog.Logger, ln net.Listener) error {
	defer ln.Close()
	if cfg.EventStoreURL != "" {
		return fmt.Errorf("EVENTSTORE_URL=%s: the EventStoreDB/KurrentDB adapter is not available yet; unset EVENTSTORE_URL to use the PostgreSQL event store", config.Redacted(cfg.EventStoreURL))
	}
	logger.Info("ordersd starting", "roles", cfg.Roles.String(), "addr", ln.Addr().String(), "env", cfg.Env)
	for _, name := range cfg.DevelopmentSecrets() {
		logger.Warn("a published development secret is in use: set your own before exposing this service (ORDERS_ENV=production refuses it)", "variable", name)
	}
	d, closeDeps, err := openDeps(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeDeps()
	parts, err := d.roles(ctx, ln.Addr())
	defer func() {
		for _, p := range parts {
			if p.close != nil {
				p.close()
			}
		}
	}()
	if err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, p := range parts {
		for _, loop := range p.run {
			g.Go(func() error { return loop(gctx) })
		}
	}
	r := chi.NewRouter()
	r.Use(httpx.RequestID, httpx.Observe(logger, func(method, route string, status int, took time.Duration) {
		d.metrics.HTTPDuration.WithLabelValues(method, route, strconv.Itoa(status)).Observe(took.Seconds())
	}), httpx.Recover(logger), middleware.GetHead)
	mount(r, parts, d.metrics.Handler(), d.ready)
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

// deps are what the roles share: the database, the event store, the write
// side, the metrics and the readiness checks.
//
// The database is reached through two pools. requests serves the request
// path: the APIs' reads and the write side (whose commands the process
// manager runs too); its connections have DB_STATEMENT_TIMEOUT as
// statement_timeout, so a stalled database (a lock held, a slow statement)
// costs a request a bounded wait and rolls its statement back. pool serves
// background work (projections, their rebuilds, the process manager's own
// tables, the watcher) with no such limit.
type deps struct {
	cfg      config.Config
	log      *slog.Logger
	pool     *pgxpool.Pool
	store    *postgres.Store
	requests *pgxpool.Pool
	// reqStore is store on requests: the write side's and the audit
	// trail's event store.
	reqStore *postgres.Store
	svc      *command.Service
	metrics  *metrics.Metrics
	watcher  *watcher
	ready    *readiness
	// progress wakes read-your-writes waiters; set when the query role runs.
	progress *projections.Progress
}

// openDeps prepares the database (created if missing, migrated unless
// MIGRATE_ON_START=false) and opens what the roles share.
func openDeps(ctx context.Context, cfg config.Config, logger *slog.Logger) (*deps, func(), error) {
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pg.EnsureDatabase(startCtx, cfg.DatabaseURL); err != nil {
		return nil, nil, fmt.Errorf("database %s: %w", config.Redacted(cfg.DatabaseURL), err)
	}
	// Each projection runner and each half of the process manager keeps a
	// connection (leader or standby); leave room for steps, the watcher and
	// the event store's notifier.
	pool, err := pg.Connect(startCtx, cfg.DatabaseURL, 20)
	if err != nil {
		return nil, nil, fmt.Errorf("database %s: %w", config.Redacted(cfg.DatabaseURL), err)
	}
	if cfg.MigrateOnStart {
		if err := pg.Migrate(startCtx, pool, logger); err != nil {
			pool.Close()
			return nil, nil, err
		}
	}
	timeouts := pg.NewTimeouts(nil)
	requests, err := pg.ConnectWith(startCtx, cfg.DatabaseURL, pg.PoolOptions{
		MaxConns: 30, StatementTimeout: cfg.DBStatementTimeout, Tracer: timeouts,
	})
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("database %s: %w", config.Redacted(cfg.DatabaseURL), err)
	}
	m := metrics.New()
	m.Prime(append(readmodels.Names(), process.Name),
		[]string{events.CancelCustomer, events.CancelPaymentFailed, events.CancelPaymentTimeout},
		process.Kinds(), []string{process.OutcomeDone, process.OutcomeRetry, process.OutcomeParked})
	store := postgres.New(pool, postgres.Options{Logger: logger, AppendObserver: m.ObserveAppend})
	reqStore := store.WithPool(requests)
	stock := command.StockOptions{CacheSize: cfg.StockCacheSize, SnapshotEvery: cfg.SnapshotEvery, Logger: logger,
		OnCache: func(event string) {
			switch event {
			case command.CacheHit:
				m.StockCacheHits.Inc()
			case command.CacheMiss:
				m.StockCacheMisses.Inc()
			case command.CacheEviction:
				m.StockCacheEvictions.Inc()
			}
		},
		OnSnapshot: func(err error) {
			if err != nil {
				m.SnapshotErrors.Inc()
				return
			}
			m.SnapshotsSaved.Inc()
		}}
	if cfg.SnapshotEvery > 0 {
		stock.Snapshots = snapshotpg.New(requests)
	} else {
		stock.SnapshotEvery = -1
	}
	svc := command.NewService(reqStore, command.Options{
		OnOrderPlaced: m.OrdersTotal.Inc, OnOrderPaid: m.OrdersPaid.Inc,
		OnOrderCanceled: func(reason string) { m.OrdersCanceled.WithLabelValues(reason).Inc() },
		KeySecret:       []byte(cfg.IdempotencyKeySecret), Stock: stock, OrderCacheSize: cfg.OrderCacheSize,
	})
	w := newWatcher(pool, store, m, logger)
	d := &deps{
		cfg: cfg, log: logger, pool: pool, store: store, requests: requests, reqStore: reqStore, svc: svc, metrics: m, watcher: w,
		ready: &readiness{pool: requests, timeouts: timeouts, store: store, watcher: w, maxLag: cfg.ReadyMaxProjectionLag, log: logger,
			checkProjections: cfg.Roles.Has(config.RoleQuery), redisRequired: cfg.RateLimitFailClosed},
	}
	closeAll := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		svc.Close(ctx) // the snapshots waiting to be saved
		store.Close()
		requests.Close()
		pool.Close()
	}
	return d, closeAll, nil
}

// part is what one role adds to the process: routes to mount, loops that
// run until their context ends, and what to release at the end.
type part struct {
	mount func(chi.Router)
	run   []func(ctx context.Context) error
	close func()
}

// roles assembles the parts of the configured roles, in an order that lets
// each find what it needs (the query role's progress for the projector's
// runners, the fake provider for the process manager). On error the parts
// made so far are returned to be closed.
func (d *deps) roles(ctx context.Context, addr net.Addr) ([]part, error) {
	roles := d.cfg.Roles
	var parts []part
	if roles.Has(config.RoleCommand) {
		p, err := d.commandRole(ctx)
		if err != nil {
			return parts, err
		}
		parts = append(parts, p)
	}
	if roles.Has(config.RoleQuery) {
		parts = append(parts, d.queryRole())
	}
	if roles.Has(config.RoleProjector) {
		parts = append(parts, d.projectorRole())
	}
	var fake *fakepay.Provider
	if roles.Has(config.RoleFakePay) {
		p, f, err := d.fakepayRole(!roles.Has(config.RoleProcess))
		if err != nil {
			return parts, err
		}
		parts, fake = append(parts, p), f
	}
	if roles.Has(config.RoleProcess) {
		parts = append(parts, d.processRole(fake, addr))
	}
	if d.cfg.PprofAddr != "" {
		p, err := pprofRole(d.cfg.PprofAddr, d.log)
		if err != nil {
			return parts, err
		}
		parts = append(parts, p)
	}
	if roles.Has(config.RoleQuery) || roles.Has(config.RoleProjector) || roles.Has(config.RoleProcess) {
		// The lag and backlog gauges describe the deployment, not this
		// process: only processes that care read them (each as often).
		parts = append(parts, part{run: []func(context.Context) error{func(ctx context.Context) error { d.watcher.Run(ctx); return nil }}})
	}
	return parts, nil
}

// commandRole: the command API and the payment webhook.
func (d *deps) commandRole(ctx context.Context) (part, error) {
	limiter, redisClient, closeLimiter := newLimiter(ctx, d.cfg, d.log)
	d.ready.redis = redisClient
	verifier, err := webhookVerifier(d.cfg)
	if err != nil {
		closeLimiter()
		return part{}, err
	}
	cfg := httpapi.Config{
		Commands: d.svc, AdminSecret: d.cfg.AdminSecret, Limiter: limiter, FailClosed: d.cfg.RateLimitFailClosed, Logger: d.log,
		OnRateLimited: d.metrics.RateLimited.Inc, OnLimiterError: func(error) { d.metrics.RateLimiterErrors.Inc() },
		Webhooks: verifier, RequestTimeout: d.cfg.RequestTimeout,
	}
	p := part{close: closeLimiter}
	if d.cfg.PlacementMaxBacklog > 0 {
		gate := d.backpressure()
		cfg.Backpressure = gate
		p.run = append(p.run, gate.Run)
	}
	p.mount = httpapi.New(cfg).MountCommands
	return p, nil
}

// backpressure paces new orders by the deployment's backlog: each read
// model's and the process manager's scheduler's events not yet applied,
// and the process manager's due steps.
func (d *deps) backpressure() *backpressure.Gate {
	names := append(readmodels.Names(), process.Name)
	probe := func(ctx context.Context, limit int) ([]backpressure.Source, error) {
		behind, err := projections.Behind(ctx, d.pool, d.store, names, limit)
		if err != nil {
			return nil, err
		}
		steps, err := process.DueSteps(ctx, d.pool, time.Now(), limit)
		if err != nil {
			return nil, err
		}
		sources := []backpressure.Source{{Name: "process manager due steps", Backlog: steps}}
		for name, n := range behind {
			sources = append(sources, backpressure.Source{Name: "projection " + name, Backlog: n})
		}
		return sources, nil
	}
	return backpressure.New(probe, backpressure.Options{
		MaxBacklog: d.cfg.PlacementMaxBacklog, MaxWait: d.cfg.PlacementBackpressureWait, Logger: d.log,
		OnHold: func(holding bool, cause backpressure.Source) {
			if holding {
				d.metrics.Backpressure.Set(1)
				d.log.Warn("holding new orders back: the deployment is too far behind (PLACEMENT_MAX_BACKLOG)",
					"behind", cause.Name, "backlog", cause.Backlog)
				return
			}
			d.metrics.Backpressure.Set(0)
			d.log.Info("admitting new orders again", "largest_backlog", cause.Backlog)
		},
	})
}

// queryRole: the query API over the read models, with read-your-writes.
func (d *deps) queryRole() part {
	d.progress = projections.NewProgress(d.pool, 0)
	api := httpapi.New(httpapi.Config{
		Products: products.NewReader(d.requests), Orders: orders.NewReader(d.requests),
		Events: d.reqStore, StockIndex: orderstock.NewReader(d.requests),
		Waiter: d.progress, AdminSecret: d.cfg.AdminSecret, Logger: d.log, RequestTimeout: d.cfg.RequestTimeout,
	})
	return part{mount: api.MountQueries, run: []func(context.Context) error{
		func(ctx context.Context) error { d.progress.Run(ctx); return nil },
	}}
}

// projectorRole: a runner per read model (one leads each across the
// deployment).
func (d *deps) projectorRole() part {
	var onApplied func(string, eventstore.Position)
	if d.progress != nil {
		onApplied = d.progress.Applied // wakes read-your-writes waiters at once when the query API is here too
	}
	var p part
	for _, proj := range readmodels.All() {
		runner := projections.NewRunner(d.pool, d.store, proj, projections.Options{Logger: d.log, OnApplied: onApplied})
		p.run = append(p.run, runner.Run)
	}
	return p
}

// fakepayRole: the fake payment provider, in process. Only a process that
// serves the fake to others exposes its API (anyone who reaches it gets
// webhooks signed with the real secret: keep such a process off public
// networks).
func (d *deps) fakepayRole(serveAPI bool) (part, *fakepay.Provider, error) {
	fake, err := newFakeProvider(d.cfg, d.log)
	if err != nil {
		return part{}, nil, err
	}
	p := part{close: fake.Close}
	if serveAPI {
		p.mount = func(r chi.Router) { r.Mount("/fakepay", fake.Handler()) }
	}
	return p, fake, nil
}

// processRole: the process manager, paying through the embedded fake
// provider or the provider at PAYMENT_PROVIDER_URL.
func (d *deps) processRole(fake *fakepay.Provider, addr net.Addr) part {
	var provider process.Provider = fake
	providerName := "embedded fake provider"
	if fake == nil {
		provider, providerName = d.providerClient(), d.cfg.PaymentProviderURL
	}
	callback := d.cfg.PaymentCallbackURL
	if callback == "" {
		callback = "http://" + loopback(addr) + "/webhooks/payment"
	}
	m := d.metrics
	manager := process.New(d.pool, d.store, d.svc, provider, process.Options{
		Backoff: d.cfg.PaymentRetryBackoff, PaymentTimeout: d.cfg.PaymentTimeout, CallbackURL: callback, Logger: d.log,
		OnStep:  func(kind, outcome string) { m.ProcessSteps.WithLabelValues(kind, outcome).Inc() },
		OnError: func(kind string) { m.WorkerErrors.WithLabelValues(kind).Inc() },
	})
	d.log.Info("payment process manager", "provider", providerName, "callback_url", callback)
	return part{run: []func(context.Context) error{manager.Run}}
}

// providerClient is the client of the provider at PAYMENT_PROVIDER_URL:
// each call bounded by PAYMENT_PROVIDER_TIMEOUT, and a circuit breaker
// that stops calling after 5 failures in a row, trying again every 5 s.
// The saga's steps still retry on PAYMENT_RETRY_BACKOFF and park after
// the last; a provider that hangs then costs each attempt what one that
// refuses connections does.
func (d *deps) providerClient() *paymentprovider.Client {
	return paymentprovider.NewWithOptions(d.cfg.PaymentProviderURL, nil, paymentprovider.Options{
		CallTimeout: d.cfg.PaymentProviderTimeout,
		Breaker: paymentprovider.BreakerOptions{Failures: 5, OpenFor: 5 * time.Second, OnChange: func(from, to string) {
			if to == "open" {
				d.log.Warn("payment provider keeps failing: not calling it for a while (circuit breaker open)", "from", from)
				return
			}
			d.log.Info("payment provider circuit breaker", "from", from, "to", to)
		}},
	})
}

// mount puts every part's routes on r, with the operational endpoints, the
// API documents and RFC 9457 answers for unknown routes and methods.
func mount(r chi.Router, parts []part, metricsHandler, ready http.Handler) {
	for _, p := range parts {
		if p.mount != nil {
			p.mount(r)
		}
	}
	api.Mount(r)
	r.Method(http.MethodGet, "/metrics", metricsHandler)
	r.Method(http.MethodGet, "/readyz", ready)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		httpx.WriteProblem(w, httpx.Problem{Type: httpx.TypeNotFound, Detail: "No such endpoint: " + req.URL.Path + " (see /docs)."})
	})
	r.MethodNotAllowed(httpx.MethodNotAllowed(r))
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
