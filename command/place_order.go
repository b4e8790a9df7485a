package command

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/command/product"
	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
)

// placementTimeout bounds a placement once its order is being stored: it
// no longer ends with its caller's context (see PlaceOrder).
const placementTimeout = 30 * time.Second

// PlaceOrder is a customer's order.
type PlaceOrder struct {
	// IdempotencyKey, if not empty, makes retries safe: the order id is
	// derived from it, so the event store itself refuses a second order.
	IdempotencyKey string
	UserEmail      string
	Lines          []order.Line
	Meta           eventstore.Metadata
	// Admit, if set, runs before anything is stored, unless the request
	// is known to be a replay of its Idempotency-Key (a key this process
	// placed lately); a key seen by no one yet is not looked up first, so
	// Admit may run for a replay, whose refusal is then answered with the
	// order it placed. Its error refuses the order (rate limiting uses it).
	// orderID is the order's id: every request with one key shares it, so
	// a limiter can count them once.
	Admit func(ctx context.Context, orderID uuid.UUID) error
}

// OrderIDForKey returns the order id that a customer's Idempotency-Key
// stands for. Keys are scoped to the customer (two customers may use the
// same key) and the id is an HMAC under the service's secret, so knowing a
// customer's email and key is not enough to compute their order id.
func (s *Service) OrderIDForKey(email, key string) uuid.UUID {
	mac := hmac.New(sha256.New, s.opts.KeySecret)
	mac.Write([]byte(order.NormalizeEmail(email)))
	mac.Write([]byte{0})
	mac.Write([]byte(key))
	var id uuid.UUID
	copy(id[:], mac.Sum(nil))
	id[6] = id[6]&0x0f | 0x80 // version 8: application-defined
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	return id
}

