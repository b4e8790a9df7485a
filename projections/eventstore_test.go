package projections_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/orders-reference/orders/command"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/kurrentdb/kurrentdbtest"
	"github.com/orders-reference/orders/internal/eventstores"
	"github.com/orders-reference/orders/internal/eventually"
	"github.com/orders-reference/orders/internal/logging/logtest"
	"github.com/orders-reference/orders/internal/pgtest"
	"github.com/orders-reference/orders/projections"
	"github.com/orders-reference/orders/query/orders"
	"github.com/orders-reference/orders/query/products"
)

// A checkpoint records the kind of event store its position belongs to. A
// runner of another kind refuses it, moving nothing, and is listed as of
// that store with nothing counted against it; a rebuild from the runner's
// event store takes the projection over, and the runner carries on.
func TestRunnerRefusesACheckpointOfAnotherEventStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	productIDs, orderIDs := e.workload(t)
	foreign := eventstore.Position{Commit: 4096, Prepare: 4096}
	if _, err := e.pool.Exec(ctxT(t), `INSERT INTO projection_checkpoints (name, position_commit, position_prepare, event_store)
		VALUES ($1, $2, $3, 'kurrentdb')`, products.Name, int64(foreign.Commit), int64(foreign.Prepare)); err != nil {
		t.Fatal(err)
	}
	err := projections.CheckEventStore(ctxT(t), e.pool, "", []string{products.Name, orders.Name, "never_ran"})
	var other *projections.OtherEventStoreError
	if !errors.As(err, &other) || !errors.Is(err, projections.ErrOtherEventStore) ||
		*other != (projections.OtherEventStoreError{Name: products.Name, Recorded: "kurrentdb", Configured: projections.DefaultEventStore}) {
		t.Fatalf("check: %v", err)
	}
	if err := projections.CheckEventStore(ctxT(t), e.pool, "kurrentdb", []string{products.Name}); err != nil {
		t.Fatalf("check for the checkpoint's own event store: %v", err)
	}

	var logs logtest.Sink
	run(t, projections.NewRunner(e.pool, e.store, products.Projector{}, projections.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), LeaderPoll: 20 * time.Millisecond}))
	eventually.True(t, "the runner to refuse the checkpoint", func() bool {
		return strings.Contains(logs.String(), "projection products: its checkpoint is a position in the kurrentdb event store, not in the postgres one configured")
	})
	if cp, state, _ := e.checkpoint(t, products.Name); cp != foreign || state != projections.StateRunning {
		t.Fatalf("the refused checkpoint moved: %s %s", cp, state)
	}
	list, err := projections.Statuses(ctxT(t), e.pool, e.store, projections.StatusOptions{})
	if err != nil || len(list) != 1 || list[0].EventStore != "kurrentdb" || list[0].Behind != 0 ||
		list[0].Error != "projection products: its checkpoint is a position in the kurrentdb event store, not in the postgres one configured" {
		t.Fatalf("statuses: %+v %v", list, err)
	}

	e.waitVisible(t)
	res, err := projections.Rebuild(ctxT(t), e.pool, e.store, products.Projector{}, projections.RebuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := projections.CheckEventStore(ctxT(t), e.pool, projections.DefaultEventStore, []string{products.Name}); err != nil {
		t.Fatalf("after the rebuild: %v", err)
	}
	if cp, _, _ := e.checkpoint(t, products.Name); cp != res.Checkpoint {
		t.Fatalf("rebuilt to %s, the checkpoint is at %s", res.Checkpoint, cp)
	}
	e.waitCaughtUp(t, products.Name)
	run(t, projections.NewRunner(e.pool, e.store, orders.Projector{}, projections.Options{}))
	e.waitCaughtUp(t, orders.Name)
	e.checkAgainstWriteModel(t, productIDs, orderIDs)
}

// Start records the event store of the position it is given; Switch moves
// a checkpoint of another event store to the head of the given one.
func TestStartAndSwitch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.workload(t)
	e.waitVisible(t)
	if err := projections.Start(ctxT(t), e.pool, "scheduler", "kurrentdb", eventstore.Position{Commit: 77, Prepare: 77}); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.Switch(ctxT(t), e.pool, e.store, "nothing", ""); !errors.Is(err, projections.ErrNoCheckpoint) {
		t.Fatalf("switch without a checkpoint: %v", err)
	}
	sw, err := projections.Switch(ctxT(t), e.pool, e.store, "scheduler", "")
	if err != nil {
		t.Fatal(err)
	}
	head, err := e.store.Head(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if sw.From != (eventstore.Position{Commit: 77, Prepare: 77}) || sw.FromEventStore != "kurrentdb" || sw.To.Less(head) {
		t.Fatalf("switched %+v, head %s", sw, head)
	}
	if cp, _, _ := e.checkpoint(t, "scheduler"); cp != sw.To {
		t.Fatalf("checkpoint at %s after the switch to %s", cp, sw.To)
	}
	if _, err := projections.Switch(ctxT(t), e.pool, e.store, "scheduler", projections.DefaultEventStore); !errors.Is(err, projections.ErrSameEventStore) {
		t.Fatalf("second switch: %v", err)
	}
}

