// Package memory is an in-memory event store for unit tests of aggregates
// and handlers. It implements the full eventstore.Store contract (the
// acceptance suite in package storetest runs against it) but keeps nothing
// after the process ends.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/internal/pause"
)

// Store is an in-memory event store. The zero value is not usable; call New.
type Store struct {
	// beforeCommit, if set, runs in Append after validation and before the
	// events become visible (a stand-in for work inside a transaction).
	beforeCommit func(ctx context.Context)
	now          func() time.Time
	// interval is the least time between two batches of a caught-up
	// subscription (WithDeliveryInterval; zero: none).
	interval time.Duration

	mu      sync.RWMutex
	log     []eventstore.RecordedEvent // log[i] has position i+1
	streams map[string][]int           // stream -> indexes into log
	byID    map[uuid.UUID]int
	changed chan struct{} // closed and replaced on every append
}

var _ eventstore.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithBeforeCommit runs f inside every Append before its events become
// visible, to widen race windows in tests.
func WithBeforeCommit(f func(ctx context.Context)) Option {
	return func(s *Store) { s.beforeCommit = f }
}

// WithDeliveryInterval paces caught-up subscriptions as the real adapters
// do (their Options.DeliveryInterval): at most one batch per d, the first
// after a quiet d at once. Without it every append is handed over at once.
func WithDeliveryInterval(d time.Duration) Option {
	return func(s *Store) { s.interval = d }
}