// fingerprint identifies a request's content, independent of item order
// and email case.
func fingerprint(email string, lines []order.Line) string {
	sorted := slices.Clone(lines)
	slices.SortFunc(sorted, func(a, b order.Line) int { return strings.Compare(a.ProductID.String(), b.ProductID.String()) })
	h := sha256.New()
	h.Write([]byte(order.NormalizeEmail(email)))
	for _, l := range sorted {
		h.Write([]byte("\n" + l.ProductID.String() + ":" + strconv.FormatInt(l.Quantity, 10)))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// PlaceOrder records the order, reserves every item all-or-nothing and
// returns the reserved order, or a *RejectedError after releasing whatever
// it had reserved.
//
// The order stream is the saga's log and its outcome the commit point:
// items are reserved one product at a time (each reservation is tied to the
// order, so repeating one changes nothing), then order.reserved or
// order.rejected is appended at the order's expected version, so exactly one
// outcome wins however many parties complete the same placement. Stock is
// released only once a rejection is recorded. A placement interrupted at any
// step is completed the same way by the process manager (CompletePlacement).
//
// ctx ends the placement only until the order is stored: from its append
// on, the placement runs to its outcome (for at most placementTimeout, and
// no longer than the service: Close) whether or not the caller still waits
// for it. ctx's deadline, if it has one, still ends the caller's wait: past
// it PlaceOrder returns an error wrapping context.DeadlineExceeded (the
// outcome is unknown, as after a lost answer) while the placement goes on.
func (s *Service) PlaceOrder(ctx context.Context, cmd PlaceOrder) (OrderView, error) {
	if problems := order.ValidateRequest(cmd.UserEmail, cmd.Lines); len(problems) > 0 {
		return OrderView{}, &ValidationError{Fields: problems}
	}
	hash := fingerprint(cmd.UserEmail, cmd.Lines)
	id := s.OrderIDForKey(cmd.UserEmail, cmd.IdempotencyKey)
	if cmd.IdempotencyKey == "" {
		var err error
		if id, err = uuid.NewV7(); err != nil {
			return OrderView{}, err
		}
	} else if s.orders.has(id) {
		// A key this process placed lately: answer from the stream.
		if st, err := s.loadOrder(ctx, id); err != nil {
			return OrderView{}, err
		} else if st.Status != order.StatusNew {
			return s.replay(ctx, st, hash, cmd.Meta)
		}
	}
	// A new key is not looked up: the NoStream append below is the check,
	// and a key that turns out to be taken is answered from its order. So
	// is a key whose request is refused before the append (a product
	// deactivated since, the rate limit): the order it placed stands.

	items, err := s.price(ctx, cmd.Lines)
	if err != nil {
		return s.replayOr(ctx, cmd, id, hash, err)
	}
	if cmd.Admit != nil {
		if err := cmd.Admit(ctx, id); err != nil {
			return s.replayOr(ctx, cmd, id, hash, err)
		}
	}
	st := order.New(id)
	decided, err := st.Place(cmd.UserEmail, items, hash)
	if err != nil {
		// The request passed ValidateRequest above: what is left is a
		// total beyond what an amount holds. (The error's own text is the
		// domain's, not the API's: it is not shown.)
		return OrderView{}, &ValidationError{Fields: map[string]string{"items": "add up to more than an order's total can hold"}}
	}
	data, err := encode(cmd.Meta, decided, "")
	if err != nil {
		return OrderView{}, err
	}
	// From the append on, the placement is finished even if the caller
	// goes away (a client that disconnects, a load generator that stops):
	// an append may commit after its caller gave up, and an order left
	// placed but undecided holds its customer and its stock until the
	// process manager completes it (process.Options.PlacementGrace later).
	// A caller already gone is not served: nothing is stored yet. The
	// detached placement still ends with the service (Close).
	if err := ctx.Err(); err != nil {
		return OrderView{}, err
	}
	place := func() (OrderView, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), placementTimeout)
		defer cancel()
		defer context.AfterFunc(s.life, cancel)()
		return s.placeStored(ctx, cmd, st, id, hash, data, decided)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return place()
	}
	// The caller's deadline ends its wait, not the placement: a caller
	// that must answer in time (an HTTP request) is not held past it by a
	// database that stalls. Its order is then placed or not, as after any
	// lost answer; the same Idempotency-Key finds out.
	type result struct {
		v   OrderView
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := place()
		done <- result{v, err}
	}()
	wait := time.NewTimer(time.Until(deadline))
	defer wait.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-wait.C:
		return OrderView{}, fmt.Errorf("place order %s: outcome unknown, the placement goes on: %w", id, context.DeadlineExceeded)
	}
}

// placeStored appends order id's placement and completes it: the part of
// PlaceOrder that no longer ends with its caller.
func (s *Service) placeStored(ctx context.Context, cmd PlaceOrder, st *order.State, id uuid.UUID, hash string, data []eventstore.EventData, decided []events.Event) (OrderView, error) {
	res, err := s.store.Append(ctx, events.OrderStream(id), eventstore.NoStream, data...)
	if err != nil {
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) && cmd.IdempotencyKey != "" {
			// The same key, concurrently: whoever placed it first wins.
			st, err := s.loadOrder(ctx, id)
			if err != nil {
				return OrderView{}, err
			}
			return s.replay(ctx, st, hash, cmd.Meta)
		}
		return OrderView{}, fmt.Errorf("place order %s: %w", id, err)
	}
	if s.opts.OnOrderPlaced != nil {
		s.opts.OnOrderPlaced()
	}
	if err := s.step(ctx, StepPlaced, id); err != nil {
		return OrderView{}, err
	}
	st.Apply(decided[0], 0, s.recordedAt(res))
	// The order as just appended: as good as a fresh read.
	return s.completeFrom(ctx, loadedOrder{st: st, decided: eventstore.Start, correlation: cmd.Meta.CorrelationID, fresh: true}, cmd.Meta, "")
}

