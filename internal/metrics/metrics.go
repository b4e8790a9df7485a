// Package metrics defines the Prometheus metrics of Orders in one place,
// registered on a registry the caller owns (no global registry). Labels are
// bounded: never ids or emails.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// Metrics holds every metric the server exports.
type Metrics struct {
	registry *prometheus.Registry

	// HTTPDuration is the request latency by method, route pattern and
	// status.
	HTTPDuration *prometheus.HistogramVec

	OrdersTotal       prometheus.Counter
	RateLimited       prometheus.Counter
	Backpressure      prometheus.Gauge
	RateLimiterErrors prometheus.Counter
	AppendDuration    *prometheus.HistogramVec
	// AppendBatch is the appends the PostgreSQL event store combined into
	// one group commit.
	AppendBatch prometheus.Histogram
	// Projection lag and failure, labelled by projection name.
	ProjectionLag        *prometheus.GaugeVec
	ProjectionLagSeconds *prometheus.GaugeVec
	ProjectionFailed     *prometheus.GaugeVec

	// The payment saga.
	OrdersPaid     prometheus.Counter
	OrdersCanceled *prometheus.CounterVec // by reason: customer_canceled, payment_failed, payment_timeout
	// SagaDuration is how long orders took from placement to paid or
	// canceled (outcome), as recorded by the event store.
	SagaDuration  *prometheus.HistogramVec
	ProcessSteps  *prometheus.CounterVec   // by step kind and outcome
	StepDuration  *prometheus.HistogramVec // by step kind: one run of a step
	WorkerErrors  *prometheus.CounterVec   // by step kind
	OutboxPending prometheus.Gauge
	// QueueAge is how long the oldest due step has been due (0 when none).
	QueueAge    prometheus.Gauge
	DeadLetters prometheus.Gauge

	// Ready is 1 while the process is ready (what /readyz answers), 0
	// while not; ReadinessCheck, by check, 1 while the check does not make
	// it unready (passing or degraded), 0 while it does. Both follow
	// /readyz's answers and an evaluation every few seconds between them.
	Ready          prometheus.Gauge
	ReadinessCheck *prometheus.GaugeVec

	// The write side's product cache and its snapshots.
	StockCacheHits      prometheus.Counter
	StockCacheMisses    prometheus.Counter
	StockCacheEvictions prometheus.Counter
	SnapshotsSaved      prometheus.Counter
	SnapshotErrors      prometheus.Counter
}

