package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/orders-reference/orders/api"
	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/httpapi"
	"github.com/orders-reference/orders/internal/backpressure"
	"github.com/orders-reference/orders/internal/config"
	"github.com/orders-reference/orders/internal/eventstores"
	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/metrics"
	pg "github.com/orders-reference/orders/internal/postgres"
	"github.com/orders-reference/orders/internal/tracing"
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
// batch, releases its leader locks and returns nil. Its work is traced
// with tel (the zero Tracing: not at all).
func run(ctx context.Context, cfg config.Config, logger *slog.Logger, ln net.Listener, tel tracing.Tracing) error {
	defer ln.Close()
	logger.Info("ordersd starting", "roles", cfg.Roles.String(), "addr", ln.Addr().String(), "env", cfg.Env)
	for _, name := range cfg.DevelopmentSecrets() {
		logger.Warn("a published development secret is in use: set your own before exposing this service (ORDERS_ENV=production refuses it)", "variable", name)
	}
	d, closeDeps, err := openDeps(ctx, cfg, logger, tel)
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
	r.Use(tracing.Middleware(tel), httpx.RequestID, httpx.Observe(logger, func(ctx context.Context, method, route string, status int, took time.Duration) {
		metrics.Observe(ctx, d.metrics.HTTPDuration.WithLabelValues(method, route, strconv.Itoa(status)), took.Seconds())
	}), httpx.Recover(logger), middleware.GetHead)
	mount(r, parts, d.metrics.Handler(), d.ready)
	srv := &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// 64 KiB, not Go's 1 MiB: what a client may send, and a problem or
		// log line repeat, stays small (net/http answers more with 431).
		MaxHeaderBytes: httpx.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
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
//
// The event store is PostgreSQL's, in the same database, or KurrentDB
// (EVENTSTORE_URL); see package eventstores. Read models, checkpoints and
// the process manager's tables stay in PostgreSQL either way, and every
// checkpoint records which kind of event store its position belongs to.
type deps struct {
	cfg      config.Config
	log      *slog.Logger
	pool     *pgxpool.Pool
	requests *pgxpool.Pool
	// events is the event store: events.Store for background work,
	// events.Requests (on requests, for PostgreSQL) for the write side and
	// the audit trail.
	events  *eventstores.Backend
	svc     *command.Service
	metrics *metrics.Metrics
	watcher *watcher
	ready   *readiness
	// progress wakes read-your-writes waiters; set when the query role runs.
	progress *projections.Progress
	// tracing traces requests, appends and reads, batches, steps and
	// provider calls; the zero Tracing when off.
	tracing tracing.Tracing
}

// openDeps prepares the database (created if missing, migrated unless
// MIGRATE_ON_START=false) and opens what the roles share.
func openDeps(ctx context.Context, cfg config.Config, logger *slog.Logger, tel tracing.Tracing) (*deps, func(), error) {
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	created, err := pg.EnsureDatabase(startCtx, cfg.DatabaseURL)
	if err != nil {
		return nil, nil, fmt.Errorf("database %s: %w", config.Redacted(cfg.DatabaseURL), err)
	}
	if created {
		logger.InfoContext(ctx, "database created", "database", config.Redacted(cfg.DatabaseURL))
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
	es, err := openEventStore(startCtx, cfg, pool, eventstores.Options{Requests: requests, AppendObserver: m.ObserveAppend, BatchObserver: m.ObserveAppendBatch, Logger: logger,
		DeliveryInterval: cfg.SubscriptionDeliveryInterval, TracerProvider: tel.Provider})
	if err != nil {
		requests.Close()
		pool.Close()
		return nil, nil, err
	}
	logger.Info("event store", "kind", es.Kind, "url", eventStoreURL(cfg))
	stock := command.StockOptions{CacheSize: cfg.StockCacheSize, SnapshotEvery: cfg.SnapshotEvery, Logger: logger, TracerProvider: tel.Provider,
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
	svc := command.NewService(es.Requests, command.Options{
		OnOrderPlaced: m.OrdersTotal.Inc, OnOrderPaid: m.OrdersPaid.Inc,
		OnOrderCanceled: func(reason string) { m.OrdersCanceled.WithLabelValues(reason).Inc() },
		OnOrderEnded: func(ctx context.Context, status order.Status, took time.Duration) {
			metrics.Observe(ctx, m.SagaDuration.WithLabelValues(string(status)), took.Seconds())
		},
		KeySecret: []byte(cfg.IdempotencyKeySecret), Stock: stock, OrderCacheSize: cfg.OrderCacheSize,
	})
	w := newWatcher(pool, es.Store, projections.StatusOptions{EventStore: es.Kind, MaxBehind: es.MaxCount}, m, logger)
	d := &deps{
		cfg: cfg, log: logger, pool: pool, requests: requests, events: es, svc: svc, metrics: m, watcher: w, tracing: tel,
		ready: &readiness{pool: requests, timeouts: timeouts, store: es.Store, watcher: w, maxLag: cfg.ReadyMaxProjectionLag, log: logger,
			checkProjections: cfg.Roles.Has(config.RoleQuery), redisRequired: cfg.RateLimitFailClosed, metrics: m},
	}
	w.after = d.ready.watch
	closeAll := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		svc.Close(ctx) // the snapshots waiting to be saved
		es.Close()
		requests.Close()
		pool.Close()
	}
	return d, closeAll, nil
}

// openEventStore opens the event store EVENTSTORE_URL selects and refuses
// it when a checkpoint this deployment reads belongs to another kind of
// event store: its position would be read in the wrong log.
func openEventStore(ctx context.Context, cfg config.Config, pool *pgxpool.Pool, opts eventstores.Options) (*eventstores.Backend, error) {
	es, err := eventstores.Open(ctx, cfg.EventStoreURL, pool, opts)
	if err != nil {
		return nil, fmt.Errorf("EVENTSTORE_URL: %w", err) // the adapter's error names the URL, without its password
	}
	names := append(readmodels.Names(), process.Name)
	if err := projections.CheckEventStore(ctx, pool, es.Kind, names); err != nil {
		es.Close()
		if errors.Is(err, projections.ErrOtherEventStore) {
			return nil, otherEventStore(err, eventStoreURL(cfg))
		}
		return nil, err
	}
	return es, nil
}

// eventStoreURL names the configured event store for logs and errors,
// without a password.
func eventStoreURL(cfg config.Config) string {
	if cfg.EventStoreURL == "" {
		return "PostgreSQL in DATABASE_URL (EVENTSTORE_URL is empty)"
	}
	return config.Redacted(cfg.EventStoreURL)
}

// errOtherEventStore: ordersd refused to start on checkpoints of another
// event store.
var errOtherEventStore = errors.New("checkpoints of another event store")

// otherEventStore turns CheckEventStore's errors into what the operator
// does about each checkpoint: a read model is rebuilt from the configured
// event store; the process manager, which must not run its sagas again,
// is switched to the configured store's head once it has scheduled every
// event of the old one.
func otherEventStore(err error, url string) error {
	var each []error
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		each = joined.Unwrap()
	} else {
		each = []error{err}
	}
	var advice []string
	for _, e := range each {
		var other *projections.OtherEventStoreError
		if !errors.As(e, &other) {
			advice = append(advice, e.Error())
			continue
		}
		if other.Name == process.Name {
			advice = append(advice, fmt.Sprintf("%s: the process manager's checkpoint is a position in the %s event store; it cannot be rebuilt "+
				"(that would run every saga again): once it has scheduled every event of the %s store and those events are in %s, "+
				"move it to the head of %s with `ordersctl projections switch %s`", other.Name, other.Recorded, other.Recorded, other.Configured,
				other.Configured, other.Name))
			continue
		}
		advice = append(advice, fmt.Sprintf("%s: its checkpoint is a position in the %s event store; rebuild it from %s with "+
			"`ordersctl projections rebuild %s` (same DATABASE_URL and EVENTSTORE_URL)", other.Name, other.Recorded, other.Configured, other.Name))
	}
	return &otherEventStoreError{cause: err, msg: fmt.Sprintf("refusing to start with event store %s: %v (their positions mean nothing in this one): %s",
		url, errOtherEventStore, strings.Join(advice, "; "))}
}

// otherEventStoreError is errOtherEventStore and CheckEventStore's error,
// with what to do about it.
type otherEventStoreError struct {
	msg   string
	cause error
}

func (e *otherEventStoreError) Error() string   { return e.msg }
func (e *otherEventStoreError) Unwrap() []error { return []error{errOtherEventStore, e.cause} }

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
	// The lag and backlog gauges describe the deployment, not this
	// process: only processes that care read them (each as often). Every
	// process evaluates its readiness as often (orders_ready).
	d.watcher.backlog = roles.Has(config.RoleQuery) || roles.Has(config.RoleProjector) || roles.Has(config.RoleProcess)
	parts = append(parts, part{run: []func(context.Context) error{func(ctx context.Context) error { d.watcher.Run(ctx); return nil }}})
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
		behind, err := projections.Behind(ctx, d.pool, d.events.Store, d.events.Kind, names, limit)
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
	var poll time.Duration // the gate's default
	if d.events.Kind == eventstores.KurrentDB {
		// KurrentDB counts a backlog by reading it (up to the limit, per
		// projection): read it less often.
		poll = time.Second
	}
	return backpressure.New(probe, backpressure.Options{
		MaxBacklog: d.cfg.PlacementMaxBacklog, MaxWait: d.cfg.PlacementBackpressureWait, Logger: d.log, Poll: poll,
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
		Events: d.events.Requests, StockIndex: orderstock.NewReader(d.requests),
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
		runner := projections.NewRunner(d.pool, d.events.Store, proj, projections.Options{Logger: d.log, OnApplied: onApplied, EventStore: d.events.Kind,
			TracerProvider: d.tracing.Provider})
		p.run = append(p.run, runner.Run)
	}
	return p
}

// fakepayRole: the fake payment provider, in process. Only a process that
// serves the fake to others exposes its API (anyone who reaches it gets
// webhooks signed with the real secret: keep such a process off public
// networks).
func (d *deps) fakepayRole(serveAPI bool) (part, *fakepay.Provider, error) {
	fake, err := newFakeProvider(d.cfg, d.log, d.tracing)
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
		provider, providerName = d.providerClient(), config.Redacted(d.cfg.PaymentProviderURL)
	}
	callback := d.cfg.PaymentCallbackURL
	if callback == "" {
		callback = "http://" + loopback(addr) + "/webhooks/payment"
	}
	m := d.metrics
	manager := process.New(d.pool, d.events.Store, d.svc, provider, process.Options{
		Backoff: d.cfg.PaymentRetryBackoff, PaymentTimeout: d.cfg.PaymentTimeout, CallbackURL: callback, Logger: d.log,
		EventStore: d.events.Kind, TracerProvider: d.tracing.Provider,
		OnStep:  func(kind, outcome string) { m.ProcessSteps.WithLabelValues(kind, outcome).Inc() },
		OnError: func(kind string) { m.WorkerErrors.WithLabelValues(kind).Inc() },
		OnStepDuration: func(ctx context.Context, kind string, took time.Duration) {
			metrics.Observe(ctx, m.StepDuration.WithLabelValues(kind), took.Seconds())
		},
	})
	d.log.Info("payment process manager", "provider", providerName, "callback_url", config.Redacted(callback))
	return part{run: []func(context.Context) error{manager.Run}}
}

