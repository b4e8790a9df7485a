// Package backpressure holds new orders back while the asynchronous side of
// the deployment (the projections and the process manager) is too far
// behind, so that a load above what the saga can finish slows intake instead
// of growing a backlog of unpaid orders, and the stock they hold, without
// bound.
//
// A Gate reads every Poll how far behind each source of work is (a Probe:
// bounded queries) and admits work at once while every source is below
// MaxBacklog. Once one reaches it, Admit waits for all of them to fall below
// three quarters of it (hysteresis, so the gate does not flap at the line),
// up to MaxWait, then refuses with ErrBehind (answered 503 with
// Retry-After). The same idea as a bounded queue in front of a consumer:
// intake is paced by what is consumed.
//
// The gate fails open: a source paces intake only once this gate has seen it
// below the limit (a read model added to a deployment with a long history,
// or one far behind when the process starts, catches up on its own time
// rather than stopping every order until it has), and a probe that fails
// for longer than MaxWait opens the gate (the placements' own appends fail
// if the database is really gone).
package backpressure

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// ErrBehind: the deployment stayed too far behind for the whole wait, or
// the gate no longer runs (the process is shutting down).
var ErrBehind = errors.New("the service is too far behind with its backlog")

// Source is one kind of work the deployment has yet to do: a projection's
// events after its checkpoint, or the process manager's due steps.
type Source struct {
	Name    string
	Backlog int
}

// Probe reports the backlog of every source, each counted up to limit:
// beyond the limit the exact size does not matter.
type Probe func(ctx context.Context, limit int) ([]Source, error)

// Options tune a Gate; zero values take the defaults.
type Options struct {
	// MaxBacklog is the backlog of one source at which new work starts to
	// wait (default 10,000: about a second and a half of a 2-core
	// machine's full rate).
	MaxBacklog int
	// Poll is how often the backlog is read (default 200 ms).
	Poll time.Duration
	// MaxWait bounds one Admit's wait (default 2 s).
	MaxWait time.Duration
	// OnHold, if set, is told each time the gate closes (holding true, with
	// the source that closed it) and opens again (false).
	OnHold func(holding bool, cause Source)
	Logger *slog.Logger
}

// Gate admits new work while every armed source is below MaxBacklog.
type Gate struct {
	probe Probe
	opts  Options
	armed map[string]bool // sources seen below the limit; only Run uses it

	mu      sync.Mutex
	holding bool
	open    chan struct{} // closed when the gate opens again
	stopped chan struct{} // closed when Run ends
}

// New returns a gate reading the backlog with probe; it holds nothing back
// until Run has read a backlog at the limit.
func New(probe Probe, opts Options) *Gate {
	if opts.MaxBacklog <= 0 {
		opts.MaxBacklog = 10_000
	}
	if opts.Poll <= 0 {
		opts.Poll = 200 * time.Millisecond
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Gate{probe: probe, opts: opts, armed: map[string]bool{},
		open: make(chan struct{}), stopped: make(chan struct{})}
}

// Run reads the backlog every Poll until ctx ends; then Admit refuses.
func (g *Gate) Run(ctx context.Context) error {
	defer close(g.stopped)
	t := time.NewTicker(g.opts.Poll)
	defer t.Stop()
	lastRead := time.Now()
	failing := false
	for {
		sources, err := g.read(ctx)
		switch {
		case err == nil:
			if failing {
				g.opts.Logger.InfoContext(ctx, "backpressure: reading the backlog works again")
				failing = false
			}
			lastRead = time.Now()
			g.decide(sources)
		case ctx.Err() != nil:
		default:
			if !failing { // once per outage, not every poll
				g.opts.Logger.WarnContext(ctx, "backpressure: reading the backlog failed; the gate opens if it keeps failing", "error", err)
				failing = true
			}
			if time.Since(lastRead) > g.opts.MaxWait {
				g.set(false, Source{})
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// read runs the probe, bounded so that a hung query cannot freeze the gate.
func (g *Gate) read(ctx context.Context) ([]Source, error) {
	ctx, cancel := context.WithTimeout(ctx, max(5*g.opts.Poll, time.Second))
	defer cancel()
	return g.probe(ctx, g.opts.MaxBacklog)
}

// decide closes the gate when an armed source reaches the limit and opens it
// when every armed source is below three quarters of it.
func (g *Gate) decide(sources []Source) {
	var worst Source
	for _, s := range sources {
		if s.Backlog < g.opts.MaxBacklog {
			g.armed[s.Name] = true
		}
		if g.armed[s.Name] && s.Backlog > worst.Backlog {
			worst = s
		}
	}
	g.mu.Lock()
	holding := g.holding
	g.mu.Unlock()
	switch {
	case !holding && worst.Backlog >= g.opts.MaxBacklog:
		g.set(true, worst)
	case holding && worst.Backlog < g.opts.MaxBacklog*3/4:
		g.set(false, worst)
	}
}

func (g *Gate) set(holding bool, cause Source) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if holding == g.holding {
		return
	}
	g.holding = holding
	if !holding {
		close(g.open)
		g.open = make(chan struct{})
	}
	if g.opts.OnHold != nil {
		g.opts.OnHold(holding, cause)
	}
}

// Admit returns at once while the gate is open; otherwise it waits until it
// opens, for at most MaxWait, and returns ErrBehind if it did not (or ctx's
// error if ctx ended first). Once Run has ended it returns ErrBehind.
func (g *Gate) Admit(ctx context.Context) error {
	select {
	case <-g.stopped:
		return ErrBehind
	default:
	}
	g.mu.Lock()
	holding, open := g.holding, g.open
	g.mu.Unlock()
	if !holding {
		return nil
	}
	t := time.NewTimer(g.opts.MaxWait)
	defer t.Stop()
	select {
	case <-open:
		return nil
	case <-t.C:
		return ErrBehind
	case <-g.stopped:
		return ErrBehind
	case <-ctx.Done():
		return ctx.Err()
	}
}