// New creates the metrics on a fresh registry, with Go and process
// collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		registry: r,
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "HTTP request latency by method, route pattern and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route", "status"}),
		OrdersTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orders_total", Help: "Orders placed (new orders, not replays of an Idempotency-Key).",
		}),
		Backpressure: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orders_backpressure", Help: "1 while new orders are held back because the deployment is too far behind (PLACEMENT_MAX_BACKLOG).",
		}),
		RateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orders_rate_limited_total", Help: "Order placements refused by the per-email rate limit.",
		}),
		RateLimiterErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orders_rate_limiter_errors_total", Help: "Rate limiter failures (Redis unreachable); orders then pass unless configured to fail closed.",
		}),
		AppendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventstore_append_duration_seconds",
			Help:    "Event store append latency, including the wait for its group commit.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"outcome"}),
		AppendBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventstore_append_batch_appends",
			Help:    "Appends the PostgreSQL event store combined into one group commit (one statement and transaction).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
		ProjectionLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "projection_lag_events", Help: "Events in the store after the projection's checkpoint.",
		}, []string{"projection"}),
		ProjectionLagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "projection_lag_seconds", Help: "Age of the oldest event the projection has not applied (0 when caught up).",
		}, []string{"projection"}),
		ProjectionFailed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "projection_failed", Help: "1 when the projection stopped: on a poison event, or on a checkpoint of another event store.",
		}, []string{"projection"}),
		OrdersPaid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orders_paid_total", Help: "Orders this instance recorded as paid.",
		}),
		OrdersCanceled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_canceled_total", Help: "Orders this instance canceled, by reason.",
		}, []string{"reason"}),
		SagaDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orders_saga_duration_seconds",
			Help:    "Time from an order's placement to its payment or cancelation (outcome paid or canceled), for the orders this instance moved there.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600},
		}, []string{"outcome"}),
		ProcessSteps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "process_manager_steps_total", Help: "Payment saga steps run by the process manager, by step and outcome (done, retry, parked).",
		}, []string{"step", "outcome"}),
		StepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "process_manager_step_duration_seconds",
			Help:    "Duration of one run of a payment saga step by the process manager, by step, whatever its outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"step"}),
		WorkerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "worker_errors_total", Help: "Failed runs of process manager steps, by step.",
		}, []string{"step"}),
		OutboxPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outbox_pending", Help: "Pending process manager work: events not yet scheduled plus steps due or waiting for a retry.",
		}),
		QueueAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "process_manager_queue_age_seconds", Help: "How long the oldest due process manager step (waiting or running) has been due; 0 when none is.",
		}),
		DeadLetters: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "process_manager_dead_letters", Help: "Parked process manager steps waiting for an operator (ordersctl dlq).",
		}),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orders_ready", Help: "1 while the process is ready (/readyz answers 200), 0 while it is not; evaluated every few seconds and on every probe.",
		}),
		ReadinessCheck: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orders_readiness_check", Help: "By /readyz check: 1 while it passes (or is only degraded), 0 while it makes the process not ready.",
		}, []string{"check"}),
		StockCacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stock_cache_hits_total", Help: "Batches of product decisions (and price lookups) served by a product in the write side's cache.",
		}),
		StockCacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stock_cache_misses_total", Help: "Products loaded from the event store (snapshot and tail, or whole stream) because they were not cached; unknown ids included.",
		}),
		StockCacheEvictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stock_cache_evictions_total", Help: "Products evicted from the full write-side cache (STOCK_CACHE_SIZE), least recently used first.",
		}),
		SnapshotsSaved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "snapshots_written_total", Help: "Product snapshots saved.",
		}),
		SnapshotErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "snapshot_errors_total", Help: "Product snapshots not saved: failed saves, and snapshots not taken because the writer's queue was full (a cache: loads fold the stream instead).",
		}),
	}
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.HTTPDuration, m.OrdersTotal, m.RateLimited, m.Backpressure, m.RateLimiterErrors, m.AppendDuration, m.AppendBatch,
		m.ProjectionLag, m.ProjectionLagSeconds, m.ProjectionFailed,
		m.OrdersPaid, m.OrdersCanceled, m.SagaDuration, m.ProcessSteps, m.StepDuration, m.WorkerErrors, m.OutboxPending,
		m.QueueAge, m.DeadLetters, m.Ready, m.ReadinessCheck,
		m.StockCacheHits, m.StockCacheMisses, m.StockCacheEvictions, m.SnapshotsSaved, m.SnapshotErrors)
	for _, o := range []string{SagaPaid, SagaCanceled} {
		m.SagaDuration.WithLabelValues(o)
	}
	return m
}

// Outcomes of SagaDuration.
const (
	SagaPaid     = "paid"
	SagaCanceled = "canceled"
)

// Prime creates the labelled series that must be visible before anything
// happened: the projections' lag, the cancel reasons and the process
// manager's step kinds.
func (m *Metrics) Prime(projections, cancelReasons, steps, outcomes []string) {
	for _, p := range projections {
		m.ProjectionLag.WithLabelValues(p)
		m.ProjectionLagSeconds.WithLabelValues(p)
		m.ProjectionFailed.WithLabelValues(p)
	}
	for _, r := range cancelReasons {
		m.OrdersCanceled.WithLabelValues(r)
	}
	for _, s := range steps {
		m.WorkerErrors.WithLabelValues(s)
		m.StepDuration.WithLabelValues(s)
		for _, o := range outcomes {
			m.ProcessSteps.WithLabelValues(s, o)
		}
	}
}

// ObserveAppend records one append's duration and outcome ("ok" or "error"),
// with the trace of ctx's span as an exemplar (see Observe).
func (m *Metrics) ObserveAppend(ctx context.Context, d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	Observe(ctx, m.AppendDuration.WithLabelValues(outcome), d.Seconds())
}

// ObserveAppendBatch records the size of one group commit, in appends.
func (m *Metrics) ObserveAppendBatch(appends int) {
	m.AppendBatch.Observe(float64(appends))
}

// Observe records v on o with the trace id of ctx's span as an exemplar
// when ctx carries a sampled span (OpenTelemetry) and o takes exemplars
// (histograms and counters do), so that a latency bucket links to a trace
// of a request that fell in it; otherwise it just observes v. Prometheus
// keeps exemplars with --enable-feature=exemplar-storage and receives them
// in the OpenMetrics or protobuf formats only.
func Observe(ctx context.Context, o prometheus.Observer, v float64) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && sc.IsSampled() {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": sc.TraceID().String()})
			return
		}
	}
	o.Observe(v)
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry, EnableOpenMetrics: true})
}
