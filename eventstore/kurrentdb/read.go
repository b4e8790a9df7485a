package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orders-reference/orders/eventstore"
)

// maxPage caps the events asked of the server in one read of $all by Head
// and Backlog.
const maxPage = 1024

// ReadStream implements eventstore.Store. A system stream (an id starting
// with "$") is reported missing: it is no stream of the port.
func (s *Store) ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("read %q: limit must be positive", stream)
	}
	if isSystemStream(stream) {
		return nil, fmt.Errorf("read %q: %w (a KurrentDB system stream)", stream, eventstore.ErrStreamNotFound)
	}
	var start esdb.StreamPosition
	switch {
	case dir == eventstore.Backward && from < 0:
		start = esdb.End{}
	case from <= 0:
		start = esdb.Start{}
	default:
		start = esdb.Revision(uint64(from))
	}
	esdbDir := esdb.Forwards
	if dir == eventstore.Backward {
		esdbDir = esdb.Backwards
	}
	return s.readStream(ctx, stream, esdbDir, start, uint64(limit))
}

// ReadAll implements eventstore.Store.
//
// KurrentDB's forward read of $all from a position includes the event at
// that position, so ReadAll asks for one event more and drops any event
// not after from. Events of system streams and events that do not match
// filter are read and skipped (ReadAll of the v4 client cannot send a
// filter): they count in Scanned and move Next. AtEnd reports that the
// server returned fewer events than asked for.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, limit int, filter eventstore.Filter) (eventstore.Page, error) {
	if limit <= 0 {
		return eventstore.Page{}, fmt.Errorf("read all after %s: limit must be positive", from)
	}
	limit = min(limit, math.MaxInt32)
	evs, atEnd, err := s.readAllAfter(ctx, from, limit)
	if err != nil {
		return eventstore.Page{}, err
	}
	page := eventstore.Page{Next: from, Scanned: len(evs), AtEnd: atEnd}
	for _, e := range evs {
		page.Next = position(e.Position)
		if isSystemStream(e.StreamID) || !filter.Match(e.StreamID, e.EventType) {
			continue
		}
		page.Events = append(page.Events, recorded(e))
	}
	return page, nil
}

// readAllAfter reads up to limit events of $all after from, system events
// included, and reports whether the server had no more.
func (s *Store) readAllAfter(ctx context.Context, from eventstore.Position, limit int) ([]*esdb.RecordedEvent, bool, error) {
	ask := limit + 1
	evs, err := s.readAll(ctx, esdb.Forwards, allPosition(from), ask)
	if err != nil {
		if status.Code(err) != codes.InvalidArgument || from == eventstore.Start {
			return nil, false, fmt.Errorf("read all after %s: %w", from, err)
		}
		// The server refuses a position that is not a record boundary of
		// its log, one past the log's end included: a checkpoint the log
		// does not hold (the node lost data or is another one).
		last, lastErr := s.lastPosition(ctx)
		if lastErr == nil && last.Less(from) {
			return nil, false, fmt.Errorf("read all after %s: %w: beyond the head of $all, %s", from, eventstore.ErrPositionNotInStore, last)
		}
		return nil, false, fmt.Errorf("read all after %s: %w: %w: not a record boundary: %w", from, eventstore.ErrPositionNotInStore, eventstore.ErrInvalidPosition, err)
	}
	atEnd := len(evs) < ask
	if from != eventstore.Start {
		skip := 0
		for skip < len(evs) && !from.Less(position(evs[skip].Position)) {
			skip++
		}
		evs = evs[skip:]
	}
	if len(evs) > limit {
		evs = evs[:limit]
	}
	return evs, atEnd, nil
}

// allPosition maps a port position to the client's: Start is the start
// marker, not the position (0, 0).
func allPosition(p eventstore.Position) esdb.AllPosition {
	if p == eventstore.Start {
		return esdb.Start{}
	}
	return esdb.Position{Commit: p.Commit, Prepare: p.Prepare}
}

// readAll reads up to count events of $all from (inclusive) in dir.
func (s *Store) readAll(ctx context.Context, dir esdb.Direction, from esdb.AllPosition, count int) ([]*esdb.RecordedEvent, error) {
	opts := esdb.ReadAllOptions{Direction: dir, From: from}
	evs, err := call(ctx, s.conn, true, func(ctx context.Context, c *esdb.Client) ([]*esdb.RecordedEvent, error) {
		rs, err := c.ReadAll(ctx, opts, uint64(count))
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		out := make([]*esdb.RecordedEvent, 0, min(count, maxPage))
		for {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			if e := ev.OriginalEvent(); e != nil {
				out = append(out, e)
			}
		}
	})
	return evs, mapErr(ctx, err)
}

// lastPosition is the position of the last event of $all, system events
// included; Start if there is none.
func (s *Store) lastPosition(ctx context.Context) (eventstore.Position, error) {
	evs, err := s.readAll(ctx, esdb.Backwards, esdb.End{}, 1)
	if err != nil || len(evs) == 0 {
		return eventstore.Start, err
	}
	return position(evs[0].Position), nil
}

// Head implements eventstore.Store: the position of the last event of $all
// that is not a system event. Every event the server has indexed is in its
// final order, and reads only see indexed events.
//
// It reads $all backwards one event first (usually enough: the last event
// is rarely a system event), then in pages growing eightfold up to 1024.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	var from esdb.AllPosition = esdb.End{}
	var before *eventstore.Position
	for page := 1; ; page = min(8*page, maxPage) {
		evs, err := s.readAll(ctx, esdb.Backwards, from, page)
		if err != nil {
			return eventstore.Position{}, fmt.Errorf("head of $all: %w", err)
		}
		for _, e := range evs {
			p := position(e.Position)
			if before != nil && !p.Less(*before) {
				continue // the page's start, read again
			}
			if !isSystemStream(e.StreamID) {
				return p, nil
			}
			before = &p
		}
		if len(evs) < page {
			return eventstore.Start, nil
		}
		from = esdb.Position{Commit: before.Commit, Prepare: before.Prepare}
	}
}

// Backlog implements eventstore.Store. KurrentDB cannot count events, so
// Backlog reads them (payloads included) in pages of up to 1024, up to
// limit events that are not system events: the cost grows with limit.
func (s *Store) Backlog(ctx context.Context, from eventstore.Position, limit int) (eventstore.Backlog, error) {
	if limit <= 0 {
		return eventstore.Backlog{}, fmt.Errorf("backlog: limit must be positive")
	}
	var b eventstore.Backlog
	pos := from
	for b.Events < int64(limit) {
		evs, atEnd, err := s.readAllAfter(ctx, pos, int(min(int64(limit)-b.Events, maxPage)))
		if err != nil {
			return eventstore.Backlog{}, fmt.Errorf("backlog: %w", err)
		}
		for _, e := range evs {
			pos = position(e.Position)
			if isSystemStream(e.StreamID) {
				continue
			}
			if b.Events == 0 {
				b.Oldest = e.CreatedDate
			}
			b.Events++
		}
		if atEnd || len(evs) == 0 {
			break
		}
	}
	return b, nil
}