// providerClient is the client of the provider at PAYMENT_PROVIDER_URL:
// each call bounded by PAYMENT_PROVIDER_TIMEOUT, and a circuit breaker
// that stops calling after 5 failures in a row, trying again every 5 s.
// The saga's steps still retry on PAYMENT_RETRY_BACKOFF and park after
// the last; a provider that hangs then costs each attempt what one that
// refuses connections does. With tracing on, each request is a span that
// sends its trace context to the provider.
func (d *deps) providerClient() *paymentprovider.Client {
	opts := paymentprovider.Options{
		CallTimeout: d.cfg.PaymentProviderTimeout,
		Breaker: paymentprovider.BreakerOptions{Failures: 5, OpenFor: 5 * time.Second, OnChange: func(from, to string) {
			if to == "open" {
				d.log.Warn("payment provider keeps failing: not calling it for a while (circuit breaker open)", "from", from)
				return
			}
			d.log.Info("payment provider circuit breaker", "from", from, "to", to)
		}},
	}
	hc := paymentprovider.NewHTTPClient(opts)
	hc.Transport = tracing.Transport(hc.Transport, d.tracing)
	return paymentprovider.NewWithOptions(d.cfg.PaymentProviderURL, hc, opts)
}

// mount puts every part's routes on r, with the operational endpoints, the
// API documents and RFC 9457 answers for unknown routes and methods.
func mount(r chi.Router, parts []part, metricsHandler, ready http.Handler) {
	for _, p := range parts {
		if p.mount != nil {
			p.mount(r)
		}
	}
	api.Mount(r.With(httpx.NoBody)) // documents: GETs, no body
	// /metrics negotiates its own formats (Prometheus text, OpenMetrics);
	// the probes answer JSON, and take no query parameter, as the API.
	// None of them takes a body (httpx.NoBody).
	r.With(httpx.NoBody).Method(http.MethodGet, "/metrics", metricsHandler)
	probe := r.With(httpx.AcceptJSON, httpx.Query(), httpx.NoBody)
	probe.Method(http.MethodGet, "/readyz", ready)
	probe.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.NotFound(httpx.NotFound)
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
