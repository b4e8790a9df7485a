package backpressure_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orders-reference/orders/internal/backpressure"
	"github.com/orders-reference/orders/internal/eventually"
)

// probe reports the backlogs the test sets, counting its reads.
type probe struct {
	mu      sync.Mutex
	backlog map[string]int
	fail    bool
	reads   atomic.Int64
}

func (p *probe) set(name string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backlog[name] = n
}

func (p *probe) failing(f bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = f
}

func (p *probe) read(_ context.Context, limit int) ([]backpressure.Source, error) {
	defer p.reads.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return nil, errors.New("database unreachable")
	}
	var out []backpressure.Source
	for name, n := range p.backlog {
		out = append(out, backpressure.Source{Name: name, Backlog: min(n, limit)})
	}
	return out, nil
}

// seen waits until the gate has read the probe twice more, so that what the
// test set has been acted on.
func (p *probe) seen(t *testing.T) {
	t.Helper()
	from := p.reads.Load()
	eventually.True(t, "the gate reads the backlog", func() bool { return p.reads.Load() >= from+2 })
}

// overLimit arms source "a" below the limit of 100, then puts it over,
// each seen by the gate.
func (p *probe) overLimit(t *testing.T) {
	t.Helper()
	p.seen(t)
	p.set("a", 1000)
	p.seen(t)
}

type gate struct {
	*backpressure.Gate
	mu      sync.Mutex
	changes []bool
	stop    func()
}

func start(t *testing.T, p *probe, opts backpressure.Options) *gate {
	t.Helper()
	g := &gate{}
	opts.Poll = time.Millisecond
	opts.OnHold = func(holding bool, _ backpressure.Source) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.changes = append(g.changes, holding)
	}
	g.Gate = backpressure.New(p.read, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	g.stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(g.stop)
	return g
}

func (g *gate) told() []bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]bool(nil), g.changes...)
}

// admit starts an Admit and returns its result channel.
func admit(g *gate) <-chan error {
	c := make(chan error, 1)
	go func() { c <- g.Admit(context.Background()) }()
	return c
}

func waiting(t *testing.T, c <-chan error, what string) {
	t.Helper()
	select {
	case err := <-c:
		t.Fatalf("%s: admitted (%v)", what, err)
	default:
	}
}

func released(t *testing.T, c <-chan error, want error) {
	t.Helper()
	select {
	case err := <-c:
		if !errors.Is(err, want) {
			t.Fatalf("Admit: %v, want %v", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Admit still waiting")
	}
}

func TestGateHoldsAtTheLimitAndReleasesBelowThreeQuarters(t *testing.T) {
	t.Parallel()
	p := &probe{backlog: map[string]int{"a": 0, "b": 99}}
	g := start(t, p, backpressure.Options{MaxBacklog: 100, MaxWait: time.Hour})
	p.seen(t)
	released(t, admit(g), nil) // below the limit

	p.set("b", 100)
	p.seen(t)
	held := admit(g)
	p.seen(t)
	waiting(t, held, "at the limit")
	p.set("b", 80) // below the limit, above three quarters: still held
	p.seen(t)
	waiting(t, held, "between three quarters and the limit")
	p.set("b", 74)
	released(t, held, nil)
	p.seen(t)
	if got := g.told(); len(got) != 2 || !got[0] || got[1] {
		t.Fatalf("OnHold told %v, want [true false]", got)
	}
}

// A source first seen at or above the limit (a read model added to a long
// history, one far behind when the process starts) does not hold intake
// back until it has caught up once.
func TestGateArmsASourceOnceItIsBelowTheLimit(t *testing.T) {
	t.Parallel()
	p := &probe{backlog: map[string]int{"new_read_model": 5000}}
	g := start(t, p, backpressure.Options{MaxBacklog: 100, MaxWait: time.Hour})
	p.seen(t)
	released(t, admit(g), nil) // a source never seen below the limit does not hold
	p.set("new_read_model", 10)
	p.seen(t)
	p.set("new_read_model", 5000)
	p.seen(t)
	waiting(t, admit(g), "an armed source at the limit")
}

func TestGateRefusesAfterMaxWaitAndWhenStopped(t *testing.T) {
	t.Parallel()
	p := &probe{backlog: map[string]int{"a": 0}}
	g := start(t, p, backpressure.Options{MaxBacklog: 100, MaxWait: 20 * time.Millisecond})
	p.overLimit(t)
	if err := g.Admit(context.Background()); !errors.Is(err, backpressure.ErrBehind) {
		t.Fatalf("after MaxWait: %v, want ErrBehind", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Admit(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller: %v", err)
	}
	p.set("a", 0)
	p.seen(t)
	g.stop()
	if err := g.Admit(context.Background()); !errors.Is(err, backpressure.ErrBehind) {
		t.Fatalf("after Run ended: %v, want ErrBehind", err)
	}
}

// A probe that keeps failing opens the gate after MaxWait: the placements'
// own appends fail if the database is really gone.
func TestGateFailsOpen(t *testing.T) {
	t.Parallel()
	p := &probe{backlog: map[string]int{"a": 0}}
	g := start(t, p, backpressure.Options{MaxBacklog: 100, MaxWait: 50 * time.Millisecond})
	p.overLimit(t)
	held := make(chan error, 1)
	go func() { held <- g.Admit(context.Background()) }()
	p.failing(true)
	eventually.True(t, "the gate opens while the probe fails", func() bool {
		got := g.told()
		return len(got) == 2 && !got[1]
	})
	if err := g.Admit(context.Background()); err != nil {
		t.Fatalf("open gate: %v", err)
	}
	<-held // released or refused: either way it ended
}