// A rebuild counts the events ahead only up to MaxCount: beyond it the
// total is unknown (-1) until the last report.
func TestRebuildCountsUpToMaxCount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.workload(t)
	e.waitVisible(t)
	var totals []int64
	var last int64
	res, err := projections.Rebuild(ctxT(t), e.pool, e.store, products.Projector{}, projections.RebuildOptions{
		BatchSize: 4, MaxCount: 3,
		Progress: func(done, total int64) { totals, last = append(totals, total), done },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(totals) < 3 || totals[len(totals)-1] != res.Events || last != res.Events {
		t.Fatalf("totals %v, last done %d, read %d", totals, last, res.Events)
	}
	for _, total := range totals[:len(totals)-1] {
		if total != -1 {
			t.Fatalf("totals %v: a total before the end beyond MaxCount", totals)
		}
	}
}

// A checkpoint the event store does not hold (the KurrentDB node came back
// without its log; the PostgreSQL events table lost its last events) stops
// the projection: marked failed with one clear message, logged once, listed
// as failed with that message, and never resumed from by itself.
func TestRunnerStopsOnACheckpointNotInTheStore(t *testing.T) {
	t.Parallel()
	const want = "is beyond the event store's head or not in its log: the store lost data or EVENTSTORE_URL points at another store; rebuild the projection"
	// restart: the runner starts again after the loss (a PostgreSQL
	// restore restarts the process); else it runs across it.
	check := func(t *testing.T, e *env, logs *logtest.Sink, restart bool, lose func()) {
		e.workload(t)
		runner := func() (func(), <-chan error) {
			return run(t, projections.NewRunner(e.pool, e.store, products.Projector{}, projections.Options{
				Logger: slog.New(slog.NewTextHandler(logs, nil)), LeaderPoll: 20 * time.Millisecond, EventStore: e.kind}))
		}
		stop, _ := runner()
		e.waitCaughtUp(t, products.Name)
		if restart {
			stop()
		}
		lose()
		before, _, _ := e.checkpoint(t, products.Name)
		if restart {
			runner()
		}
		eventually.True(t, "the projection marked failed", func() bool {
			_, state, _ := e.checkpoint(t, products.Name)
			return state == projections.StateFailed
		})
		cp, _, msg := e.checkpoint(t, products.Name)
		if cp != before || msg != "checkpoint "+before.String()+" "+want {
			t.Fatalf("failed at %s (was %s) with %q", cp, before, msg)
		}
		list, err := projections.Statuses(ctxT(t), e.pool, e.store, projections.StatusOptions{EventStore: e.kind})
		if err != nil || len(list) != 1 || list[0].State != projections.StateFailed || !list[0].NotInStore || list[0].Error != msg {
			t.Fatalf("statuses: %+v %v", list, err)
		}
		behind, err := projections.Behind(ctxT(t), e.pool, e.store, e.kind, []string{products.Name}, 100)
		if err != nil || len(behind) != 0 {
			t.Fatalf("behind: %v %v", behind, err)
		}
		e.workload(t) // the store grows again: the projection stays stopped
		if cp, state, _ := e.checkpoint(t, products.Name); cp != before || state != projections.StateFailed {
			t.Fatalf("after the store grew: %s %s", cp, state)
		}
		if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
			t.Errorf("%d error lines, want 1:\n%s", n, logs.String())
		}
		if strings.Contains(logs.String(), "lost its footing") {
			t.Errorf("the runner retried:\n%s", logs.String())
		}
	}
	t.Run("kurrentdb", func(t *testing.T) {
		t.Parallel()
		pool := pgtest.NewPool(t, 12)
		srv := kurrentdbtest.Start(t, kurrentdbtest.Options{})
		addr := srv.Addr()
		b, err := eventstores.Open(ctxT(t), srv.URL(), pool, eventstores.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		e := &env{pool: pool, store: b.Store, kind: b.Kind, svc: command.NewService(b.Store, command.Options{})}
		var logs logtest.Sink
		check(t, e, &logs, false, func() {
			srv.Close()
			again, err := kurrentdbtest.Listen(addr, kurrentdbtest.Options{}) // the same node, its log lost
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(again.Close)
		})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		var logs logtest.Sink
		check(t, e, &logs, true, func() {
			// The events table restored from an older backup, its
			// transaction ids counting from there again: the checkpoint
			// (kept) lies beyond them. (A test cannot roll a cluster's
			// transaction ids back, so the checkpoint moves forward.)
			if _, err := e.pool.Exec(ctxT(t), `UPDATE projection_checkpoints SET position_commit = position_commit + $2 WHERE name = $1`,
				products.Name, int64(1)<<40); err != nil {
				t.Fatal(err)
			}
		})
	})
}
