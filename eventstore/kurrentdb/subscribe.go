package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/pause"
)

// Subscribe implements eventstore.Store with a catch-up subscription to
// $all: the server sends the stored events after from (a subscription from
// a position starts after it), then new ones as they are indexed.
//
// Filtering. The server filters by stream or by event type, not both, and
// by prefix. The adapter sends the filter's stream prefixes if it has any,
// else its event types as prefixes, and checks every event exactly
// itself; it also skips system events. With a server-side filter the
// server sends a checkpoint at least every BatchSize events it considered
// (a search window of BatchSize, checkpoint multiplier 1), and the
// subscription hands it on, so a reader moves past long runs of events
// that do not match. (The server's prefix match is taken to be ordinal,
// as Filter's is; a culture-sensitive match that selected less would lose
// events. Unverified against a real node.)
//
// Batches. A batch holds up to BatchSize events; a run of BatchSize
// skipped events makes an empty batch that only moves the checkpoint.
// While catching up a batch is handed over when full, at the server's
// caught-up message or checkpoint, or after CatchUpLinger without a
// message; once live, as soon as no further message is waiting but at
// most once per DeliveryInterval, what arrives meanwhile joining it (the
// first event after a quiet interval goes at once). A batch's
// checkpoint is the position of the last event it delivered or skipped, or
// a later checkpoint of the server: it never moves past an event that was
// not handed over or skipped. Events at or before the checkpoint (a server
// that started at rather than after it) are dropped.
//
// Resubscription. When the server drops the subscription (a restart, a
// lost connection, a leader change) or the adapter replaces a dead client,
// Subscribe hands over what it had received and subscribes again from its
// checkpoint, after RetryDelay
// doubling up to MaxRetryDelay, logged as a warning. It gives up only on
// errors a retry cannot help (credentials, access, an invalid request,
// Close) and on a checkpoint the log does not hold
// (eventstore.ErrPositionNotInStore, checked at every subscription). It
// returns ctx.Err() when ctx ends, and the handler's error,
// wrapped, when the handler fails.
func (s *Store) Subscribe(ctx context.Context, from eventstore.Position, opts eventstore.SubscribeOptions, handle eventstore.BatchHandler) error {
	size := opts.BatchSize
	if size <= 0 {
		size = s.opts.BatchSize
	}
	sub := &subscription{
		store:      s,
		filter:     opts.Filter,
		server:     serverFilter(opts.Filter),
		size:       size,
		handle:     handle,
		checkpoint: from,
	}
	delay := s.opts.RetryDelay
	var failing logging.Repeats // one line an outage, then one a minute
	for {
		received, err := sub.run(ctx)
		var herr *handlerError
		switch {
		case errors.As(err, &herr):
			return fmt.Errorf("subscription handler at %s: %w", herr.at, herr.err)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, eventstore.ErrPositionNotInStore):
			return fmt.Errorf("subscribe to $all: %w", err)
		case status.Code(err) == codes.InvalidArgument && sub.checkpoint != eventstore.Start:
			return fmt.Errorf("subscribe to $all after %s: %w: %w: %w", sub.checkpoint, eventstore.ErrPositionNotInStore, eventstore.ErrInvalidPosition, err)
		case permanent(err):
			return fmt.Errorf("subscribe to $all after %s: %w", sub.checkpoint, err)
		}
		if received {
			delay = s.opts.RetryDelay
			failing.Reset() // it delivered since the last drop: this one is news
		}
		failing.Failed(ctx, s.log, "kurrentdb: subscription dropped, resubscribing",
			"from", sub.checkpoint.String(), logging.Millis("retry_in_ms", delay), "error", err)
		if err := pause.For(ctx, delay); err != nil {
			return err
		}
		delay = min(2*delay, s.opts.MaxRetryDelay)
	}
}

