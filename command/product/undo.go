package product

import (
	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore"
)

// undoLog remembers what Apply changed since a savepoint: the scalar
// fields, and the previous entries of the order keys it touched, so that a
// batch of decisions refused by the event store (a version conflict) is
// undone in time proportional to what it touched rather than to the
// state's size (a hot product holds many open reservations).
type undoLog struct {
	scalars State // open, at and undo left nil
	open    map[uuid.UUID]*int64
	at      map[uuid.UUID]*eventstore.Position
}

// Savepoint starts recording Applies so that Rollback can undo them. Keep
// ends the recording.
func (s *State) Savepoint() {
	scalars := *s
	scalars.open, scalars.at, scalars.undo = nil, nil, nil
	s.undo = &undoLog{scalars: scalars, open: map[uuid.UUID]*int64{}, at: map[uuid.UUID]*eventstore.Position{}}
}

// Rollback undoes every Apply since Savepoint.
func (s *State) Rollback() {
	u := s.undo
	if u == nil {
		return
	}
	open, at := s.open, s.at
	*s = u.scalars
	s.open, s.at = open, at
	for order, q := range u.open {
		if q == nil {
			delete(s.open, order)
		} else {
			s.open[order] = *q
		}
	}
	for order, p := range u.at {
		if p == nil {
			delete(s.at, order)
		} else {
			if s.at == nil {
				s.at = map[uuid.UUID]eventstore.Position{}
			}
			s.at[order] = *p
		}
	}
}

// Keep ends the savepoint, keeping the Applies since it.
func (s *State) Keep() { s.undo = nil }

// touch records order's open entry before Apply changes it.
func (s *State) touch(order uuid.UUID) {
	if s.undo == nil {
		return
	}
	if _, seen := s.undo.open[order]; !seen {
		if q, ok := s.open[order]; ok {
			s.undo.open[order] = &q
		} else {
			s.undo.open[order] = nil
		}
		if p, ok := s.at[order]; ok {
			s.undo.at[order] = &p
		} else {
			s.undo.at[order] = nil
		}
	}
}
