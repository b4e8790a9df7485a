// Package process is the process manager: the one asynchronous owner of
// every reaction to events. It follows the event stream and completes
// placements that were interrupted, drives each order's payment saga (from
// a reserved order to a paid one, or to a canceled one with its stock
// back), and returns the stock of rejected and canceled orders and of
// reservations that arrived after their order's placement was decided.
//
// It works in two halves:
//
//   - the scheduler, with one active instance across the cluster (a
//     PostgreSQL advisory lock, as for projections), subscribes to the
//     order events (and to reservations) from its own checkpoint and turns
//     each into steps (rows of process_tasks), in the transaction that
//     moves the checkpoint: an event is scheduled exactly once, and never
//     skipped;
//   - the workers of every instance share the steps that are due
//     (competing consumers with leases; see leaseFor): at most one step of
//     an order runs at a time, in the order of its events, and the steps
//     of an instance that dies are taken over within two seconds. Each
//     worker runs its steps with bounded concurrency. A failing call to
//     the provider (initiate_payment, refund) is retried after each delay
//     of Options.Backoff, then parked in the dead-letter list for an
//     operator (ordersctl dlq); the steps that only touch the event store
//     (stock, timeout) are retried for as long as they fail, since only
//     time cures a database that is away. A failure that no retry can
//     cure (the provider refuses, the order does not exist) is parked at
//     once.
//
// Steps are idempotent, so running one again after a crash is harmless:
// every decision is checked against the order's stream version, event ids
// of webhooks are derived from their message ids, an open reservation is
// committed or released at most once by the product aggregate, and the
// provider is called with idempotency keys (the order id for a payment).
//
//	order.placed             → complete_placement (now + PlacementGrace), dropped once the placement is decided
//	order.reserved           → initiate_payment (now), payment_timeout (now + PaymentTimeout)
//	order.rejected           → release_stock
//	order.paid               → commit_stock; the order's initiate_payment and payment_timeout are dropped
//	order.canceled           → release_stock; likewise
//	order.refund_requested   → refund
//	order.canceled by payment timeout
//	                         → reconcile_payment (now + ReconcileAfter)
//	product.stock_reserved after its order's placement was decided
//	                         → release_reservation (reason reservation_after_close)
//
// Each stock event carries its true cause: the release reason names why the
// order gave its stock back (events.ReleaseReason…), the metadata who acted
// (the customer, the provider's message, or the system) and the event that
// caused it.
package process

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/payment"
	"github.com/orders-reference/orders/projections"
)

// Orders is what the process manager needs from the write side.
type Orders interface {
	Order(ctx context.Context, id uuid.UUID) (command.OrderView, error)
	RequestPayment(ctx context.Context, id uuid.UUID, paymentID string, meta eventstore.Metadata) (command.OrderView, error)
	// RecordPayment records a payment's outcome, as the webhook does; the
	// process manager records what it learned by reconciling.
	RecordPayment(ctx context.Context, id uuid.UUID, outcome order.PaymentOutcome, meta eventstore.Metadata) (command.OrderView, error)
	TimeOutPayment(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) (command.OrderView, error)
	RecordRefund(ctx context.Context, id uuid.UUID, refundID string, meta eventstore.Metadata) (command.OrderView, error)
	CommitStock(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) error
	ReleaseStock(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) error
	CompletePlacement(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) (command.OrderView, error)
	ReleaseReservation(ctx context.Context, orderID, productID uuid.UUID, meta eventstore.Metadata) error
}

// Provider is what the process manager needs from the payment provider.
type Provider interface {
	// InitiatePayment asks for a payment; the same idempotency key always
	// names the same payment.
	InitiatePayment(ctx context.Context, req payment.Request, idempotencyKey string) (payment.Payment, error)
	// Refund returns a successful payment's money.
	Refund(ctx context.Context, paymentID, idempotencyKey string) (payment.Refund, error)
	// PaymentByOrder returns the payment the provider holds for an order,
	// as it stands now (status payment.StatusPending, StatusSucceeded,
	// StatusFailed or StatusRefunded); payment.ErrNotFound when it holds
	// none, payment.ErrUnavailable when it cannot say.
	PaymentByOrder(ctx context.Context, orderID uuid.UUID) (payment.Payment, error)
}

// Step kinds.
const (
	KindCompletePlacement  = "complete_placement"
	KindReleaseReservation = "release_reservation"
	KindInitiatePayment    = "initiate_payment"
	KindPaymentTimeout     = "payment_timeout"
	KindCommitStock        = "commit_stock"
	KindReleaseStock       = "release_stock"
	KindRefund             = "refund"
	KindReconcilePayment   = "reconcile_payment"
)

// Kinds returns every step kind.
func Kinds() []string {
	return []string{KindCompletePlacement, KindReleaseReservation, KindInitiatePayment, KindPaymentTimeout,
		KindCommitStock, KindReleaseStock, KindRefund, KindReconcilePayment}
}

// Step outcomes, as reported to Options.OnStep.
const (
	OutcomeDone   = "done"   // the step ran (or found nothing to do)
	OutcomeRetry  = "retry"  // it failed and is scheduled again
	OutcomeParked = "parked" // it failed for the last time and waits for an operator
)

