package batch_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/batch"
)

type item struct {
	n    int
	done chan struct{}
}

// Every submitted item is executed exactly once, batches respect their
// limits, and no more than MaxInFlight batches run at once.
func TestEveryItemOnceWithinLimits(t *testing.T) {
	var (
		running, peak, batches atomic.Int64
		mu                     sync.Mutex
		seen                   = map[int]int{}
	)
	c := &batch.Combiner[*item]{MaxBatch: 7, MaxInFlight: 3}
	c.Exec = func(b []*item) {
		if len(b) == 0 || len(b) > 7 {
			t.Errorf("batch of %d", len(b))
		}
		now := running.Add(1)
		for {
			p := peak.Load()
			if now <= p || peak.CompareAndSwap(p, now) {
				break
			}
		}
		batches.Add(1)
		time.Sleep(100 * time.Microsecond) // a batch takes time, so others queue up
		mu.Lock()
		for _, it := range b {
			seen[it.n]++
		}
		mu.Unlock()
		running.Add(-1)
		for _, it := range b {
			close(it.done)
		}
	}
	const n = 5000
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			it := &item{n: i, done: make(chan struct{})}
			c.Submit(it)
			select {
			case <-it.done:
			case <-time.After(30 * time.Second):
				t.Errorf("item %d stranded", i)
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if seen[i] != 1 {
			t.Fatalf("item %d executed %d times", i, seen[i])
		}
	}
	if p := peak.Load(); p > 3 {
		t.Fatalf("%d batches ran at once, limit 3", p)
	}
	if b := batches.Load(); b >= n {
		t.Fatalf("%d batches for %d items: nothing was combined", b, n)
	}
	// Idle again: a new item still gets a batch.
	it := &item{n: -1, done: make(chan struct{})}
	c.Submit(it)
	select {
	case <-it.done:
	case <-time.After(30 * time.Second):
		t.Fatal("an idle combiner stranded an item")
	}
}
