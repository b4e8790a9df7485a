package command

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
)

// EventStore is what the write side needs from the event store.
type EventStore interface {
	Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error)
	ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from int64, limit int) ([]eventstore.RecordedEvent, error)
}

// readPage is how many events one stream read fetches.
const readPage = 512

// opTimeout bounds work done on behalf of several callers at once, which no
// single caller's context may cancel.
const opTimeout = 30 * time.Second

// readRecorded calls apply with every event of stream from version from on,
// recorded and decoded, and returns the global position of the last one
// (Start if none).
func readRecorded(ctx context.Context, store EventStore, stream string, from int64, apply func(r eventstore.RecordedEvent, e events.Event)) (eventstore.Position, error) {
	last := eventstore.Start
	for {
		recorded, err := store.ReadStream(ctx, stream, eventstore.Forward, from, readPage)
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return last, nil
		}
		if err != nil {
			return last, fmt.Errorf("read %s: %w", stream, err)
		}
		for _, r := range recorded {
			e, err := events.Decode(r.Type, r.Data)
			if err != nil {
				return last, fmt.Errorf("read %s@%d: %w", stream, r.Version, err)
			}
			apply(r, e)
			last = r.Position
		}
		if len(recorded) < readPage {
			return last, nil
		}
		from = recorded[len(recorded)-1].Version + 1
	}
}

// DerivedEventID is the id of the i-th event caused by the message that seed
// names (for a payment webhook, WebhookSeed): the same message always
// yields the same ids, so the event store refuses to store its effect twice.
func DerivedEventID(seed string, i int) uuid.UUID {
	return uuid.NewSHA1(eventIDSpace, []byte(seed+"/"+strconv.Itoa(i)))
}

// WebhookSeed names a provider's webhook message about an order, the seed
// of the ids of the events it causes.
func WebhookSeed(orderID uuid.UUID, webhookID string) string {
	return "webhook/" + orderID.String() + "/" + webhookID
}

// eventIDSpace is the namespace of event ids derived from the message that
// caused them.
var eventIDSpace = uuid.MustParse("6f1c9a52-3e0b-4f7d-9a8e-2b5c7d1e4f30")

// encode turns decided events into EventData with the given metadata. Event
// ids are new, unless seed names the message that caused the events: then
// they are derived from it, so the event store refuses to store the effect
// of one message twice, even from a process that has never seen it.
func encode(meta eventstore.Metadata, evs []events.Event, seed string) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(evs))
	for i, e := range evs {
		data, err := events.Encode(e)
		if err != nil {
			return nil, err
		}
		var id uuid.UUID
		if seed != "" {
			id = DerivedEventID(seed, i)
		} else if id, err = uuid.NewV7(); err != nil {
			return nil, fmt.Errorf("event id: %w", err)
		}
		out[i] = eventstore.EventData{ID: id, Type: e.EventType(), Data: data, Metadata: meta}
	}
	return out, nil
}

// expectedAt is the ExpectedVersion of a stream whose last version is v.
func expectedAt(v int64) eventstore.ExpectedVersion {
	if v < 0 {
		return eventstore.NoStream
	}
	return eventstore.Exact(v)
}
