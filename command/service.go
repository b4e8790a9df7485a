package command

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
)

// Errors of the write side that callers branch on (besides the aggregates'
// own: product.ErrNotFound, order.ErrNotFound, order.ErrIllegalTransition…).
var (
	// ErrValidation: the command is malformed; the error is a
	// *ValidationError naming the fields.
	ErrValidation = errors.New("validation failed")
	// ErrIdempotencyConflict: an Idempotency-Key was reused with a
	// different request.
	ErrIdempotencyConflict = errors.New("idempotency key reused with a different request")
	// ErrRejected: the order could not be reserved; the error is a
	// *RejectedError naming the products.
	ErrRejected = errors.New("order rejected")
)

// ValidationError lists what is wrong with a command, by field.
type ValidationError struct {
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for f, msg := range e.Fields {
		parts = append(parts, f+": "+msg)
	}
	return "validation failed: " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrValidation) true.
func (e *ValidationError) Is(target error) bool { return target == ErrValidation }

// RejectedError reports an order that was rejected, and why.
type RejectedError struct {
	Order        OrderView
	Reason       string
	Insufficient []uuid.UUID
	Unavailable  []uuid.UUID
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("order %s rejected: %s (insufficient %v, unavailable %v)", e.Order.ID, e.Reason, e.Insufficient, e.Unavailable)
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// Steps of a placement, reported to Options.AfterStep.
const (
	StepPlaced   = "placed"   // the order stream holds order.placed
	StepReserved = "reserved" // one product's stock is reserved (once per item)
	StepDecided  = "decided"  // the order stream holds the outcome
)

// Options tunes a Service. The zero value is ready to use.
type Options struct {
	// AfterStep, if set, runs after each placement step; an error aborts
	// the placement on the spot, as a crash would (tests use it).
	AfterStep func(ctx context.Context, step string, orderID uuid.UUID) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnOrderPlaced, if set, is told of every new order (not of replays).
	OnOrderPlaced func()
	// OnOrderPaid and OnOrderCanceled, if set, are told of every order this
	// service moved to paid or canceled (with the cancel reason).
	OnOrderPaid     func()
	OnOrderCanceled func(reason string)
	// OnOrderEnded, if set, is told of the same transitions with the
	// order's new status (paid or canceled) and how long it took from its
	// placement, by the event store's times, under the context of the
	// command that moved it (a webhook, a step, a customer's cancel: its
	// trace, for exemplars).
	OnOrderEnded func(ctx context.Context, status order.Status, took time.Duration)
	// Stock tunes the product cache and its snapshots.
	Stock StockOptions
	// OrderCacheSize bounds the cache of the orders this process touched
	// last, in orders (default DefaultOrderCacheSize; see orderCache).
	OrderCacheSize int
	// KeySecret keys the derivation of order ids from Idempotency-Keys.
	// Keep it stable: a new secret makes old keys place new orders.
	KeySecret []byte
}

// Service executes the commands of Orders against the event store.
type Service struct {
	store  EventStore
	stock  *Stock
	orders *orderCache
	opts   Options
	// life ends at Close: the work that no longer ends with its caller (a
	// placement past its append) ends with it.
	life context.Context
	end  context.CancelFunc
}

// NewService returns a Service over store.
func NewService(store EventStore, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	life, end := context.WithCancel(context.Background())
	return &Service{store: store, stock: NewStock(store, opts.Stock), orders: newOrderCache(opts.OrderCacheSize), opts: opts,
		life: life, end: end}
}

// Close ends the placements still running past their callers, saves the
// snapshots waiting to be saved (until ctx ends) and stops the service's
// background work.
func (s *Service) Close(ctx context.Context) {
	s.end()
	s.stock.Close(ctx)
}

// Stock returns the service's product decisions runner.
func (s *Service) Stock() *Stock { return s.stock }

// ended tells the hooks about an order that this service just moved to paid
// or canceled.
func (s *Service) ended(ctx context.Context, before order.Status, st *order.State) {
	if before == st.Status {
		return
	}
	if (st.Status == order.StatusPaid || st.Status == order.StatusCanceled) && s.opts.OnOrderEnded != nil {
		s.opts.OnOrderEnded(ctx, st.Status, st.UpdatedAt.Sub(st.CreatedAt))
	}
	switch {
	case st.Status == order.StatusPaid && s.opts.OnOrderPaid != nil:
		s.opts.OnOrderPaid()
	case st.Status == order.StatusCanceled && s.opts.OnOrderCanceled != nil:
		s.opts.OnOrderCanceled(st.CancelReason)
	}
}

func (s *Service) step(ctx context.Context, step string, orderID uuid.UUID) error {
	if s.opts.AfterStep == nil {
		return nil
	}
	return s.opts.AfterStep(ctx, step, orderID)
}

// recordedAt is when the store recorded an append's events (what reads
// show), or, for a replayed append that does not say, this service's clock.
func (s *Service) recordedAt(res eventstore.AppendResult) time.Time {
	if res.RecordedAt.IsZero() {
		return s.opts.Now().UTC()
	}
	return res.RecordedAt.UTC()
}

// OrderView is a snapshot of an order as the write model knows it.
type OrderView struct {
	ID        uuid.UUID
	Status    order.Status
	UserEmail string
	Items     []events.OrderItem
	Total     int64 // minor units
	Currency  string
	PaymentID string
	// RejectReason is why a rejected placement was rejected.
	RejectReason string
	// RefundRequested: the payment succeeded after the order was canceled;
	// RefundID is set once it was refunded.
	RefundRequested bool
	RefundID        string
	CancelReason    string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Version         int64
	// Position is the global position of the last event this command
	// appended to the order (zero if it appended none).
	Position eventstore.Position
}

func orderView(s *order.State, pos eventstore.Position) OrderView {
	return OrderView{
		ID: s.ID, Status: s.Status, UserEmail: s.UserEmail, Items: append([]events.OrderItem(nil), s.Items...),
		Total: int64(s.Total), Currency: s.Currency, PaymentID: s.PaymentID, CancelReason: s.CancelReason,
		RefundRequested: s.RefundRequested, RefundID: s.RefundID,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, Version: s.Version, Position: pos,
		RejectReason: rejectReason(s),
	}
}

func rejectReason(s *order.State) string {
	if s.Rejection == nil {
		return ""
	}
	return s.Rejection.Reason
}

// loadOrder reads an order from its stream.
func (s *Service) loadOrder(ctx context.Context, id uuid.UUID) (*order.State, error) {
	o, err := s.readOrder(ctx, id)
	return o.st, err
}

// readOrder reads an order from its stream, with the global position of
// the event that decided its placement (the first after order.placed:
// reserved, rejected, or a cancel during placement; Start while it is
// undecided; the placement's own reservations all come before it,
// product.State.Stray) and the correlation id it was placed with. The
// order is cached for the commands that follow (see orderCache).
func (s *Service) readOrder(ctx context.Context, id uuid.UUID) (loadedOrder, error) {
	o := loadedOrder{st: order.New(id), decided: eventstore.Start, fresh: true}
	_, err := readRecorded(ctx, s.store, events.OrderStream(id), 0, func(r eventstore.RecordedEvent, e events.Event) {
		o.st.Apply(e, r.Version, r.RecordedAt)
		switch r.Version {
		case 0:
			o.correlation = r.Metadata.CorrelationID
		case 1:
			o.decided = r.Position
		}
	})
	if err != nil {
		return loadedOrder{}, err
	}
	if o.st.Status != order.StatusNew {
		s.orders.put(o)
	}
	return o, nil
}

// cachedOrder returns the order as this process last saw it, reading its
// stream only when the cache does not hold it. What it returns may be
// behind the stream (see orderCache): decide on it only what an append
// checks.
func (s *Service) cachedOrder(ctx context.Context, id uuid.UUID) (loadedOrder, error) {
	if o, ok := s.orders.get(id); ok {
		return o, nil
	}
	return s.readOrder(ctx, id)
}

// decideOrder runs decide on the order and appends what it decides,
// reloading and deciding again after a version conflict. known, if not nil,
// is the order as this caller last saw it; otherwise the order comes from
// the cache (cachedOrder). A decision to do nothing, or a refusal, is only
// trusted on a fresh read, since no append checks it. seed, if not empty,
// derives the event ids from the message that caused them (see encode). It
// returns the order after the events and the position of the last one
// appended.
func (s *Service) decideOrder(ctx context.Context, id uuid.UUID, known *loadedOrder, meta eventstore.Metadata, seed string, decide func(*order.State) ([]events.Event, error)) (*order.State, eventstore.Position, error) {
	for attempt := 1; ; attempt++ {
		var (
			o   loadedOrder
			err error
		)
		switch {
		case attempt == 1 && known != nil:
			o = *known
		case attempt == 1:
			o, err = s.cachedOrder(ctx, id)
		default:
			o, err = s.readOrder(ctx, id)
		}
		if err != nil {
			return nil, eventstore.Position{}, err
		}
		st := o.st
		decided, err := decide(st)
		if (err != nil || len(decided) == 0) && !o.fresh {
			continue
		}
		if err != nil || len(decided) == 0 {
			return st, eventstore.Position{}, err
		}
		data, err := encode(meta, decided, seed)
		if err != nil {
			return nil, eventstore.Position{}, err
		}
		res, err := s.store.Append(ctx, events.OrderStream(id), expectedAt(st.Version), data...)
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) && attempt < 20 {
			continue
		}
		if err != nil {
			s.orders.forget(id) // the outcome may be unknown
			return nil, eventstore.Position{}, fmt.Errorf("order %s: %w", id, err)
		}
		before, now := *st, s.recordedAt(res)
		for _, e := range decided {
			st.Apply(e, st.Version+1, now)
		}
		switch {
		case before.Version >= 1:
		case before.Version == 0 && len(decided) == 1:
			o.decided = res.Position // this append decided the placement
		default:
			o.decided = eventstore.Start // not known: the next reader reads the stream
		}
		if before.Version < 0 {
			o.correlation = meta.CorrelationID
		}
		o.appended = !res.Replayed // a transition this append reports
		repeated := s.orders.put(o)
		// A replay's transition was reported by whoever wrote it, in this
		// process or another: every adapter tells a replay (KurrentDB's by
		// reading its mark back). Should one not know (a failed read-back),
		// the cache still tells a replay of another append of this process
		// (a webhook delivered twice at once), which is not counted twice.
		if !res.Replayed && !repeated {
			s.ended(ctx, before.Status, st)
		}
		return st, res.Position, nil
	}
}
