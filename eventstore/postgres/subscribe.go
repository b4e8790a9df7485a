package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/logging"
	"github.com/orders-reference/orders/internal/pause"
)

// heldBackRetry is the first delay before re-reading when committed events
// wait behind an older open transaction; it doubles up to PollInterval.
const heldBackRetry = 2 * time.Millisecond

// Subscribe implements eventstore.Store: it pages through ReadAll and, once
// caught up, waits for a notification, the poll interval, or (when events are
// held back by an open transaction) a short, growing retry delay.
//
// A database error while reading is logged and retried with backoff: a
// subscription outlives a database restart. Only ctx and the handler end
// it, and a start beyond the head of the events table
// (eventstore.ErrPositionNotInStore: the database lost data, or is another
// one).
func (s *Store) Subscribe(ctx context.Context, from eventstore.Position, opts eventstore.SubscribeOptions, handle eventstore.BatchHandler) error {
	size := opts.BatchSize
	if size <= 0 {
		size = s.opts.BatchSize
	}
	if err := s.checkInStore(ctx, from); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	wake, release := s.listener.subscribe()
	defer release()

	pos := from
	retry := heldBackRetry
	var failing logging.Repeats
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		woken := wake()
		p, err := s.readAll(ctx, pos, size, opts.Filter)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			delay := min(s.opts.PollInterval, heldBackRetry<<min(failing.Failures()+1, 12))
			failing.Failed(ctx, s.log, "event store subscription: read failed, retrying",
				"from", pos.String(), logging.Millis("retry_in_ms", delay), "error", err)
			if err := pause.For(ctx, delay); err != nil {
				return err
			}
			continue
		}
		failing.Succeeded(ctx, s.log, "event store subscription: reading again", "from", pos.String())

		if len(p.Events) > 0 || p.Scanned > 0 {
			// Deliver events, or move the checkpoint past filtered-out ones.
			if err := handle(ctx, eventstore.Batch{Events: p.Events, Checkpoint: p.Next}); err != nil {
				return fmt.Errorf("subscription handler at %s: %w", p.Next, err)
			}
		}
		pos = p.Next
		if !p.AtEnd {
			continue
		}

		delay := s.opts.PollInterval
		if p.heldBack {
			delay = min(retry, s.opts.PollInterval)
			retry = min(2*retry, s.opts.PollInterval)
		} else {
			retry = heldBackRetry
		}
		if err := pause.ForOrWake(ctx, delay, woken); err != nil {
			return err
		}
	}
}
