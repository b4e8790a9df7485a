// Package fakepay is a fake payment provider for development, tests and
// demos. It speaks the provider protocol of the external contract: it takes
// payment requests (idempotent by key), decides each payment's outcome with
// a configured probability, and after a delay delivers the outcome as a
// signed webhook to the request's callback URL, retrying until it gets a
// 2xx. It can also refund.
//
// A payment's identity is its business request: the order, the amount and
// the currency. A request again with the same key and the same business
// request is the same payment even if its callback_url differs (another
// instance of Orders retrying after the first died); the newest callback
// URL replaces the old one for the deliveries still to come, so the
// outcome reaches an instance that is alive. The same key with another
// order, amount or currency is ErrIdempotencyConflict (409).
//
// A payment is pending until the provider decides it (Delay, plus any
// Jitter, after the request), then succeeded or failed whether or not its
// webhook was delivered, and refunded once refunded. Payment,
// PaymentByOrder and PaymentByKey (GET /payments/{id}, GET
// /payments?order_id=…, GET /payments?idempotency_key=…) answer that
// state, so that a caller that lost an answer reconciles instead of
// guessing.
//
// It runs in process (Provider implements the process manager's provider
// port directly) or behind its HTTP API (Handler; see cmd/fakepay). Faults
// can be injected: a share of payment requests failing with 5xx, duplicate
// deliveries, and random extra delays that reorder deliveries.
//
// It keeps its payments in memory: a restarted fake provider has forgotten
// them.
package fakepay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/orders-reference/orders/internal/httpx"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/pause"
	"github.com/orders-reference/orders/internal/redact"
	"github.com/orders-reference/orders/internal/tracing"
	"github.com/orders-reference/orders/payment"
)

// Options configures a Provider.
type Options struct {
	// SuccessRate is the probability that a payment succeeds; 0 and 1 are
	// exact.
	SuccessRate float64
	// Delay is the time between a payment request and its webhook.
	Delay time.Duration
	// Signer signs the webhooks.
	Signer *payment.Signer
	// Faults.
	FailRate      float64       // share of payment requests answered with a failure (5xx)
	DuplicateRate float64       // share of webhooks delivered twice
	Jitter        time.Duration // up to this much extra delay per delivery (reorders them)
	// RetryBase and RetryMax bound the delivery backoff (defaults 500ms
	// and 30s); MaxAttempts stops delivering after that many attempts (0:
	// until a 2xx).
	RetryBase   time.Duration
	RetryMax    time.Duration
	MaxAttempts int
	// Client delivers webhooks (default: a client with a 10s timeout).
	Client *http.Client
	// MaxDeliveries bounds the webhook requests in flight at once
	// (default 64); deliveries beyond it wait for a free slot.
	MaxDeliveries int
	// Seed seeds the random decisions (0: random).
	Seed   uint64
	Logger *slog.Logger
	// TracerProvider, if set, gives every webhook delivery attempt a
	// span, a child of the (newest) request for its payment, and sends its
	// trace context with the webhook (Propagator; nil means W3C Trace
	// Context), so that the receiver's request continues the trace.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
}

// Payment is a payment as the provider keeps it.
type Payment struct {
	ID        string
	Request   payment.Request
	Key       string
	Status    string // pending until decided (its delivery's delay), then success or failed; refunded
	Outcome   string // success or failed, chosen at request time, in force once decided
	RefundID  string
	Delivered int // webhook deliveries answered with a 2xx
	Attempts  int // webhook delivery attempts
	fp        string
	// trace is the newest request's span context, which the deliveries
	// continue; correlation its correlation id (X-Request-ID), which
	// their log lines carry.
	trace       trace.SpanContext
	correlation string
}