// serverFilter is the part of f the server can apply: its stream prefixes,
// or else its event types as prefixes (which may select more than the
// exact types; the subscription checks them). Nil for the zero filter.
func serverFilter(f eventstore.Filter) *esdb.SubscriptionFilter {
	switch {
	case len(f.StreamPrefixes) > 0:
		return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: append([]string(nil), f.StreamPrefixes...)}
	case len(f.EventTypes) > 0:
		return &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: append([]string(nil), f.EventTypes...)}
	}
	return nil
}

// handlerError carries the handler's error out of a subscription run.
type handlerError struct {
	at  eventstore.Position
	err error
}

func (e *handlerError) Error() string { return e.err.Error() }

// subscription is the state of one Subscribe call across resubscriptions.
type subscription struct {
	store  *Store
	filter eventstore.Filter
	server *esdb.SubscriptionFilter
	size   int
	handle eventstore.BatchHandler

	// checkpoint is the position handed over with the last batch (or the
	// starting position): everything up to it was delivered or skipped.
	checkpoint eventstore.Position
}

// subscribed is a subscription with its client's gone channel (closed
// when that client is replaced). It is an io.Closer, so that detach closes
// one that an abandoned attempt made too late.
type subscribed struct {
	stream *esdb.Subscription
	gone   <-chan struct{}
}

func (s subscribed) Close() error { return s.stream.Close() }

// run subscribes once from the checkpoint and hands batches over until the
// subscription ends. It reports whether the server sent anything, and
// returns a *handlerError if the handler failed.
func (sub *subscription) run(ctx context.Context) (received bool, err error) {
	// A checkpoint the log does not hold (the node lost data, or is
	// another one) is refused rather than subscribed from: the server
	// would wait for the log to grow past it, then carry on from there,
	// skipping every event before it.
	if sub.checkpoint != eventstore.Start {
		if _, _, err := sub.store.readAllAfter(ctx, sub.checkpoint, 1); errors.Is(err, eventstore.ErrPositionNotInStore) {
			return false, err
		}
	}
	opts := esdb.SubscribeToAllOptions{From: allPosition(sub.checkpoint)}
	if sub.server != nil {
		opts.Filter = sub.server
		opts.MaxSearchWindow = sub.size
		opts.CheckpointInterval = 1
	}
	// The stream comes with its client's gone channel (closed when that
	// client is replaced), as one result: an attempt that timed out may
	// still finish on its own goroutine while the retry runs, and must not
	// hand the retry its client's channel.
	got, err := call(ctx, sub.store.conn, true, func(ctx context.Context, c *esdb.Client) (subscribed, error) {
		stream, err := c.SubscribeToAll(ctx, opts)
		if err != nil {
			return subscribed{}, err
		}
		return subscribed{stream, sub.store.conn.goneOf(c)}, nil
	})
	if err != nil {
		return false, mapErr(ctx, err)
	}
	stream, gone := got.stream, got.gone
	msgs, stop := pump(stream, sub.size)
	defer stop()

	b := batcher{sub: sub, seen: sub.checkpoint}
	linger := time.NewTimer(sub.store.opts.CatchUpLinger)
	defer linger.Stop()
	live := false
	for {
		if err := ctx.Err(); err != nil {
			return received, err
		}
		var m *esdb.SubscriptionEvent
		switch {
		case !b.pending():
			select {
			case m = <-msgs:
			case <-ctx.Done():
				return received, ctx.Err()
			case <-gone:
				return received, errClientReplaced
			}
		case live && time.Since(b.handed) >= sub.store.opts.DeliveryInterval:
			select {
			case m = <-msgs:
			default:
				if err := b.flush(ctx); err != nil {
					return received, err
				}
				continue
			}
		default:
			// Wait for more: while catching up, for CatchUpLinger; once
			// live, until DeliveryInterval has passed since the last batch.
			wait := sub.store.opts.CatchUpLinger
			if live {
				wait = sub.store.opts.DeliveryInterval - time.Since(b.handed)
			}
			linger.Reset(wait)
			select {
			case m = <-msgs:
			case <-linger.C:
				if err := b.flush(ctx); err != nil {
					return received, err
				}
				continue
			case <-ctx.Done():
				return received, ctx.Err()
			case <-gone:
				if err := b.flush(ctx); err != nil {
					return received, err
				}
				return received, errClientReplaced
			}
		}

		switch {
		case m.EventAppeared != nil:
			received = true
			if e := m.EventAppeared.OriginalEvent(); e != nil && b.add(e) {
				err = b.flush(ctx)
			}
		case m.CheckPointReached != nil:
			received = true
			b.advance(position(*m.CheckPointReached))
			err = b.flush(ctx)
		case m.CaughtUp != nil:
			received = true
			live = true
			err = b.flush(ctx)
		case m.FellBehind != nil:
			live = false
		case m.SubscriptionDropped != nil:
			if err := b.flush(ctx); err != nil {
				return received, err
			}
			return received, fmt.Errorf("subscription dropped: %w", mapErr(ctx, m.SubscriptionDropped.Error))
		}
		if err != nil {
			return received, err
		}
	}
}

