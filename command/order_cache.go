package command

import (
	"sync"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/orders-reference/orders/command/order"
	"github.com/orders-reference/orders/eventstore"
)

// loadedOrder is an order as this process read or wrote it last.
type loadedOrder struct {
	st *order.State
	// decided is the global position of the event that decided the
	// placement (order version 1), or Start while it is undecided or not
	// known (product.State.Stray).
	decided eventstore.Position
	// correlation is the correlation id the order was placed with.
	correlation string
	// fresh: read from the event store just now, not from the cache.
	fresh bool
	// appended: an append of this process brought the order to its
	// version, and reported the transition (rather than a read, or an
	// append the store recognised as a replay).
	appended bool
}

// orderCache keeps the orders this process touched last, so that a saga's
// next command does not read the order's stream again (a bounded LRU).
//
// What it holds is always a prefix of the order's stream: events are only
// ever appended, and an entry is stored only after its events were read or
// appended. So a decision made on a cached order is safe exactly when it is
// appended: the append's expected version fails if the stream moved on
// (another process wrote to it), and the command reloads and decides again.
// A decision to do nothing, or a refusal, is never trusted on a cached
// order (decideOrder reloads first), and readers that act outside the
// stream (calls to the payment provider) read the stream itself.
type orderCache struct {
	mu      sync.Mutex // makes get-and-clone and put atomic per entry
	entries *lru.Cache[uuid.UUID, loadedOrder]
}

// DefaultOrderCacheSize is the order cache's default size, in orders.
const DefaultOrderCacheSize = 10_000

func newOrderCache(size int) *orderCache {
	if size <= 0 {
		size = DefaultOrderCacheSize
	}
	entries, err := lru.New[uuid.UUID, loadedOrder](size)
	if err != nil {
		panic(err) // only for a size <= 0, excluded above
	}
	return &orderCache{entries: entries}
}

// get returns a copy of the cached order, which the caller may change.
func (c *orderCache) get(id uuid.UUID) (loadedOrder, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries.Get(id)
	if !ok {
		return loadedOrder{}, false
	}
	e.st, e.fresh = e.st.Clone(), false
	return e, true
}

// put stores a copy of o, unless the cache holds a later version already
// (two commands of one order finishing out of order). For an order that
// an append of this process has just brought to its version (o.appended),
// it reports whether another such append had brought the cached order to
// that same version already: this append was then a replay of that one
// (the stream is the same prefix either way), whose transition that one
// reports.
func (c *orderCache) put(o loadedOrder) (repeated bool) {
	o.st, o.fresh = o.st.Clone(), false
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries.Peek(o.st.ID); ok && old.st.Version >= o.st.Version {
		if old.st.Version > o.st.Version {
			return false
		}
		if old.appended && o.appended {
			return true
		}
		o.appended = o.appended || old.appended
	}
	c.entries.Add(o.st.ID, o)
	return false
}

// has reports whether the cache holds order id.
func (c *orderCache) has(id uuid.UUID) bool { return c.entries.Contains(id) }

// forget drops an order whose last append has an unknown outcome.
func (c *orderCache) forget(id uuid.UUID) { c.entries.Remove(id) }
