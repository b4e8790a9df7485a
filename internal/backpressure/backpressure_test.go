package backpressure_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/backpressure"
	"github.com/orders-reference/orders/internal/eventually"
)

// probe reports the backlog the test sets, counting its reads.
type probe struct {
	backlog atomic.Int64
	reads   atomic.Int64
	fail    atomic.Bool
}

func (p *probe) read(_ context.Context, limit int) (int, error) {
	p.reads.Add(1)
	if p.fail.Load() {
		return 0, errors.New("database unreachable")
	}
	return min(int(p.backlog.Load()), limit), nil
}

// waitReads waits until the gate has read the probe n more times, so that
// what the test set has been seen.
func (p *probe) waitReads(t *testing.T, n int64) {
	t.Helper()
	from := p.reads.Load()
	eventually.True(t, "the gate reads the backlog", func() bool { return p.reads.Load() >= from+n })
}

func start(t *testing.T, p *probe, opts backpressure.Options) *backpressure.Gate {
	t.Helper()
	opts.Poll = time.Millisecond
	g := backpressure.New(p.read, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return g
}

func TestGate(t *testing.T) {
	t.Parallel()
	var changes []bool
	p := &probe{}
	g := start(t, p, backpressure.Options{MaxBacklog: 100, MaxWait: time.Hour,
		OnHold: func(holding bool, _ int) { changes = append(changes, holding) }})
	p.waitReads(t, 1)

	// Below the limit: admitted at once.
	p.backlog.Store(99)
	p.waitReads(t, 2)
	if err := g.Admit(context.Background()); err != nil {
		t.Fatalf("below the limit: %v", err)
	}

	// At the limit: held until the backlog falls.
	p.backlog.Store(100)
	p.waitReads(t, 2)
	admitted := make(chan error, 1)
	go func() { admitted <- g.Admit(context.Background()) }()
	p.waitReads(t, 5)
	select {
	case err := <-admitted:
		t.Fatalf("admitted while the backlog is at the limit: %v", err)
	default:
	}
	// A failed read changes nothing: still held.
	p.fail.Store(true)
	p.waitReads(t, 5)
	select {
	case err := <-admitted:
		t.Fatalf("admitted after a failed read: %v", err)
	default:
	}
	p.fail.Store(false)
	p.backlog.Store(10)
	select {
	case err := <-admitted:
		if err != nil {
			t.Fatalf("released with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not released once the backlog fell")
	}
	p.waitReads(t, 2)
	if len(changes) != 2 || !changes[0] || changes[1] {
		t.Fatalf("OnHold told %v, want [true false]", changes)
	}
}

func TestGateRefusesAfterMaxWait(t *testing.T) {
	t.Parallel()
	p := &probe{}
	p.backlog.Store(1000)
	g := start(t, p, backpressure.Options{MaxBacklog: 100, MaxWait: 20 * time.Millisecond})
	p.waitReads(t, 2)
	if err := g.Admit(context.Background()); !errors.Is(err, backpressure.ErrBehind) {
		t.Fatalf("after MaxWait: %v, want ErrBehind", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Admit(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller: %v", err)
	}
}