// WithClock sets the clock that stamps RecordedAt.
func WithClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// New returns an empty Store.
func New(opts ...Option) *Store {
	s := &Store{
		now:     time.Now,
		streams: make(map[string][]int),
		byID:    make(map[uuid.UUID]int),
		changed: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func position(i int) eventstore.Position {
	return eventstore.Position{Commit: uint64(i + 1), Prepare: uint64(i + 1)}
}

// Append implements eventstore.Store with the same semantics as the
// PostgreSQL store, including idempotent retries.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	events, err := eventstore.PrepareAppend(stream, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %q: %w", stream, err)
	}
	if s.beforeCommit != nil {
		s.beforeCommit(ctx)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	idx := s.streams[stream]
	current := int64(len(idx)) - 1

	if res, ok, err := s.retried(stream, expected, current, events); ok || err != nil {
		return res, err
	}
	if !expected.Satisfied(current) {
		return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{StreamID: stream, Expected: expected, Actual: current}
	}
	for _, e := range events {
		if _, dup := s.byID[e.ID]; dup {
			return eventstore.AppendResult{}, fmt.Errorf("append to %q: %w: %s", stream, eventstore.ErrDuplicateEventID, e.ID)
		}
	}
	now := s.now().UTC()
	for i, e := range events {
		pos := len(s.log)
		s.log = append(s.log, eventstore.RecordedEvent{
			ID:         e.ID,
			StreamID:   stream,
			Version:    current + 1 + int64(i),
			Position:   position(pos),
			Type:       e.Type,
			Data:       slices.Clone(e.Data),
			Metadata:   e.Metadata,
			RecordedAt: now,
		})
		idx = append(idx, pos)
		s.byID[e.ID] = pos
	}
	s.streams[stream] = idx
	close(s.changed)
	s.changed = make(chan struct{})
	last := s.log[len(s.log)-1]
	return eventstore.AppendResult{Version: last.Version, Position: last.Position, RecordedAt: last.RecordedAt}, nil
}

// retried recognises a retry of an append that already happened: the same
// event ids stored where this append would have put them. It mirrors the
// PostgreSQL function es_append.
func (s *Store) retried(stream string, expected eventstore.ExpectedVersion, current int64, events []eventstore.EventData) (eventstore.AppendResult, bool, error) {
	var first int64
	switch {
	case expected.IsAny() || expected.IsStreamExists():
		pos, ok := s.byID[events[0].ID]
		if !ok || s.log[pos].StreamID != stream {
			return eventstore.AppendResult{}, false, nil
		}
		first = s.log[pos].Version
	case expected.Satisfied(current):
		return eventstore.AppendResult{}, false, nil
	default:
		v, _ := expected.ExactVersion() // NoStream: 0 - 1 + 1
		if expected.IsNoStream() {
			v = eventstore.NoVersion
		}
		first = v + 1
	}
	idx := s.streams[stream]
	for i, e := range events {
		v := first + int64(i)
		if v >= int64(len(idx)) || s.log[idx[v]].ID != e.ID {
			if expected.IsAny() || expected.IsStreamExists() {
				return eventstore.AppendResult{}, false, fmt.Errorf("append to %q: %w: the events are stored but not as this append would store them", stream, eventstore.ErrDuplicateEventID)
			}
			return eventstore.AppendResult{}, false, &eventstore.WrongExpectedVersionError{StreamID: stream, Expected: expected, Actual: current}
		}
	}
	last := s.log[idx[first+int64(len(events))-1]]
	return eventstore.AppendResult{Version: last.Version, Position: last.Position, Replayed: true}, true, nil
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read stream %q: %w", stream, err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("read stream %q: limit must be positive", stream)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx, ok := s.streams[stream]
	if !ok {
		return nil, fmt.Errorf("read stream %q: %w", stream, eventstore.ErrStreamNotFound)
	}
	var out []eventstore.RecordedEvent
	if dir == eventstore.Backward {
		if from < 0 || from >= int64(len(idx)) {
			from = int64(len(idx)) - 1
		}
		for v := from; v >= 0 && len(out) < limit; v-- {
			out = append(out, s.log[idx[v]])
		}
		return out, nil
	}
	for v := max(from, 0); v < int64(len(idx)) && len(out) < limit; v++ {
		out = append(out, s.log[idx[v]])
	}
	return out, nil
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, limit int, filter eventstore.Filter) (eventstore.Page, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Page{}, fmt.Errorf("read all: %w", err)
	}
	if limit <= 0 {
		return eventstore.Page{}, fmt.Errorf("read all: limit must be positive")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	// log[i] is at (i+1, i+1): the first one after (c, p) is log[c], or
	// log[c-1] when p < c puts from just before that event.
	c := from.Commit
	if c > 0 && from.Prepare < c {
		c--
	}
	start := int(min(c, uint64(len(s.log))))
	page := eventstore.Page{Next: from}
	i := start
	for ; i < len(s.log) && page.Scanned < limit; i++ {
		e := s.log[i]
		page.Scanned++
		page.Next = e.Position
		if filter.Match(e.StreamID, e.Type) {
			page.Events = append(page.Events, e)
		}
	}
	// Like PostgreSQL, a full page does not know whether more follows.
	page.AtEnd = page.Scanned < limit
	return page, nil
}

// Subscribe implements eventstore.Store.
func (s *Store) Subscribe(ctx context.Context, from eventstore.Position, opts eventstore.SubscribeOptions, handle eventstore.BatchHandler) error {
	size := opts.BatchSize
	if size <= 0 {
		size = 256
	}
	pos := from
	var handed time.Time // when the last batch was handed over
	for {
		s.mu.RLock()
		changed := s.changed
		s.mu.RUnlock()
		page, err := s.ReadAll(ctx, pos, size, opts.Filter)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if page.Scanned > 0 {
			handed = time.Now()
			if err := handle(ctx, eventstore.Batch{Events: page.Events, Checkpoint: page.Next}); err != nil {
				return fmt.Errorf("subscription handler at %s: %w", page.Next, err)
			}
		}
		pos = page.Next
		if page.AtEnd {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-changed:
			}
			if err := pause.For(ctx, s.interval-time.Since(handed)); err != nil {
				return err
			}
		}
	}
}

// Backlog implements eventstore.Store.
func (s *Store) Backlog(ctx context.Context, from eventstore.Position, limit int) (eventstore.Backlog, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Backlog{}, fmt.Errorf("backlog: %w", err)
	}
	if limit <= 0 {
		return eventstore.Backlog{}, fmt.Errorf("backlog: limit must be positive")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := sort.Search(len(s.log), func(i int) bool { return from.Less(s.log[i].Position) })
	if i == len(s.log) {
		if from != eventstore.Start && (len(s.log) == 0 || s.log[len(s.log)-1].Position.Less(from)) {
			return eventstore.Backlog{}, fmt.Errorf("backlog: %w: %s is beyond the last event", eventstore.ErrPositionNotInStore, from)
		}
		return eventstore.Backlog{}, nil
	}
	return eventstore.Backlog{Events: int64(min(len(s.log)-i, limit)), Oldest: s.log[i].RecordedAt}, nil
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Position{}, fmt.Errorf("head: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.log) == 0 {
		return eventstore.Start, nil
	}
	return s.log[len(s.log)-1].Position, nil
}
