// Package batch combines concurrent requests into batches (group commit).
//
// A Combiner runs at most MaxInFlight batches at once, each of at most
// MaxBatch requests. A submission that finds a free slot starts a goroutine
// that runs batches until the queue is empty, so nothing runs while nothing
// is queued and nothing needs closing. Callers wait for their own request
// (and their context) themselves: no caller is held up by running a batch.
package batch

import "sync"

// Combiner groups the items submitted to it and hands them to Exec.
type Combiner[T any] struct {
	// Exec runs one batch. It must complete every item (the Combiner does
	// not wait for anything itself).
	Exec        func(batch []T)
	MaxBatch    int
	MaxInFlight int

	mu       sync.Mutex
	pending  []T
	inFlight int
}

// Submit queues item and makes sure a batch will take it.
func (c *Combiner[T]) Submit(item T) {
	c.mu.Lock()
	c.pending = append(c.pending, item)
	run := c.inFlight < max(c.MaxInFlight, 1)
	if run {
		c.inFlight++
	}
	c.mu.Unlock()
	if run {
		go c.drain()
	}
}

// drain runs batches until the queue is empty, then frees its slot.
func (c *Combiner[T]) drain() {
	for b := c.take(); b != nil; b = c.take() {
		c.Exec(b)
	}
}

// take removes the next batch from the queue; with an empty queue it frees
// the caller's slot and returns nil.
func (c *Combiner[T]) take() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		c.inFlight--
		return nil
	}
	n := min(len(c.pending), max(c.MaxBatch, 1))
	b := c.pending[:n:n]
	c.pending = append([]T(nil), c.pending[n:]...)
	return b
}
