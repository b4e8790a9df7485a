package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"golang.org/x/sync/errgroup"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
)

// Subscriber is what Recovery needs from the event store.
type Subscriber interface {
	Subscribe(ctx context.Context, from eventstore.Position, opts eventstore.SubscribeOptions, handle eventstore.BatchHandler) error
	Head(ctx context.Context) (eventstore.Position, error)
}

// RecoveryOptions tunes Recovery.
type RecoveryOptions struct {
	// After is how old an undecided placement must be before Recovery
	// completes it (default 5s): younger ones are probably still running.
	After time.Duration
	// Every is how often Recovery looks for such placements (default 1s).
	Every time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Recovery makes sure no order ends up holding stock that nobody will
// complete or release:
//
//   - a placement still undecided After it began (its process died) is
//     completed the way PlaceOrder would have: reserved, or rejected with
//     its stock released;
//   - a rejected or canceled order that still holds reservations (its
//     process died before releasing them) has them released;
//   - a reservation made for an order that was already rejected or canceled
//     (a placer that lost the race) is released.
//
// It follows the event stream from the start, so it also finds what a
// crash left behind before this process started. Every action is
// idempotent; several instances may run at once.
type Recovery struct {
	svc   *Service
	store Subscriber
	opts  RecoveryOptions
	log   *slog.Logger

	mu      sync.Mutex
	pending map[uuid.UUID]time.Time          // placed, not decided: when it was placed
	held    map[uuid.UUID]map[uuid.UUID]bool // order -> products it holds stock of
	// closed holds rejected and canceled orders, to catch reservations
	// that arrive after the outcome. (It grows with such orders; a durable
	// checkpoint is the next step.)
	closed map[uuid.UUID]bool
	// caughtUp: the stream has been read up to where it stood at start, so
	// pending holds every undecided placement and Sweep may act.
	caughtUp  bool
	startHead eventstore.Position
}

// NewRecovery returns a Recovery for svc's orders, following store.
func NewRecovery(svc *Service, store Subscriber, opts RecoveryOptions) *Recovery {
	if opts.After <= 0 {
		opts.After = 5 * time.Second
	}
	if opts.Every <= 0 {
		opts.Every = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recovery{
		svc: svc, store: store, opts: opts, log: log,
		pending: map[uuid.UUID]time.Time{},
		held:    map[uuid.UUID]map[uuid.UUID]bool{},
		closed:  map[uuid.UUID]bool{},
	}
}

var recoveryMeta = eventstore.Metadata{Actor: ActorSystem, CausationID: "recovery"}

// Run works until ctx ends. Errors on the way (a database that is briefly
// away) are logged and retried; they never end it.
func (r *Recovery) Run(ctx context.Context) error {
	for {
		head, err := r.store.Head(ctx)
		if err == nil {
			r.mu.Lock()
			r.startHead = head
			r.mu.Unlock()
			break
		}
		r.log.WarnContext(ctx, "recovery: reading the head failed, retrying", "error", err)
		if err := pause(ctx, time.Second); err != nil {
			return err
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return r.store.Subscribe(ctx, eventstore.Start, eventstore.SubscribeOptions{
			Filter: eventstore.Filter{EventTypes: []string{
				events.TypeOrderPlaced, events.TypeOrderReserved, events.TypeOrderRejected, events.TypeOrderCanceled,
				events.TypeProductStockReserved, events.TypeProductReservationReleased, events.TypeProductReservationCommitted,
			}},
		}, r.handle)
	})
	g.Go(func() error {
		t := time.NewTicker(r.opts.Every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				r.Sweep(ctx)
			}
		}
	})
	return g.Wait()
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// handle applies a batch. An event that fails (the database is away) is
// retried with backoff until it succeeds: every step is idempotent, and
// skipping one could leave stock held. Only ctx ends the wait.
func (r *Recovery) handle(ctx context.Context, b eventstore.Batch) error {
	for _, rec := range b.Events {
		e, err := events.Decode(rec.Type, rec.Data)
		if err != nil {
			r.log.ErrorContext(ctx, "recovery: undecodable event skipped", "stream", rec.StreamID, "version", rec.Version, "error", err)
			continue
		}
		for delay := 50 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
			err := r.apply(ctx, rec, e)
			if err == nil {
				break
			}
			r.log.WarnContext(ctx, "recovery: handling an event failed, retrying", "stream", rec.StreamID, "version", rec.Version, "error", err)
			if err := pause(ctx, delay); err != nil {
				return err
			}
		}
	}
	r.mu.Lock()
	if !b.Checkpoint.Less(r.startHead) {
		r.caughtUp = true
	}
	r.mu.Unlock()
	return nil
}

func (r *Recovery) apply(ctx context.Context, rec eventstore.RecordedEvent, e events.Event) error {
	switch e := e.(type) {
	case events.OrderPlaced:
		r.mu.Lock()
		r.pending[e.OrderID] = rec.RecordedAt
		r.mu.Unlock()
	case events.OrderReserved:
		r.forget(rec.StreamID)
	case events.OrderRejected, events.OrderCanceled:
		id, ok := r.forget(rec.StreamID)
		if !ok {
			return nil
		}
		r.mu.Lock()
		r.closed[id] = true
		products := r.held[id]
		delete(r.held, id)
		r.mu.Unlock()
		for p := range products {
			if err := r.release(ctx, p, id); err != nil {
				return err
			}
		}
	case events.ProductStockReserved:
		p, ok := events.StreamID(rec.StreamID, events.ProductStreamPrefix)
		if !ok {
			return nil
		}
		r.mu.Lock()
		_, isPending := r.pending[e.OrderID]
		closed := r.closed[e.OrderID]
		if !closed {
			if r.held[e.OrderID] == nil {
				r.held[e.OrderID] = map[uuid.UUID]bool{}
			}
			r.held[e.OrderID][p] = true
		}
		r.mu.Unlock()
		if !closed && !isPending {
			// Not placed as far as this stream shows: ask the order itself.
			st, err := r.svc.loadOrder(ctx, e.OrderID)
			if err != nil {
				return err
			}
			closed = st.Status == order.StatusRejected || st.Status == order.StatusCanceled
		}
		if closed {
			return r.release(ctx, p, e.OrderID)
		}
	case events.ProductReservationReleased:
		r.unhold(e.OrderID, rec.StreamID)
	case events.ProductReservationCommitted:
		r.unhold(e.OrderID, rec.StreamID)
	}
	return nil
}

func (r *Recovery) forget(stream string) (uuid.UUID, bool) {
	id, ok := events.StreamID(stream, events.OrderStreamPrefix)
	if !ok {
		return uuid.Nil, false
	}
	r.mu.Lock()
	delete(r.pending, id)
	r.mu.Unlock()
	return id, true
}

func (r *Recovery) unhold(orderID uuid.UUID, stream string) {
	p, ok := events.StreamID(stream, events.ProductStreamPrefix)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.held[orderID], p)
	if len(r.held[orderID]) == 0 {
		delete(r.held, orderID)
	}
}

