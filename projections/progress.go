package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orders-reference/orders/eventstore"
)

// Progress lets readers wait until a projection has passed a position
// (read-your-writes). Runners in this process wake waiters at once through
// Applied; runners elsewhere are noticed by a short poll of the checkpoint.
type Progress struct {
	pool *pgxpool.Pool
	poll time.Duration

	mu   sync.Mutex
	wake chan struct{} // closed and replaced on every Applied
}

// NewProgress returns a Progress over the read-model database.
func NewProgress(pool *pgxpool.Pool) *Progress {
	return &Progress{pool: pool, poll: 50 * time.Millisecond, wake: make(chan struct{})}
}

// Applied is a Runner's Options.OnApplied: it wakes the waiters.
func (p *Progress) Applied(string, eventstore.Position) {
	p.mu.Lock()
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
}

// Checkpoint returns where projection name stands.
func (p *Progress) Checkpoint(ctx context.Context, name string) (eventstore.Position, error) {
	var c, pr int64
	err := p.pool.QueryRow(ctx, `SELECT position_commit, position_prepare FROM projection_checkpoints WHERE name = $1`, name).Scan(&c, &pr)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Start, nil
	}
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("checkpoint of %s: %w", name, err)
	}
	return eventstore.Position{Commit: uint64(c), Prepare: uint64(pr)}, nil
}

// WaitFor returns once projection name has passed pos, or ctx's error.
func (p *Progress) WaitFor(ctx context.Context, name string, pos eventstore.Position) error {
	for {
		p.mu.Lock()
		wake := p.wake
		p.mu.Unlock()
		cp, err := p.Checkpoint(ctx, name)
		if err != nil {
			return err
		}
		if !cp.Less(pos) {
			return nil
		}
		t := time.NewTimer(p.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}
