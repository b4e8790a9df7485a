package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
)

// EventReader reads streams from the event store.
type EventReader interface {
	ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from int64, limit int) ([]eventstore.RecordedEvent, error)
}

// HistoryEvent is one entry of an order's audit trail.
type HistoryEvent struct {
	Position   string              `json:"position"`
	Stream     string              `json:"stream"`
	Version    int64               `json:"version"`
	Type       string              `json:"type"`
	Data       json.RawMessage     `json:"data"`
	Metadata   eventstore.Metadata `json:"metadata"`
	RecordedAt time.Time           `json:"recorded_at"`

	position eventstore.Position
}

// History is an order's full audit trail.
type History struct {
	OrderID uuid.UUID      `json:"order_id"`
	Events  []HistoryEvent `json:"events"`
}

// History returns every event of the order and the stock events of its
// products that belong to it, oldest first (in global order). It reads the
// event store itself: the audit trail is the events, not a model of them.
//
// The products' streams are read whole and filtered, which is slow for a
// product with a very long history; an index of stock events by order is
// the remedy when that matters.
func OrderHistory(ctx context.Context, store EventReader, id uuid.UUID) (History, error) {
	h := History{OrderID: id, Events: []HistoryEvent{}}
	orderEvents, err := readAll(ctx, store, events.OrderStream(id))
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return History{}, fmt.Errorf("order %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return History{}, err
	}
	var products []uuid.UUID
	for _, r := range orderEvents {
		h.Events = append(h.Events, historyEvent(r))
		if r.Type == events.TypeOrderPlaced {
			e, err := events.Decode(r.Type, r.Data)
			if err != nil {
				return History{}, err
			}
			for _, it := range e.(events.OrderPlaced).Items {
				products = append(products, it.ProductID)
			}
		}
	}
	for _, p := range products {
		recs, err := readAll(ctx, store, events.ProductStream(p))
		if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
			return History{}, err
		}
		for _, r := range recs {
			var ref struct {
				OrderID uuid.UUID `json:"order_id"`
			}
			if json.Unmarshal(r.Data, &ref) == nil && ref.OrderID == id {
				h.Events = append(h.Events, historyEvent(r))
			}
		}
	}
	sortByPosition(h.Events)
	return h, nil
}

func historyEvent(r eventstore.RecordedEvent) HistoryEvent {
	return HistoryEvent{
		Position: r.Position.String(), Stream: r.StreamID, Version: r.Version, Type: r.Type,
		Data: r.Data, Metadata: r.Metadata, RecordedAt: r.RecordedAt, position: r.Position,
	}
}

func sortByPosition(evs []HistoryEvent) {
	for i := 1; i < len(evs); i++ { // insertion sort: short, nearly sorted lists
		for j := i; j > 0 && evs[j].position.Less(evs[j-1].position); j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

func readAll(ctx context.Context, store EventReader, stream string) ([]eventstore.RecordedEvent, error) {
	var out []eventstore.RecordedEvent
	for from := int64(0); ; {
		page, err := store.ReadStream(ctx, stream, eventstore.Forward, from, 1000)
		if err != nil {
			return out, err
		}
		out = append(out, page...)
		if len(page) < 1000 {
			return out, nil
		}
		from = page[len(page)-1].Version + 1
	}
}
