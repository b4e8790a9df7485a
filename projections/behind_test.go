package projections_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/projections"
)

// MaxBehind is the backlog of the live projection furthest behind, counted
// up to the limit; rebuilds and failed projections do not count.
func TestMaxBehind(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := ctxT(t)
	var positions []eventstore.Position
	for i := range 10 {
		res, err := e.store.Append(ctx, fmt.Sprintf("test-%d", i), eventstore.NoStream,
			eventstore.EventData{ID: uuid.New(), Type: "test", Data: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		positions = append(positions, res.Position)
	}
	at := func(i int) (int64, int64) {
		return int64(positions[i].Commit), int64(positions[i].Prepare)
	}
	set := func(name string, i int, state string) {
		c, p := at(i)
		if _, err := e.pool.Exec(ctx, `INSERT INTO projection_checkpoints (name, position_commit, position_prepare, state) VALUES ($1, $2, $3, $4)
			ON CONFLICT (name) DO UPDATE SET position_commit = $2, position_prepare = $3, state = $4`, name, c, p, state); err != nil {
			t.Fatal(err)
		}
	}
	set("caught_up", 9, projections.StateRunning)
	set("behind_by_3", 6, projections.StateRunning)
	set("rebuilding#rebuild", 0, projections.StateRunning) // 9 behind: not counted
	set("failed", 0, projections.StateFailed)              // 9 behind: not counted
	for _, c := range []struct{ limit, want int }{{100, 3}, {2, 2}} {
		got, err := projections.MaxBehind(ctx, e.pool, e.store, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("limit %d: %d behind, want %d", c.limit, got, c.want)
		}
	}
	set("behind_by_3", 1, projections.StateRunning)
	if got, err := projections.MaxBehind(ctx, e.pool, e.store, 100); err != nil || got != 8 {
		t.Fatalf("after moving back: %d behind (%v), want 8", got, err)
	}
}