// Provider is the fake payment provider.
type Provider struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	rnd      *rand.Rand
	payments map[string]*Payment  // by id
	byKey    map[string]string    // idempotency key -> payment id
	byOrder  map[uuid.UUID]string // order id -> its first payment's id
	failRate float64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// slots bounds the deliveries in flight (Options.MaxDeliveries).
	slots chan struct{}
	// tracer traces deliveries, propagator sends their trace context; nil
	// without Options.TracerProvider.
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// New returns a Provider; Close stops its deliveries.
func New(opts Options) *Provider {
	if opts.RetryBase <= 0 {
		opts.RetryBase = 500 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 30 * time.Second
	}
	if opts.MaxDeliveries <= 0 {
		opts.MaxDeliveries = 64
	}
	if opts.Client == nil {
		// Keep a connection for every delivery that may be in flight: with
		// the default two idle connections per host, concurrent deliveries
		// dialed a new connection for nearly every webhook.
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.MaxIdleConnsPerHost = opts.MaxDeliveries
		opts.Client = &http.Client{Timeout: 10 * time.Second, Transport: transport}
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Provider{
		opts: opts, log: log.With("component", "fakepay"), rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		payments: map[string]*Payment{}, byKey: map[string]string{}, byOrder: map[uuid.UUID]string{}, failRate: opts.FailRate,
		ctx: ctx, cancel: cancel, slots: make(chan struct{}, opts.MaxDeliveries),
	}
	if opts.TracerProvider != nil {
		p.tracer, p.propagator = tracing.Tracer(opts.TracerProvider), opts.Propagator
		if p.propagator == nil {
			p.propagator = propagation.TraceContext{}
		}
	}
	return p
}

// Close stops delivering webhooks and waits for deliveries in flight.
func (p *Provider) Close() {
	p.cancel()
	p.wg.Wait()
}

// SetFailRate changes the share of payment requests that fail (1: the
// provider is down).
func (p *Provider) SetFailRate(r float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failRate = r
}

// ErrIdempotencyConflict: a key was reused for a different business
// request (another order, amount or currency); it is a payment.ErrConflict.
var ErrIdempotencyConflict = payment.ErrConflict

// InitiatePayment takes a payment request. The same key with the same
// business request (order, amount, currency) returns the same payment,
// whatever its callback URL (the newest one receives the deliveries still
// to come); with another business request it is ErrIdempotencyConflict.
// A missing key or field is payment.ErrRefused, an injected failure
// payment.ErrUnavailable.
func (p *Provider) InitiatePayment(ctx context.Context, req payment.Request, key string) (payment.Payment, error) {
	if key == "" {
		return payment.Payment{}, fmt.Errorf("%w: an Idempotency-Key is required", payment.ErrRefused)
	}
	if req.OrderID == uuid.Nil || req.Amount <= 0 || req.Currency == "" || req.CallbackURL == "" {
		return payment.Payment{}, fmt.Errorf("%w: order_id, a positive amount, currency and callback_url are required", payment.ErrRefused)
	}
	fp := fingerprint(req)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failRate > 0 && (p.failRate >= 1 || p.rnd.Float64() < p.failRate) {
		return payment.Payment{}, fmt.Errorf("%w: injected failure", payment.ErrUnavailable)
	}
	if id, ok := p.byKey[key]; ok {
		existing := p.payments[id]
		if existing.fp != fp {
			return payment.Payment{}, fmt.Errorf("%w: key %s names payment %s of order %s, %s %s", ErrIdempotencyConflict,
				httpx.Quote(key), existing.ID, existing.Request.OrderID, existing.Request.Amount, httpx.Quote(existing.Request.Currency))
		}
		if existing.Request.CallbackURL != req.CallbackURL {
			p.log.InfoContext(ctx, "payment requested again with another callback URL; deliveries go there from now on",
				"payment_id", existing.ID, "order_id", req.OrderID, "callback_url", httpx.Clip(redact.URL(req.CallbackURL)))
			existing.Request.CallbackURL = req.CallbackURL
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			existing.trace = sc // the deliveries still to come continue the newest request's trace
		}
		if c := logging.String(ctx, "correlation_id"); c != "" {
			existing.correlation = c
		}
		return payment.Payment{ID: existing.ID, Status: payment.StatusPending}, nil
	}
	pay := &Payment{ID: "pay_" + uuid.NewString(), Request: req, Key: key, Status: payment.StatusPending, Outcome: payment.StatusFailed, fp: fp,
		trace: trace.SpanContextFromContext(ctx), correlation: logging.String(ctx, "correlation_id")}
	if p.opts.SuccessRate >= 1 || (p.opts.SuccessRate > 0 && p.rnd.Float64() < p.opts.SuccessRate) {
		pay.Outcome = payment.StatusSuccess
	}
	p.payments[pay.ID] = pay
	p.byKey[key] = pay.ID
	if _, ok := p.byOrder[req.OrderID]; !ok {
		p.byOrder[req.OrderID] = pay.ID
	}
	copies := 1
	if p.opts.DuplicateRate > 0 && p.rnd.Float64() < p.opts.DuplicateRate {
		copies = 2
	}
	for range copies {
		delay := p.opts.Delay
		if p.opts.Jitter > 0 {
			delay += time.Duration(p.rnd.Int64N(int64(p.opts.Jitter)))
		}
		p.wg.Add(1)
		go p.deliver(pay.ID, delay)
	}
	p.log.InfoContext(ctx, "payment requested", "payment_id", pay.ID, "order_id", req.OrderID, "outcome", pay.Outcome)
	return payment.Payment{ID: pay.ID, Status: payment.StatusPending}, nil
}

// fingerprint is the identity of a payment request: its business request
// (order, amount, currency), not where its outcome is to be delivered.
func fingerprint(req payment.Request) string {
	b, _ := json.Marshal(struct {
		OrderID  uuid.UUID `json:"order_id"`
		Amount   string    `json:"amount"`
		Currency string    `json:"currency"`
	}{req.OrderID, req.Amount.String(), req.Currency})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Payment returns payment id as it stands now (see payment.Payment for the
// statuses); an unknown id is payment.ErrNotFound.
func (p *Provider) Payment(_ context.Context, id string) (payment.Payment, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pay, ok := p.payments[id]
	if !ok {
		return payment.Payment{}, fmt.Errorf("%w: %s", payment.ErrNotFound, id)
	}
	return pay.view(), nil
}

// PaymentByOrder returns the payment of an order as it stands now (the
// order's first payment, if it was asked for several under different
// keys); an order without payment is payment.ErrNotFound.
func (p *Provider) PaymentByOrder(_ context.Context, orderID uuid.UUID) (payment.Payment, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.byOrder[orderID]
	if !ok {
		return payment.Payment{}, fmt.Errorf("%w: no payment of order %s", payment.ErrNotFound, orderID)
	}
	return p.payments[id].view(), nil
}

// PaymentByKey returns the payment an idempotency key created, as it stands
// now; an unknown key is payment.ErrNotFound.
func (p *Provider) PaymentByKey(_ context.Context, key string) (payment.Payment, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.byKey[key]
	if !ok {
		return payment.Payment{}, fmt.Errorf("%w: no payment with key %s", payment.ErrNotFound, httpx.Quote(key))
	}
	return p.payments[id].view(), nil
}

// view is the payment as a lookup answers it; the caller holds p.mu.
func (pay *Payment) view() payment.Payment {
	status := pay.Status
	if status == payment.StatusSuccess {
		status = payment.StatusSucceeded
	}
	return payment.Payment{
		ID: pay.ID, Status: status, OrderID: pay.Request.OrderID, Amount: pay.Request.Amount,
		Currency: pay.Request.Currency, RefundID: pay.RefundID,
	}
}

// Refund refunds a successful payment. A payment is refunded once: asking
// again returns the same refund, whatever the key.
func (p *Provider) Refund(ctx context.Context, paymentID, key string) (payment.Refund, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pay, ok := p.payments[paymentID]
	if !ok {
		return payment.Refund{}, fmt.Errorf("%w: %s", payment.ErrNotFound, httpx.Quote(paymentID))
	}
	if pay.Outcome != payment.StatusSuccess {
		return payment.Refund{}, fmt.Errorf("%w: payment %s did not succeed", payment.ErrRefused, paymentID)
	}
	if pay.RefundID == "" {
		pay.RefundID = "re_" + uuid.NewString()
		pay.Status = payment.StatusRefunded
		p.log.InfoContext(ctx, "payment refunded", "payment_id", pay.ID, "order_id", pay.Request.OrderID, "refund_id", pay.RefundID, "key", key)
	}
	return payment.Refund{ID: pay.RefundID, PaymentID: pay.ID, Status: payment.StatusRefunded}, nil
}

// Payments returns a copy of every payment, for tests and inspection.
func (p *Provider) Payments() []Payment {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Payment, 0, len(p.payments))
	for _, pay := range p.payments {
		out = append(out, *pay)
	}
	return out
}

// deliver sends a payment's webhook after delay, retrying with backoff
// until the receiver answers 2xx (or MaxAttempts, or Close).
func (p *Provider) deliver(id string, delay time.Duration) {
	defer p.wg.Done()
	if !p.sleep(delay) {
		return
	}
	p.mu.Lock()
	pay := p.payments[id]
	if pay.Status == payment.StatusPending {
		pay.Status = pay.Outcome // decided, whether or not the webhook gets through
	}
	outcome := payment.Outcome{PaymentID: pay.ID, OrderID: pay.Request.OrderID, Status: pay.Outcome, Amount: pay.Request.Amount, OccurredAt: time.Now().UTC()}
	p.mu.Unlock()
	body, err := json.Marshal(outcome)
	if err != nil {
		p.log.Error("webhook body", "payment_id", id, "order_id", outcome.OrderID, "error", err)
		return
	}
	msgID := "msg_" + id // one message per outcome: a redelivery carries the same id
	backoff := p.opts.RetryBase
	for attempt := 1; ; attempt++ {
		p.mu.Lock()
		callback := pay.Request.CallbackURL // the newest: a retried request may have moved it
		parent, correlation := pay.trace, pay.correlation
		p.mu.Unlock()
		sc, status, err := p.post(parent, attempt, callback, msgID, body)
		p.mu.Lock()
		pay.Attempts++
		if err == nil && status/100 == 2 {
			pay.Delivered++
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		// In the delivery's trace (its span ended: a remote parent is as good for the ids).
		logCtx := logging.With(trace.ContextWithRemoteSpanContext(context.WithoutCancel(p.ctx), sc), "correlation_id", correlation)
		p.log.WarnContext(logCtx, "webhook delivery failed; retrying", "payment_id", id, "order_id", outcome.OrderID, "attempt", attempt, "status", status,
			"error", err, logging.Millis("retry_in_ms", backoff))
		if p.opts.MaxAttempts > 0 && attempt >= p.opts.MaxAttempts {
			return
		}
		if !p.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, p.opts.RetryMax)
	}
}

// post signs and sends one delivery (each attempt is signed afresh, with
// its own timestamp). sc is the delivery's span context (parent when
// untraced), for the lines logged about it.
func (p *Provider) post(parent trace.SpanContext, attempt int, url, msgID string, body []byte) (sc trace.SpanContext, status int, err error) {
	sc = parent
	select {
	case p.slots <- struct{}{}:
		defer func() { <-p.slots }()
	case <-p.ctx.Done():
		return sc, 0, p.ctx.Err()
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if p.tracer != nil {
		var span trace.Span
		ctx, span = p.tracer.Start(trace.ContextWithRemoteSpanContext(ctx, parent), "webhook delivery",
			trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrMessage.String(msgID), attrAttempt.Int(attempt)))
		sc = span.SpanContext()
		defer func() { endDelivery(span, status, err) }()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return sc, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if p.propagator != nil {
		p.propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	if err := p.opts.Signer.Sign(req.Header, msgID, time.Now(), body); err != nil {
		return sc, 0, err
	}
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		return sc, 0, err
	}
	defer resp.Body.Close()
	return sc, resp.StatusCode, nil
}

// The attributes of a delivery's span.
const (
	attrMessage = attribute.Key("webhook.id")
	attrAttempt = attribute.Key("webhook.attempt")
)

// endDelivery ends the span of a delivery attempt that got status (0:
// none) or err; an answer other than 2xx is its failure.
func endDelivery(span trace.Span, status int, err error) {
	if status != 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	}
	if err == nil && status/100 != 2 {
		err = fmt.Errorf("the receiver answered %d", status)
	}
	tracing.End(span, err)
}

// sleep waits for d and reports whether the provider is still running.
func (p *Provider) sleep(d time.Duration) bool { return pause.For(p.ctx, d) == nil }

var errNoSigner = errors.New("fakepay: Options.Signer is required")

// Validate reports whether opts can run a Provider.
func (o Options) Validate() error {
	if o.Signer == nil {
		return errNoSigner
	}
	for name, r := range map[string]float64{"success rate": o.SuccessRate, "fail rate": o.FailRate, "duplicate rate": o.DuplicateRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("fakepay: %s %v is not between 0 and 1", name, r)
		}
	}
	return nil
}