// Name is the process manager's checkpoint name (shown by ordersctl
// projections list; it cannot be rebuilt: that would run sagas again).
const Name = "process_manager"

// Options tunes a Manager. The zero value is ready to use.
type Options struct {
	// Backoff is the delay before each retry of a failed step. A provider
	// step is parked after the last one; other steps go on retrying after
	// the last delay. Default 1s, 2s, 4s, 8s, 16s.
	Backoff []time.Duration
	// PaymentTimeout is how long a reserved order may wait for its
	// payment's outcome before it is canceled (default 15m).
	PaymentTimeout time.Duration
	// PlacementGrace is how long a placement may stay undecided before the
	// process manager completes it, as interrupted (default 5s; a placement
	// normally decides within milliseconds, and completing one that is
	// still running is harmless, only wasted work).
	PlacementGrace time.Duration
	// ReconcileAfter is how long after an order is canceled by its payment
	// timeout the process manager asks the provider once more how the
	// payment stands (default 1m): a payment that succeeded after the
	// cancel is refunded even if its webhook never reaches the service.
	ReconcileAfter time.Duration
	// CallbackURL is where the provider sends payment webhooks.
	CallbackURL string
	// StepTimeout bounds one run of a step (default 30s).
	StepTimeout time.Duration
	// Concurrency is how many steps of each lane run at once (default 64:
	// steps mostly wait for the database and the provider). The steps that
	// call the provider and those that only touch the event store have a
	// lane each, so a provider that hangs cannot hold up stock steps.
	Concurrency int
	// Poll is how often the worker looks for due steps when it has not
	// been woken (default 250ms; the scheduler of the same process wakes
	// it, the other instances' workers find new steps at their next poll);
	// LeaderPoll how often a standby scheduler tries to take over (default
	// 1s).
	Poll       time.Duration
	LeaderPoll time.Duration
	// Now is the one clock of due times, retries and timeouts alike (nil:
	// time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// EventStore is the kind of event store the scheduler follows (see
	// projections.Options.EventStore; "" means PostgreSQL).
	EventStore string
	// OnStep is told the outcome of every step run; OnError of every
	// failure (for metrics).
	OnStep  func(kind, outcome string)
	OnError func(kind string)
	// OnStepDuration is told how long each run of a step took, whatever
	// its outcome, with the step's context (for metrics).
	OnStepDuration func(ctx context.Context, kind string, took time.Duration)
	// TracerProvider, if set, traces the scheduler's batches, every run
	// of a step (continuing the trace of the event that scheduled it) and
	// every call to the provider (a child of its step's span).
	TracerProvider trace.TracerProvider
}

// Manager is the process manager.
type Manager struct {
	pool     *pgxpool.Pool
	store    projections.Subscriber
	orders   Orders
	provider Provider
	opts     Options
	log      *slog.Logger
	tracer   trace.Tracer
	wake     chan struct{}
	// dueNow is set by a scheduler batch that scheduled a step due at
	// once, and taken when the batch has committed: only such a batch
	// wakes the worker (steps due later are found by its poll).
	dueNow atomic.Bool
}

// New returns a Manager keeping its state in pool, following store and
// acting through orders and provider.
func New(pool *pgxpool.Pool, store projections.Subscriber, orders Orders, provider Provider, opts Options) *Manager {
	if len(opts.Backoff) == 0 {
		opts.Backoff = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	}
	if opts.PaymentTimeout <= 0 {
		opts.PaymentTimeout = 15 * time.Minute
	}
	if opts.PlacementGrace <= 0 {
		opts.PlacementGrace = 5 * time.Second
	}
	if opts.ReconcileAfter <= 0 {
		opts.ReconcileAfter = time.Minute
	}
	if opts.StepTimeout <= 0 {
		opts.StepTimeout = 30 * time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 64
	}
	if opts.Poll <= 0 {
		opts.Poll = 250 * time.Millisecond
	}
	if opts.LeaderPoll <= 0 {
		opts.LeaderPoll = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.TracerProvider != nil {
		provider = tracedProvider{Provider: provider, tracer: tracing.Tracer(opts.TracerProvider)}
	}
	return &Manager{
		pool: pool, store: store, orders: orders, provider: provider, opts: opts,
		log: log.With("component", Name), tracer: tracing.Tracer(opts.TracerProvider), wake: make(chan struct{}, 1),
	}
}

// Run schedules and runs steps until ctx ends; it returns nil then. The
// scheduler waits as a standby while another instance leads it; the worker
// always shares the steps.
func (m *Manager) Run(ctx context.Context) error {
	scheduler := projections.NewRunner(m.pool, m.store, scheduler{m}, projections.Options{
		Logger: m.log, LeaderPoll: m.opts.LeaderPoll, EventStore: m.opts.EventStore, TracerProvider: m.opts.TracerProvider,
		OnApplied: func(string, eventstore.Position) {
			if m.dueNow.Swap(false) {
				m.Wake()
			}
		},
	})
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return scheduler.Run(ctx) })
	g.Go(func() error { return m.work(ctx) })
	return g.Wait()
}

// Wake makes the worker look for due steps now rather than at its next
// poll. The scheduler and the worker wake it themselves whenever a step
// may have become due at once; a dead letter retried through RetryDeadLetter
// (by any process) is found at the next poll.
func (m *Manager) Wake() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}
