package projections_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/projections"
)

// Behind is the backlog of each named, running projection, counted up to
// the limit; other rows (rebuilds, failed projections, names not asked
// about, checkpoints of another event store) are left out.
func TestBehind(t *testing.T) {
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
	set := func(name string, i int, state string) {
		p := positions[i]
		if _, err := e.pool.Exec(ctx, `INSERT INTO projection_checkpoints (name, position_commit, position_prepare, state) VALUES ($1, $2, $3, $4)
			ON CONFLICT (name) DO UPDATE SET position_commit = $2, position_prepare = $3, state = $4`,
			name, int64(p.Commit), int64(p.Prepare), state); err != nil {
			t.Fatal(err)
		}
	}
	set("caught_up", 9, projections.StateRunning)
	set("behind_by_3", 6, projections.StateRunning)
	set("behind_by_3#rebuild", 0, projections.StateRunning)
	set("failed", 0, projections.StateFailed)
	set("removed_long_ago", 0, projections.StateRunning)
	set("elsewhere", 0, projections.StateRunning)
	if _, err := e.pool.Exec(ctx, `UPDATE projection_checkpoints SET event_store = 'kurrentdb' WHERE name = 'elsewhere'`); err != nil {
		t.Fatal(err)
	}
	names := []string{"caught_up", "behind_by_3", "failed", "never_started", "elsewhere"}
	for _, c := range []struct {
		limit int
		want  map[string]int
	}{
		{100, map[string]int{"caught_up": 0, "behind_by_3": 3}},
		{2, map[string]int{"caught_up": 0, "behind_by_3": 2}},
	} {
		got, err := projections.Behind(ctx, e.pool, e.store, projections.DefaultEventStore, names, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("limit %d: %v, want %v", c.limit, got, c.want)
		}
	}
}