// replayOr answers with the order that cmd's Idempotency-Key placed
// before, if there is one, and with refusal otherwise.
func (s *Service) replayOr(ctx context.Context, cmd PlaceOrder, id uuid.UUID, hash string, refusal error) (OrderView, error) {
	if cmd.IdempotencyKey == "" {
		return OrderView{}, refusal
	}
	st, err := s.loadOrder(ctx, id)
	if err != nil {
		return OrderView{}, err
	}
	if st.Status == order.StatusNew {
		return OrderView{}, refusal
	}
	return s.replay(ctx, st, hash, cmd.Meta)
}

// replay answers a repeated Idempotency-Key from the stored order: the same
// request gets the same outcome (completing the placement if it is still in
// flight), a different one is refused.
func (s *Service) replay(ctx context.Context, st *order.State, hash string, meta eventstore.Metadata) (OrderView, error) {
	if st.RequestHash != hash {
		return OrderView{}, fmt.Errorf("%w: order %s", ErrIdempotencyConflict, st.ID)
	}
	if st.Status == order.StatusCreated {
		return s.complete(ctx, st.ID, meta)
	}
	return outcome(st, eventstore.Position{})
}

// outcome is the answer for an order whose placement is decided.
func outcome(st *order.State, pos eventstore.Position) (OrderView, error) {
	v := orderView(st, pos)
	if st.Status == order.StatusRejected {
		r := st.Rejection
		return OrderView{}, &RejectedError{Order: v, Reason: r.Reason, Insufficient: r.Insufficient, Unavailable: r.Unavailable}
	}
	return v, nil
}

// price looks up every line's product and its price, as this process last
// saw it (a price changed a moment ago elsewhere may not be seen yet; the
// reservation itself is always checked against the product's stream).
// Unknown or inactive products are a validation error naming the items.
func (s *Service) price(ctx context.Context, lines []order.Line) ([]events.OrderItem, error) {
	items := make([]events.OrderItem, len(lines))
	problems := map[string]string{}
	for i, l := range lines {
		v, err := s.stock.Peek(ctx, l.ProductID)
		if err == nil && !v.IsActive {
			// Refusing is not checked by any append: ask the store first.
			v, err = s.stock.View(ctx, l.ProductID)
		}
		switch {
		case errors.Is(err, product.ErrNotFound):
			problems[fmt.Sprintf("items[%d].product_id", i)] = "must name an existing product"
			continue
		case err != nil:
			return nil, err
		case !v.IsActive:
			problems[fmt.Sprintf("items[%d].product_id", i)] = "must name a product that is available (this one is not active)"
			continue
		}
		items[i] = events.OrderItem{ProductID: l.ProductID, Quantity: l.Quantity, UnitPrice: v.Price}
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Fields: problems}
	}
	return items, nil
}

// complete reserves the order's items and records the outcome; it is what
// PlaceOrder, a replayed Idempotency-Key and the process manager
// (CompletePlacement) run, and any number of them may run it at once for
// the same order.
func (s *Service) complete(ctx context.Context, id uuid.UUID, meta eventstore.Metadata) (OrderView, error) {
	o, err := s.readOrder(ctx, id)
	if err != nil {
		return OrderView{}, err
	}
	return s.completeFrom(ctx, o, meta, "")
}

