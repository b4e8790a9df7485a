// Package eventtest helps tests build aggregates from events the way
// production does: through an event store, so that every event also
// round-trips through its JSON payload.
package eventtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
	"github.com/orders-reference/orders/eventstore/memory"
)

// Reader reads a stream.
type Reader interface {
	ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from int64, limit int) ([]eventstore.RecordedEvent, error)
}

// Given stores history in a fresh in-memory event store and applies it,
// read back from there, to apply.
func Given(t testing.TB, stream string, history []events.Event, apply func(events.Event, int64, time.Time)) {
	t.Helper()
	store := memory.New()
	for _, e := range history {
		data, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Append(context.Background(), stream, eventstore.Any, eventstore.EventData{Type: e.EventType(), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	Load(t, store, stream, apply)
}

// Load reads the whole stream from store and applies every event; a missing
// stream applies nothing.
func Load(t testing.TB, store Reader, stream string, apply func(events.Event, int64, time.Time)) {
	t.Helper()
	recorded, err := store.ReadStream(context.Background(), stream, eventstore.Forward, 0, 1_000_000)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recorded {
		e, err := events.Decode(r.Type, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		apply(e, r.Version, r.RecordedAt)
	}
}
