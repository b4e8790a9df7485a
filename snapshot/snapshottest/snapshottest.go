// Package snapshottest is the acceptance suite every snapshot.Store runs.
package snapshottest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/snapshot"
)

// Run runs the suite against stores made by newStore (one per subtest).
func Run(t *testing.T, newStore func(t *testing.T) snapshot.Store) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newStore(t)) })
	t.Run("NeverBackwards", func(t *testing.T) { testNeverBackwards(t, newStore(t)) })
	t.Run("Missing", func(t *testing.T) { testMissing(t, newStore(t)) })
	t.Run("Canceled", func(t *testing.T) { testCanceled(t, newStore(t)) })
	t.Run("ConcurrentSaves", func(t *testing.T) { testConcurrent(t, newStore(t)) })
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func stream() string { return "product-" + uuid.NewString() }

func snap(stream string, version int64) snapshot.Snapshot {
	return snapshot.Snapshot{Stream: stream, Version: version, Schema: 3,
		Position: eventstore.Position{Commit: uint64(1000 + version), Prepare: uint64(version)},
		Data:     []byte(fmt.Sprintf(`{"v":%d}`, version))}
}

func testRoundTrip(t *testing.T, s snapshot.Store) {
	st := stream()
	want := snap(st, 41)
	if err := s.Save(ctxT(t), want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctxT(t), st)
	if err != nil {
		t.Fatal(err)
	}
	if got.Stream != st || got.Version != 41 || got.Schema != 3 || got.Position != want.Position || string(got.Data) != string(want.Data) {
		t.Fatalf("loaded %+v, saved %+v", got, want)
	}
	if got.TakenAt.IsZero() || time.Since(got.TakenAt) > time.Hour {
		t.Fatalf("taken at %v", got.TakenAt)
	}
	newer := snap(st, 90)
	newer.Schema = 4
	if err := s.Save(ctxT(t), newer); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctxT(t), st); got.Version != 90 || got.Schema != 4 || string(got.Data) != `{"v":90}` {
		t.Fatalf("after a newer save: %+v", got)
	}
}

func testNeverBackwards(t *testing.T, s snapshot.Store) {
	st := stream()
	for _, v := range []int64{10, 5, 10} {
		if err := s.Save(ctxT(t), snap(st, v)); err != nil {
			t.Fatal(err)
		}
	}
	older := snap(st, 5)
	older.Data = []byte(`{"older":true}`)
	if err := s.Save(ctxT(t), older); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctxT(t), st); got.Version != 10 || string(got.Data) != `{"v":10}` {
		t.Fatalf("a snapshot went backwards: %+v", got)
	}
}

func testMissing(t *testing.T, s snapshot.Store) {
	if _, err := s.Load(ctxT(t), stream()); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("missing snapshot: %v", err)
	}
}

func testCanceled(t *testing.T, s snapshot.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Save(ctx, snap(stream(), 1)); err == nil {
		t.Fatal("a canceled save succeeded")
	}
	if _, err := s.Load(ctx, stream()); err == nil || errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("a canceled load: %v", err)
	}
}

func testConcurrent(t *testing.T, s snapshot.Store) {
	st := stream()
	var wg sync.WaitGroup
	for v := range int64(40) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Save(ctxT(t), snap(st, v)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got, _ := s.Load(ctxT(t), st); got.Version != 39 || string(got.Data) != `{"v":39}` {
		t.Fatalf("after concurrent saves: %+v", got)
	}
}