// completeFrom is complete for an order already loaded (or just placed).
// releaseAs, if not empty, is the release reason of the stock held when
// this call is the one that rejects the order (an abandoned placement);
// otherwise releases say why the order closed.
func (s *Service) completeFrom(ctx context.Context, o loadedOrder, meta eventstore.Metadata, releaseAs string) (OrderView, error) {
	st, id := o.st, o.st.ID
	if st.Status != order.StatusCreated {
		return s.settle(ctx, st, eventstore.Position{}, meta, "")
	}
	lines := slices.Clone(st.Items)
	// One product after another in a fixed order; a product's lock is never
	// held while waiting for another, so there is nothing to deadlock on.
	slices.SortFunc(lines, func(a, b events.OrderItem) int { return strings.Compare(a.ProductID.String(), b.ProductID.String()) })
	var insufficient, unavailable []uuid.UUID
	for _, it := range lines {
		_, _, err := s.stock.Do(ctx, it.ProductID, meta, func(p *product.State) ([]events.Event, error) {
			return p.Reserve(id, it.Quantity)
		})
		switch {
		case errors.Is(err, product.ErrInsufficientStock):
			insufficient = append(insufficient, it.ProductID)
		case errors.Is(err, product.ErrInactive), errors.Is(err, product.ErrNotFound):
			unavailable = append(unavailable, it.ProductID)
		case err != nil:
			return OrderView{}, err // interrupted: the process manager finishes it
		}
		if len(insufficient)+len(unavailable) > 0 {
			break // all-or-nothing: no point reserving the rest
		}
		if err := s.step(ctx, StepReserved, id); err != nil {
			return OrderView{}, err
		}
	}

	decide := func(o *order.State) ([]events.Event, error) { return o.MarkReserved() }
	if len(insufficient)+len(unavailable) > 0 {
		reason := events.RejectInsufficientStock
		if len(insufficient) == 0 {
			reason = events.RejectProductUnavailable
		}
		rejection := events.OrderRejected{Reason: reason, Insufficient: insufficient, Unavailable: unavailable}
		decide = func(o *order.State) ([]events.Event, error) { return o.Reject(rejection) }
	}
	decidedHere := false
	st, pos, err := s.decideOrder(ctx, id, &o, meta, "", func(o *order.State) ([]events.Event, error) {
		if o.Status != order.StatusCreated {
			decidedHere = false
			return nil, nil // someone else decided: follow them
		}
		decidedHere = true
		return decide(o)
	})
	if err != nil {
		return OrderView{}, err
	}
	if err := s.step(ctx, StepDecided, id); err != nil {
		return OrderView{}, err
	}
	if !decidedHere {
		releaseAs = ""
	}
	return s.settle(ctx, st, pos, meta, releaseAs)
}

// settle makes the products agree with a decided order: a rejected or
// canceled order holds no stock. It is idempotent. reason, if not empty,
// overrides the release reason (see releaseReason).
func (s *Service) settle(ctx context.Context, st *order.State, pos eventstore.Position, meta eventstore.Metadata, reason string) (OrderView, error) {
	if closedUnpaid(st.Status) {
		if reason == "" {
			reason = releaseReason(st)
		}
		released, err := s.releaseAll(ctx, st, meta, reason)
		if err != nil {
			return OrderView{}, err
		}
		pos = eventstore.MaxPosition(pos, released)
	}
	return outcome(st, pos)
}

// closedUnpaid reports whether an order with status s gives its stock back.
func closedUnpaid(s order.Status) bool {
	return s == order.StatusRejected || s == order.StatusCanceled
}

// releaseReason is why a rejected or canceled order's stock goes back: the
// reason it was canceled (customer_canceled, payment_failed,
// payment_timeout) or rejected (insufficient_stock, product_unavailable).
func releaseReason(st *order.State) string {
	switch {
	case st.Status == order.StatusCanceled && st.CancelReason != "":
		return st.CancelReason
	case st.Status == order.StatusRejected && st.Rejection != nil && st.Rejection.Reason != "":
		return st.Rejection.Reason
	}
	return string(st.Status)
}

// releaseAll releases every reservation the order holds, for reason, and
// returns a position that covers the releases, whoever wrote them (a read
// that waits for it sees the stock back).
func (s *Service) releaseAll(ctx context.Context, st *order.State, meta eventstore.Metadata, reason string) (eventstore.Position, error) {
	last := eventstore.Start
	for _, it := range st.Items {
		_, v, err := s.stock.Do(ctx, it.ProductID, meta, func(p *product.State) ([]events.Event, error) {
			return p.Release(st.ID, reason), nil
		})
		if err != nil && !errors.Is(err, product.ErrNotFound) {
			return last, fmt.Errorf("release order %s on product %s: %w", st.ID, it.ProductID, err)
		}
		last = eventstore.MaxPosition(last, v.Current)
	}
	return last, nil
}
