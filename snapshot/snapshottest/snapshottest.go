// Package snapshottest is the acceptance suite every snapshot.Store runs.
package snapshottest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
	t.Run("SchemaChangeAtTheSameVersion", func(t *testing.T) { testSchemaChange(t, newStore(t)) })
	t.Run("RepairAtTheSameVersion", func(t *testing.T) { testRepair(t, newStore(t)) })
	t.Run("StreamsAreIndependent", func(t *testing.T) { testIndependent(t, newStore(t)) })
	t.Run("BinaryData", func(t *testing.T) { testBinary(t, newStore(t)) })
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

// A snapshot its reader could not use (corrupt data at the stream's head)
// is replaced by the one the reader saves after folding the stream.
func testRepair(t *testing.T, s snapshot.Store) {
	st := stream()
	bad := snap(st, 7)
	bad.Data = []byte{0, 0xde, 0xad}
	good := snap(st, 7)
	for _, x := range []snapshot.Snapshot{bad, good} {
		if err := s.Save(ctxT(t), x); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Load(ctxT(t), st); got.Version != 7 || string(got.Data) != string(good.Data) {
		t.Fatalf("a corrupt snapshot stayed: %+v", got)
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
	if _, err := s.Load(ctx, stream()); !errors.Is(err, context.Canceled) {
		t.Fatalf("a canceled load: %v", err)
	}
	st := stream()
	if err := s.Save(ctx, snap(st, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("a canceled save: %v", err)
	}
	if _, err := s.Load(ctxT(t), st); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("a canceled save was stored: %v", err)
	}
}

// testSchemaChange: after an upgrade, a stream at rest gets a snapshot of
// the new schema at the version it has; an older version does not replace
// a later one whatever its schema.
func testSchemaChange(t *testing.T, s snapshot.Store) {
	st := stream()
	if err := s.Save(ctxT(t), snap(st, 7)); err != nil {
		t.Fatal(err)
	}
	upgraded := snap(st, 7)
	upgraded.Schema, upgraded.Data = 4, []byte(`{"schema":4}`)
	if err := s.Save(ctxT(t), upgraded); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctxT(t), st); got.Version != 7 || got.Schema != 4 || string(got.Data) != `{"schema":4}` {
		t.Fatalf("after a save of the same version in another schema: %+v", got)
	}
	older := snap(st, 6)
	older.Schema = 5
	if err := s.Save(ctxT(t), older); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctxT(t), st); got.Version != 7 || got.Schema != 4 {
		t.Fatalf("an older version of another schema replaced a later one: %+v", got)
	}
}

func testIndependent(t *testing.T, s snapshot.Store) {
	a, b := stream(), stream()
	if err := s.Save(ctxT(t), snap(a, 50)); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctxT(t), snap(b, 3)); err != nil {
		t.Fatal(err)
	}
	ga, errA := s.Load(ctxT(t), a)
	gb, errB := s.Load(ctxT(t), b)
	if errA != nil || errB != nil || ga.Version != 50 || gb.Version != 3 || ga.Stream != a || gb.Stream != b {
		t.Fatalf("two streams: %+v %v, %+v %v", ga, errA, gb, errB)
	}
}

// testBinary: Data is bytes, not text.
func testBinary(t *testing.T, s snapshot.Store) {
	st := stream()
	want := snap(st, 1)
	want.Data = make([]byte, 1<<20)
	for i := range want.Data {
		want.Data[i] = byte(i * 7)
	}
	if err := s.Save(ctxT(t), want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctxT(t), st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Fatal("binary data changed on its way through the store")
	}
	got.Data[0]++ // the caller's copy
	if again, _ := s.Load(ctxT(t), st); !bytes.Equal(again.Data, want.Data) {
		t.Fatal("changing a loaded snapshot's data changed the stored one")
	}
}

// testConcurrent: many writers saving versions of a few streams at once,
// each stream's versions in a shuffled order; the latest of each stays.
func testConcurrent(t *testing.T, s snapshot.Store) {
	streams := []string{stream(), stream(), stream()}
	var wg sync.WaitGroup
	for _, v := range rand.Perm(40) {
		for _, st := range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Save(ctxT(t), snap(st, int64(v))); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	for _, st := range streams {
		if got, _ := s.Load(ctxT(t), st); got.Version != 39 || string(got.Data) != `{"v":39}` || got.Position != snap(st, 39).Position {
			t.Fatalf("after concurrent saves: %+v", got)
		}
	}
}
