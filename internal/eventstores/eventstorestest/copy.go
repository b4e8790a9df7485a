// Package eventstorestest helps tests run on every event store Orders runs
// on (Each), survive the unknown outcome of an append (LostAnswers), check
// what a stream holds after retries (Stream), and move a deployment from
// one event store to another (Copy).
package eventstorestest

import (
	"context"
	"testing"
	"time"

	"github.com/orders-reference/orders/eventstore"
)

// Copy appends every event of src to dst in src's global order, with its
// id, type, data and metadata, each at the stream version it has in src
// (so dst must not hold those streams yet), and returns how many it
// copied. It is what an operator's copy does before switching event
// stores, with the writers stopped; recording times are dst's own.
func Copy(t testing.TB, dst, src eventstore.Store) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := 0
	for pos := eventstore.Start; ; {
		page, err := src.ReadAll(ctx, pos, 500, eventstore.Filter{})
		if err != nil {
			t.Fatalf("copy: read after %s: %v", pos, err)
		}
		for _, e := range page.Events {
			if _, err := dst.Append(ctx, e.StreamID, eventstore.Exact(e.Version-1), // NoStream for version 0
				eventstore.EventData{ID: e.ID, Type: e.Type, Data: e.Data, Metadata: e.Metadata}); err != nil {
				t.Fatalf("copy %s@%d: %v", e.StreamID, e.Version, err)
			}
			n++
		}
		pos = page.Next
		if page.AtEnd {
			return n
		}
	}
}
