package query

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/orders-reference/orders/events"
	"github.com/orders-reference/orders/eventstore"
)

// EventReader reads streams from the event store.
type EventReader interface {
	ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from int64, limit int) ([]eventstore.RecordedEvent, error)
}

// StockIndex finds the stock events of an order without reading its
// products' streams: the order_stock read model (*Reader implements it).
type StockIndex interface {
	// OrderStockEvents returns where the stock events of order id are, in
	// global order, as far as the index has got (StockEvents.Through).
	OrderStockEvents(ctx context.Context, id uuid.UUID) (StockEvents, error)
}

// EventRef is where an event is in the event store.
type EventRef struct {
	Stream   string
	Version  int64
	Position eventstore.Position
}

// StockEvents is what the order_stock index holds for one order.
type StockEvents struct {
	// Refs are the order's stock events, oldest first.
	Refs []EventRef
	// Through is the index's checkpoint when Refs were read: every stock
	// event of the order at or before it is in Refs; later ones may not be
	// yet. Start when the projection has never run.
	Through eventstore.Position
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
	// StockThrough is the order_stock index's checkpoint the stock events
	// were found at (not part of the JSON): the order's own events are
	// always all there, its stock events up to this position.
	StockThrough eventstore.Position `json:"-"`
}

// ErrIndexMismatch: the order_stock index points at an event the event
// store does not have, or at one of another order (a read model built from
// another store, or damaged); rebuilding the projection repairs it.
var ErrIndexMismatch = errors.New("order_stock index does not match the event store")

// OrderHistory returns every event of the order and every stock event of
// its products that belongs to it, oldest first (in global order). The
// events come from the event store itself: the audit trail is the events,
// not a model of them. Which stock events belong to the order comes from
// index (the order_stock projection), so the cost is one read of the
// order's stream, one index query and one stream read per run of the
// order's stock events, however long its products' histories are.
//
// The index follows the event store a moment behind: stock events after
// StockThrough are not shown yet (callers that need a write of their own
// wait for the projection first, as the query API does for X-Min-Position).
// Errors: ErrNotFound (wrapped) when the order's stream does not exist;
// ErrIndexMismatch when the index points at an event that is not the
// order's; the store's or the index's errors otherwise.
func OrderHistory(ctx context.Context, store EventReader, index StockIndex, id uuid.UUID) (History, error) {
	orderEvents, err := readStream(ctx, store, events.OrderStream(id))
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return History{}, &NotFoundError{Kind: KindOrder, ID: id}
	}
	if err != nil {
		return History{}, fmt.Errorf("history of order %s: %w", id, err)
	}
	stock, err := index.OrderStockEvents(ctx, id)
	if err != nil {
		return History{}, fmt.Errorf("history of order %s: %w", id, err)
	}
	h := History{OrderID: id, Events: make([]HistoryEvent, 0, len(orderEvents)+len(stock.Refs)), StockThrough: stock.Through}
	for _, r := range orderEvents {
		h.Events = append(h.Events, historyEvent(r))
	}
	recs, err := readRefs(ctx, store, stock.Refs)
	if err != nil {
		return History{}, fmt.Errorf("history of order %s: %w", id, err)
	}
	for _, r := range recs {
		var ref struct {
			OrderID uuid.UUID `json:"order_id"`
		}
		if err := json.Unmarshal(r.Data, &ref); err != nil || ref.OrderID != id {
			return History{}, fmt.Errorf("history of order %s: %s@%d belongs to order %s (%v): %w", id, r.StreamID, r.Version, ref.OrderID, err, ErrIndexMismatch)
		}
		h.Events = append(h.Events, historyEvent(r))
	}
	slices.SortFunc(h.Events, func(a, b HistoryEvent) int { return a.position.Compare(b.position) })
	return h, nil
}

// readRefs reads the events refs point at, each run of consecutive
// versions of one stream with one ReadStream.
func readRefs(ctx context.Context, store EventReader, refs []EventRef) ([]eventstore.RecordedEvent, error) {
	sorted := slices.Clone(refs)
	slices.SortFunc(sorted, func(a, b EventRef) int {
		if c := strings.Compare(a.Stream, b.Stream); c != 0 {
			return c
		}
		return cmp.Compare(a.Version, b.Version)
	})
	sorted = slices.CompactFunc(sorted, func(a, b EventRef) bool { return a.Stream == b.Stream && a.Version == b.Version })
	out := make([]eventstore.RecordedEvent, 0, len(sorted))
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j].Stream == sorted[i].Stream && sorted[j].Version == sorted[j-1].Version+1 {
			j++
		}
		run := sorted[i:j]
		page, err := store.ReadStream(ctx, run[0].Stream, eventstore.Forward, run[0].Version, len(run))
		if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
			return nil, err
		}
		for k, ref := range run {
			if k >= len(page) || page[k].Version != ref.Version {
				return nil, fmt.Errorf("%s@%d is not in the event store: %w", ref.Stream, ref.Version, ErrIndexMismatch)
			}
			out = append(out, page[k])
		}
		i = j
	}
	return out, nil
}

func historyEvent(r eventstore.RecordedEvent) HistoryEvent {
	return HistoryEvent{
		Position: r.Position.String(), Stream: r.StreamID, Version: r.Version, Type: r.Type,
		Data: r.Data, Metadata: r.Metadata, RecordedAt: r.RecordedAt, position: r.Position,
	}
}

// readStream reads a whole stream, a page of 1,000 events at a time.
func readStream(ctx context.Context, store EventReader, stream string) ([]eventstore.RecordedEvent, error) {
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