func (r *Recovery) release(ctx context.Context, productID, orderID uuid.UUID) error {
	decided, _, err := r.svc.stock.Do(ctx, productID, recoveryMeta, func(p *product.State) ([]events.Event, error) {
		return p.Release(orderID, "recovery"), nil
	})
	if err != nil {
		return fmt.Errorf("recovery: release order %s on product %s: %w", orderID, productID, err)
	}
	if len(decided) > 0 {
		r.log.InfoContext(ctx, "recovery released stock", "order_id", orderID, "product_id", productID)
	}
	return nil
}

// Sweep completes every placement older than After, once Recovery has
// caught up with the stream (before that, a placement that looks undecided
// may just have its outcome further on). Run calls it every Every.
func (r *Recovery) Sweep(ctx context.Context) {
	cutoff := r.opts.Now().Add(-r.opts.After)
	r.mu.Lock()
	if !r.caughtUp {
		r.mu.Unlock()
		return
	}
	var due []uuid.UUID
	for id, at := range r.pending {
		if !at.After(cutoff) {
			due = append(due, id)
		}
	}
	r.mu.Unlock()
	for _, id := range due {
		v, err := r.svc.complete(ctx, id, recoveryMeta)
		var rejected *RejectedError
		if errors.As(err, &rejected) {
			v, err = rejected.Order, nil
		}
		if err != nil {
			r.log.WarnContext(ctx, "recovery could not complete a placement", "order_id", id, "error", err)
			continue
		}
		r.log.InfoContext(ctx, "recovery completed an interrupted placement", "order_id", id, "status", v.Status)
	}
}

// Pending returns how many placements are undecided.
func (r *Recovery) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}
