package kurrentdbtest

import "github.com/google/uuid"

// recentIDs is the weak-idempotency cache: the ids of the most recently
// committed events with where they were written, first in first out
// (notes §3: in memory, capped, not rebuilt on restart). An id written
// twice keeps its latest place.
type recentIDs struct {
	limit int // < 0: disabled
	byID  map[uuid.UUID]place
	order []uuid.UUID // ring of the ids in byID, oldest at head
	head  int
}

// place is where an event was committed.
type place struct {
	stream   string
	revision uint64
}

func newRecentIDs(limit int) *recentIDs {
	return &recentIDs{limit: limit, byID: make(map[uuid.UUID]place)}
}

// add remembers r's id, evicting the oldest id when the cache is full.
func (c *recentIDs) add(r *record) {
	if c.limit < 0 {
		return
	}
	if _, ok := c.byID[r.id]; !ok {
		if len(c.order) < c.limit {
			c.order = append(c.order, r.id)
		} else {
			delete(c.byID, c.order[c.head])
			c.order[c.head] = r.id
			c.head = (c.head + 1) % len(c.order)
		}
	}
	c.byID[r.id] = place{stream: r.stream, revision: r.revision}
}

// lookup returns where id was committed, if it is still cached.
func (c *recentIDs) lookup(id uuid.UUID) (place, bool) {
	p, ok := c.byID[id]
	return p, ok
}

// clear forgets every id.
func (c *recentIDs) clear() {
	clear(c.byID)
	c.order, c.head = nil, 0
}
