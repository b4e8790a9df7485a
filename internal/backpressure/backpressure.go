// Package backpressure holds new orders back while the asynchronous side of
// the deployment (the projections and the process manager) is too far
// behind, so that a load above what the saga can finish slows intake instead
// of growing a backlog of unpaid orders, and the stock they hold, without
// bound.
//
// A Gate reads how far behind the deployment is every Poll (a Probe, one
// bounded query) and admits work at once while that is below MaxBacklog.
// Above it, Admit waits up to MaxWait for the backlog to fall, then refuses
// with ErrBehind (answered 503 with Retry-After). Only new work waits: a
// replayed Idempotency-Key is answered from its order without Admit. The
// same idea as TCP's receive window or a bounded queue in front of a
// consumer: intake is paced by what is consumed.
package backpressure

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// ErrBehind: the deployment stayed too far behind for the whole wait.
var ErrBehind = errors.New("the service is too far behind with its backlog")

// Probe reports how far behind the deployment is (events not yet applied
// by its slowest projection, steps due but not run), counting at most
// limit: beyond the limit the exact size does not matter.
type Probe func(ctx context.Context, limit int) (int, error)

// Options tune a Gate; zero values take the defaults.
type Options struct {
	// MaxBacklog is the backlog at which new work starts to wait (default
	// 10,000: about a second and a half of a 2-core machine's full rate).
	MaxBacklog int
	// Poll is how often the backlog is read (default 200 ms).
	Poll time.Duration
	// MaxWait bounds one Admit's wait (default 2 s).
	MaxWait time.Duration
	// OnHold, if set, is told each time the gate closes (true) and opens
	// (false), for metrics and logs.
	OnHold func(holding bool, backlog int)
	Logger *slog.Logger
}

// Gate admits new work while the backlog is below Options.MaxBacklog.
type Gate struct {
	probe Probe
	opts  Options

	mu      sync.Mutex
	holding bool
	open    chan struct{} // closed when the gate opens again
}

// New returns a gate reading the backlog with probe; it holds nothing back
// until Run has read a backlog above the limit.
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
	return &Gate{probe: probe, opts: opts, open: make(chan struct{})}
}

// Run reads the backlog every Poll until ctx ends. A failed read leaves the
// gate as it was and is logged: a database that cannot be read fails the
// placements' own appends anyway.
func (g *Gate) Run(ctx context.Context) error {
	t := time.NewTicker(g.opts.Poll)
	defer t.Stop()
	for {
		n, err := g.probe(ctx, g.opts.MaxBacklog)
		switch {
		case err != nil && ctx.Err() == nil:
			g.opts.Logger.WarnContext(ctx, "reading the backlog for backpressure failed", "error", err)
		case err == nil:
			g.set(n >= g.opts.MaxBacklog, n)
		}
		select {
		case <-ctx.Done():
			g.set(false, 0) // nothing will open it again
			return nil
		case <-t.C:
		}
	}
}

func (g *Gate) set(holding bool, backlog int) {
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
		g.opts.OnHold(holding, backlog)
	}
}

// Admit returns at once while the backlog is below the limit; otherwise it
// waits until it falls below, for at most MaxWait, and returns ErrBehind if
// it did not (or ctx's error if ctx ended first).
func (g *Gate) Admit(ctx context.Context) error {
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
	case <-ctx.Done():
		return ctx.Err()
	}
}