// pump receives the subscription's messages on a goroutine into a channel
// of capacity size, up to and including the drop. stop closes the
// subscription and waits for the goroutine to end.
func pump(stream *esdb.Subscription, size int) (<-chan *esdb.SubscriptionEvent, func()) {
	msgs := make(chan *esdb.SubscriptionEvent, size)
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for {
			m := stream.Recv()
			select {
			case msgs <- m:
			case <-done:
				return
			}
			if m.SubscriptionDropped != nil {
				return
			}
		}
	}()
	return msgs, func() {
		close(done)
		_ = stream.Close()
		<-ended
	}
}

// batcher gathers the next batch of a subscription.
type batcher struct {
	sub    *subscription
	events []eventstore.RecordedEvent
	// seen is the position of the last event taken in or the server's
	// last checkpoint, whichever is later: the next batch's checkpoint.
	seen eventstore.Position
	// taken counts the events taken in since the last batch, delivered or
	// skipped.
	taken int
	// handed is when the last batch was handed over.
	handed time.Time
}

// pending reports whether there is something to hand over.
func (b *batcher) pending() bool {
	return b.seen != b.sub.checkpoint
}

// add takes in e, skipping it if it is a system event or does not match
// the filter, and reports whether the batch is due: it holds BatchSize
// events, or nothing but BatchSize skipped ones. An event not after the
// last one seen was delivered or skipped before: it is dropped.
func (b *batcher) add(e *esdb.RecordedEvent) bool {
	p := position(e.Position)
	if !b.seen.Less(p) {
		return false
	}
	b.seen = p
	b.taken++
	if !isSystemStream(e.StreamID) && b.sub.filter.Match(e.StreamID, e.EventType) {
		b.events = append(b.events, recorded(e))
	}
	return len(b.events) >= b.sub.size || (len(b.events) == 0 && b.taken >= b.sub.size)
}

// advance moves the next checkpoint to a server checkpoint p: the server
// has considered every event up to p and sent those that matched its
// filter before p.
func (b *batcher) advance(p eventstore.Position) {
	b.seen = eventstore.MaxPosition(b.seen, p)
}

// flush hands the batch over, if there is one and ctx has not ended.
func (b *batcher) flush(ctx context.Context) error {
	if !b.pending() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The interval runs from one handover's start to the next, as the
	// PostgreSQL adapter's wake-ups do, whatever the handler takes.
	b.handed = time.Now()
	if err := b.sub.handle(ctx, eventstore.Batch{Events: b.events, Checkpoint: b.seen}); err != nil {
		return &handlerError{at: b.seen, err: err}
	}
	b.sub.checkpoint = b.seen
	b.events, b.taken = nil, 0
	return nil
}
